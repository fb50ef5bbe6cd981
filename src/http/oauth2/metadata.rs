//! `GET /.well-known/oauth-authorization-server` (RFC 8414 §3): exactly what works, nothing more.
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::domain::GrantType;
use crate::http::AppState;

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.issuer;
    let grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "grant_types_supported": grants,
        // No authorization endpoint: no response type is supported (RFC 8414 §2 requires the key).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}
