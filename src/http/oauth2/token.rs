//! `POST /oauth2/token` and `/token` (RFC 6749 §3.2): parse the grant, authenticate the client,
//! exchange, answer §5.1 or §5.2.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::domain::{ScopeSet, Secret};
use crate::http::access_log::{self, AccessSubject};
use crate::http::params::{Params, reject_sensitive_query};
use crate::http::{AppState, body, client_addr, credentials, wazo};
use crate::oauth::Error;
use crate::oauth::service::{GrantRequest, TokenRequest};

use super::error::OAuth2Error;

pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuth2Error> {
    reject_sensitive_query(req.query_string())?;
    let body = body::read(&req, payload, state.max_body_bytes).await?;
    // DESIGN.md §3: a JSON body without grant_type is a Wazo login.
    if body::is_json(&req) && is_wazo_login(&body) {
        let at = state.service.now_precise();
        return Ok(wazo::token::respond(&req, &body, &state)
            .await
            .unwrap_or_else(|e| e.render(at)));
    }
    let params = body::params(&req, &body)?;
    let grant = grant_request(&params)?;
    let client = credentials::client_credentials(credentials::authorization(&req)?, &params)?;
    AccessSubject::record(&req, access_log::client_of(&client), None);
    let login = access_log::login_of(&grant);
    // What the brute-force limits count failures against.
    let remote_addr = client_addr::remote_addr(&req, &state.trusted_proxies);
    let issued = state
        .run(move |s| s.exchange_from(TokenRequest { client, grant }, &remote_addr))
        .await?;
    AccessSubject::record(&req, None, login.as_deref());
    Ok(super::ok().json(TokenResponse {
        access_token: issued.access_token.expose(),
        token_type: "Bearer",
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token.as_ref().map(Secret::expose),
        scope: (!issued.scope.is_empty()).then(|| issued.scope.to_string()),
    }))
}

/// A JSON object without `grant_type`.
fn is_wazo_login(body: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde_json::Value>(body),
        Ok(serde_json::Value::Object(map)) if !map.contains_key("grant_type")
    )
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Parses the grant-specific parameters (RFC 6749 §4.3.2, §4.4.2, §6).
fn grant_request(params: &Params) -> Result<GrantRequest, Error> {
    let scope = params
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|_| Error::InvalidScope)?;
    let required = |name: &'static str| params.get(name).ok_or(Error::MissingParameter(name));
    match required("grant_type")? {
        "password" => Ok(GrantRequest::Password {
            username: required("username")?.to_owned(),
            password: Secret::new(required("password")?),
            scope,
        }),
        "client_credentials" => Ok(GrantRequest::ClientCredentials { scope }),
        "refresh_token" => Ok(GrantRequest::RefreshToken {
            refresh_token: Secret::new(required("refresh_token")?),
            scope,
        }),
        _ => Err(Error::UnsupportedGrantType),
    }
}
