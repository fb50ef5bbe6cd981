//! Connections and the pool. The backend is chosen from the URL scheme (`sqlite://PATH` or
//! `postgres://…`); SQLite connections get WAL, a busy timeout and foreign keys; writes go
//! through [`write`], which starts SQLite transactions with `BEGIN IMMEDIATE` so concurrent
//! writers queue on the lock instead of failing half-way.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

use super::StoreError;
use super::group_commit::{GroupWriter, WriteIntent};
use crate::clock::Stopwatch;
use crate::metrics::Metrics;

/// One connection to either backend; the query DSL works on it unchanged.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::BadUrl("sqlite:// needs a file path".into()));
            }
            Ok(Backend::Sqlite {
                path: PathBuf::from(path),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres {
                url: url.to_owned(),
            })
        } else {
            Err(StoreError::BadUrl(
                "must start with sqlite:// or postgres:// (or postgresql://)".into(),
            ))
        }
    }

    /// A description safe to log: no password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite { path } => format!("SQLite at {}", path.display()),
            Backend::Postgres { url } => {
                let host = url.rsplit('@').next().unwrap_or(url);
                let host = host
                    .trim_start_matches("postgres://")
                    .trim_start_matches("postgresql://");
                format!("PostgreSQL at {host}")
            }
        }
    }
}

/// Pool options.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// 0 = automatic.
    pub size: u32,
    pub timeout: Duration,
    pub busy_timeout_ms: u32,
}

/// Opens connections for r2d2 and prepares each one.
#[derive(Debug, Clone)]
pub struct Manager {
    backend: Backend,
    busy_timeout_ms: u32,
}

