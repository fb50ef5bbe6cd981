//! Group commit for SQLite. SQLite has one writer at a time and a commit costs more than the
//! statements of a token grant (WAL frames for every B-tree page the transaction dirtied). So
//! the writes of this process go through one dedicated connection: the first writer opens a
//! transaction (`BEGIN IMMEDIATE`), each writer runs its statements in a savepoint of it, and
//! the writer that finds nobody queued behind it commits for everyone in the batch. A writer
//! returns only once the commit that holds its work has succeeded (or with the commit's error):
//! nothing is acknowledged before it is durable, and a writer whose statements fail rolls back
//! to its savepoint without touching the others' work.
//!
//! The WAL is checkpointed by a background thread (`PRAGMA wal_checkpoint(PASSIVE)`), not by
//! the committing request: the dedicated connection runs with `wal_autocheckpoint = 0`. A
//! passive checkpoint never catches up with a steady stream of commits, and SQLite starts the
//! WAL over only when it was wholly copied back, so under load the WAL file would grow without
//! bound (1.4 GB in 15 s of client_credentials), and every commit would write to pages that
//! the kernel must allocate. So when the WAL holds more than `RESTART_AFTER_FRAMES` after a
//! passive checkpoint, the checkpointer holds the writers of this process back between two
//! batches and runs `wal_checkpoint(RESTART)`: the few frames left are copied, and the next
//! batch writes the WAL from its start again.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};

use super::StoreError;
use super::connection::{DbConnection, Manager};
use crate::metrics::Metrics;

/// Writers committed together at most: a bound on the wait of the first one.
const MAX_BATCH: usize = 64;

/// How often the checkpointer looks for new commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL frames (pages) left after a passive checkpoint past which the WAL is started over.
const RESTART_AFTER_FRAMES: i64 = 1024;

/// How long the restarting checkpoint waits for readers still reading from the WAL.
const RESTART_BUSY_TIMEOUT_MS: u32 = 20;

/// The transaction manager of the multi-backend connection (depth 0: BEGIN, above: SAVEPOINT).
type Tm = DbConnection;

/// The shared writer of one SQLite database.
pub(crate) struct GroupWriter {
    manager: Manager,
    state: Mutex<State>,
    committed: Condvar,
    /// Writers waiting for `state`: while any, the holder leaves the commit to them.
    queued: AtomicUsize,
    /// Batches committed, for the checkpointer.
    commits: Arc<AtomicU64>,
    /// Where batch sizes go, once the server has metrics.
    metrics: Arc<OnceLock<Arc<Metrics>>>,
}

#[derive(Default)]
struct State {
    conn: Option<DbConnection>,
    /// The batch whose transaction is open, if any.
    open: Option<u64>,
    /// Writers in the open batch.
    members: usize,
    /// Every batch up to this one has ended.
    ended: u64,
    /// Recent batches that ended without a commit, with the reason.
    failed: Vec<(u64, String)>,
    checkpointer: bool,
    /// The checkpointer waits to restart the WAL: no new batch opens meanwhile.
    restart_wanted: bool,
}

impl GroupWriter {
    pub(crate) fn new(manager: Manager, metrics: Arc<OnceLock<Arc<Metrics>>>) -> Self {
        Self {
            manager,
            metrics,
            state: Mutex::new(State::default()),
            committed: Condvar::new(),
            queued: AtomicUsize::new(0),
            commits: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Runs `f` in the open batch (opening one if none) and returns once that batch committed.
    pub(crate) fn write<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut state = self.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        // No new batch while the checkpointer restarts the WAL (a few milliseconds).
        while state.open.is_none() && state.restart_wanted {
            state = self
                .committed
                .wait(state)
                .unwrap_or_else(|e| self.recover(e.into_inner()));
        }

        let batch = self.join_batch(&mut state)?;
        let result = match state.conn.as_mut() {
            Some(conn) => run_in_savepoint(conn, f),
            None => Err(Err(StoreError::Unavailable("no writer connection".into()))),
        };
        let result = match result {
            Ok(value) => Ok(value),
            Err(Ok(e)) => Err(e),
            // The savepoint could not be closed: the batch cannot be trusted.
            Err(Err(store_error)) => {
                self.end_batch(&mut state, Err(store_error.to_string()));
                return Err(store_error.into());
            }
        };
        state.members += 1;
        if self.queued.load(Ordering::SeqCst) == 0 || state.members >= MAX_BATCH {
            if let Some(metrics) = self.metrics.get() {
                metrics.write_batch(state.members);
            }
            let outcome = commit(&mut state);
            self.end_batch(&mut state, outcome);
        } else {
            while state.ended < batch {
                state = self
                    .committed
                    .wait(state)
                    .unwrap_or_else(|e| self.recover(e.into_inner()));
            }
        }
        if let Some((_, reason)) = state.failed.iter().find(|(b, _)| *b == batch) {
            return Err(StoreError::Unavailable(format!("commit failed: {reason}")).into());
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|e| self.recover(e.into_inner()))
    }

    /// A writer panicked while holding the state: its batch may be half written, so it is
    /// rolled back and reported failed to its other members.
    fn recover<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.state.clear_poison();
        if state.open.is_some() {
            if let Some(conn) = state.conn.as_mut() {
                let _ = conn.batch_execute("ROLLBACK");
            }
            // The transaction manager's depth no longer matches: start from a new connection.
            state.conn = None;
            self.end_batch(&mut state, Err("a writer of the batch panicked".into()));
        }
        state
    }

