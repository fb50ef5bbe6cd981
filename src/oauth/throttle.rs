//! Brute-force protection (`[security]`) for the password paths, the OAuth2 password grant
//! (RFC 6749 §4.3.2: the server "MUST protect the endpoint against brute force attacks") and the
//! Wazo Basic login, and for client authentication (RFC 6749 §2.3.1). Following the OWASP
//! Authentication Cheat Sheet, failures are counted per login (known or not) and per source
//! address, and per client id for client authentication, over a sliding window, in the database
//! so that every instance counts together. `docs/security.md` records the choices.
//!
//! - **A password attempt** is admitted before any user lookup or argon2. One read counts the
//!   failures of the login and of the address in the window: at a limit the attempt is refused
//!   at once, with the delay until enough failures leave the window. Otherwise, in one write
//!   transaction, the subjects are locked and counted again and the attempt is recorded as
//!   *pending*. Recording before argon2 keeps the limit exact under concurrency: parallel
//!   guesses cannot all slip in while the first ones are still hashing. An attempt that would
//!   only reach a limit by counting pending ones waits for them (a few argon2 runs at most), so
//!   concurrent logins with the right password are not refused. A verified password deletes the
//!   record and clears the login's failures; a wrong one settles it as a failure; one never
//!   settled (a crash, a store failure midway) counts as a failure after `PENDING_TIMEOUT`.
//! - **A client authentication** is counted only when it fails. Client secrets are 256-bit
//!   random values, so guessing one is hopeless at any rate, while client ids are public: a limit
//!   that refused correct secrets would let anyone lock a client out. Past the limit a failure is
//!   answered with a retry delay and no longer recorded; a success costs no query at all, which
//!   keeps the refresh path as it was.
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::crypto::token::digest;
use crate::oauth::{ClientCredentials, Credential, Error, Service};
use crate::store::users::login_key;
use crate::store::{DbConnection, PooledConnection, auth_failures};

/// Seconds a pending attempt counts as in flight; older, it counts as a failure.
const PENDING_TIMEOUT: i64 = 30;

/// How long an attempt waits for attempts in flight before it is refused as an overload
/// (503, `Retry-After: 1`), in milliseconds.
const MAX_WAIT_MS: u64 = 2_000;

/// The `[security]` limits: failures allowed per `window` seconds; 0 = no limit. The default
/// has every limit off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureLimits {
    /// Per login (case-insensitive), both dialects together.
    pub login: u32,
    /// Per source address, password logins and client authentications together.
    pub address: u32,
    /// Per client id.
    pub client: u32,
    /// The sliding window, seconds.
    pub window: i64,
}

/// Longer values are stored as their digest, keeping the indexed column short.
const MAX_SUBJECT_VALUE: usize = 128;

/// The subject of a login: its digest, since people type their password into the login field.
fn login_subject(login: &str) -> String {
    format!("login:{}", digest(&login_key(login)))
}

fn bounded(prefix: &str, value: &str) -> String {
    if value.len() <= MAX_SUBJECT_VALUE {
        format!("{prefix}:{value}")
    } else {
        format!("{prefix}:sha256:{}", digest(value))
    }
}

/// A password attempt admitted by the limits: pending until its password is checked.
#[derive(Debug, Default)]
#[must_use = "report the outcome with Service::password_verified or password_rejected"]
pub(crate) struct Admission {
    /// The rows recorded for this attempt.
    ids: Vec<String>,
    /// The login's subject, whose failures a success clears.
    login: Option<String>,
}

/// Attempts of this process settled so far, and the condition variable that announces each:
/// attempts waiting for those in flight re-read the counts as soon as one settles, instead of
/// sleeping out their pause while argon2 slots stand idle.
static SETTLED: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

