//! The server under test: the real release binary on a free loopback port with a fresh store
//! (a temp SQLite file, or a database created for the run on `TESSERA_TEST_POSTGRES_URL`),
//! configured by a file this module writes, managed with the binary's own CLI, and killed when
//! dropped, even when the benchmark panics.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use tessera::clock::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Which store a run uses.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The URL of a PostgreSQL server where the run may create a database.
    Postgres(String),
}

impl Backend {
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The database of one run; a PostgreSQL database is dropped with it.
struct Database {
    url: String,
    /// `(server URL, database name)` of a PostgreSQL database created for the run.
    created: Option<(String, String)>,
}

impl Database {
    fn create(backend: &Backend, dir: &Path) -> Database {
        match backend {
            Backend::Sqlite => Database {
                url: format!("sqlite://{}", dir.join("tessera.db").display()),
                created: None,
            },
            Backend::Postgres(server) => {
                let name = format!("tessera_bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(server).unwrap_or_else(|e| {
                    panic!("PostgreSQL at TESSERA_TEST_POSTGRES_URL is unreachable: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create the benchmark database");
                let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
                Database {
                    url: format!("{base}/{name}"),
                    created: Some((server.clone(), name)),
                }
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.created {
            if let Ok(mut conn) = PgConnection::establish(server) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// What `data/initial-credentials.env` holds.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub admin_username: String,
    pub admin_password: String,
    pub client_id: String,
    pub client_secret: String,
}

/// A running `tessera serve`. Field order matters: the process dies before its database and
/// its directory go.
pub struct Server {
    child: Child,
    database: Database,
    dir: tempfile::TempDir,
    pub port: u16,
    pub backend: Backend,
}

impl Server {
    /// Starts the binary and waits until `GET /healthz` answers and the first-start credentials
    /// are written.
    pub fn start(backend: &Backend) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Database::create(backend, dir.path());
        let port = free_port();
        std::fs::write(
            dir.path().join("tessera.toml"),
            config(port, &database.url, &dir.path().join("data")),
        )
        .expect("write the configuration");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
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
            .expect("spawn the tessera binary");
        let mut server = Server {
            child,
            database,
            dir,
            port,
            backend: backend.clone(),
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        let creds = self.dir.path().join("data/initial-credentials.env");
        while started.elapsed() < Duration::from_secs(120) {
            if creds.exists() && healthz(self.port) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}): {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not become ready: {}", self.stderr());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Resident memory of the server process, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid()).unwrap_or(0)
    }

    pub fn bootstrap(&self) -> Bootstrap {
        let text = std::fs::read_to_string(self.dir.path().join("data/initial-credentials.env"))
            .expect("initial credentials");
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing in initial-credentials.env"))
                .to_owned()
        };
        Bootstrap {
            admin_username: var("TESSERA_ADMIN_USERNAME"),
            admin_password: var("TESSERA_ADMIN_PASSWORD"),
            client_id: var("TESSERA_CLIENT_ID"),
            client_secret: var("TESSERA_CLIENT_SECRET"),
        }
    }

    /// Runs `tessera --config tessera.toml ARGS…` on the same store; returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .current_dir(self.dir.path())
            .arg("--config")
            .arg("tessera.toml")
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .expect("run the tessera CLI");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            use std::os::unix::process::ExitStatusExt;
            // On PostgreSQL the CLI sometimes dies at exit, after its work is done and printed:
            // r2d2 is still opening a spare connection (TLS handshake in libpq) while exit runs
            // OpenSSL's cleanup. Its output is what counts here; docs/performance.md tells more.
            assert!(
                out.status.signal().is_some() && !stdout.is_empty(),
                "tessera {args:?}: {}: {}{stdout}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!(
                "   warning: tessera {args:?} died at exit ({}) after its work",
                out.status
            );
        }
        stdout
    }

    /// `tessera client add ID ARGS…`; returns the printed secret.
    pub fn add_client(&self, id: &str, args: &[&str]) -> String {
        let mut all = vec!["client", "add", id];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        after(&out, "client secret (shown once): ")
    }

    /// `tessera user add NAME ARGS…`; returns the generated password.
    pub fn add_user(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["user", "add", name];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        after(&out, "password: ")
    }

    /// Rows in `refresh_tokens`.
    pub fn refresh_token_rows(&self) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let query = diesel::sql_query("SELECT COUNT(*) AS n FROM refresh_tokens");
        let rows: Vec<Count> = match self.connect() {
            Store::Sqlite(mut c) => query.load(&mut c),
            Store::Postgres(mut c) => query.load(&mut c),
        }
        .expect("count refresh tokens");
        rows.first().map_or(0, |c| c.n)
    }

    /// Inserts `rows` refresh tokens of admin's as a long-running deployment holds them:
    /// random SHA-256-sized digests and UUIDs, families of four generations whose first three
    /// are consumed, none expired. The server keeps running (it is idle meanwhile).
    pub fn grow(&self, rows: u64, admin_id: &str) {
        const BATCH: u64 = 100_000;
        let now = tessera::clock::SystemClock.now().secs();
        let mut done = 0;
        match self.connect() {
            Store::Sqlite(mut conn) => {
                diesel::sql_query("PRAGMA busy_timeout = 60000")
                    .execute(&mut conn)
                    .expect("busy timeout");
                let uuid = "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
                            substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) \
                            || '-' || hex(randomblob(6)))";
                while done < rows {
                    let n = BATCH.min(rows - done);
                    let sql = format!(
                        "WITH RECURSIVE seq(i) AS (SELECT {done} UNION ALL SELECT i + 1 FROM seq \
                         WHERE i < {last}) \
                         INSERT INTO refresh_tokens (id, hash, family_id, parent_id, generation, \
                         client_id, user_id, session_id, dialect, scopes, issued_at, \
                         family_issued_at, expires_at, last_used_at, consumed_at, revoked_at, \
                         mobile, metadata, retry_answer, retry_count) \
                         SELECT {uuid}, lower(hex(randomblob(32))), {uuid}, \
                         CASE WHEN i % 4 = 0 THEN NULL ELSE {uuid} END, i % 4, 'bench-rotate', ?, \
                         {uuid}, 'oauth2', '[\"PRODUCTION\"]', {now} - i % 86400, \
                         {now} - i % 86400, {now} + 86400, NULL, \
                         CASE WHEN i % 4 = 3 THEN NULL ELSE {now} - i % 86400 END, NULL, \
                         FALSE, '{{}}', NULL, 0 FROM seq",
                        last = done + n - 1,
                    );
                    diesel::sql_query(sql)
                        .bind::<Text, _>(admin_id)
                        .execute(&mut conn)
                        .expect("insert refresh tokens (SQLite)");
                    done += n;
                }
                diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut conn)
                    .expect("checkpoint");
            }
            Store::Postgres(mut conn) => {
                while done < rows {
                    let n = BATCH.min(rows - done);
                    let sql = format!(
                        "INSERT INTO refresh_tokens (id, hash, family_id, parent_id, generation, \
                         client_id, user_id, session_id, dialect, scopes, issued_at, \
                         family_issued_at, expires_at, last_used_at, consumed_at, revoked_at, \
                         mobile, metadata, retry_answer, retry_count) \
                         SELECT gen_random_uuid()::text, \
                         encode(sha256(gen_random_uuid()::text::bytea), 'hex'), \
                         gen_random_uuid()::text, \
                         CASE WHEN i % 4 = 0 THEN NULL ELSE gen_random_uuid()::text END, i % 4, \
                         'bench-rotate', $1, gen_random_uuid()::text, 'oauth2', \
                         '[\"PRODUCTION\"]', {now} - i % 86400, {now} - i % 86400, \
                         {now} + 86400, NULL, \
                         CASE WHEN i % 4 = 3 THEN NULL ELSE {now} - i % 86400 END, NULL, \
                         FALSE, '{{}}', NULL, 0 \
                         FROM generate_series({done}::bigint, {last}::bigint) AS i",
                        last = done + n - 1,
                    );
                    diesel::sql_query(sql)
                        .bind::<Text, _>(admin_id)
                        .execute(&mut conn)
                        .expect("insert refresh tokens (PostgreSQL)");
                    done += n;
                }
                // What autovacuum would do shortly after such an insert, done now so the
                // run does not depend on when it wakes up.
                diesel::sql_query("ANALYZE refresh_tokens")
                    .execute(&mut conn)
                    .expect("analyze");
            }
        }
    }

    /// The id of a user, read from the store.
    pub fn user_id(&self, username: &str) -> String {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = Text)]
            id: String,
        }
        let rows: Vec<Id> = match self.connect() {
            Store::Sqlite(mut c) => {
                diesel::sql_query("SELECT id FROM users WHERE username_key = ?")
                    .bind::<Text, _>(username.to_lowercase())
                    .load(&mut c)
            }
            Store::Postgres(mut c) => {
                diesel::sql_query("SELECT id FROM users WHERE username_key = $1")
                    .bind::<Text, _>(username.to_lowercase())
                    .load(&mut c)
            }
        }
        .expect("find the user");
        rows.into_iter()
            .next()
            .map(|r| r.id)
            .unwrap_or_else(|| panic!("no user {username}"))
    }

    fn connect(&self) -> Store {
        match self.database.url.strip_prefix("sqlite://") {
            Some(path) => Store::Sqlite(SqliteConnection::establish(path).expect("open SQLite")),
            None => Store::Postgres(
                PgConnection::establish(&self.database.url).expect("open PostgreSQL"),
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Store {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// The benchmark configuration: quiet logs, no cleanup task, no file watch, the per-client
/// rotation switch, and a Wazo session limit no run reaches.
fn config(port: u16, url: &str, data_dir: &Path) -> String {
    format!(
        "[server]\n\
         bind = \"127.0.0.1:{port}\"\n\
         data_dir = \"{data}\"\n\
         config_watch_ms = 0\n\
         [database]\n\
         url = \"{url}\"\n\
         cleanup_interval = 0\n\
         [wazo]\n\
         max_user_concurrent_sessions = 1000000000\n\
         [log]\n\
         level = \"warn\"\n\
         [policy.clients.\"bench-rotate\"]\n\
         rotate_refresh_tokens = true\n\
         [policy.clients.\"bench-static\"]\n\
         rotate_refresh_tokens = false\n",
        data = data_dir.display(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether `GET /healthz` answers 200 now.
fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_end(&mut answer).is_ok()
        && answer.starts_with(b"HTTP/1.1 200")
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The rest of the line after `prefix` in a CLI's output.
fn after(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in: {out}"))
        .trim()
        .to_owned()
}
