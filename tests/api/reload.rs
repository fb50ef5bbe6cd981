//! Check 6: hot reload of the policy. A change of the configuration file switches rotation off
//! under a load of refreshes without failing one request; a broken file is rejected and the
//! policy in force stays; SIGHUP reloads the real binary, and a rejected reload is logged with
//! the offending key.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Db, TestApp, TestClient, str_of};
use crate::on_both_backends;

on_both_backends!(a_file_change_under_load_switches_rotation_and_fails_no_request);

const ROTATING: &str = "[server]\nconfig_watch_ms = 100\n[policy]\nrotate_refresh_tokens = true\n";
const STEADY: &str = "[server]\nconfig_watch_ms = 100\n[policy]\nrotate_refresh_tokens = false\n";
/// Would switch rotation back on, but `access_token_ttl = 0` makes the whole file invalid.
const BROKEN: &str = "[server]\nconfig_watch_ms = 100\n\
                      [policy]\nrotate_refresh_tokens = true\naccess_token_ttl = 0\n";

/// When a refresh started, relative to the file changes.
const BEFORE_CHANGE: u8 = 0;
const CHANGE_WRITTEN: u8 = 1;
const RELOAD_OBSERVED: u8 = 2;
const BROKEN_WRITTEN: u8 = 3;

const TASKS: usize = 6;

async fn a_file_change_under_load_switches_rotation_and_fails_no_request(db: Db) {
    let app = Arc::new(TestApp::spawn_with_config_file(db, ROTATING, &[]).await);
    let client = app.add_full_client("load");
    app.add_user("lena", "pw", &["#"]);
    let phase = Arc::new(AtomicU8::new(BEFORE_CHANGE));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        // Each task refreshes its own family in a loop, recording (phase at start, rotated).
        let tokens = app.password_grant(&client, "lena", "pw", None).await;
        let mut refresh = str_of(&tokens, "refresh_token").to_owned();
        let (app, client) = (Arc::clone(&app), client.clone());
        let (phase, stop, done) = (Arc::clone(&phase), Arc::clone(&stop), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = phase.load(Ordering::SeqCst);
                let resp = app.refresh(&client, &refresh).await;
                let status = resp.status();
                let body: Value = resp.json().await.unwrap();
                assert_eq!(status, StatusCode::OK, "phase {started}: {body}");
                let next = str_of(&body, "refresh_token").to_owned();
                seen.push((started, next != refresh));
                refresh = next;
                done.fetch_add(1, Ordering::SeqCst);
            }
            seen
        }));
    }

    wait_for_refreshes(&done, 3 * TASKS).await;
    phase.store(CHANGE_WRITTEN, Ordering::SeqCst);
    app.write_config_file(STEADY);
    wait_until_rotation_is(&app, &client, false).await;
    phase.store(RELOAD_OBSERVED, Ordering::SeqCst);
    wait_for_refreshes(&done, 5 * TASKS).await;

    phase.store(BROKEN_WRITTEN, Ordering::SeqCst);
    app.write_config_file(BROKEN);
    // Several checks of the file see it (and reject it) while the load goes on.
    tokio::time::sleep(Duration::from_millis(800)).await;
    wait_for_refreshes(&done, 3 * TASKS).await;
    assert!(!rotates(&app, &client).await, "the broken file was applied");
    stop.store(true, Ordering::SeqCst);

    let mut counts = [0usize; 4];
    for task in tasks {
        let seen = task.await.unwrap();
        let mut rotation_ended = false;
        for (started, rotated) in seen {
            counts[usize::from(started)] += 1;
            match started {
                BEFORE_CHANGE => assert!(rotated, "a refresh before the change did not rotate"),
                CHANGE_WRITTEN => assert!(
                    !(rotated && rotation_ended),
                    "rotation came back after it had stopped"
                ),
                _ => assert!(!rotated, "a refresh after the reload rotated"),
            }
            rotation_ended |= !rotated;
        }
    }
    assert!(
        counts[usize::from(BEFORE_CHANGE)] >= 3 * TASKS,
        "{counts:?}"
    );
    assert!(
        counts[usize::from(RELOAD_OBSERVED)] >= 5 * TASKS,
        "{counts:?}"
    );
    assert!(
        counts[usize::from(BROKEN_WRITTEN)] >= 3 * TASKS,
        "{counts:?}"
    );
}

