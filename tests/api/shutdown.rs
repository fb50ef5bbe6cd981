//! Graceful shutdown (issue 7 check 2): SIGTERM during a steady refresh load. Every request the
//! server accepted completes with 200 — including slow password grants in flight at the
//! signal — and the process exits 0 within `[server] shutdown_timeout`. A request that the
//! server did not accept fails to connect (or finds its idle connection closed); none gets a
//! 5xx or a cut-off answer. SIGINT is graceful too.
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn credential(dir: &std::path::Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join("data/initial-credentials.env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

/// The administrator's credentials and where to use them.
struct Creds {
    base: String,
    user: String,
    pw: String,
}

impl Creds {
    async fn password_grant(
        &self,
        http: &reqwest::Client,
        id: &str,
        secret: &str,
    ) -> reqwest::Result<reqwest::Response> {
        http.post(format!("{}/oauth2/token", self.base))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "password"),
                ("username", self.user.as_str()),
                ("password", self.pw.as_str()),
            ])
            .send()
            .await
    }
}

/// What one request came to.
#[derive(Debug)]
enum Outcome {
    Status(u16),
    /// No answer: the connection was refused or closed before a response started.
    NotAccepted,
}

async fn graceful_stop_on(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env("TESSERA_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_SERVER__SHUTDOWN_TIMEOUT", "10")
        .env("TESSERA_LOG__LEVEL", "warn")
        .env_remove("TESSERA_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..600 {
        if dir.path().join("data/initial-credentials.env").exists()
            && http.get(format!("{base}/healthz")).send().await.is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server did not start");
    let creds = Arc::new(Creds {
        base: base.clone(),
        user: credential(dir.path(), "TESSERA_ADMIN_USERNAME"),
        pw: credential(dir.path(), "TESSERA_ADMIN_PASSWORD"),
    });
    let (id, secret) = (
        credential(dir.path(), "TESSERA_CLIENT_ID"),
        credential(dir.path(), "TESSERA_CLIENT_SECRET"),
    );
    let grant = || {
        let (http, creds, id, secret) =
            (http.clone(), Arc::clone(&creds), id.clone(), secret.clone());
        async move { creds.password_grant(&http, &id, &secret).await }
    };

    // A steady refresh load: 6 clients, each with its own family.
    let stop = Arc::new(AtomicBool::new(false));
    let mut loads = Vec::new();
    for _ in 0..6 {
        let body: Value = grant().await.unwrap().json().await.unwrap();
        let mut refresh = body["refresh_token"].as_str().unwrap().to_owned();
        let (http, base, id, secret, stop) = (
            http.clone(),
            base.clone(),
            id.clone(),
            secret.clone(),
            Arc::clone(&stop),
        );
        loads.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let sent = http
                    .post(format!("{base}/oauth2/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                    .send()
                    .await;
                match sent {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        // A 200 must arrive whole.
                        let body: Value = resp.json().await.expect("a whole answer");
                        if status == 200 {
                            refresh = body["refresh_token"].as_str().unwrap().to_owned();
                        }
                        outcomes.push(Outcome::Status(status));
                    }
                    Err(e) => {
                        assert!(
                            e.is_connect() || e.is_request(),
                            "an accepted request failed: {e:?}"
                        );
                        outcomes.push(Outcome::NotAccepted);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Slow requests (argon2) in flight when the signal arrives, each on a connection the
    // server has already accepted (a first request on it was answered). A connection still in
    // the listen backlog when the server stops accepting is closed unanswered: not accepted,
    // and not what this test is about (under a loaded test run, 30 ms after being spawned a
    // request could still be there).
    let (ready, mut accepted) = tokio::sync::mpsc::channel(4);
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let (creds, base, id, secret, ready) = (
                Arc::clone(&creds),
                base.clone(),
                id.clone(),
                secret.clone(),
                ready.clone(),
            );
            tokio::spawn(async move {
                let own = reqwest::Client::new();
                own.get(format!("{base}/healthz"))
                    .send()
                    .await?
                    .bytes()
                    .await?;
                let _ = ready.send(()).await;
                creds.password_grant(&own, &id, &secret).await
            })
        })
        .collect();
    for _ in 0..4 {
        accepted.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // The process exits 0, well within the 10 s timeout.
    let mut exit = None;
    let mut waited = 0;
    // Idle keep-alive connections are closed at once (answers carry `Connection: close`), so
    // the exit does not wait for the 10 s timeout.
    for _ in 0..100 {
        waited += 1;
        if let Some(status) = child.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(exit) = exit else {
        let _ = child.kill();
        panic!("still running 5 s after {signal}");
    };
    assert!(exit.success(), "{signal}: exit status {exit}");
    eprintln!("{signal}: exited after ~{} ms", waited * 50);
    stop.store(true, Ordering::SeqCst);

    for request in in_flight {
        let resp = request.await.unwrap().expect("accepted before the signal");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("a whole answer");
        assert!(body["access_token"].is_string());
    }
    let mut answered = 0;
    for load in loads {
        for outcome in load.await.unwrap() {
            match outcome {
                Outcome::Status(status) => {
                    assert_eq!(status, 200, "{signal}: every accepted request succeeds");
                    answered += 1;
                }
                Outcome::NotAccepted => {}
            }
        }
    }
    assert!(answered > 20, "the load ran ({answered} answers)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_requests_in_flight_finish_and_exits_0() {
    graceful_stop_on("-TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigint_is_graceful_too() {
    graceful_stop_on("-INT").await;
}
