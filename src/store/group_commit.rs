//! Group commit for SQLite. SQLite has one writer at a time and a commit costs more than the
//! statements of a token grant (WAL frames for every B-tree page the transaction dirtied). So
//! the writes of this process go through one dedicated connection: the first writer opens a
//! transaction (`BEGIN IMMEDIATE`), each writer runs its statements in a savepoint of it, and
//! the writer that finds nobody queued behind it commits for everyone in the batch. A writer
//! returns only once the commit that holds its work has succeeded (or with the commit's error):
//! nothing is acknowledged before it is durable, and a writer whose statements fail rolls back
//! to its savepoint without touching the others' work.
//!
//! A writer that commits as soon as nobody is queued behind it commits alone most of the time
//! (measured: 96 % of the batches under a refresh load at c = 16 held one writer), and every
//! commit writes each page it dirtied to the WAL: the end pages of every index that rows are
//! appended to, again and again. So a request that is about to write says so first
//! ([`GroupWriter::intend`], once it holds its pooled connection), and the last member of a
//! batch commits only when no announced writer is still on its way, or after `MAX_WAIT`, or at
//! `MAX_BATCH`. An announcement that ends without a write (the request failed) wakes the batch.
//!
//! The WAL is checkpointed by a background thread, not by the committing request
//! (`checkpointer`).
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};

use super::StoreError;
use super::connection::{DbConnection, Manager};
use crate::clock::Stopwatch;
use crate::metrics::Metrics;

mod checkpointer;

/// Writers committed together at most: a bound on the wait of the first one.
const MAX_BATCH: usize = 64;

/// How long a batch waits at most for announced writers before it commits.
const MAX_WAIT: Duration = Duration::from_millis(2);

/// The transaction manager of the multi-backend connection (depth 0: BEGIN, above: SAVEPOINT).
type Tm = DbConnection;

/// The shared writer of one SQLite database.
pub(crate) struct GroupWriter {
    manager: Manager,
    state: Mutex<State>,
    committed: Condvar,
    /// Writers waiting for `state`: while any, the holder leaves the commit to them.
    queued: AtomicUsize,
    /// Requests that announced a write ([`GroupWriter::intend`]) and have not yet joined a
    /// batch: while any (and `MAX_WAIT` has not passed), the batch waits for them.
    intents: AtomicUsize,
    /// Batches committed, for the checkpointer.
    commits: Arc<AtomicU64>,
    /// Where batch sizes go, once the server has metrics.
    metrics: Arc<OnceLock<Arc<Metrics>>>,
    /// `MAX_WAIT`, but for tests.
    max_wait: Duration,
}

