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
