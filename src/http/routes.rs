//! The one place that lists every path. A known path called with another method answers 405.
use actix_web::web;

use super::oauth2::{introspect, metadata, revoke, token};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/oauth2/token", "/token"]).route(web::post().to(token::token)))
        .service(web::resource(["/oauth2/revoke", "/revoke"]).route(web::post().to(revoke::revoke)))
        .service(web::resource("/oauth2/introspect").route(web::post().to(introspect::introspect)))
        .service(
            web::resource("/.well-known/oauth-authorization-server")
                .route(web::get().to(metadata::metadata)),
        );
}
