//! The `auth_failures` table: one row per password login or client authentication that failed,
//! or whose password is still being checked (`pending`), and per subject it counts against
//! (`login:…`, `addr:…`, `client:…`), for the sliding-window limits of `oauth::throttle`. Every
//! instance on the database counts the same rows; the cleanup task deletes those older than the
//! window.
//!
//! A pending row older than `pending_since` (its process died, or its request failed midway)
//! counts as a failure.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use uuid::Uuid;

use super::connection::MultiBackend;
use super::schema::auth_failures;
use super::{DbConnection, StoreError};

/// The first key of the PostgreSQL advisory locks taken by [`lock`] ("auth" in ASCII). The
/// two-key lock space does not overlap the one-key space of the migration lock.
const LOCK_CLASS: i32 = 0x6175_7468;

/// Serialises, until the end of the current write transaction, the writers that count and then
/// record `subjects`, so that no two of them both see a subject under its limit. On PostgreSQL
/// this takes one transaction-scoped advisory lock per subject, in one global order (no
/// deadlock); SQLite's `BEGIN IMMEDIATE` transaction already excludes every other writer.
pub fn lock(conn: &mut DbConnection, subjects: &[String]) -> Result<(), StoreError> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(());
    };
    let mut keys: Vec<i32> = subjects.iter().map(|s| lock_key(s)).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<Integer, _>(LOCK_CLASS)
            .bind::<Integer, _>(key)
            .execute(pg)?;
    }
    Ok(())
}

/// A stable 32-bit key for a subject (FNV-1a), the same in every instance and release; a
/// collision only makes two subjects queue behind each other.
fn lock_key(subject: &str) -> i32 {
    let hash = subject.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Records one row per subject at `now`; returns their ids.
pub fn record(
    conn: &mut DbConnection,
    subjects: &[String],
    now: i64,
    pending: bool,
) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let id = Uuid::new_v4().to_string();
        diesel::insert_into(auth_failures::table)
            .values((
                auth_failures::id.eq(&id),
                auth_failures::subject.eq(subject),
                auth_failures::at.eq(now),
                auth_failures::pending.eq(pending),
            ))
            .execute(conn)?;
        ids.push(id);
    }
    Ok(ids)
}

/// A subject's rows after `since`.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Count {
    #[diesel(sql_type = Text)]
    pub subject: String,
    /// Failures, and pending rows from before `pending_since`.
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
    /// Pending rows since `pending_since`: passwords being checked.
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    /// The time of the oldest failure.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub oldest: Option<i64>,
}

/// The rows of each of `subjects` after `since` (one indexed query); subjects without any are
/// absent from the answer.
pub fn count_since(
    conn: &mut DbConnection,
    subjects: &[String],
    since: i64,
    pending_since: i64,
) -> Result<Vec<Count>, StoreError> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    // Placeholders in the order they first appear: SQLite numbers `$N` by appearance.
    let placeholders: Vec<String> = (3..subjects.len() + 3).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT subject, \
         SUM(CASE WHEN pending AND at > $1 THEN 0 ELSE 1 END) AS failures, \
         SUM(CASE WHEN pending AND at > $1 THEN 1 ELSE 0 END) AS pending, \
         MIN(CASE WHEN pending AND at > $1 THEN NULL ELSE at END) AS oldest \
         FROM auth_failures WHERE at > $2 AND subject IN ({}) GROUP BY subject",
        placeholders.join(", ")
    );
    let mut query = diesel::sql_query(sql)
        .into_boxed::<MultiBackend>()
        .bind::<BigInt, _>(pending_since)
        .bind::<BigInt, _>(since);
    for subject in subjects {
        query = query.bind::<Text, _>(subject.clone());
    }
    Ok(query.load(conn)?)
}

/// The time of the subject's oldest failure after `since` (as [`Count::failures`] counts
/// them), skipping the `skip` oldest ones.
pub fn oldest_since(
    conn: &mut DbConnection,
    subject: &str,
    since: i64,
    pending_since: i64,
    skip: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(auth_failures::table
        .filter(auth_failures::subject.eq(subject))
        .filter(auth_failures::at.gt(since))
        .filter(
            auth_failures::pending
                .eq(false)
                .or(auth_failures::at.le(pending_since)),
        )
        .order(auth_failures::at.asc())
        .select(auth_failures::at)
        .limit(1)
        .offset(skip.max(0))
        .first(conn)
        .optional()?)
}

/// Turns the pending rows `ids` into failures.
pub fn settle(conn: &mut DbConnection, ids: &[String]) -> Result<usize, StoreError> {
    Ok(
        diesel::update(auth_failures::table.filter(auth_failures::id.eq_any(ids)))
            .set(auth_failures::pending.eq(false))
            .execute(conn)?,
    )
}

/// Deletes the rows `ids` (attempts that turned out not to be failures).
pub fn delete(conn: &mut DbConnection, ids: &[String]) -> Result<usize, StoreError> {
    Ok(diesel::delete(auth_failures::table.filter(auth_failures::id.eq_any(ids))).execute(conn)?)
}

/// Deletes the failures of `subject` (a login that succeeded starts afresh); the pending rows
/// of attempts still being checked stay.
pub fn clear(conn: &mut DbConnection, subject: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        auth_failures::table
            .filter(auth_failures::subject.eq(subject))
            .filter(auth_failures::pending.eq(false)),
    )
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_are_stable() {
        // FNV-1a test vectors: "" and "a".
        assert_eq!(super::lock_key("") as u32, 0x811c_9dc5);
        assert_eq!(super::lock_key("a") as u32, 0xe40c_292c);
    }
}
