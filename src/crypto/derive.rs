//! The server secret and what is derived from it. Wazo refresh tokens must come back identical
//! on a second offline login, yet only their digests are stored (DESIGN.md §4), so their value
//! is `UUIDv4(HMAC-SHA256(secret, user ‖ client_id ‖ row id))`: recomputable by the server,
//! useless to whoever holds the database without the secret file.
use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

use super::CryptoError;
use crate::domain::Secret;

/// Bytes in the server secret.
pub const SECRET_BYTES: usize = 32;

/// The server secret; never printed.
#[derive(Clone)]
pub struct ServerSecret([u8; SECRET_BYTES]);

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

impl ServerSecret {
    /// A fresh secret from the OS generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads the file format: 64 hexadecimal digits, surrounding whitespace ignored.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bad = || {
            CryptoError(format!(
                "the server secret must be {} hex digits",
                2 * SECRET_BYTES
            ))
        };
        if text.len() != 2 * SECRET_BYTES || !text.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; SECRET_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }

    /// The file format.
    pub fn to_hex(&self) -> Secret {
        Secret::new(
            self.0
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
    }

    /// A UUIDv4-shaped value bound to `purpose` and `parts` (each length-prefixed, so no two
    /// lists of parts collide).
    pub fn derive_uuid(&self, purpose: &str, parts: &[&str]) -> Secret {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return Secret::new(uuid::Uuid::new_v4().to_string());
        };
        for part in std::iter::once(purpose).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        let out = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        for (b, o) in bytes.iter_mut().zip(out.iter()) {
            *b = *o;
        }
        Secret::new(
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_stable_and_separates_inputs() {
        let s = ServerSecret::generate();
        let a = s.derive_uuid("p", &["u", "c", "1"]);
        assert_eq!(a.expose(), s.derive_uuid("p", &["u", "c", "1"]).expose());
        assert_ne!(a.expose(), s.derive_uuid("p", &["u", "c", "2"]).expose());
        assert_ne!(a.expose(), s.derive_uuid("p", &["uc", "", "1"]).expose());
        assert_ne!(
            a.expose(),
            ServerSecret::generate()
                .derive_uuid("p", &["u", "c", "1"])
                .expose()
        );
        let parsed = uuid::Uuid::parse_str(a.expose()).ok();
        assert_eq!(parsed.map(|u| u.get_version_num()), Some(4));
    }

    #[test]
    fn the_file_format_round_trips_and_rejects_garbage() {
        let s = ServerSecret::generate();
        let back = ServerSecret::from_hex(&format!("{}\n", s.to_hex().expose()));
        assert_eq!(back.map(|b| b.0).ok(), Some(s.0));
        for bad in ["", "zz", &"g".repeat(64), &"é".repeat(32)] {
            assert!(ServerSecret::from_hex(bad).is_err(), "{bad}");
        }
    }
}
