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
    /// A new refresh token was minted (a password grant's first, or a rotation's successor).
    pub refresh_token_minted: bool,
    /// The answer of an earlier refresh, given again (exact retry): nothing was minted.
    pub replayed: bool,
}
