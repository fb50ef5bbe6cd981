//! Opaque tokens and secrets: 256 random bits, base64url without padding (RFC 6749 §10.10
//! asks for a guessing probability ≤ 2^-128). At rest only their SHA-256 digest is kept, and
//! digests are compared in constant time.
use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::Secret;

/// Bytes of randomness in an OAuth2 token or a client secret.
pub const TOKEN_BYTES: usize = 32;

fn random_base64url(bytes: usize) -> Secret {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    Secret::new(URL_SAFE_NO_PAD.encode(&buf))
}

/// A new opaque access or refresh token (256 bits).
pub fn new_token() -> Secret {
    random_base64url(TOKEN_BYTES)
}

/// A new client secret (256 bits).
pub fn new_client_secret() -> Secret {
    random_base64url(TOKEN_BYTES)
}

/// A new generated user password (144 bits, 24 characters).
pub fn new_password() -> Secret {
    random_base64url(18)
}

/// Hex SHA-256 of a token or secret: the only form in which it is stored.
pub fn digest(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for b in hash {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `presented` hashes to `expected_digest`, compared in constant time.
pub fn digest_matches(expected_digest: &str, presented: &str) -> bool {
    digest(presented)
        .as_bytes()
        .ct_eq(expected_digest.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_differ() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digest_matches(&digest("s3cret"), "s3cret"));
        assert!(!digest_matches(&digest("s3cret"), "s3cres"));
    }
}
