//! The HTTP edge (actix-web). `routes` lists every path; each dialect's handlers parse the
//! request into a domain request, run one use case in `web::block`, and render the result.
pub mod body;
pub mod credentials;
pub mod health;
pub mod oauth2;
pub mod openapi;
pub mod params;
pub mod routes;
pub mod wazo;

use std::sync::Arc;

use actix_web::web;

use crate::oauth::{Error, Service};

/// What every handler shares: the use cases and a few settings of the edge.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The issuer identifier (RFC 8414), no trailing slash.
    pub issuer: String,
    pub max_body_bytes: usize,
}

impl AppState {
    /// Runs a synchronous use case on the blocking pool, never on the executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(&Service) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let service = Arc::clone(&self.service);
        web::block(move || f(&service))
            .await
            .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
    }
}

/// Replaces the token in a path like `/0.1/token/{token}` so access logs never hold one.
pub fn redact_path(path: &str) -> String {
    let mut out = Vec::new();
    let mut redact_next = false;
    for segment in path.split('/') {
        if redact_next && !segment.is_empty() {
            out.push("{token}");
            redact_next = false;
            continue;
        }
        redact_next = segment == "token";
        out.push(segment);
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_paths_are_redacted() {
        assert_eq!(
            super::redact_path("/0.1/token/abc-def"),
            "/0.1/token/{token}"
        );
        assert_eq!(
            super::redact_path("/api/auth/0.1/token/abc/scopes/check"),
            "/api/auth/0.1/token/{token}/scopes/check"
        );
        assert_eq!(super::redact_path("/oauth2/token"), "/oauth2/token");
    }
}
