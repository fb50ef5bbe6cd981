//! Embedded migrations, one folder per backend (`migrations/sqlite`, `migrations/postgres`),
//! paired by name. They run at start and with `tessera migrate`.
use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{DbConnection, StoreError};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant key for the PostgreSQL advisory lock that serialises the migrations of
/// several instances starting at once.
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;

/// Applies every pending migration; returns how many ran.
pub fn run(conn: &mut DbConnection) -> Result<usize, StoreError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|v| v.len())
            .map_err(err),
        DbConnection::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.len())
                .map_err(err);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
            result
        }
    }
}

/// Whether migrations are still pending.
pub fn pending(conn: &mut DbConnection) -> Result<bool, StoreError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE).map_err(err),
        DbConnection::Postgres(c) => c.has_pending_migration(POSTGRES).map_err(err),
    }
}
