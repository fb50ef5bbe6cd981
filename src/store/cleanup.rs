//! Deletion of expired rows in batches, so one run never holds the write lock for long:
//! access tokens past expiry, refresh tokens past expiry, then sessions left without tokens.
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{DbConnection, StoreError, connection};

/// Counts of rows deleted by one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub access_tokens: usize,
    pub refresh_tokens: usize,
    pub sessions: usize,
}

const STATEMENTS: [&str; 3] = [
    "DELETE FROM access_tokens WHERE hash IN \
     (SELECT hash FROM access_tokens WHERE expires_at < $1 LIMIT $2)",
    "DELETE FROM refresh_tokens WHERE id IN \
     (SELECT id FROM refresh_tokens WHERE expires_at IS NOT NULL AND expires_at < $1 LIMIT $2)",
    "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE s.created_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.session_id = s.id) \
     AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id) LIMIT $2)",
];

/// Deletes everything expired at `now`, `batch` rows per transaction.
pub fn purge_expired(conn: &mut DbConnection, now: i64, batch: i64) -> Result<Purged, StoreError> {
    let mut counts = [0usize; 3];
    for (statement, count) in STATEMENTS.iter().zip(counts.iter_mut()) {
        // SQLite understands $N placeholders as well as PostgreSQL does.
        loop {
            let n = connection::write(conn, |c| {
                diesel::sql_query(*statement)
                    .bind::<BigInt, _>(now)
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
    let [access_tokens, refresh_tokens, sessions] = counts;
    Ok(Purged {
        access_tokens,
        refresh_tokens,
        sessions,
    })
}
