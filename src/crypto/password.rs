//! User passwords as argon2id PHC strings (OWASP parameters: m = 19 MiB, t = 2, p = 1).
//! Unknown users are verified against a fallback hash so the timing does not reveal them.
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use super::CryptoError;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a password with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError(e.to_string()))
}

/// A hash of a password nobody knows, with the same parameters as real hashes.
static FALLBACK_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"tessera-fallback", &salt)
        .ok()
        .map(|h| h.to_string())
});

/// Verifies `password` against `hash`. With no hash (unknown user, user without password),
/// runs the same work against the fallback hash and answers `false`.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    let (phc, real) = match hash {
        Some(h) => (Some(h.to_owned()), true),
        None => (FALLBACK_HASH.clone(), false),
    };
    let Some(phc) = phc else { return false };
    let Ok(parsed) = PasswordHash::new(&phc) else {
        return false;
    };
    let ok = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// Forces the fallback hash to be computed now (at start-up) rather than on the first login.
pub fn warm_up() {
    LazyLock::force(&FALLBACK_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() -> Result<(), CryptoError> {
        let h = hash_password("pépéç€")?;
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(Some(&h), "pépéç€"));
        assert!(!verify_password(Some(&h), "pépéç"));
        assert!(!verify_password(None, "tessera-fallback"));
        assert!(!verify_password(Some("not a phc string"), "x"));
        Ok(())
    }
}
