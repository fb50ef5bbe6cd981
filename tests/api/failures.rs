//! Issue 5, checks 3 and 4: failures of the server and of the database.
//!
//! - **kill -9 under a refresh load** (SQLite and PostgreSQL): the real binary serves 8 clients,
//!   each refreshing its own family in a loop with rotation on (the default, no grace); after
//!   about a second it gets SIGKILL and is started again on the same store. What is asserted,
//!   for each client's last *acknowledged* refresh token `L` (the one in the last 200 answer
//!   whose body the client received whole):
//!   - `L` is in the store after the restart (an acknowledged token is never lost), and is not
//!     revoked;
//!   - if `L` is still live, refreshing it succeeds (200) and so does refreshing its successor;
//!   - `L` may be consumed only if the client had a request presenting `L` in flight when the
//!     server died (its answer was cut off or never sent), and then the rotation that consumed
//!     it committed whole: its successor is in the store. That successor was never
//!     acknowledged, and presenting `L` again would be reuse (the family revoked, by design), so
//!     it is not presented.
//!
//!   The same with `reuse_grace = 60`: then *every* client's `L` refreshes (200) after the
//!   restart, and where `L` had been consumed by a cut-off answer, the answer is the exact retry
//!   (its refresh token is the successor found in the store), whose own refresh succeeds too.
//! - **PostgreSQL stopped under load**: a private cluster the test starts itself (`initdb` +
//!   `pg_ctl` on a free port, never the machine's shared server) is stopped (`-m immediate`,
//!   `-m fast`) while refreshes, client_credentials, introspection and Wazo validations and
//!   refreshes run. While it is down every answer is 503 (OAuth2 `temporarily_unavailable`,
//!   Wazo format A, `Retry-After: 1`), never a 500, and comes within `pool_timeout` plus a
//!   margin. Once it is back on the same port, the same server process serves again within a
//!   few seconds.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::store::connection::PoolOptions;
use tessera::store::{Store, refresh_tokens};

use crate::helpers::{Db, TestApp, TestDb, str_of};
use crate::on_both_backends;

on_both_backends!(
    kill_9_under_a_refresh_load_loses_no_acknowledged_refresh_token,
    after_kill_9_every_last_acknowledged_refresh_token_works_inside_the_grace,
);

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
const CLIENTS: usize = 16;

// ---------------------------------------------------------------------------------------------
// kill -9 of the real binary
// ---------------------------------------------------------------------------------------------

