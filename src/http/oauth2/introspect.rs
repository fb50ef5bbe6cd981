//! `POST /oauth2/introspect` (RFC 7662 §2): `{"active": false}` for anything the caller may not
//! see, the token's metadata otherwise.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::http::params::reject_sensitive_query;
use crate::http::{AppState, body, credentials};
use crate::oauth::introspection::{IntrospectRequest, TokenTypeHint};

use super::error::OAuth2Error;
use super::revoke::{caller, token_and_hint};

pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuth2Error> {
    reject_sensitive_query(req.query_string())?;
    let body = body::read(&req, payload, state.max_body_bytes).await?;
    let params = body::params(&req, &body)?;
    let (token, hint) = token_and_hint(&params)?;
    let caller = caller(credentials::authorization(&req)?, &params)?;
    let found = state
        .run(move |s| {
            s.introspect(IntrospectRequest {
                caller,
                token,
                hint,
            })
        })
        .await?;
    let answer = match &found {
        None => Answer {
            active: false,
            ..Answer::default()
        },
        Some(t) => Answer {
            active: true,
            scope: (!t.scope.is_empty()).then(|| t.scope.to_string()),
            client_id: t.client_id.as_deref(),
            username: t.username.as_deref(),
            token_type: (t.kind == TokenTypeHint::AccessToken).then_some("Bearer"),
            exp: t.exp,
            iat: Some(t.iat),
            sub: t.sub.as_deref(),
            iss: Some(&state.issuer),
        },
    };
    Ok(super::ok().json(answer))
}

/// RFC 7662 §2.2; an inactive answer has no other member.
#[derive(Serialize, Default)]
struct Answer<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}
