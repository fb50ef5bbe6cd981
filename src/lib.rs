//! Tessera: an authorization server that issues, refreshes, revokes and introspects tokens for
//! OAuth2 clients (RFC 6749 with WSO2 semantics, RFC 7009, RFC 7662, RFC 8414) and, from one
//! domain core, for Wazo `wazo-auth` 0.1 clients.
//!
//! The map (see `docs/ARCHITECTURE.md`): `http` parses a dialect into a domain request, `oauth`
//! runs the use case synchronously against `store` inside one transaction, and `http` renders
//! the result back in the dialect. Dependencies point inward:
//! `http → oauth → {domain, policy, crypto, store}`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod policy;
pub mod reload;
pub mod store;

/// The parser entry points the `cargo fuzz` targets call (`fuzz/`, docs/security.md "Fuzzing
/// the parsers"): one place naming what is fuzzed, so that moving a parser breaks this crate's
/// build here, not only the fuzz crate's (which no routine build compiles). Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::crypto::jwt::{AccessClaims, JwtSigner, MAX_TOKEN_BYTES, VerifiedJwt};
    pub use crate::domain::scope::{MAX_SCOPES, ScopeError, ScopeSet};
    pub use crate::http::body::{BodyError, is_json, params as body_params, read as read_body};
    pub use crate::http::credentials::{
        Authorization, client_credentials, login_password, parse_authorization,
    };
    pub use crate::http::params::{MAX_PARAMS, Params, decode_component, reject_sensitive_query};
    pub use crate::oauth::acl::{AclContext, MAX_LEN as MAX_ACL_REQUIRED_LEN, is_allowed};
    pub use crate::oauth::scope::{grant as grant_scopes, narrow as narrow_scopes};
}
