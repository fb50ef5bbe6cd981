//! Renders failures in wazo-auth's three error formats (wazo-contract §1.2):
//! - **A** `{"reason": [..], "timestamp": [..], "status_code": N}` on `POST /token` and
//!   `/token/{token}*`;
//! - **B** `{"message", "error_id", "details", "timestamp"[, "resource"]}` on the
//!   `X-Auth-Token` endpoints;
//! - **C** Flask's `{"message": "The browser (or proxy) sent a request …"}` for a body that is
//!   not JSON.
//!
//! Both `oauth::Error` matches are exhaustive: a new domain error forces a decision here.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER};
use serde_json::{Value, json};

use crate::clock::Timestamp;
use crate::http::body::BodyError;
use crate::oauth::Error;

use super::wire::Py;

/// Flask's answer to a body it cannot parse as JSON.
pub const NOT_UNDERSTOOD: &str =
    "The browser (or proxy) sent a request that this server could not understand.";

/// A failure on a `/token*` endpoint (formats A and C).
#[derive(Debug)]
pub enum TokenError {
    Domain(Error),
    /// Marshmallow validation: the reason is the repr of its error dict.
    Invalid(Py),
    /// The body is empty or not JSON.
    NotUnderstood,
    BodyTooLarge,
}

impl From<Error> for TokenError {
    fn from(e: Error) -> Self {
        TokenError::Domain(e)
    }
}

impl From<BodyError> for TokenError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => TokenError::BodyTooLarge,
            BodyError::Invalid(_) => TokenError::NotUnderstood,
        }
    }
}

/// Format A.
pub fn format_a(status: StatusCode, reason: &str, at: Timestamp) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        builder.insert_header((RETRY_AFTER, "1"));
    }
    builder.json(json!({
        "reason": [reason],
        "timestamp": [at.as_f64()],
        "status_code": status.as_u16(),
    }))
}

fn log_fault(e: &Error) {
    if let Error::Internal(detail) | Error::Unavailable(detail) = e {
        log::error!("wazo request failed: {detail}");
    }
}

impl TokenError {
    /// Status and reason of format A.
    pub fn status_and_reason(&self) -> (StatusCode, String) {
        use StatusCode as S;
        let e = match self {
            TokenError::Invalid(reason) => return (S::BAD_REQUEST, reason.repr()),
            TokenError::NotUnderstood => return (S::BAD_REQUEST, NOT_UNDERSTOOD.to_owned()),
            TokenError::BodyTooLarge => {
                return (S::PAYLOAD_TOO_LARGE, "Request Entity Too Large".to_owned());
            }
            TokenError::Domain(e) => e,
        };
        let failed = || (S::UNAUTHORIZED, "Authentication Failed".to_owned());
        match e {
            Error::InvalidUserCredentials
            | Error::InvalidRefreshToken(_)
            | Error::ClientAuthenticationFailed { .. }
            | Error::InvalidBearerToken => failed(),
            Error::SessionLimitReached(user) => (
                S::TOO_MANY_REQUESTS,
                format!("User {user} has exceeded the maximum number of active sessions"),
            ),
            // The brute-force limits (wazo-auth has none): 429 with `Retry-After`.
            Error::TooManyFailures { .. } => (S::TOO_MANY_REQUESTS, TOO_MANY_FAILURES.to_owned()),
            Error::NoSuchToken => (S::NOT_FOUND, "No such token".to_owned()),
            Error::ScopeDenied(scope) | Error::InsufficientAccess(scope) => {
                (S::FORBIDDEN, format!("Unauthorized for {}", ascii(scope)))
            }
            Error::TenantDenied(tenant) | Error::UnauthorizedTenant(tenant) => {
                (S::FORBIDDEN, format!("Unauthorized for tenant {tenant}"))
            }
            Error::MissingParameter(_)
            | Error::RepeatedParameter
            | Error::MalformedRequest(_)
            | Error::SensitiveDataInUrl
            | Error::MultipleClientAuthentication
            | Error::UnsupportedGrantType
            | Error::GrantNotAllowed
            | Error::InvalidScope
            | Error::TokenOfAnotherClient
            | Error::UnknownUser(_)
            | Error::UnknownClientRefreshToken(_) => (S::BAD_REQUEST, e.to_string()),
            Error::Conflict | Error::Unavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable, retry later".to_owned(),
            ),
            Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "Internal Server Error".to_owned()),
        }
    }

    pub fn render(&self, at: Timestamp) -> HttpResponse {
        if let TokenError::Domain(e) = self {
            log_fault(e);
        }
        if let TokenError::NotUnderstood = self {
            return HttpResponse::BadRequest().json(json!({ "message": NOT_UNDERSTOOD }));
        }
        let (status, reason) = self.status_and_reason();
        let mut response = format_a(status, &reason, at);
        response.headers_mut().insert(
            CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
        if let TokenError::Domain(e) = self {
            retry_after(e, &mut response);
        }
        response
    }

    /// A HEAD answer: the status only.
    pub fn render_head(&self) -> HttpResponse {
        if let TokenError::Domain(e) = self {
            log_fault(e);
        }
        let status = self.status_and_reason().0;
        let mut builder = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            builder.insert_header((RETRY_AFTER, "1"));
        }
        let mut response = builder.finish();
        if let TokenError::Domain(e) = self {
            retry_after(e, &mut response);
        }
        response
    }
}

