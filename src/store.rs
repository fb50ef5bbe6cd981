//! Storage through diesel with one code path for SQLite and PostgreSQL: a `MultiConnection`
//! enum chosen from the URL scheme, an r2d2 pool, embedded migrations per backend, and one
//! module per aggregate. Only SHA-256 digests of tokens and secrets are ever written.
//!
//! Lookups by a primary or unique key use `get_result`, not `first`: `first` adds `LIMIT ?`,
//! and SQLite re-compiles a cached statement whenever that parameter is bound (measured: 3.8 µs
//! instead of 0.6 µs per lookup, most of the CPU of a token check). The writes of the token
//! paths are types of `prepared`, which diesel keeps prepared.
pub mod admin;
pub mod auth_failures;
pub mod cleanup;
pub mod clients;
pub mod connection;
mod group_commit;
pub mod migrations;
mod prepared;
pub mod refresh_tokens;
pub mod schema;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod users;

pub use connection::{Backend, DbConnection, PooledConnection, Store};
pub use group_commit::WriteIntent;

/// The diesel backend of [`DbConnection`] (the multi-backend of SQLite and PostgreSQL).
type DbBackend = <DbConnection as diesel::Connection>::Backend;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("already exists")]
    Conflict,
    #[error("database error: {0}")]
    Query(diesel::result::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict,
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            Error::BrokenTransactionManager => {
                StoreError::Unavailable("broken transaction manager".to_owned())
            }
            // A PostgreSQL standby (after a failover that left the URL on it): writes are
            // refused until the URL points at the primary again.
            Error::DatabaseError(_, info) if info.message().contains("read-only transaction") => {
                StoreError::Unavailable(info.message().to_owned())
            }
            // SQLite's lock still held after busy_timeout: try again later.
            Error::DatabaseError(_, info) if info.message().contains("database is locked") => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Query(other),
        }
    }
}

/// Lists are stored as JSON text so both schemas stay identical.
fn list_to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn list_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Metadata objects are stored as JSON text too.
fn object_to_json(object: &crate::domain::Metadata) -> String {
    serde_json::to_string(object).unwrap_or_else(|_| "{}".to_owned())
}

fn object_from_json(text: &str) -> Result<crate::domain::Metadata, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// How a list is cut: order, direction, window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub descending: bool,
    pub limit: Option<i64>,
    pub offset: i64,
}

impl Page {
    /// Applies the window to a query. SQLite wants a LIMIT before an OFFSET, so an offset
    /// without a limit gets the largest one.
    fn apply<Q>(self, query: Q) -> Q
    where
        Q: diesel::query_dsl::methods::LimitDsl<Output = Q>
            + diesel::query_dsl::methods::OffsetDsl<Output = Q>,
    {
        let limit = match (self.limit, self.offset) {
            (Some(limit), _) => Some(limit),
            (None, offset) if offset > 0 => Some(i64::MAX),
            (None, _) => None,
        };
        let query = match limit {
            Some(limit) => query.limit(limit),
            None => query,
        };
        if self.offset > 0 {
            query.offset(self.offset)
        } else {
            query
        }
    }
}

/// A page of a list with its counts (wazo-auth's `{total, filtered, items}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub total: i64,
    pub filtered: i64,
    pub items: Vec<T>,
}
