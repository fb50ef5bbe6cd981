//! The SQLite write-ahead log under a steady load of writers and readers. A passive checkpoint
//! never catches up with commits that never stop, and SQLite writes the WAL from its start
//! again only after a checkpoint copied all of it back: without the group writer's restart the
//! WAL file grew by every page every commit wrote (1.4 GB in 15 s of client_credentials).
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::helpers::{Db, TestApp};

/// Token grants (each one write transaction) made under the load.
const WRITES: usize = 6_000;

/// Bytes 12..16 of the WAL header: incremented each time SQLite starts the WAL over.
fn wal_restarts(wal: &[u8]) -> u32 {
    let bytes: [u8; 4] = wal[12..16].try_into().unwrap();
    u32::from_be_bytes(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_starts_over_under_a_steady_load() {
    let app = Arc::new(TestApp::spawn(Db::Sqlite).await);
    let client = app.add_full_client("steady");
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, client, done) = (Arc::clone(&app), client.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            // Each grant writes a session and an access token; each introspection reads it
            // back on a pooled connection, so readers are always in the WAL too.
            while done.fetch_add(1, Ordering::SeqCst) < WRITES {
                let token = app.client_credentials_token(&client).await;
                let answer = app.introspect(&client, &token).await;
                assert_eq!(answer["active"], true);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let wal = std::fs::read(app.db.dir.path().join("tessera.db-wal")).unwrap();
    // Each grant dirties at least four B-tree pages (two tables, their digest and id indexes)
    // and a batch of writers shares at most the tables' last pages: WRITES grants wrote far
    // more than the bound below, so a file under it was written over again.
    let bound = 16 << 20;
    assert!(
        wal.len() < bound,
        "the WAL grew to {} MiB over {WRITES} grants",
        wal.len() >> 20
    );
    assert!(
        wal_restarts(&wal) >= 10,
        "the WAL was started over {} times",
        wal_restarts(&wal)
    );
    // Still one consistent database: every token written is there.
    let answer = app
        .introspect(&client, &app.client_credentials_token(&client).await)
        .await;
    assert_eq!(answer["active"], true);
}
