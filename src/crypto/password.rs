//! User passwords as argon2id PHC strings. Parameters: OWASP's m = 7 MiB, t = 5, p = 1 (its
//! cheat sheet lists it as equivalent to m = 19 MiB, t = 2), chosen for a bounded memory
//! footprint. Unknown users are verified against a fallback hash so the timing does not reveal
//! them.
//!
//! Verification is CPU-bound and needs its memory: at most one per core runs at a time, each
//! in a memory block reused from a small pool. Without the bound, a burst of logins allocates
//! one block per blocking thread, and the allocator keeps them (RSS in the gigabytes).
use std::sync::{Condvar, LazyLock, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use super::CryptoError;

/// Memory cost in KiB, iterations, lanes.
const M_COST: u32 = 7 * 1024;
const T_COST: u32 = 5;
const P_COST: u32 = 1;

fn params() -> Params {
    Params::new(M_COST, T_COST, P_COST, None).unwrap_or_default()
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// Hashes a password with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError(e.to_string()))
}

/// A hash of a throw-away password, verified in place of an unknown user's.
static FALLBACK_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"tessera-fallback", &salt)
        .ok()
        .map(|h| h.to_string())
});

/// The memory blocks of the verifications running now (at most one per core), kept for reuse.
struct BlockPool {
    state: Mutex<(Vec<Vec<Block>>, usize)>,
    freed: Condvar,
    running_max: usize,
}

static BLOCKS: LazyLock<BlockPool> = LazyLock::new(|| BlockPool {
    state: Mutex::new((Vec::new(), 0)),
    freed: Condvar::new(),
    running_max: std::thread::available_parallelism().map_or(2, usize::from),
});

impl BlockPool {
    /// Runs `f` with `count` blocks once fewer than `running_max` verifications run.
    fn with_blocks<T>(&self, count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.1 >= self.running_max {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.1 += 1;
        let kept = state.0.pop();
        drop(state);
        let mut blocks = match kept {
            Some(b) if b.len() == count => b,
            _ => vec![Block::default(); count],
        };
        let result = f(&mut blocks);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = state.1.saturating_sub(1);
        // Only blocks of the current parameters are worth keeping.
        if count == params().block_count() && state.0.len() < self.running_max {
            state.0.push(blocks);
        }
        drop(state);
        self.freed.notify_one();
        result
    }
}

/// Whether `password` hashes to the PHC string `phc`, with pooled memory.
fn verify_phc(phc: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let hashed = BLOCKS.with_blocks(params.block_count(), |blocks| {
        argon
            .hash_password_into_with_memory(password, salt, &mut out, blocks)
            .is_ok()
    });
    hashed && bool::from(out.as_slice().ct_eq(expected))
}

/// Verifies `password` against `hash`. With no hash (unknown user, user without password),
/// runs the same work against the fallback hash and answers `false`.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    match hash {
        Some(phc) => verify_phc(phc, password.as_bytes()),
        None => {
            if let Some(phc) = FALLBACK_HASH.as_deref() {
                verify_phc(phc, password.as_bytes());
            }
            false
        }
    }
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
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
        assert!(verify_password(Some(&h), "pépéç€"));
        assert!(!verify_password(Some(&h), "pépéç"));
        assert!(!verify_password(None, "tessera-fallback"));
        assert!(!verify_password(Some("not a phc string"), "x"));
        Ok(())
    }

    /// Hashes made with other parameters (wazo-auth's, the previous defaults) still verify.
    #[test]
    fn hashes_with_other_parameters_verify() -> Result<(), CryptoError> {
        let salt = SaltString::generate(&mut OsRng);
        for params in [
            Params::default(),
            Params::new(4096, 3, 2, None).unwrap_or_default(),
        ] {
            let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"secret", &salt)
                .map_err(|e| CryptoError(e.to_string()))?
                .to_string();
            assert!(verify_password(Some(&other), "secret"), "{other}");
            assert!(!verify_password(Some(&other), "secreT"));
        }
        Ok(())
    }

    /// Many verifications at once run at most one per core, and all answer right.
    #[test]
    fn concurrent_verifications_queue_and_answer() -> Result<(), CryptoError> {
        let h = hash_password("pw")?;
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    verify_password(Some(&h), if i % 2 == 0 { "pw" } else { "no" })
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap_or(false), i % 2 == 0);
        }
        Ok(())
    }
}
