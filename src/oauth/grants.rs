//! One module per grant type, each a synchronous use case over one pooled connection.
pub mod client_credentials;
pub mod password;
pub mod refresh_token;

use crate::domain::{ScopeSet, Secret};

/// Tokens handed out by a grant (RFC 6749 §5.1).
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: Secret,
    pub expires_in: i64,
    pub refresh_token: Option<Secret>,
    pub scope: ScopeSet,
}
