//! Deletion of expired rows in batches, so one run never holds the write lock for long:
//! access tokens past expiry; refresh tokens past expiry, revoked ones and consumed ones of dead
//! families after the retention period; sealed retry answers once no grace window can reach
//! them; then sessions left without tokens; and authentication failures older than the
//! brute-force window.
//!
//! Consumed refresh tokens of a live family are kept: replaying one is how reuse is detected.
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{DbConnection, Store, StoreError};
use crate::policy::MAX_REUSE_GRACE;

/// How long revoked refresh tokens, and consumed ones whose family has no live token left, are
/// kept after the fact (for audit, and so that a late replay is still told apart): 7 days.
pub const RETENTION: i64 = 7 * 86_400;

/// Counts of rows deleted (or, for retry answers, scrubbed) by one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub access_tokens: usize,
    pub refresh_tokens: usize,
    pub retry_answers: usize,
    pub sessions: usize,
    /// Rows of `auth_failures` that no longer count (older than the window).
    pub auth_failures: usize,
}

/// The cut-off a statement compares against.
#[derive(Clone, Copy)]
enum Cutoff {
    Now,
    Retention,
    Grace,
    /// `now` minus the brute-force window.
    FailureWindow,
}

/// Which counter a statement adds to.
#[derive(Clone, Copy)]
enum Counter {
    Access,
    Refresh,
    Retry,
    Sessions,
    AuthFailures,
}

const STATEMENTS: [(&str, Cutoff, Counter); 7] = [
    (
        "DELETE FROM access_tokens WHERE hash IN \
         (SELECT hash FROM access_tokens WHERE expires_at < $1 LIMIT $2)",
        Cutoff::Now,
        Counter::Access,
    ),
    (
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens \
         WHERE expires_at IS NOT NULL AND expires_at < $1 LIMIT $2)",
        Cutoff::Now,
        Counter::Refresh,
    ),
    (
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens \
         WHERE revoked_at IS NOT NULL AND revoked_at < $1 LIMIT $2)",
        Cutoff::Retention,
        Counter::Refresh,
    ),
    (
        "DELETE FROM refresh_tokens WHERE id IN (SELECT r.id FROM refresh_tokens r \
         WHERE r.consumed_at IS NOT NULL AND r.consumed_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM refresh_tokens l WHERE l.family_id = r.family_id \
         AND l.consumed_at IS NULL AND l.revoked_at IS NULL) LIMIT $2)",
        Cutoff::Retention,
        Counter::Refresh,
    ),
    (
        "UPDATE refresh_tokens SET retry_answer = NULL WHERE id IN (SELECT id FROM \
         refresh_tokens WHERE retry_answer IS NOT NULL AND consumed_at < $1 LIMIT $2)",
        Cutoff::Grace,
        Counter::Retry,
    ),
    (
        "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE s.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.session_id = s.id) \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id) LIMIT $2)",
        Cutoff::Now,
        Counter::Sessions,
    ),
    (
        "DELETE FROM auth_failures WHERE id IN \
         (SELECT id FROM auth_failures WHERE at < $1 LIMIT $2)",
        Cutoff::FailureWindow,
        Counter::AuthFailures,
    ),
];

/// Deletes everything expired at `now`, `batch` rows per transaction; authentication failures
/// go once `failure_window` seconds old (`[security] window`).
pub fn purge_expired(
    store: &Store,
    conn: &mut DbConnection,
    now: i64,
    batch: i64,
    failure_window: i64,
) -> Result<Purged, StoreError> {
    let mut purged = Purged::default();
    let grace = i64::try_from(MAX_REUSE_GRACE).unwrap_or(i64::MAX);
    for (statement, cutoff, counter) in STATEMENTS {
        let cutoff = match cutoff {
            Cutoff::Now => now,
            Cutoff::Retention => now.saturating_sub(RETENTION),
            Cutoff::Grace => now.saturating_sub(grace),
            Cutoff::FailureWindow => now.saturating_sub(failure_window),
        };
        let count = match counter {
            Counter::Access => &mut purged.access_tokens,
            Counter::Refresh => &mut purged.refresh_tokens,
            Counter::Retry => &mut purged.retry_answers,
            Counter::Sessions => &mut purged.sessions,
            Counter::AuthFailures => &mut purged.auth_failures,
        };
        // SQLite understands $N placeholders as well as PostgreSQL does.
        loop {
            let n = store.write(conn, |c| {
                diesel::sql_query(statement)
                    .bind::<BigInt, _>(cutoff)
                    .bind::<BigInt, _>(batch)
                    .execute(c)
                    .map_err(StoreError::from)
            })?;
            *count += n;
            if i64::try_from(n).unwrap_or(i64::MAX) < batch {
                break;
            }
        }
    }
    Ok(purged)
}
