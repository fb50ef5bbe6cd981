//! Credentials carried in headers: HTTP Basic client authentication (RFC 6749 §2.3.1, id and
//! secret form-urlencoded before base64) and bearer tokens (RFC 6750 §2.1).
use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::domain::Secret;
use crate::http::params::{Params, decode_component};
use crate::oauth::{AuthScheme, ClientCredentials, Error};

/// What the `Authorization` header holds.
#[derive(Debug)]
pub enum Authorization {
    None,
    Basic { id: String, secret: Secret },
    Bearer(Secret),
}

/// Reads the `Authorization` header. More than one header is malformed; an unreadable Basic
/// value is a failed client authentication.
pub fn authorization(req: &HttpRequest) -> Result<Authorization, Error> {
    let mut values = req.headers().get_all(AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(Authorization::None);
    };
    if values.next().is_some() {
        return Err(Error::MalformedRequest(
            "more than one Authorization header",
        ));
    }
    let failed = Error::ClientAuthenticationFailed {
        scheme: AuthScheme::Basic,
    };
    let value = value.to_str().map_err(|_| failed)?;
    parse_authorization(value)
}

/// Parses an `Authorization` value. For Basic, the credentials are the first token after the
/// scheme, ended by whitespace or a comma (WSO2's seed sends `Basic <b64>, Content-Type: …`).
pub fn parse_authorization(value: &str) -> Result<Authorization, Error> {
    let failed = || Error::ClientAuthenticationFailed {
        scheme: AuthScheme::Basic,
    };
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let encoded = rest
            .trim_start()
            .split([' ', '\t', ','])
            .next()
            .unwrap_or_default();
        let decoded = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| failed())?;
        let colon = decoded.iter().position(|b| *b == b':').ok_or_else(failed)?;
        let (id, secret) = decoded.split_at(colon);
        let id = decode_component(id).map_err(|_| failed())?;
        let secret = decode_component(secret.get(1..).unwrap_or_default()).map_err(|_| failed())?;
        if id.is_empty() {
            return Err(failed());
        }
        Ok(Authorization::Basic {
            id,
            secret: Secret::new(secret),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        if token.is_empty() || token.contains(' ') {
            return Err(Error::InvalidBearerToken);
        }
        Ok(Authorization::Bearer(Secret::new(token)))
    } else {
        Err(failed())
    }
}

/// wazo-auth's reading of `Authorization: Basic` on `POST /token`: the base64 part decoded as
/// UTF-8, else Latin-1, split on the first `:`; login and password count only when both are
/// non-empty (`Basic Og==` is no credentials). Anything unreadable is no credentials too.
pub fn login_password(req: &HttpRequest) -> Option<(String, Secret)> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = rest.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let text = match String::from_utf8(decoded) {
        Ok(text) => text,
        // Latin-1: every byte is the code point of the same value.
        Err(e) => e.into_bytes().iter().map(|b| char::from(*b)).collect(),
    };
    let (login, password) = text.split_once(':')?;
    if login.is_empty() || password.is_empty() {
        return None;
    }
    Some((login.to_owned(), Secret::new(password)))
}

/// The client credentials of a request: Basic, or `client_id`/`client_secret` in the body, never
/// both (RFC 6749 §2.3).
pub fn client_credentials(
    auth: Authorization,
    params: &Params,
) -> Result<ClientCredentials, Error> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match auth {
        Authorization::Basic { id, secret } => {
            if body_secret.is_some() {
                return Err(Error::MultipleClientAuthentication);
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(Error::MalformedRequest(
                    "client_id does not match the Authorization header",
                ));
            }
            Ok(ClientCredentials::Basic { id, secret })
        }
        Authorization::Bearer(_) => Err(Error::ClientAuthenticationFailed {
            scheme: AuthScheme::Basic,
        }),
        Authorization::None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(ClientCredentials::Post {
                id: id.to_owned(),
                secret: Secret::new(secret),
            }),
            (Some(id), None) => Ok(ClientCredentials::Public { id: id.to_owned() }),
            (None, Some(_)) => Err(Error::MissingParameter("client_id")),
            (None, None) => Ok(ClientCredentials::Absent),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> Option<(String, String)> {
        match parse_authorization(id).ok()? {
            Authorization::Basic { id: i, secret: s } => Some((i, s.expose().to_owned())),
            _ => {
                let _ = secret;
                None
            }
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "a%3Ab:s%25+c" → id "a:b", secret "s% c"
        let b64 = STANDARD.encode("a%3Ab:s%25+c");
        assert_eq!(
            basic(&format!("Basic {b64}"), ""),
            Some(("a:b".into(), "s% c".into()))
        );
        let b64 = STANDARD.encode("id:sec:ret");
        assert_eq!(
            basic(&format!("basic {b64}"), ""),
            Some(("id".into(), "sec:ret".into()))
        );
    }

    #[test]
    fn the_wso2_seed_header_slip_is_tolerated() {
        let b64 = STANDARD.encode("id:secret");
        let v = format!("Basic {b64}, Content-Type: application/x-www-form-urlencoded");
        assert_eq!(basic(&v, ""), Some(("id".into(), "secret".into())));
    }

    #[test]
    fn malformed_basic_fails_client_authentication() {
        for v in [
            "Basic",
            "Basic !!!",
            "Basic Og==",
            "Basic bm9jb2xvbg==",
            "Digest x",
        ] {
            assert!(
                matches!(
                    parse_authorization(v),
                    Err(Error::ClientAuthenticationFailed { .. })
                ),
                "{v}"
            );
        }
        let not_utf8 = STANDARD.encode(b"\xff:\xfe");
        assert!(parse_authorization(&format!("Basic {not_utf8}")).is_err());
    }

    #[test]
    fn bearer_tokens_are_read() {
        assert!(matches!(
            parse_authorization("Bearer abc"),
            Ok(Authorization::Bearer(_))
        ));
        assert!(matches!(
            parse_authorization("Bearer "),
            Err(Error::InvalidBearerToken)
        ));
    }
}
