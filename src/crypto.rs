//! Cryptographic primitives: argon2id for passwords, random tokens and secrets, SHA-256
//! digests compared in constant time, HMAC derivation from the server secret. Nothing here knows
//! about HTTP or storage.
pub mod derive;
pub mod jwt;
pub mod password;
pub mod seal;
pub mod token;

/// A failure of a primitive that should never fail in practice (bad parameters, no entropy).
#[derive(Debug, thiserror::Error)]
#[error("cryptographic failure: {0}")]
pub struct CryptoError(pub String);