/// The real binary, serving `db` from `db.dir` (its `data/` holds the first-start credentials);
/// stderr goes to `db.dir/<log>`. Killed (SIGKILL) when dropped, if still running.
struct Binary {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Binary {
    fn start(db: &TestDb, log: &str, env: &[(&str, &str)]) -> Binary {
        let port = free_port();
        let log = db.dir.path().join(log);
        let child = Command::new(BIN)
            .current_dir(db.dir.path())
            .env_remove("TESSERA_CONFIG")
            .env_remove("RUST_LOG")
            .env("TESSERA_DATABASE__URL", &db.url)
            .env("TESSERA_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_SERVER__WORKERS", "4")
            .env("TESSERA_DATABASE__CLEANUP_INTERVAL", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut binary = Binary { child, port, log };
        // Up to 30 s for the migrations and the first-start argon2 hash.
        for _ in 0..1500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return binary;
            }
            if let Some(status) = binary.child.try_wait().unwrap() {
                panic!("the server exited ({status}):\n{}", binary.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not listen:\n{}", binary.log_text());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill_9(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.child.kill().unwrap(); // SIGKILL on Unix
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{status}");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `NAME=value` of the first-start credentials file.
fn credential(db: &TestDb, name: &str) -> String {
    let text = std::fs::read_to_string(db.dir.path().join("data/initial-credentials.env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing from the credentials file"))
        .to_owned()
}

/// How one client's refresh loop ended.
#[derive(Debug)]
struct Refresher {
    /// The refresh token of the last 200 answer received whole.
    acknowledged: String,
    /// Refreshes acknowledged during the load.
    refreshes: usize,
    /// Whether a request presenting `acknowledged` was sent without its answer being received.
    in_flight: bool,
}

/// One refresh: `Ok((status, body))` when the whole answer arrived, `Err` otherwise.
async fn refresh_once(
    http: &reqwest::Client,
    url: &str,
    (id, secret): (&str, &str),
    token: &str,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let resp = http
        .post(url)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await?;
    let status = resp.status();
    Ok((status, resp.bytes().await?.to_vec()))
}

/// The policy default, no grace: see the module's documentation.
async fn kill_9_under_a_refresh_load_loses_no_acknowledged_refresh_token(db: Db) {
    kill_9_under_a_refresh_load(db, &[]).await;
}

/// With a grace, a cut-off answer is no loss at all: replaying the last acknowledged token is
/// an exact retry that answers the successor the cut-off answer held.
async fn after_kill_9_every_last_acknowledged_refresh_token_works_inside_the_grace(db: Db) {
    kill_9_under_a_refresh_load(db, &[("TESSERA_POLICY__REUSE_GRACE", "60")]).await;
}

async fn kill_9_under_a_refresh_load(db: Db, policy: &[(&str, &str)]) {
    let grace = !policy.is_empty();
    let db = Arc::new(TestDb::create(&db));
    let mut server = Binary::start(&db, "first.log", policy);
    let (id, secret) = (
        credential(&db, "TESSERA_CLIENT_ID"),
        credential(&db, "TESSERA_CLIENT_SECRET"),
    );
    let (user, password) = (
        credential(&db, "TESSERA_ADMIN_USERNAME"),
        credential(&db, "TESSERA_ADMIN_PASSWORD"),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token_url = server.url("/oauth2/token");

    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let resp = http
            .post(&token_url)
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "password"),
                ("username", user.as_str()),
                ("password", password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{}", server.log_text());
        let body: Value = resp.json().await.unwrap();
        let first = str_of(&body, "refresh_token").to_owned();
        let (http, url, id, secret, killed) = (
            http.clone(),
            token_url.clone(),
            id.clone(),
            secret.clone(),
            Arc::clone(&killed),
        );
        tasks.push(tokio::spawn(async move {
            let mut me = Refresher {
                acknowledged: first,
                refreshes: 0,
                in_flight: false,
            };
            loop {
                me.in_flight = true;
                match refresh_once(&http, &url, (&id, &secret), &me.acknowledged).await {
                    Ok((StatusCode::OK, bytes)) => {
                        let body: Value = serde_json::from_slice(&bytes).unwrap();
                        me.acknowledged = str_of(&body, "refresh_token").to_owned();
                        me.refreshes += 1;
                        me.in_flight = false;
                    }
                    Ok((status, bytes)) => panic!(
                        "refresh answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                    Err(e) => {
                        assert!(
                            killed.load(Ordering::SeqCst),
                            "a refresh failed before the kill: {e}"
                        );
                        return me;
                    }
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1000)).await;
    killed.store(true, Ordering::SeqCst);
    server.kill_9();
    let mut refreshers = Vec::new();
    for task in tasks {
        refreshers.push(task.await.unwrap());
    }
    let total: usize = refreshers.iter().map(|r| r.refreshes).sum();
    assert!(
        refreshers.iter().all(|r| r.refreshes >= 3),
        "too little load before the kill: {refreshers:?}"
    );

    let server = Binary::start(&db, "second.log", policy);
    let store = Store::open(
        &db.url,
        &PoolOptions {
            size: 1,
            timeout: Duration::from_secs(5),
            busy_timeout_ms: 5000,
        },
    )
    .unwrap();
    let mut conn = store.conn().unwrap();
    let token_url = server.url("/oauth2/token");
    let mut cut_off = 0;
    for (i, r) in refreshers.iter().enumerate() {
        let record = refresh_tokens::find_by_hash(
            &mut conn,
            &tessera::crypto::token::digest(&r.acknowledged),
        )
        .unwrap()
        .unwrap_or_else(|| panic!("client {i}: its acknowledged refresh token is lost"));
        assert_eq!(record.revoked_at, None, "client {i}: {r:?}");
        // The successor minted by a rotation of `L` that committed but whose answer the
        // client never received whole.
        let unacknowledged = match record.consumed_at {
            None => None,
            Some(_) => {
                assert!(
                    r.in_flight,
                    "client {i}: its acknowledged token was consumed by no request of its own"
                );
                let child = refresh_tokens::find_child(&mut conn, &record)
                    .unwrap()
                    .unwrap_or_else(|| panic!("client {i}: consumed without a successor"));
                assert_eq!(
                    (child.consumed_at, child.revoked_at),
                    (None, None),
                    "client {i}: the unacknowledged successor is the family's live token"
                );
                cut_off += 1;
                if !grace {
                    // Presenting `L` again would be reuse and revoke the family, by design.
                    continue;
                }
                Some(child.hash)
            }
        };
        let mut token = r.acknowledged.clone();
        for step in ["the acknowledged token", "its successor"] {
            let (status, bytes) = refresh_once(&http, &token_url, (&id, &secret), &token)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(status, StatusCode::OK, "client {i}, {step}: {body}");
            token = str_of(&body, "refresh_token").to_owned();
            if let (Some(hash), "the acknowledged token") = (&unacknowledged, step) {
                assert_eq!(
                    &tessera::crypto::token::digest(&token),
                    hash,
                    "client {i}: the retry answers the successor of the cut-off answer"
                );
            }
        }
    }
    if !grace {
        assert!(
            cut_off < CLIENTS,
            "no acknowledged token could be refreshed"
        );
    }
    eprintln!(
        "kill -9 (grace: {grace}): {total} refreshes acknowledged before the kill; {cut_off} of \
         {CLIENTS} clients had their last token consumed by a cut-off answer"
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL stopped under load
// ---------------------------------------------------------------------------------------------

/// A PostgreSQL cluster of the test's own, in a temporary directory, listening on 127.0.0.1 on
/// a free port (its socket in that directory too). Stopped (`-m immediate`) when dropped.
struct PrivateCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the PostgreSQL programs as the `postgres` user (initdb refuses root).
    as_postgres: bool,
}

/// Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn postgres_bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// `(uid, gid)` of the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

impl PrivateCluster {
    /// Creates and starts a cluster; `None` (with a note) if PostgreSQL's programs are not
    /// installed, which fails the test in CI (`CI` set).
    fn start_new() -> Option<PrivateCluster> {
        use std::os::unix::fs::MetadataExt;
        let running_as_root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0);
        let ready = match (postgres_bindir(), running_as_root) {
            (None, _) => Err(
                "initdb and pg_ctl not found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
                    .to_owned(),
            ),
            (Some(bin), Ok(true)) => match postgres_user() {
                Some(ids) => Ok((bin, Some(ids))),
                None => {
                    Err("running as root and there is no postgres user to run initdb".to_owned())
                }
            },
            (Some(bin), _) => Ok((bin, None)),
        };
        let (bin, owner) = match ready {
            Ok(found) => found,
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("CI is set but a private PostgreSQL cluster cannot be made: {why}")
            }
            Err(why) => {
                eprintln!("skipping: a private PostgreSQL cluster cannot be made: {why}");
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let cluster = PrivateCluster {
            bin,
            dir,
            port: free_port(),
            as_postgres: owner.is_some(),
        };
        let pgdata = cluster.pgdata();
        cluster.run(
            "initdb",
            &[
                "-D",
                pgdata.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        cluster.start();
        Some(cluster)
    }

    fn pgdata(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }

    /// The URL of its `postgres` database, where `TestDb` creates a database per test.
    fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.stdin(Stdio::null());
        command
    }

    /// Runs a PostgreSQL program to completion; panics with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let pgdata = self.pgdata();
        self.command("pg_ctl")
            .args(["-D", pgdata.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -F",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        let out = self.pg_ctl(&[
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
            "-t",
            "30",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m mode`, waiting until the server is gone.
    fn stop(&self, mode: &str) {
        let out = self.pg_ctl(&["-m", mode, "-w", "-t", "30", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop -m {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// When a request started or ended, relative to the outage.
const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
const BACK: u8 = 4;

const POOL_TIMEOUT_SECS: u64 = 2;
/// No request may take longer than the pool timeout plus this.
const MARGIN: Duration = Duration::from_secs(3);
/// After the database is back, every request that starts later than this must succeed.
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Refresh,
    ClientCredentials,
    Introspect,
    WazoHead,
    WazoGet,
    WazoRefresh,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Refresh,
        Kind::ClientCredentials,
        Kind::Introspect,
        Kind::WazoHead,
        Kind::WazoGet,
        Kind::WazoRefresh,
    ];

    fn success(self) -> StatusCode {
        match self {
            Kind::WazoHead => StatusCode::NO_CONTENT,
            _ => StatusCode::OK,
        }
    }
}

/// One request of the load.
#[derive(Debug)]
struct Sample {
    kind: Kind,
    started: u8,
    ended: u8,
    /// When it started, from the moment the database was back (`None`: before that).
    after_back: Option<Duration>,
    elapsed: Duration,
    /// `(status, Retry-After, body)`, or why no answer came.
    answer: Result<(StatusCode, Option<String>, Value), String>,
}

/// What the load works with.
struct Load {
    app: Arc<TestApp>,
    http: reqwest::Client,
    client: crate::helpers::TestClient,
    access_token: String,
    wazo_token: String,
    wazo_refresh: String,
    phase: AtomicU8,
    back_at: std::sync::Mutex<Option<Instant>>,
    stop: AtomicBool,
}

impl Load {
    /// Sends one request of `kind`; `refresh` is the task's current OAuth2 refresh token.
    #[expect(
        clippy::disallowed_methods,
        reason = "the test measures how long a real request takes, which no manual clock can"
    )]
    async fn send(&self, kind: Kind, refresh: &str) -> Sample {
        let started = self.phase.load(Ordering::SeqCst);
        let after_back = self.back_at.lock().unwrap().map(|at| at.elapsed());
        let start = Instant::now();
        let app = &self.app;
        let request = match kind {
            Kind::Refresh => self
                .http
                .post(app.url("/oauth2/token"))
                .basic_auth(&self.client.id, Some(&self.client.secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]),
            Kind::ClientCredentials => self
                .http
                .post(app.url("/oauth2/token"))
                .basic_auth(&self.client.id, Some(&self.client.secret))
                .form(&[("grant_type", "client_credentials")]),
            Kind::Introspect => self
                .http
                .post(app.url("/oauth2/introspect"))
                .basic_auth(&self.client.id, Some(&self.client.secret))
                .form(&[("token", self.access_token.as_str())]),
            Kind::WazoHead => self
                .http
                .head(app.url(&format!("/0.1/token/{}", self.wazo_token))),
            Kind::WazoGet => self
                .http
                .get(app.url(&format!("/0.1/token/{}", self.wazo_token))),
            Kind::WazoRefresh => self
                .http
                .post(app.url("/0.1/token"))
                .header("Content-Type", "application/json")
                .body(
                    json!({"client_id": "phone", "refresh_token": self.wazo_refresh}).to_string(),
                ),
        };
        let answer = async {
            let resp = request.send().await.map_err(|e| format!("{e:?}"))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("Retry-After")
                .map(|v| v.to_str().unwrap_or("?").to_owned());
            let bytes = resp.bytes().await.map_err(|e| format!("{e:?}"))?;
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
            };
            Ok((status, retry_after, body))
        }
        .await;
        Sample {
            kind,
            started,
            ended: self.phase.load(Ordering::SeqCst),
            after_back,
            elapsed: start.elapsed(),
            answer,
        }
    }

    /// Sends requests of `kind` until told to stop; a refresh task follows its rotation.
    async fn run(self: Arc<Self>, kind: Kind, mut refresh: String) -> Vec<Sample> {
        let mut samples = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            let sample = self.send(kind, &refresh).await;
            if let (Kind::Refresh, Ok((StatusCode::OK, _, body))) = (kind, &sample.answer) {
                refresh = str_of(body, "refresh_token").to_owned();
            }
            samples.push(sample);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples
    }
}

/// Stops the private cluster with `pg_ctl stop -m mode` under a load, starts it again, and
/// checks every answer (see the module's documentation).
#[expect(
    clippy::disallowed_methods,
    reason = "requests are timed from the real moment the database came back"
)]
async fn postgres_stopped_under_load(mode: &'static str) {
    let Some(cluster) = PrivateCluster::start_new() else {
        return;
    };
    let cluster = Arc::new(cluster);
    let pool_timeout = POOL_TIMEOUT_SECS.to_string();
    let app = TestApp::spawn_with(
        Db::Postgres(cluster.server_url()),
        &[
            ("TESSERA_DATABASE__POOL_TIMEOUT", &pool_timeout),
            // An answer lost with the database (committed, but the commit's acknowledgement
            // never came) is retried with the same token: a retry inside the grace, not reuse.
            ("TESSERA_POLICY__REUSE_GRACE", "300"),
            ("TESSERA_POLICY__REUSE_GRACE_MAX", "1000"),
            // Each Wazo refresh opens a session, and the manual clock never ends one.
            ("TESSERA_WAZO__MAX_USER_CONCURRENT_SESSIONS", "1000000"),
        ],
    )
    .await;
    let client = app.add_full_client("app");
    app.add_user("alice", "pw", &["#"]);
    let access_token = app.client_credentials_token(&client).await;
    let wazo = app
        .wazo_login(
            "alice",
            "pw",
            json!({"client_id": "phone", "access_type": "offline"}),
        )
        .await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..2 {
        let tokens = app.password_grant(&client, "alice", "pw", None).await;
        refresh_tokens.push(str_of(&tokens, "refresh_token").to_owned());
    }
    let wazo_at = app.clock.now().as_f64();
    let load = Arc::new(Load {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(POOL_TIMEOUT_SECS) + MARGIN)
            .build()
            .unwrap(),
        app: Arc::new(app),
        client,
        access_token,
        wazo_token: str_of(&wazo, "token").to_owned(),
        wazo_refresh: str_of(&wazo, "refresh_token").to_owned(),
        phase: AtomicU8::new(UP),
        back_at: std::sync::Mutex::new(None),
        stop: AtomicBool::new(false),
    });

    let mut tasks = Vec::new();
    for kind in Kind::ALL {
        let kind_tasks = if kind == Kind::Refresh { 2 } else { 1 };
        for i in 0..kind_tasks {
            let refresh = refresh_tokens.get(i).cloned().unwrap_or_default();
            tasks.push(tokio::spawn(Arc::clone(&load).run(kind, refresh)));
        }
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    // Issue 7 check 3: /readyz follows the database.
    let ready = json!({"status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "policy": "ok"}});
    assert_eq!(readyz(&load.app).await, (200, ready.clone()));
    load.phase.store(STOPPING, Ordering::SeqCst);
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.stop(mode))
        .await
        .unwrap();
    load.phase.store(DOWN, Ordering::SeqCst);
    // Long enough for a request that waits out the pool timeout to start and end while it is
    // down, after one that started before the stop.
    tokio::time::sleep(Duration::from_secs(2 * POOL_TIMEOUT_SECS + 1)).await;
    assert_eq!(
        readyz(&load.app).await,
        (
            503,
            json!({"status": "unavailable",
                "checks": {"database": "unreachable", "migrations": "unknown", "policy": "ok"}})
        )
    );
    load.phase.store(STARTING, Ordering::SeqCst);
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.start())
        .await
        .unwrap();
    *load.back_at.lock().unwrap() = Some(Instant::now());
    load.phase.store(BACK, Ordering::SeqCst);
    tokio::time::sleep(SETTLE + Duration::from_millis(1500)).await;
    assert_eq!(readyz(&load.app).await, (200, ready));
    load.stop.store(true, Ordering::SeqCst);

    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    check_outage(&samples, wazo_at, mode);
}

/// `GET /readyz`: status and body, answered within the one-second database check + margin.
async fn readyz(app: &TestApp) -> (u16, Value) {
    let resp = app
        .http
        .get(app.url("/readyz"))
        .timeout(Duration::from_secs(1) + MARGIN)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The assertions on every sample of an outage.
fn check_outage(samples: &[Sample], wazo_at: f64, mode: &str) {
    let oauth2_unavailable = json!({
        "error": "temporarily_unavailable",
        "error_description": "The service is temporarily unavailable, retry later.",
    });
    let wazo_unavailable = json!({
        "reason": ["Service temporarily unavailable, retry later"],
        "timestamp": [wazo_at],
        "status_code": 503,
    });
    let limit = Duration::from_secs(POOL_TIMEOUT_SECS) + MARGIN;
    // What went wrong, grouped: (count, the first few samples).
    let mut problems: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    let mut report = |what: String, s: &Sample| {
        let entry = problems
            .entry(format!(
                "{what} ({:?}, {} -> {})",
                s.kind,
                phase_name(s.started),
                phase_name(s.ended)
            ))
            .or_default();
        entry.0 += 1;
        if entry.1.len() < 2 {
            entry.1.push(format!("{s:?}"));
        }
    };
    for s in samples {
        let (status, retry_after, body) = match &s.answer {
            Ok(answer) => answer,
            Err(e) => {
                let e = e.chars().take(120).collect::<String>();
                report(format!("no answer within {limit:?}: {e}"), s);
                continue;
            }
        };
        if s.elapsed > limit {
            report(format!("took more than {limit:?}"), s);
        }
        if *status == s.kind.success() {
            if s.started == DOWN && s.ended == DOWN {
                report("succeeded while the database was down".to_owned(), s);
            }
            continue;
        }
        if *status != StatusCode::SERVICE_UNAVAILABLE {
            report(format!("answered {status}"), s);
            continue;
        }
        let expected_body = match s.kind {
            Kind::Refresh | Kind::ClientCredentials | Kind::Introspect => &oauth2_unavailable,
            Kind::WazoGet | Kind::WazoRefresh => &wazo_unavailable,
            Kind::WazoHead => &Value::Null,
        };
        if body != expected_body || retry_after.as_deref() != Some("1") {
            report("a 503 not in the dialect's format".to_owned(), s);
        }
        if s.started == UP && s.ended == UP {
            report("503 while the database was up".to_owned(), s);
        }
        if s.after_back.is_some_and(|t| t > SETTLE) {
            report(
                format!("503 more than {SETTLE:?} after the database came back"),
                s,
            );
        }
    }
    let mut too_few = Vec::new();
    for kind in Kind::ALL {
        let of_kind = || samples.iter().filter(move |s| s.kind == kind);
        let down = of_kind()
            .filter(|s| s.started == DOWN && s.ended == DOWN)
            .count();
        let settled = of_kind()
            .filter(|s| s.after_back.is_some_and(|t| t > SETTLE))
            .count();
        let first_success_after_back = of_kind()
            .filter(|s| matches!(&s.answer, Ok((status, _, _)) if *status == kind.success()))
            .filter_map(|s| s.after_back)
            .min();
        eprintln!(
            "-m {mode}: {kind:?}: {} requests, {down} while down, {settled} settled, \
             first success {first_success_after_back:?} after the restart",
            of_kind().count()
        );
        if down == 0 || settled == 0 {
            too_few.push(format!(
                "{kind:?}: too few requests ({down} while down, {settled} after settling)"
            ));
        }
    }
    let mut summary = too_few;
    for (what, (count, examples)) in &problems {
        summary.push(format!(
            "{count} x {what}, e.g.:\n    {}",
            examples.join("\n    ")
        ));
    }
    assert!(
        summary.is_empty(),
        "with pg_ctl stop -m {mode}:\n{}",
        summary.join("\n")
    );
}

fn phase_name(phase: u8) -> &'static str {
    match phase {
        UP => "up",
        STOPPING => "stopping",
        DOWN => "down",
        STARTING => "starting",
        _ => "back",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_immediately_under_load_answers_503_then_recovers() {
    postgres_stopped_under_load("immediate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_fast_under_load_answers_503_then_recovers() {
    postgres_stopped_under_load("fast").await;
}
