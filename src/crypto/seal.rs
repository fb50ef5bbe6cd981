//! Sealing a refresh answer under the refresh token that obtained it (DESIGN.md §6, exact
//! retry). The key is HKDF-SHA256 of the presented token, bound to the row it was presented
//! for; the cipher is ChaCha20-Poly1305 with a random nonce and the row id as associated data.
//! The database holds only the token's SHA-256 digest and the sealed bytes, so without the
//! token itself the answer cannot be opened, and a sealed answer moved to another row fails.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

use super::CryptoError;

const SALT: &[u8] = b"tessera/refresh-retry/v1";
const NONCE_BYTES: usize = 12;

fn cipher(token: &str, row_id: &str) -> Result<ChaCha20Poly1305, CryptoError> {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(SALT), token.as_bytes())
        .expand(row_id.as_bytes(), &mut key)
        .map_err(|e| CryptoError(format!("hkdf: {e}")))?;
    Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
}

/// Encrypts `plaintext` under a key derived from `token` for the row `row_id`; returns
/// base64url(nonce ‖ ciphertext ‖ tag).
pub fn seal(token: &str, row_id: &str, plaintext: &[u8]) -> Result<String, CryptoError> {
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(token, row_id)?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: row_id.as_bytes(),
            },
        )
        .map_err(|_| CryptoError("seal failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// Opens what [`seal`] produced with the same token and row; `None` for anything else.
pub fn open(token: &str, row_id: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let (nonce, body) = bytes.split_at_checked(NONCE_BYTES)?;
    cipher(token, row_id)
        .ok()?
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: row_id.as_bytes(),
            },
        )
        .ok()
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unreachable)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_and_row_open_it() {
        let sealed = seal("token-1", "row-1", b"answer").expect("seal");
        assert_eq!(
            open("token-1", "row-1", &sealed).as_deref(),
            Some(&b"answer"[..])
        );
        assert_eq!(open("token-2", "row-1", &sealed), None);
        assert_eq!(open("token-1", "row-2", &sealed), None);
        assert!(!sealed.contains("answer"));
        // Two seals of the same answer differ (random nonce).
        assert_ne!(seal("token-1", "row-1", b"answer").expect("seal"), sealed);
        // Tampering and garbage are refused, never a panic.
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("base64");
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            open("token-1", "row-1", &URL_SAFE_NO_PAD.encode(bytes)),
            None
        );
        for garbage in ["", "AA", "!!!", "AAAAAAAAAAAAAAAA"] {
            assert_eq!(open("token-1", "row-1", garbage), None);
        }
    }
}
