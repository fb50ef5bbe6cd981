//! The group writer's WAL checkpointer. The WAL is checkpointed by a background thread
//! (`PRAGMA wal_checkpoint(PASSIVE)`), not by the committing request: the dedicated connection
//! runs with `wal_autocheckpoint = 0`. A passive checkpoint never catches up with a steady
//! stream of commits, and SQLite starts the WAL over only when it was wholly copied back, so
//! under load the WAL file would grow without bound (1.4 GB in 15 s of client_credentials), and
//! every commit would write to pages that the kernel must allocate. So when the WAL holds more
//! than `RESTART_AFTER_FRAMES` after a passive checkpoint, the checkpointer holds the writers of
//! this process back between two batches and runs `wal_checkpoint(RESTART)`: the few frames
//! left are copied, and the next batch writes the WAL from its start again.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::GroupWriter;
use crate::store::StoreError;
use crate::store::connection::DbConnection;

/// How often the checkpointer looks for new commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL frames (pages) left after a passive checkpoint past which the WAL is started over.
const RESTART_AFTER_FRAMES: i64 = 1024;

/// How long the restarting checkpoint waits for readers still reading from the WAL.
const RESTART_BUSY_TIMEOUT_MS: u32 = 20;

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
pub(super) fn spawn(writer: Weak<GroupWriter>, commits: Arc<AtomicU64>) {
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