    /// The open batch, opening one (and the connection) if needed.
    fn join_batch(self: &Arc<Self>, state: &mut State) -> Result<u64, StoreError> {
        if let Some(batch) = state.open {
            return Ok(batch);
        }
        if state.conn.is_none() {
            let mut conn = r2d2::ManageConnection::connect(&self.manager)?;
            // An 8 MiB page cache (SQLite's default is 2): the writer's inserts land on
            // random pages of the digest indexes, which a grown store no longer keeps in 2 MiB.
            conn.batch_execute("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -8192")?;
            state.conn = Some(conn);
            if !state.checkpointer {
                state.checkpointer = true;
                spawn_checkpointer(Arc::downgrade(self), Arc::clone(&self.commits));
            }
        }
        let conn = state
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no writer connection".into()))?;
        if let DbConnection::Sqlite(inner) = conn {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(
                inner,
                "BEGIN IMMEDIATE",
            )?;
        }
        let batch = state.ended + 1;
        state.open = Some(batch);
        state.members = 0;
        Ok(batch)
    }

    /// Closes the open batch with `outcome` and wakes its members.
    fn end_batch(&self, state: &mut State, outcome: Result<(), String>) {
        let Some(batch) = state.open.take() else {
            return;
        };
        state.ended = batch;
        state.members = 0;
        match outcome {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => {
                if state.failed.len() >= 32 {
                    state.failed.remove(0);
                }
                state.failed.push((batch, reason));
                if let Some(conn) = state.conn.as_mut() {
                    if <Tm as TransactionManager<DbConnection>>::rollback_transaction(conn).is_err()
                    {
                        state.conn = None;
                    }
                }
            }
        }
        self.committed.notify_all();
    }

    /// Runs `f` between two batches: the open batch (if any) commits first, and no writer of
    /// this process opens another until `f` returns.
    fn between_batches<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut state = self.lock();
        state.restart_wanted = true;
        while state.open.is_some() {
            state = self
                .committed
                .wait(state)
                .unwrap_or_else(|e| self.recover(e.into_inner()));
        }
        let value = f();
        state.restart_wanted = false;
        drop(state);
        self.committed.notify_all();
        value
    }
}

/// `Ok(value)`, `Err(Ok(f's error))` with the savepoint rolled back, or `Err(Err(_))` when
/// the savepoint itself failed.
fn run_in_savepoint<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, Result<E, StoreError>> {
    <Tm as TransactionManager<DbConnection>>::begin_transaction(conn)
        .map_err(|e| Err(StoreError::from(e)))?;
    match f(conn) {
        Ok(value) => {
            <Tm as TransactionManager<DbConnection>>::commit_transaction(conn)
                .map_err(|e| Err(StoreError::from(e)))?;
            Ok(value)
        }
        Err(e) => {
            <Tm as TransactionManager<DbConnection>>::rollback_transaction(conn)
                .map_err(|e| Err(StoreError::from(e)))?;
            Err(Ok(e))
        }
    }
}

fn commit(state: &mut State) -> Result<(), String> {
    let conn = state.conn.as_mut().ok_or("no writer connection")?;
    <Tm as TransactionManager<DbConnection>>::commit_transaction(conn).map_err(|e| e.to_string())
}

/// What `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName)]
struct CheckpointRow {
    /// 1 if the checkpoint could not do all its mode asks (readers or a writer in the way).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

fn checkpoint(conn: &mut DbConnection, mode: &str) -> Result<CheckpointRow, StoreError> {
    use diesel::RunQueryDsl;
    Ok(diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(conn)?)
}

/// Checkpoints the WAL after commits, off the request path, until the writer is dropped.
fn spawn_checkpointer(writer: Weak<GroupWriter>, commits: Arc<AtomicU64>) {
    let spawned = std::thread::Builder::new()
        .name("tessera-wal-checkpoint".into())
        .spawn(move || {
            let mut conn = None;
            let mut seen = 0;
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                let now = commits.load(Ordering::Relaxed);
                if now == seen {
                    continue;
                }
                seen = now;
                if conn.is_none() {
                    conn = r2d2::ManageConnection::connect(&writer.manager)
                        .and_then(|mut c: DbConnection| {
                            c.batch_execute(&format!(
                                "PRAGMA busy_timeout = {RESTART_BUSY_TIMEOUT_MS}"
                            ))?;
                            Ok(c)
                        })
                        .ok();
                }
                let Some(c) = conn.as_mut() else {
                    continue;
                };
                let outcome = checkpoint(c, "PASSIVE").and_then(|passive| {
                    if i64::from(passive.log) <= RESTART_AFTER_FRAMES {
                        return Ok(());
                    }
                    let restart = writer.between_batches(|| checkpoint(c, "RESTART"))?;
                    if restart.busy != 0 {
                        log::debug!("WAL restart postponed: readers still in the WAL");
                    }
                    Ok(())
                });
                drop(writer);
                if let Err(e) = outcome {
                    log::warn!("WAL checkpoint failed: {e}");
                    conn = None;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the WAL checkpointer: {e}");
    }
}