/// The reason of a 429 from the brute-force limits.
pub const TOO_MANY_FAILURES: &str = "Too many failed authentication attempts, retry later";

/// `Retry-After` for an attempt refused by the brute-force limits.
fn retry_after(e: &Error, response: &mut HttpResponse) {
    if let Error::TooManyFailures { retry_after, .. } = e {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
    }
}

/// ASCII for the Latin-1 and Latin Extended-A letters U+00C0..=U+017F, as unidecode writes
/// them (the base letter; ligatures and a few letters spelt out); `?` where unsure.
const LATIN: [&str; 192] = [
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I", "D", "N", "O",
    "O", "O", "O", "O", "x", "O", "U", "U", "U", "U", "Y", "Th", "ss", "a", "a", "a", "a", "a",
    "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", "d", "n", "o", "o", "o", "o", "o", "/",
    "o", "u", "u", "u", "u", "y", "th", "y", "A", "a", "A", "a", "A", "a", "C", "c", "C", "c", "C",
    "c", "C", "c", "D", "d", "D", "d", "E", "e", "E", "e", "E", "e", "E", "e", "E", "e", "G", "g",
    "G", "g", "G", "g", "G", "g", "H", "h", "H", "h", "I", "i", "I", "i", "I", "i", "I", "i", "I",
    "i", "IJ", "ij", "J", "j", "K", "k", "?", "L", "l", "L", "l", "L", "l", "L", "l", "L", "l",
    "N", "n", "N", "n", "N", "n", "?", "?", "?", "O", "o", "O", "o", "O", "o", "OE", "oe", "R",
    "r", "R", "r", "R", "r", "S", "s", "S", "s", "S", "s", "S", "s", "T", "t", "T", "t", "T", "t",
    "U", "u", "U", "u", "U", "u", "U", "u", "U", "u", "U", "u", "W", "w", "Y", "y", "Y", "Z", "z",
    "Z", "z", "Z", "z", "s",
];

/// unidecode's job for the 403 reason: ASCII stays, accented Latin letters lose their
/// accents (`é` → `e`, `ß` → `ss`), anything else becomes `?`.
fn ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let latin = (c as usize)
            .checked_sub(0xC0)
            .and_then(|i| LATIN.get(i).copied());
        out.push_str(latin.unwrap_or("?"));
    }
    out
}

/// The request context of an `X-Auth-Token` failure: what `details` echoes.
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub token: String,
    pub required: String,
    pub tenant: Option<String>,
}

/// A failure on an `X-Auth-Token` endpoint (format B).
#[derive(Debug)]
pub enum ApiError {
    Domain(Error),
    /// A bad list parameter: `{field: [message]}`.
    InvalidListParam(Py),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Domain(e)
    }
}