#[cfg(test)]
impl Manager {
    /// A manager of connections to the SQLite file at `path`.
    pub(super) fn sqlite(path: PathBuf) -> Self {
        Self {
            backend: Backend::Sqlite { path },
            busy_timeout_ms: 5000,
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConnection, StoreError> {
        match &self.backend {
            Backend::Sqlite { path } => {
                let path = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path)
                    .map_err(|e| StoreError::Connect(e.to_string()))?;
                // temp_store = MEMORY: the statement journal of each group-commit savepoint
                // would otherwise be a temporary file, created and deleted per writer.
                conn.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
                     PRAGMA busy_timeout = {};",
                    self.busy_timeout_ms
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
            Backend::Postgres { url } => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(|e| StoreError::Connect(e.to_string())),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// The token store: a pool of connections to one database.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    /// SQLite: the one connection this process writes through (group commit).
    writer: Option<Arc<GroupWriter>>,
    /// Where checkout waits are recorded, once the server has metrics.
    metrics: Arc<OnceLock<Arc<Metrics>>>,
}

/// The pool's state, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub max_size: u32,
    pub connections: u32,
    pub idle: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.describe())
            .finish()
    }
}

impl Store {
    /// Opens the pool. For SQLite the file's directory is created if missing.
    pub fn open(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        let backend = Backend::from_url(url)?;
        if let Backend::Sqlite { path } = &backend {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Connect(format!("{}: {e}", dir.display())))?;
            }
        }
        let size = match (options.size, &backend) {
            (0, Backend::Sqlite { .. }) => 8,
            (0, Backend::Postgres { .. }) => 16,
            (n, _) => n,
        };
        let manager = Manager {
            backend: backend.clone(),
            busy_timeout_ms: options.busy_timeout_ms,
        };
        let metrics = Arc::new(OnceLock::new());
        let writer = matches!(backend, Backend::Sqlite { .. })
            .then(|| Arc::new(GroupWriter::new(manager.clone(), Arc::clone(&metrics))));
        let pool = r2d2::Pool::builder()
            .max_size(size)
            // No idle connection opened in the background: connections open on demand, and
            // a CLI command never exits while the pool is still connecting (libpq + OpenSSL
            // tear-down under a half-made TLS connection crashed at exit).
            .min_idle(Some(0))
            .connection_timeout(options.timeout)
            // A PostgreSQL restart leaves every pooled connection dead; a `SELECT 1` at
            // checkout replaces them (one round trip). A SQLite file cannot go away like that.
            .test_on_check_out(matches!(backend, Backend::Postgres { .. }))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        Ok(Self {
            pool,
            backend,
            writer,
            metrics,
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Runs `f` in a write transaction, like [`write`]. On SQLite, `f` runs on this store's
    /// writer connection and commits in a group with the writers queued behind it
    /// (`group_commit`); `conn` is not used. On PostgreSQL, `f` runs on `conn`.
    pub fn write<T, E>(
        &self,
        conn: &mut DbConnection,
        f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        match &self.writer {
            Some(writer) => writer.write(f),
            None => write(conn, f),
        }
    }

    /// Announces that this thread is about to call [`Store::write`] (SQLite: the open group
    /// commit waits for it, `group_commit`). Call it once the request holds its pooled
    /// connection, not before a slow step such as a password check; dropping the guard without
    /// writing withdraws the announcement. Does nothing on PostgreSQL.
    pub fn intend_write(&self) -> Option<WriteIntent> {
        self.writer.as_ref().map(GroupWriter::intend)
    }

    /// A connection from the pool, waiting at most `timeout` (health checks).
    pub fn conn_within(&self, timeout: Duration) -> Result<PooledConnection, StoreError> {
        self.pool
            .get_timeout(timeout)
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// A connection from the pool; blocks up to the pool timeout.
    pub fn conn(&self) -> Result<PooledConnection, StoreError> {
        let Some(metrics) = self.metrics.get() else {
            return self
                .pool
                .get()
                .map_err(|e| StoreError::Unavailable(e.to_string()));
        };
        let watch = Stopwatch::start();
        let conn = self.pool.get();
        metrics.pool_checkout(watch.elapsed_secs(), conn.is_err());
        conn.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Records checkout waits into `metrics` from now on.
    pub fn attach_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            max_size: self.pool.max_size(),
            connections: state.connections,
            idle: state.idle_connections,
        }
    }
}

/// SQLite has one writer at a time. Writers of this process queue here, in order, instead of
/// meeting at `BEGIN IMMEDIATE`, where SQLite's busy handler would make them sleep and poll
/// (1, 2, 5, 10… ms): queueing keeps the write lock busy back to back. Writers of another
/// process on the same file still meet at the busy handler.
static SQLITE_WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in one write transaction: committed if it returns `Ok`, rolled back otherwise.
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front,
/// after this process's earlier writers (`SQLITE_WRITERS`).
pub fn write<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    // A writer that panicked left no transaction open (the connection rolls back on reuse), so
    // a poisoned queue is still a queue.
    let _queue = matches!(conn, DbConnection::Sqlite(_))
        .then(|| SQLITE_WRITERS.lock().unwrap_or_else(|e| e.into_inner()));
    match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
                .map_err(StoreError::from)?;
        }
        DbConnection::Postgres(_) => {
            <DbConnection as TransactionManager<DbConnection>>::begin_transaction(conn)
                .map_err(StoreError::from)?;
        }
    }
    match f(conn) {
        Ok(value) => {
            if let Err(e) =
                <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)
            {
                let _ =
                    <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn);
                return Err(StoreError::from(e).into());
            }
            Ok(value)
        }
        Err(e) => {
            let _ = <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_scheme_picks_the_backend() {
        assert!(matches!(
            Backend::from_url("sqlite://data/t.db"),
            Ok(Backend::Sqlite { .. })
        ));
        assert!(matches!(
            Backend::from_url("postgres://root@127.0.0.1:5432/test"),
            Ok(Backend::Postgres { .. })
        ));
        assert!(Backend::from_url("mysql://x").is_err());
        assert!(Backend::from_url("sqlite://").is_err());
    }

    #[test]
    fn describing_a_postgres_url_hides_the_password() {
        let b = Backend::Postgres {
            url: "postgres://u:pw@db:5432/x".into(),
        };
        assert_eq!(b.describe(), "PostgreSQL at db:5432/x");
    }
}
