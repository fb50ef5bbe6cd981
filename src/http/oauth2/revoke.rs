//! `POST /oauth2/revoke` and `/revoke` (RFC 7009 §2): 200 with an empty body for any token,
//! known or not, once the caller is authenticated.
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::Secret;
use crate::http::credentials::{self, Authorization};
use crate::http::params::{Params, reject_sensitive_query};
use crate::http::{AppState, body};
use crate::oauth::Error;
use crate::oauth::revocation::{RevokeRequest, TokenTypeHint};
use crate::oauth::service::Caller;

use super::error::OAuth2Error;

pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuth2Error> {
    reject_sensitive_query(req.query_string())?;
    let body = body::read(&req, payload, state.max_body_bytes).await?;
    let params = body::params(&req, &body)?;
    let (token, hint) = token_and_hint(&params)?;
    let caller = caller(credentials::authorization(&req)?, &params)?;
    state
        .run(move |s| {
            s.revoke(RevokeRequest {
                caller,
                token,
                hint,
            })
        })
        .await?;
    Ok(super::ok().content_type("application/json").finish())
}

/// `token` (required) and `token_type_hint` (an unknown hint is ignored, RFC 7009 §2.2).
pub fn token_and_hint(params: &Params) -> Result<(Secret, Option<TokenTypeHint>), Error> {
    let token = params
        .get("token")
        .ok_or(Error::MissingParameter("token"))?;
    let hint = match params.get("token_type_hint") {
        Some("access_token") => Some(TokenTypeHint::AccessToken),
        Some("refresh_token") => Some(TokenTypeHint::RefreshToken),
        _ => None,
    };
    Ok((Secret::new(token), hint))
}

/// A bearer token (an administrator) or the client's credentials.
pub fn caller(auth: Authorization, params: &Params) -> Result<Caller, Error> {
    match auth {
        Authorization::Bearer(token) => {
            if params.get("client_secret").is_some() {
                return Err(Error::MultipleClientAuthentication);
            }
            Ok(Caller::Bearer(token))
        }
        other => credentials::client_credentials(other, params).map(Caller::Client),
    }
}
