//! The Wazo dialect (wazo-auth 0.1, `wazo-contract.md`): the JSON token API, token validation,
//! refresh-token and session management, under both `/api/auth/0.1` and `/0.1`.
pub mod error;
pub mod management;
pub mod token;
pub mod validate;
pub mod wire;

use std::collections::HashSet;

use actix_web::HttpRequest;

use crate::domain::Secret;
use crate::http::params::{self, MAX_PARAMS, decode_component};

use error::TokenError;
use wire::Py;

/// Longest token accepted in a path or header; longer ones are simply unknown.
const MAX_TOKEN_LEN: usize = crate::crypto::jwt::MAX_TOKEN_BYTES;

/// The query parameters, decoded; the first occurrence of a name wins (Flask's `args.get`).
/// Undecodable parameters are dropped. Linear in the number of parameters: a target of
/// thousands of them costs no more than reading it.
pub fn query(req: &HttpRequest) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for pair in req.query_string().split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Ok(name), Ok(value)) = (
            decode_component(name.as_bytes()),
            decode_component(value.as_bytes()),
        ) else {
            continue;
        };
        if seen.insert(name.clone()) {
            out.push((name, value));
        }
    }
    out
}

/// A credential in the query string of a Wazo POST endpoint (WSO2's "sensitive data in the
/// URL", as on the OAuth2 endpoints): 400 in format A, worded as a marshmallow schema error.
/// A Tessera limit (docs/security.md "Request limits"); wazo-auth ignores that query string.
pub fn reject_sensitive_query(req: &HttpRequest) -> Result<(), TokenError> {
    params::reject_sensitive_query(req.query_string()).map_err(|_| {
        TokenError::Invalid(Py::field_error(
            "_schema",
            Py::str("Invalid request with sensitive data in the URL."),
        ))
    })
}

/// A JSON body object of more than [`MAX_PARAMS`] members (the OAuth2 endpoints' parameter
/// limit): 400 in format A, as [`reject_sensitive_query`]. wazo-auth has no such limit.
pub fn check_field_count(fields: usize) -> Result<(), TokenError> {
    if fields > MAX_PARAMS {
        return Err(TokenError::Invalid(Py::field_error(
            "_schema",
            Py::str("Too many fields."),
        )));
    }
    Ok(())
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A value as werkzeug's UUID converter reads it: a hyphenated UUID in canonical lower-case
/// form (upper case is accepted), anything else as given (`me`, OAuth2 tokens).
pub fn canonical(raw: &str) -> String {
    match uuid::Uuid::try_parse(raw) {
        Ok(u) if raw.len() == 36 => u.hyphenated().to_string(),
        _ => raw.to_owned(),
    }
}

/// A token as named in a path or header, in [`canonical`] form; empty or absurdly long ones
/// name nothing.
pub fn canonical_token(raw: &str) -> Option<Secret> {
    if raw.is_empty() || raw.len() > MAX_TOKEN_LEN {
        return None;
    }
    Some(Secret::new(canonical(raw)))
}

/// A path value as an ACL segment: every `.` becomes `_` (xivo `_required_acl`).
pub fn acl_segment(value: &str) -> String {
    value.replace('.', "_")
}
