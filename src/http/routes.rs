//! The one place that lists every path. A known path called with another method answers 405.
use actix_web::{HttpRequest, Resource, web};

use super::oauth2::{introspect, jwks, metadata, revoke, token};
use super::{access_log, health, wazo};

/// The prefixes of the Wazo dialect: behind Wazo's nginx, and wazo-auth's own.
pub const WAZO_PREFIXES: [&str; 2] = ["/api/auth/0.1", "/0.1"];

/// The route pattern of a resource, kept with it (resource data), so that the access log and
/// the metrics name the route that served a request without matching its path against the
/// router a second time (a regular expression per dynamic segment).
#[derive(Debug, Clone)]
pub struct RoutePattern {
    /// As registered: `/0.1/token/{token}` (the access log).
    pub pattern: String,
    /// With `:name` for `{name}`: `/0.1/token/:token` (metrics labels, where braces trip
    /// naive exposition parsers).
    pub label: String,
}

impl RoutePattern {
    fn new(pattern: String) -> Self {
        let label = pattern.replace('{', ":").replace('}', "");
        Self { pattern, label }
    }

    /// The pattern of the route that served `req`. A request answered before it reached its
    /// resource (a CORS preflight) is matched against the router; `None` if no route matches.
    pub fn of(req: &HttpRequest) -> Option<std::borrow::Cow<'_, RoutePattern>> {
        match req.app_data::<RoutePattern>() {
            Some(route) => Some(std::borrow::Cow::Borrowed(route)),
            None => req
                .match_pattern()
                .map(|p| std::borrow::Cow::Owned(RoutePattern::new(p))),
        }
    }
}

/// A resource at `prefix` + `path`, carrying its [`RoutePattern`].
fn resource(prefix: &str, path: &str) -> Resource {
    web::resource(path).app_data(RoutePattern::new(format!("{prefix}{path}")))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/token` and `/revoke` are aliases that report the `/oauth2/…` pattern. Each path is a
    // resource of its own: a resource of several paths is matched by a regular-expression set.
    let aliased =
        |path: &str, alias: &str| web::resource(alias).app_data(RoutePattern::new(path.to_owned()));
    cfg.service(resource("", "/oauth2/token").route(web::post().to(token::token)))
        .service(aliased("/oauth2/token", "/token").route(web::post().to(token::token)))
        .service(resource("", "/oauth2/revoke").route(web::post().to(revoke::revoke)))
        .service(aliased("/oauth2/revoke", "/revoke").route(web::post().to(revoke::revoke)))
        .service(resource("", "/oauth2/introspect").route(web::post().to(introspect::introspect)))
        .service(resource("", "/oauth2/jwks").route(web::get().to(jwks::jwks)))
        .service(resource("", "/healthz").route(web::get().to(health::healthz)))
        .service(resource("", "/openapi.yaml").route(web::get().to(super::openapi::openapi)))
        .service(resource("", "/readyz").route(web::get().to(health::readyz)))
        .service(resource("", "/metrics").route(web::get().to(health::metrics)))
        .service(
            resource("", "/.well-known/oauth-authorization-server")
                .route(web::get().to(metadata::metadata)),
        );
    for prefix in WAZO_PREFIXES {
        cfg.service(
            web::scope(prefix)
                .wrap(wazo_cors())
                .configure(|cfg| wazo_routes(cfg, prefix)),
        );
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
fn wazo_routes(cfg: &mut web::ServiceConfig, prefix: &str) {
    use wazo::{management as m, token as t, validate as v};
    cfg.service(resource(prefix, "/token").route(web::post().to(t::create)))
        .service(
            resource(prefix, "/token/{token}")
                .route(web::get().to(v::get))
                .route(web::head().to(v::get))
                .route(web::delete().to(v::delete)),
        )
        .service(
            resource(prefix, "/token/{token}/scopes/check").route(web::post().to(v::check_scopes)),
        )
        .service(resource(prefix, "/tokens").route(web::get().to(m::list_tokens)))
        .service(resource(prefix, "/users/{user}/tokens").route(web::get().to(m::list_user_tokens)))
        .service(
            resource(prefix, "/users/{user}/tokens/{client_id}")
                .route(web::delete().to(m::delete_user_token)),
        )
        .service(resource(prefix, "/sessions").route(web::get().to(m::list_sessions)))
        .service(resource(prefix, "/sessions/{session}").route(web::delete().to(m::delete_session)))
        .service(
            resource(prefix, "/users/{user}/sessions").route(web::get().to(m::list_user_sessions)),
        )
        .service(
            resource(prefix, "/users/{user}/sessions/{session}")
                .route(web::delete().to(m::delete_user_session)),
        );
}