impl ApiError {
    pub fn render(&self, ctx: &ApiContext, at: Timestamp) -> HttpResponse {
        use StatusCode as S;
        let body = |status: StatusCode,
                    message: Value,
                    error_id: &str,
                    details: Value,
                    resource: Option<&str>| {
            let mut b = json!({
                "message": message,
                "error_id": error_id,
                "details": details,
                "timestamp": at.as_f64(),
            });
            if let (Some(resource), Some(map)) = (resource, b.as_object_mut()) {
                map.insert("resource".into(), json!(resource));
            }
            let mut builder = HttpResponse::build(status);
            if status == S::SERVICE_UNAVAILABLE {
                builder.insert_header((RETRY_AFTER, "1"));
            }
            builder.json(b)
        };
        let e = match self {
            ApiError::InvalidListParam(message) => {
                return body(
                    S::BAD_REQUEST,
                    message.to_json(),
                    "invalid-list-param",
                    json!({}),
                    Some("users"),
                );
            }
            ApiError::Domain(e) => e,
        };
        log_fault(e);
        let unauthorized = || {
            body(
                S::UNAUTHORIZED,
                json!("Unauthorized"),
                "unauthorized",
                json!({
                    "invalid_token": ctx.token,
                    "reason": "not_found_or_expired",
                    "required_access": ctx.required,
                }),
                None,
            )
        };
        match e {
            Error::InvalidBearerToken
            | Error::NoSuchToken
            | Error::InvalidUserCredentials
            | Error::InvalidRefreshToken(_)
            | Error::ClientAuthenticationFailed { .. } => unauthorized(),
            Error::InsufficientAccess(required) | Error::ScopeDenied(required) => body(
                S::UNAUTHORIZED,
                json!("Unauthorized"),
                "unauthorized",
                json!({
                    "invalid_token": ctx.token,
                    "reason": "missing_permission_or_invalid_tenant",
                    "required_access": required,
                    "tenant_uuid": ctx.tenant,
                }),
                None,
            ),
            Error::UnauthorizedTenant(tenant) | Error::TenantDenied(tenant) => body(
                S::UNAUTHORIZED,
                json!("Unauthorized tenant"),
                "unauthorized-tenant",
                json!({ "tenant_uuid": tenant }),
                None,
            ),
            Error::UnknownUser(uuid) => body(
                S::NOT_FOUND,
                json!(format!("No such user: \"{uuid}\"")),
                "unknown-user",
                json!({ "uuid": uuid }),
                Some("users"),
            ),
            Error::UnknownClientRefreshToken(client_id) => body(
                S::NOT_FOUND,
                json!(format!(
                    "unknown refresh_token for client_id \"{client_id}\""
                )),
                "cannot-find-refresh-token-matching-client-id",
                json!({ "client_id": client_id }),
                Some("tokens"),
            ),
            Error::SessionLimitReached(_) => body(
                S::TOO_MANY_REQUESTS,
                json!("Too many sessions"),
                "too-many-sessions",
                json!({}),
                None,
            ),
            Error::TooManyFailures { .. } => {
                let mut response = body(
                    S::TOO_MANY_REQUESTS,
                    json!(TOO_MANY_FAILURES),
                    "too-many-failed-attempts",
                    json!({}),
                    None,
                );
                retry_after(e, &mut response);
                response
            }
            Error::MissingParameter(_)
            | Error::RepeatedParameter
            | Error::MalformedRequest(_)
            | Error::SensitiveDataInUrl
            | Error::MultipleClientAuthentication
            | Error::UnsupportedGrantType
            | Error::GrantNotAllowed
            | Error::InvalidScope
            | Error::TokenOfAnotherClient => body(
                S::BAD_REQUEST,
                json!(e.to_string()),
                "invalid-data",
                json!({}),
                None,
            ),
            Error::Conflict | Error::Unavailable(_) => body(
                S::SERVICE_UNAVAILABLE,
                json!("Service temporarily unavailable, retry later"),
                "service-unavailable",
                json!({}),
                None,
            ),
            Error::Internal(_) => body(
                S::INTERNAL_SERVER_ERROR,
                json!("Internal Server Error"),
                "internal-server-error",
                json!({}),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_made_ascii_like_unidecode() {
        assert_eq!(ascii("confd.users.me.read"), "confd.users.me.read");
        assert_eq!(
            ascii("confd.café.Ærø.ß.Łódź.ſ"),
            "confd.cafe.AEro.ss.Lodz.s"
        );
        assert_eq!(ascii("x.€.中"), "x.?.?");
    }
}