fn settled_so_far() -> u64 {
    *SETTLED.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until an attempt settles after `seen` (see [`settled_so_far`]), at most `timeout`.
fn wait_for_a_settle(seen: u64, timeout: Duration) {
    let (count, settled) = &SETTLED;
    let guard = count.lock().unwrap_or_else(|e| e.into_inner());
    let _ = settled.wait_timeout_while(guard, timeout, |n| *n == seen);
}

fn notify_settled() {
    let (count, settled) = &SETTLED;
    let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
    *n = n.wrapping_add(1);
    settled.notify_all();
}

/// What the counts allow.
enum Verdict {
    Admit,
    /// Only attempts in flight stand between this one and a limit: wait for them.
    Wait,
    /// A limit is reached: retry after this many seconds.
    Refuse(i64),
}

impl Service {
    /// Admits a password attempt for `login` from `remote_addr` (empty = unknown), before the
    /// user is looked up on `conn`, which is handed back: refused with
    /// [`Error::TooManyFailures`] at a limit, else recorded as pending.
    pub(crate) fn admit_password(
        &self,
        mut conn: PooledConnection,
        login: &str,
        remote_addr: &str,
        now: i64,
    ) -> Result<(Admission, PooledConnection), Error> {
        let limits = self.failure_limits();
        let login = (limits.login > 0).then(|| login_subject(login));
        let mut subjects = Vec::new();
        if let Some(login) = &login {
            subjects.push((login.clone(), limits.login));
        }
        if limits.address > 0 && !remote_addr.is_empty() {
            subjects.push((bounded("addr", remote_addr), limits.address));
        }
        if subjects.is_empty() {
            return Ok((Admission::default(), conn));
        }
        let refused = |retry_after| Error::TooManyFailures {
            credential: Credential::Password,
            retry_after,
        };
        let mut pause = 5;
        // Real time, not the sum of the pauses: a settle elsewhere can end a pause early.
        let waiting = crate::clock::Stopwatch::start();
        loop {
            let settled = settled_so_far();
            // A refusal needs reads only: an attack past the limit never takes the write lock.
            let verdict = match verdict(&mut conn, &subjects, limits.window, now)? {
                Verdict::Admit => self.store().write(&mut conn, |c| {
                    let keys: Vec<String> = subjects.iter().map(|(k, _)| k.clone()).collect();
                    auth_failures::lock(c, &keys)?;
                    let verdict = verdict(c, &subjects, limits.window, now)?;
                    if let Verdict::Admit = verdict {
                        let ids = auth_failures::record(c, &keys, now, true)?;
                        return Ok(Ok(ids));
                    }
                    Ok::<_, Error>(Err(verdict))
                })?,
                other => Err(other),
            };
            match verdict {
                Ok(ids) => return Ok((Admission { ids, login }, conn)),
                Err(Verdict::Refuse(retry_after)) => return Err(refused(retry_after)),
                // Only attempts in flight stand in the way, and they take too long: the
                // server is overloaded, not this login guessed too often (503, retry in 1 s).
                Err(_) if waiting.elapsed_secs() * 1000.0 >= MAX_WAIT_MS as f64 => {
                    return Err(Error::Unavailable(
                        "password checks of this login still in flight".into(),
                    ));
                }
                Err(_) => {}
            }
            // No connection held while waiting; an attempt of this process that settles
            // meanwhile ends the wait at once (other instances' are seen at the next read).
            drop(conn);
            wait_for_a_settle(settled, Duration::from_millis(pause));
            pause = (pause * 2).min(50);
            conn = self.store().conn()?;
        }
    }

    /// The password of an admitted attempt was right: the attempt was no failure, and the
    /// login's earlier failures are forgiven. A store failure here is logged, not raised: the
    /// login itself succeeded.
    pub(crate) fn password_verified(&self, admission: Admission) {
        if admission.ids.is_empty() && admission.login.is_none() {
            return;
        }
        let result = self
            .store()
            .conn()
            .map_err(Error::from)
            .and_then(|mut conn| {
                self.store().write(&mut conn, |c| {
                    auth_failures::delete(c, &admission.ids)?;
                    if let Some(login) = &admission.login {
                        auth_failures::clear(c, login)?;
                    }
                    Ok::<_, Error>(())
                })
            });
        if let Err(e) = result {
            log::warn!("cannot clear the failures of a successful login: {e}");
        }
        notify_settled();
    }

    /// The password of an admitted attempt was wrong (or its user unknown or disabled): the
    /// attempt is a failure. A store failure here is logged: the record then counts as a
    /// failure once `PENDING_TIMEOUT` has passed.
    pub(crate) fn password_rejected(&self, admission: Admission) {
        if admission.ids.is_empty() {
            return;
        }
        let result = self
            .store()
            .conn()
            .map_err(Error::from)
            .and_then(|mut conn| {
                self.store().write(&mut conn, |c| {
                    auth_failures::settle(c, &admission.ids).map_err(Error::from)
                })
            });
        if let Err(e) = result {
            log::warn!("cannot record a failed login: {e}");
        }
        notify_settled();
    }

    /// A client authentication failed: the failure counts against the client id and
    /// `remote_addr`. Returns the error to answer: the failure itself, or
    /// [`Error::TooManyFailures`] once a limit is reached (then nothing is recorded).
    pub(crate) fn client_failed(
        &self,
        conn: &mut DbConnection,
        creds: &ClientCredentials,
        remote_addr: &str,
    ) -> Error {
        let scheme = creds.scheme();
        let failed = Error::ClientAuthenticationFailed { scheme };
        let id = match creds {
            ClientCredentials::Basic { id, .. }
            | ClientCredentials::Post { id, .. }
            | ClientCredentials::Public { id } => id,
            // Nothing was presented: nothing was guessed.
            ClientCredentials::Absent => return failed,
        };
        let limits = self.failure_limits();
        let mut subjects = Vec::new();
        if limits.client > 0 {
            subjects.push((bounded("client", id), limits.client));
        }
        if limits.address > 0 && !remote_addr.is_empty() {
            subjects.push((bounded("addr", remote_addr), limits.address));
        }
        if subjects.is_empty() {
            return failed;
        }
        let now = self.now();
        let refused = |retry_after| Error::TooManyFailures {
            credential: Credential::ClientSecret(scheme),
            retry_after,
        };
        // The secret was checked already: attempts in flight make no difference here.
        let result = match verdict(conn, &subjects, limits.window, now) {
            Ok(Verdict::Refuse(retry_after)) => Err(refused(retry_after)),
            Ok(_) => self.store().write(conn, |c| {
                let keys: Vec<String> = subjects.iter().map(|(k, _)| k.clone()).collect();
                auth_failures::lock(c, &keys)?;
                if let Verdict::Refuse(retry_after) = verdict(c, &subjects, limits.window, now)? {
                    return Err(refused(retry_after));
                }
                auth_failures::record(c, &keys, now, false)?;
                Ok(())
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => failed,
            Err(e) => e,
        }
    }
}

/// Counts the subjects' failures and pending attempts in the window against their limits.
fn verdict(
    conn: &mut DbConnection,
    subjects: &[(String, u32)],
    window: i64,
    now: i64,
) -> Result<Verdict, Error> {
    let since = now.saturating_sub(window);
    let pending_since = now.saturating_sub(PENDING_TIMEOUT);
    let keys: Vec<String> = subjects.iter().map(|(key, _)| key.clone()).collect();
    let counts = auth_failures::count_since(conn, &keys, since, pending_since)?;
    let mut retry_after: Option<i64> = None;
    let mut wait = false;
    for (key, limit) in subjects {
        let (failures, pending, oldest) = counts
            .iter()
            .find(|c| c.subject == *key)
            .map_or((0, 0, None), |c| (c.failures, c.pending, c.oldest));
        let limit = i64::from(*limit);
        if failures < limit {
            wait |= failures.saturating_add(pending) >= limit;
            continue;
        }
        // Under the limit again once the (failures - limit + 1) oldest have left the window:
        // the oldest one, unless a lowered limit or a race left more failures than the limit.
        let at = match failures - limit {
            0 => oldest,
            skip => auth_failures::oldest_since(conn, key, since, pending_since, skip)?,
        }
        .unwrap_or(now);
        let seconds = at.saturating_add(window).saturating_sub(now).max(1);
        retry_after = Some(retry_after.map_or(seconds, |r| r.max(seconds)));
    }
    Ok(match retry_after {
        Some(seconds) => Verdict::Refuse(seconds),
        None if wait => Verdict::Wait,
        None => Verdict::Admit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_never_hold_a_login_or_a_long_value_in_clear() {
        let subject = login_subject("Alice");
        assert_eq!(subject, login_subject("alice"));
        assert!(!subject.contains("lice"));
        assert_eq!(subject.len(), "login:".len() + 64);
        assert_eq!(bounded("addr", "192.0.2.1"), "addr:192.0.2.1");
        let long = "x".repeat(MAX_SUBJECT_VALUE + 1);
        assert_eq!(bounded("client", &long).len(), "client:sha256:".len() + 64);
    }
}
