//! The one place that lists every path. A known path called with another method answers 405.
use actix_web::web;

use super::oauth2::{introspect, jwks, metadata, revoke, token};
use super::{access_log, health, wazo};

/// The prefixes of the Wazo dialect: behind Wazo's nginx, and wazo-auth's own.
pub const WAZO_PREFIXES: [&str; 2] = ["/api/auth/0.1", "/0.1"];

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/oauth2/token", "/token"]).route(web::post().to(token::token)))
        .service(web::resource(["/oauth2/revoke", "/revoke"]).route(web::post().to(revoke::revoke)))
        .service(web::resource("/oauth2/introspect").route(web::post().to(introspect::introspect)))
        .service(web::resource("/oauth2/jwks").route(web::get().to(jwks::jwks)))
        .service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/openapi.yaml").route(web::get().to(super::openapi::openapi)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .service(web::resource("/metrics").route(web::get().to(health::metrics)))
        .service(
            web::resource("/.well-known/oauth-authorization-server")
                .route(web::get().to(metadata::metadata)),
        );
    for prefix in WAZO_PREFIXES {
        cfg.service(web::scope(prefix).wrap(wazo_cors()).configure(wazo_routes));
    }
}

/// wazo-auth's CORS: any origin, its request headers, `Wazo-Sessions-Revoked` not exposed.
/// `X-Request-Id` (ours, not wazo-auth's) is exposed, so a browser client can quote it.
fn wazo_cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
        .allowed_headers([
            "Content-Type",
            "Authorization",
            "X-Auth-Token",
            "Wazo-Tenant",
            "Wazo-Session-Type",
        ])
        .expose_headers([access_log::REQUEST_ID])
        .max_age(3600)
}

/// The Wazo dialect (wazo-auth 0.1), relative to a prefix.
fn wazo_routes(cfg: &mut web::ServiceConfig) {
    use wazo::{management as m, token as t, validate as v};
    cfg.service(web::resource("/token").route(web::post().to(t::create)))
        .service(
            web::resource("/token/{token}")
                .route(web::get().to(v::get))
                .route(web::head().to(v::get))
                .route(web::delete().to(v::delete)),
        )
        .service(
            web::resource("/token/{token}/scopes/check").route(web::post().to(v::check_scopes)),
        )
        .service(web::resource("/tokens").route(web::get().to(m::list_tokens)))
        .service(web::resource("/users/{user}/tokens").route(web::get().to(m::list_user_tokens)))
        .service(
            web::resource("/users/{user}/tokens/{client_id}")
                .route(web::delete().to(m::delete_user_token)),
        )
        .service(web::resource("/sessions").route(web::get().to(m::list_sessions)))
        .service(web::resource("/sessions/{session}").route(web::delete().to(m::delete_session)))
        .service(
            web::resource("/users/{user}/sessions").route(web::get().to(m::list_user_sessions)),
        )
        .service(
            web::resource("/users/{user}/sessions/{session}")
                .route(web::delete().to(m::delete_user_session)),
        );
}