#[derive(Default)]
struct State {
    conn: Option<DbConnection>,
    /// The batch whose transaction is open, if any, and since when: its members wait for
    /// announced writers until `MAX_WAIT` after it opened.
    open: Option<(u64, Stopwatch)>,
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
            intents: AtomicUsize::new(0),
            commits: Arc::new(AtomicU64::new(0)),
            max_wait: MAX_WAIT,
        }
    }

    /// Announces that this thread is about to write: batches wait for it (at most `MAX_WAIT`)
    /// until it joins one with [`GroupWriter::write`] or drops the returned guard. A thread
    /// that already announced a write gets a guard that does nothing.
    pub(crate) fn intend(self: &Arc<Self>) -> WriteIntent {
        if ANNOUNCED.with(|a| a.replace(true)) {
            return WriteIntent {
                writer: None,
                _thread: std::marker::PhantomData,
            };
        }
        self.intents.fetch_add(1, Ordering::SeqCst);
        WriteIntent {
            writer: Some(Arc::clone(self)),
            _thread: std::marker::PhantomData,
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
        // This thread's announcement, if any, is kept: it is here.
        let announced = ANNOUNCED.with(|a| a.replace(false));
        self.queued.fetch_add(1, Ordering::SeqCst);
        if announced {
            self.intents.fetch_sub(1, Ordering::SeqCst);
        }
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
        // The last member to find nobody else on the way commits for all.
        while state.ended < batch {
            let waited = state
                .open
                .map_or(self.max_wait, |(_, since)| since.elapsed());
            let on_the_way =
                self.queued.load(Ordering::SeqCst) + self.intents.load(Ordering::SeqCst);
            if on_the_way == 0 || state.members >= MAX_BATCH || waited >= self.max_wait {
                if let Some(metrics) = self.metrics.get() {
                    metrics.write_batch(state.members);
                }
                let outcome = commit(&mut state);
                self.end_batch(&mut state, outcome);
                break;
            }
            state = self
                .committed
                .wait_timeout(state, self.max_wait - waited)
                .map(|(state, _)| state)
                .unwrap_or_else(|e| self.recover(e.into_inner().0));
        }
        if let Some((_, reason)) = state.failed.iter().find(|(b, _)| *b == batch) {
            return Err(StoreError::Unavailable(format!("commit failed: {reason}")).into());
        }
        result
    }

    /// An announced writer that will not write after all: the batch waiting for it may commit.
    fn withdraw(&self) {
        self.intents.fetch_sub(1, Ordering::SeqCst);
        // Taken so that a member between its check and its wait does not miss the wake-up.
        drop(self.lock());
        self.committed.notify_all();
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
        if let Some((batch, _)) = state.open {
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
                checkpointer::spawn(Arc::downgrade(self), Arc::clone(&self.commits));
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
        state.open = Some((batch, Stopwatch::start()));
        state.members = 0;
        Ok(batch)
    }

    /// Closes the open batch with `outcome` and wakes its members.
    fn end_batch(&self, state: &mut State, outcome: Result<(), String>) {
        let Some((batch, _)) = state.open.take() else {
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

thread_local! {
    /// This thread announced a write that has not joined a batch yet.
    static ANNOUNCED: Cell<bool> = const { Cell::new(false) };
}

/// A write announced by [`GroupWriter::intend`]; dropping it before the write withdraws it.
pub struct WriteIntent {
    writer: Option<Arc<GroupWriter>>,
    /// Announcements are per thread: the guard stays on the thread that made it.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for WriteIntent {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            if ANNOUNCED.with(|a| a.replace(false)) {
                writer.withdraw();
            }
        }
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failing test stops at the unwrap")]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A writer on a new SQLite file with a table `t`, whose batches wait up to `max_wait`.
    fn writer(dir: &tempfile::TempDir, max_wait: Duration) -> Arc<GroupWriter> {
        let manager = Manager::sqlite(dir.path().join("t.db"));
        let mut conn = r2d2::ManageConnection::connect(&manager).unwrap();
        conn.batch_execute("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        let mut writer = GroupWriter::new(manager, Arc::new(OnceLock::new()));
        writer.max_wait = max_wait;
        Arc::new(writer)
    }

    fn insert(writer: &Arc<GroupWriter>, v: i64) -> Result<(), StoreError> {
        writer.write(|c| {
            c.batch_execute(&format!("INSERT INTO t VALUES ({v})"))
                .map_err(StoreError::from)
        })
    }

    fn batches(writer: &GroupWriter) -> u64 {
        writer.commits.load(Ordering::SeqCst)
    }

    /// Returns once another thread has announced a write; that thread then runs `then` with
    /// its announcement.
    fn announced_elsewhere<T: Send + 'static>(
        w: &Arc<GroupWriter>,
        then: impl FnOnce(&Arc<GroupWriter>, WriteIntent) -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let (announced, go) = mpsc::channel();
        let w = Arc::clone(w);
        let thread = std::thread::spawn(move || {
            let intent = w.intend();
            announced.send(()).unwrap();
            then(&w, intent)
        });
        go.recv().unwrap();
        thread
    }

    #[test]
    fn a_batch_waits_for_an_announced_writer_and_commits_once_for_both() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(30));
        let late = announced_elsewhere(&w, |w, _intent| {
            // Long enough for the first writer to be waiting in its batch.
            std::thread::sleep(Duration::from_millis(100));
            insert(w, 2)
        });
        let watch = Stopwatch::start();
        insert(&w, 1).unwrap();
        late.join().unwrap().unwrap();
        // The first writer returned only with the second one's commit: one batch for both.
        assert!(watch.elapsed() >= Duration::from_millis(100));
        assert_eq!(batches(&w), 1);
    }

    #[test]
    fn a_withdrawn_announcement_lets_the_batch_commit_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(30));
        let (waiting, withdraw) = mpsc::channel::<()>();
        let quitter = announced_elsewhere(&w, move |_, intent| {
            withdraw.recv().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            drop(intent);
        });
        let watch = Stopwatch::start();
        let first = std::thread::spawn({
            let w = Arc::clone(&w);
            move || insert(&w, 1)
        });
        waiting.send(()).unwrap();
        first.join().unwrap().unwrap();
        quitter.join().unwrap();
        // Far less than the 30 s the batch would have waited for a writer that never came.
        assert!(watch.elapsed() < Duration::from_secs(10));
        assert_eq!(batches(&w), 1);
        assert_eq!(w.intents.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_writer_that_announced_itself_does_not_wait_for_itself() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(30));
        let watch = Stopwatch::start();
        let intent = w.intend();
        // A second announcement on the same thread is the same one.
        let again = w.intend();
        insert(&w, 1).unwrap();
        drop(again);
        drop(intent);
        insert(&w, 2).unwrap();
        assert!(watch.elapsed() < Duration::from_secs(10));
        assert_eq!(batches(&w), 2);
        assert_eq!(w.intents.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_batch_waits_no_longer_than_its_bound_for_a_writer_that_never_comes() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_millis(50));
        let (done, finish) = mpsc::channel::<()>();
        let idle = announced_elsewhere(&w, move |_, _intent| finish.recv().unwrap());
        let watch = Stopwatch::start();
        insert(&w, 1).unwrap();
        let waited = watch.elapsed();
        done.send(()).unwrap();
        idle.join().unwrap();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        assert_eq!(batches(&w), 1);
    }
}
