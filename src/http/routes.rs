//! The one place that lists every path.
use actix_web::web;

use super::oauth2::{introspect, metadata, revoke, token};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/token", web::post().to(token::token))
        .route("/token", web::post().to(token::token))
        .route("/oauth2/revoke", web::post().to(revoke::revoke))
        .route("/revoke", web::post().to(revoke::revoke))
        .route("/oauth2/introspect", web::post().to(introspect::introspect))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(metadata::metadata),
        );
}
