//! `GET /oauth2/jwks`: the public key that signs JWT access tokens (RFC 7517 JWK Set, RFC 9068
//! §4), for resource servers that validate them locally. Empty until a policy mints JWTs.
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::AppState;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let body = match state.service.jwt_signer() {
        Some(signer) => signer.jwks(),
        None => json!({ "keys": [] }),
    };
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .json(body)
}