/// Waits until `more` further refreshes have completed (a few seconds at most).
async fn wait_for_refreshes(done: &AtomicUsize, more: usize) {
    let target = done.load(Ordering::SeqCst) + more;
    for _ in 0..500 {
        if done.load(Ordering::SeqCst) >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the load stalled");
}

/// Whether a refresh of a fresh family returns a new refresh token.
async fn rotates(app: &TestApp, client: &TestClient) -> bool {
    let tokens = app.password_grant(client, "lena", "pw", None).await;
    let first = str_of(&tokens, "refresh_token").to_owned();
    let resp = app.refresh(client, &first).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    str_of(&body, "refresh_token") != first
}

/// Polls the behaviour until rotation is `on` (5 s at most).
async fn wait_until_rotation_is(app: &TestApp, client: &TestClient, on: bool) {
    for _ in 0..100 {
        if rotates(app, client).await == on {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the policy was not reloaded");
}

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// `tessera --config FILE serve` in a temp dir, killed when dropped (even if the test fails).
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Served {
    fn start(config: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        write_config(dir.path(), port, config);
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(BIN)
            .current_dir(dir.path())
            .arg("--config")
            .arg("tessera.toml")
            .arg("serve")
            .env_remove("TESSERA_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut served = Served { child, dir, port };
        // Listening, bootstrapped, and watching for SIGHUP.
        for _ in 0..600 {
            if served.stderr().contains("policy reloads on SIGHUP")
                && served
                    .dir
                    .path()
                    .join("data/initial-credentials.env")
                    .exists()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return served;
            }
            assert!(
                served.child.try_wait().unwrap().is_none(),
                "the server exited: {}",
                served.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not start: {}", served.stderr());
    }

    fn write_config(&self, body: &str) {
        write_config(self.dir.path(), self.port, body);
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `expires_in` of a new client_credentials token for the bootstrap client.
    fn expires_in(&self) -> u64 {
        let creds = credentials(self.dir.path());
        let resp = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{}/oauth2/token", self.port))
            .basic_auth(&creds.0, Some(&creds.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().unwrap()["expires_in"]
            .as_u64()
            .unwrap()
    }

    /// Polls until `done` holds (5 s at most).
    fn wait_for(&self, what: &str, mut done: impl FnMut(&Served) -> bool) {
        for _ in 0..100 {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; stderr:\n{}", self.stderr());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `tessera.toml` in `dir`: listening on `port`, no file checks, then `body`.
fn write_config(dir: &Path, port: u16, body: &str) {
    let text = format!("[server]\nbind = \"127.0.0.1:{port}\"\nconfig_watch_ms = 0\n{body}");
    std::fs::write(dir.join("tessera.toml"), text).unwrap();
}

/// The bootstrap client's id and secret.
fn credentials(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("data/initial-credentials.env")).unwrap();
    let var = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    (var("TESSERA_CLIENT_ID"), var("TESSERA_CLIENT_SECRET"))
}

#[test]
fn sighup_reloads_the_policy_and_a_rejected_file_keeps_it() {
    let served = Served::start("[policy]\naccess_token_ttl = 600\n");
    assert_eq!(served.expires_in(), 600);

    // Without file checks (config_watch_ms = 0) a change waits for SIGHUP.
    served.write_config("[policy]\naccess_token_ttl = 120\n[database]\nbusy_timeout_ms = 1000\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(served.expires_in(), 600);
    served.hangup();
    served.wait_for("the new access_token_ttl", |s| s.expires_in() == 120);
    let log = served.stderr();
    assert!(
        log.contains("policy reloaded (SIGHUP): oauth2 access_token_ttl: 600 -> 120"),
        "{log}"
    );
    assert!(
        log.contains("changes to [database] need a restart"),
        "{log}"
    );

    // An invalid file: rejected, logged with the key, the policy in force stays.
    served.write_config("[policy]\naccess_token_ttl = 0\n");
    served.hangup();
    served.wait_for("the rejection", |s| {
        s.stderr().contains("policy reload rejected")
    });
    let log = served.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("policy reload rejected"))
        .unwrap();
    assert!(line.contains("policy.access_token_ttl"), "{line}");
    assert_eq!(served.expires_in(), 120);

    // Invalid TOML too; the server keeps running and serving.
    served.write_config("[policy\naccess_token_ttl = 60\n");
    served.hangup();
    served.wait_for("the second rejection", |s| {
        s.stderr().matches("policy reload rejected").count() == 2
    });
    assert_eq!(served.expires_in(), 120);
    let secret = credentials(served.dir.path()).1;
    assert!(!served.stderr().contains(&secret), "a secret was logged");
    let mut served = served;
    assert!(served.child.try_wait().unwrap().is_none());
}
