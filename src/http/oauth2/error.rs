//! Renders `oauth::Error` as RFC 6749 §5.2 error responses (and RFC 6750 §3.1 for bearer
//! tokens). The match is exhaustive: a new domain error forces a decision here.
use actix_web::http::StatusCode;
use actix_web::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::http::body::BodyError;
use crate::oauth::{Credential, Error, RefreshTokenProblem};

/// The realm of every `WWW-Authenticate` challenge.
pub const REALM: &str = "tessera";

/// An error on an OAuth2 endpoint.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    #[error(transparent)]
    Domain(#[from] Error),
    #[error("request body too large")]
    BodyTooLarge,
}

impl From<BodyError> for OAuth2Error {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => OAuth2Error::BodyTooLarge,
            BodyError::Invalid(e) => OAuth2Error::Domain(e),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

enum Challenge {
    None,
    Basic,
    Bearer(&'static str, Option<String>),
}

struct Rendered {
    status: StatusCode,
    code: &'static str,
    description: String,
    challenge: Challenge,
    /// Seconds for `Retry-After` (a 503 always gets 1).
    retry_after: Option<i64>,
}

fn render(e: &OAuth2Error) -> Rendered {
    use StatusCode as S;
    let r = |status, code, description: &str, challenge| Rendered {
        status,
        code,
        description: description.to_owned(),
        challenge,
        retry_after: None,
    };
    let e = match e {
        OAuth2Error::BodyTooLarge => {
            return r(
                S::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "Request body too large.",
                Challenge::None,
            );
        }
        OAuth2Error::Domain(e) => e,
    };
    match e {
        Error::MissingParameter(name) => Rendered {
            status: S::BAD_REQUEST,
            code: "invalid_request",
            description: format!("Missing parameter {name}."),
            challenge: Challenge::None,
            retry_after: None,
        },
        Error::RepeatedParameter => r(
            S::BAD_REQUEST,
            "invalid_request",
            "Invalid request with repeated parameters.",
            Challenge::None,
        ),
        Error::MalformedRequest(why) => Rendered {
            status: S::BAD_REQUEST,
            code: "invalid_request",
            description: format!("Malformed request: {why}."),
            challenge: Challenge::None,
            retry_after: None,
        },
        Error::SensitiveDataInUrl => r(
            S::BAD_REQUEST,
            "invalid_request",
            "Invalid request with sensitive data in the URL.",
            Challenge::None,
        ),
        Error::MultipleClientAuthentication => r(
            S::BAD_REQUEST,
            "invalid_request",
            "The client MUST NOT use more than one authentication method in each request.",
            Challenge::None,
        ),
        Error::UnsupportedGrantType => r(
            S::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant_type value.",
            Challenge::None,
        ),
        // RFC 9110 §15.5.2: a 401 always carries a challenge.
        Error::ClientAuthenticationFailed { .. } => r(
            S::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
            Challenge::Basic,
        ),
        Error::GrantNotAllowed => r(
            S::BAD_REQUEST,
            "unauthorized_client",
            "The authenticated client is not authorized to use this authorization grant type.",
            Challenge::None,
        ),
        Error::InvalidUserCredentials => r(
            S::BAD_REQUEST,
            "invalid_grant",
            "Invalid resource owner credentials.",
            Challenge::None,
        ),
        // The brute-force limits: the error of the credentials refused, with when to retry.
        Error::TooManyFailures {
            credential,
            retry_after,
        } => {
            let (status, code, challenge) = match credential {
                Credential::Password => (S::BAD_REQUEST, "invalid_grant", Challenge::None),
                Credential::ClientSecret(_) => {
                    (S::UNAUTHORIZED, "invalid_client", Challenge::Basic)
                }
            };
            Rendered {
                status,
                code,
                description: "Too many failed attempts; retry later.".to_owned(),
                challenge,
                retry_after: Some(*retry_after),
            }
        }
        Error::InvalidRefreshToken(problem) => {
            let description = match problem {
                // Another client's token is indistinguishable from an unknown one.
                RefreshTokenProblem::Unknown
                | RefreshTokenProblem::OtherClient
                | RefreshTokenProblem::UserDisabled => "Invalid refresh token.",
                RefreshTokenProblem::Expired => "Refresh token is expired.",
                RefreshTokenProblem::Revoked => "Refresh token is revoked.",
                RefreshTokenProblem::Consumed => "Refresh token was already used.",
                RefreshTokenProblem::Reused => {
                    "Refresh token was already used; every token of its grant is revoked."
                }
            };
            r(
                S::BAD_REQUEST,
                "invalid_grant",
                description,
                Challenge::None,
            )
        }
        Error::InvalidScope => r(
            S::BAD_REQUEST,
            "invalid_scope",
            "Invalid scope.",
            Challenge::None,
        ),
        Error::TokenOfAnotherClient => r(
            S::BAD_REQUEST,
            "unauthorized_client",
            "The token was not issued to this client.",
            Challenge::None,
        ),
        Error::InvalidBearerToken => r(
            S::UNAUTHORIZED,
            "invalid_token",
            "The access token is invalid, expired or revoked.",
            Challenge::Bearer("invalid_token", None),
        ),
        Error::InsufficientAccess(required) => r(
            S::FORBIDDEN,
            "insufficient_scope",
            "The access token does not grant this operation.",
            Challenge::Bearer("insufficient_scope", Some(required.clone())),
        ),
        // The Wazo use cases below are not reachable from OAuth2 endpoints; they still get
        // the nearest RFC 6749 / RFC 6750 answer.
        Error::SessionLimitReached(_) => r(
            S::TOO_MANY_REQUESTS,
            "invalid_request",
            "The user has too many active sessions.",
            Challenge::None,
        ),
        Error::NoSuchToken => r(
            S::UNAUTHORIZED,
            "invalid_token",
            "The access token is invalid, expired or revoked.",
            Challenge::Bearer("invalid_token", None),
        ),
        Error::ScopeDenied(required) => r(
            S::FORBIDDEN,
            "insufficient_scope",
            "The access token does not grant this operation.",
            Challenge::Bearer("insufficient_scope", Some(required.clone())),
        ),
        Error::TenantDenied(_) | Error::UnauthorizedTenant(_) => r(
            S::FORBIDDEN,
            "insufficient_scope",
            "The access token is not valid for this tenant.",
            Challenge::Bearer("insufficient_scope", None),
        ),
        Error::UnknownUser(_) => r(
            S::BAD_REQUEST,
            "invalid_request",
            "Unknown user.",
            Challenge::None,
        ),
        Error::UnknownClientRefreshToken(_) => r(
            S::BAD_REQUEST,
            "invalid_grant",
            "Invalid refresh token.",
            Challenge::None,
        ),
        Error::Conflict => r(
            S::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable, retry later.",
            Challenge::None,
        ),
        Error::Unavailable(_) => r(
            S::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable, retry later.",
            Challenge::None,
        ),
        Error::Internal(_) => r(
            S::INTERNAL_SERVER_ERROR,
            "server_error",
            "Internal server error.",
            Challenge::None,
        ),
    }
}

impl ResponseError for OAuth2Error {
    fn status_code(&self) -> StatusCode {
        render(self).status
    }

    fn error_response(&self) -> HttpResponse {
        let rendered = render(self);
        if let OAuth2Error::Domain(Error::Internal(detail) | Error::Unavailable(detail)) = self {
            log::error!("oauth2 request failed: {detail}");
        }
        let mut builder = super::no_store(HttpResponse::build(rendered.status));
        match rendered.challenge {
            Challenge::None => {}
            Challenge::Basic => {
                builder.insert_header((WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\"")));
            }
            Challenge::Bearer(code, scope) => {
                let scope = scope
                    .map(|s| format!(", scope=\"{s}\""))
                    .unwrap_or_default();
                builder.insert_header((
                    WWW_AUTHENTICATE,
                    format!("Bearer realm=\"{REALM}\", error=\"{code}\"{scope}"),
                ));
            }
        }
        if rendered.status == StatusCode::SERVICE_UNAVAILABLE {
            builder.insert_header((RETRY_AFTER, "1"));
        }
        if let Some(seconds) = rendered.retry_after {
            builder.insert_header((RETRY_AFTER, seconds.to_string()));
        }
        builder.json(Body {
            error: rendered.code,
            error_description: &rendered.description,
        })
    }
}
