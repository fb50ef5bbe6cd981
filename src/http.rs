//! The HTTP edge (actix-web). `routes` lists every path; each dialect's handlers parse the
//! request into a domain request, run one use case in `web::block`, and render the result.
pub mod access_log;
pub mod body;
pub mod client_addr;
pub mod credentials;
pub mod health;
pub mod limits;
pub mod oauth2;
pub mod openapi;
pub mod params;
pub mod routes;
pub mod wazo;

use std::sync::Arc;

use actix_web::web;

use crate::oauth::{Error, Service};
use client_addr::TrustedProxies;

/// What every handler shares: the use cases and a few settings of the edge.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// The issuer identifier (RFC 8414), no trailing slash.
    pub issuer: String,
    pub max_body_bytes: usize,
    /// The peers whose `X-Forwarded-For` names the client (`[server] trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
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
