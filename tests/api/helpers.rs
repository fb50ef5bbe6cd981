//! `TestApp`: a Tessera server started in-process on port 0 with a manual clock, plus helpers to
//! register users and clients and to call the endpoints.
#![allow(dead_code)]

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use diesel::{Connection, RunQueryDsl};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tessera::app::Application;
use tessera::clock::ManualClock;
use tessera::config::Settings;
use tessera::crypto::{password, token};
use tessera::domain::{Client, GrantType, User};
use tessera::oauth::Service;
use tessera::store::{clients, tenants, users};

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    /// The server URL of a PostgreSQL instance where the test may create databases.
    Postgres(String),
}

impl Db {
    /// The PostgreSQL server for tests, if configured. In CI (`CI` set) a missing URL fails the
    /// test instead of skipping it.
    pub fn postgres() -> Option<Db> {
        match std::env::var("TESSERA_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Db::Postgres(url)),
            _ if std::env::var_os("CI").is_some() => {
                panic!(
                    "CI is set but TESSERA_TEST_POSTGRES_URL is not: PostgreSQL tests cannot be skipped in CI"
                )
            }
            _ => {
                eprintln!("TESSERA_TEST_POSTGRES_URL not set: skipping the PostgreSQL variant");
                None
            }
        }
    }
}

/// Generates a `sqlite` and a `postgres` test from `async fn name(db: Db)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Db::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::helpers::Db::postgres() {
                    super::$name(db).await
                }
            }
        }
    )*};
}

/// A database made for one test, dropped with it.
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: String,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub fn create(db: &Db) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match db {
            Db::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.path().join("tessera.db").display()),
                admin_url: None,
                name: String::new(),
                dir,
            },
            Db::Postgres(server) => {
                let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = diesel::PgConnection::establish(server).unwrap_or_else(|e| {
                    panic!("PostgreSQL at TESSERA_TEST_POSTGRES_URL is unreachable: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
                TestDb {
                    url: format!("{base}/{name}"),
                    admin_url: Some(server.clone()),
                    name,
                    dir,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(admin) = &self.admin_url {
            if let Ok(mut conn) = diesel::PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut conn);
            }
        }
    }
}

/// Settings for a test: the database URL, port 0, a data dir in the temp dir, cleanup off.
pub fn test_settings(db: &TestDb, overrides: &[(&str, &str)]) -> Settings {
    Settings::load_with_env(None, test_env(db, overrides)).expect("test settings")
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub service: Arc<Service>,
    pub settings: Settings,
    handle: ServerHandle,
    pub db: Arc<TestDb>,
}

/// A registered confidential client.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        TestApp::spawn_with(db, &[]).await
    }

    /// Starts a server with extra `TESSERA_*` overrides, e.g. `("TESSERA_POLICY__REFRESH_TOKEN_TTL", "60")`.
    pub async fn spawn_with(db: Db, overrides: &[(&str, &str)]) -> TestApp {
        let test_db = Arc::new(TestDb::create(&db));
        let clock = Arc::new(ManualClock::starting_now());
        TestApp::start(test_db, clock, overrides).await
    }

    async fn start(
        db: Arc<TestDb>,
        clock: Arc<ManualClock>,
        overrides: &[(&str, &str)],
    ) -> TestApp {
        let settings = test_settings(&db, overrides);
        let app = Application::build(&settings, clock.clone())
            .await
            .expect("server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let service = app.service();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            http: http_client(),
            clock,
            service,
            settings,
            handle,
            db,
        }
    }

    /// Stops this server and starts a new one on the same database and clock.
    pub async fn restart(self, overrides: &[(&str, &str)]) -> TestApp {
        self.handle.stop(true).await;
        let db = Arc::clone(&self.db);
        let clock = Arc::clone(&self.clock);
        drop(self);
        TestApp::start(db, clock, overrides).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Registers a confidential client with the given grants and scope patterns.
    pub fn add_client(&self, id: &str, grants: &[GrantType], scopes: &[&str]) -> TestClient {
        let secret = token::new_client_secret().expose().to_owned();
        self.insert_client(id, Some(&secret), grants, scopes, &[]);
        TestClient {
            id: id.to_owned(),
            secret,
        }
    }

    pub fn insert_client(
        &self,
        id: &str,
        secret: Option<&str>,
        grants: &[GrantType],
        scopes: &[&str],
        defaults: &[&str],
    ) {
        let mut conn = self.service.store().conn().expect("conn");
        clients::insert(
            &mut conn,
            &Client {
                id: id.to_owned(),
                secret_hash: secret.map(token::digest),
                grant_types: grants.to_vec(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                default_scopes: defaults.iter().map(|s| (*s).to_owned()).collect(),
                created_at: self.service.now(),
            },
        )
        .expect("insert client");
    }

    /// A confidential client with every grant and any scope.
    pub fn add_full_client(&self, id: &str) -> TestClient {
        self.add_client(id, &GrantType::ALL, &["#"])
    }

    pub fn add_user(&self, username: &str, pw: &str, acl: &[&str]) -> String {
        self.add_user_with(username, pw, acl, |_| {})
    }

    /// Adds a user after `edit` adjusts it (tenant, purpose, email…); returns its uuid.
    pub fn add_user_with(
        &self,
        username: &str,
        pw: &str,
        acl: &[&str],
        edit: impl FnOnce(&mut User),
    ) -> String {
        let mut conn = self.service.store().conn().expect("conn");
        let mut user = User {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_owned(),
            email: None,
            email_confirmed: false,
            password_hash: Some(password::hash_password(pw).expect("hash")),
            enabled: true,
            acl: acl.iter().map(|s| (*s).to_owned()).collect(),
            tenant_uuid: uuid::Uuid::new_v4().to_string(),
            purpose: "user".into(),
            created_at: self.service.now(),
        };
        edit(&mut user);
        users::insert(&mut conn, &user).expect("insert user");
        user.id
    }

    /// Registers a tenant under `parent`.
    pub fn add_tenant(&self, uuid: &str, parent: Option<&str>) {
        let mut conn = self.service.store().conn().expect("conn");
        tenants::insert(
            &mut conn,
            &tenants::TenantRecord {
                uuid: uuid.to_owned(),
                parent_uuid: parent.map(str::to_owned),
                name: uuid.to_owned(),
                created_at: self.service.now(),
            },
        )
        .expect("insert tenant");
    }

    /// `POST {prefix}/token` as wazo-auth clients send it: JSON body, optional Basic
    /// `login:password`, extra headers.
    pub async fn wazo_post_token(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some((login, pw)) = basic {
            req = req.basic_auth(login, Some(pw));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("request sent")
    }

    /// A successful Wazo login on `/0.1/token`; returns `data`.
    pub async fn wazo_login(&self, login: &str, pw: &str, body: Value) -> Value {
        let resp = self
            .wazo_post_token("/0.1/token", Some((login, pw)), &body, &[])
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "wazo login failed");
        let json: Value = resp.json().await.expect("json");
        json["data"].clone()
    }

    /// A request with `X-Auth-Token`.
    pub async fn wazo_get(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.url(path))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn wazo_delete(&self, path: &str, token: &str) -> Response {
        self.http
            .delete(self.url(path))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("request sent")
    }

    /// `HEAD /0.1/token/{token}` status.
    pub async fn wazo_check(&self, token: &str) -> u16 {
        self.http
            .head(self.url(&format!("/0.1/token/{token}")))
            .send()
            .await
            .expect("request sent")
            .status()
            .as_u16()
    }

    /// POSTs a form to `path` with Basic client authentication.
    pub async fn post_form(
        &self,
        path: &str,
        client: Option<&TestClient>,
        form: &[(&str, &str)],
    ) -> Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some(c) = client {
            req = req.basic_auth(&c.id, Some(&c.secret));
        }
        req.send().await.expect("request sent")
    }

    pub async fn password_grant(
        &self,
        client: &TestClient,
        user: &str,
        pw: &str,
        scope: Option<&str>,
    ) -> Value {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user),
            ("password", pw),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let resp = self.post_form("/oauth2/token", Some(client), &form).await;
        assert_eq!(resp.status(), StatusCode::OK, "password grant failed");
        resp.json().await.expect("json")
    }

    /// A client_credentials access token for `client`.
    pub async fn client_credentials_token(&self, client: &TestClient) -> String {
        let resp = self
            .post_form(
                "/oauth2/token",
                Some(client),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "client_credentials grant failed"
        );
        let body: Value = resp.json().await.expect("json");
        str_of(&body, "access_token").to_owned()
    }

    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> Response {
        self.post_form(
            "/oauth2/token",
            Some(client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> Value {
        let resp = self
            .post_form("/oauth2/introspect", Some(client), &[("token", token)])
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("json")
    }
}

/// Reads an error response and returns `(status, error code)`.
pub async fn error_of(resp: Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error body is JSON");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The environment `test_settings` loads (database, port 0, data dir, …) plus `overrides`.
pub fn test_env(db: &TestDb, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("TESSERA_DATABASE__URL".into(), db.url.clone()),
        ("TESSERA_SERVER__BIND".into(), "127.0.0.1:0".into()),
        (
            "TESSERA_SERVER__DATA_DIR".into(),
            db.dir.path().join("data").display().to_string(),
        ),
        ("TESSERA_SERVER__WORKERS".into(), "2".into()),
        ("TESSERA_DATABASE__CLEANUP_INTERVAL".into(), "0".into()),
    ];
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

impl TestApp {
    /// Starts a server configured by a file holding `toml` (in the test's temp dir, see
    /// [`TestApp::config_file`]) under the test environment plus `overrides`, and watches the
    /// file for policy reloads as `tessera serve --config FILE` does.
    pub async fn spawn_with_config_file(db: Db, toml: &str, overrides: &[(&str, &str)]) -> TestApp {
        let db = Arc::new(TestDb::create(&db));
        let file = db.dir.path().join("tessera.toml");
        std::fs::write(&file, toml).expect("write the configuration file");
        let source = tessera::reload::ConfigSource {
            file: Some(file),
            env: test_env(&db, overrides),
        };
        let settings = source.load().expect("test settings from the file");
        let clock = Arc::new(ManualClock::starting_now());
        let app = Application::build(&settings, clock.clone())
            .await
            .expect("server starts");
        app.watch_config(source);
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let service = app.service();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            http: http_client(),
            clock,
            service,
            settings,
            handle,
            db,
        }
    }

    /// The configuration file of a server started by [`TestApp::spawn_with_config_file`].
    pub fn config_file(&self) -> std::path::PathBuf {
        self.db.dir.path().join("tessera.toml")
    }

    /// Rewrites the configuration file in place (truncate, then write, as an editor may).
    pub fn write_config_file(&self, toml: &str) {
        std::fs::write(self.config_file(), toml).expect("rewrite the configuration file");
    }
}

impl TestApp {
    /// Another instance on this one's database, data directory (so the same server secret and
    /// JWT key file) and clock, on its own port, with `overrides` as in [`TestApp::spawn_with`]:
    /// scale-out as DESIGN.md §10 runs it, stateless instances over one database.
    pub async fn spawn_peer(&self, overrides: &[(&str, &str)]) -> TestApp {
        TestApp::start(Arc::clone(&self.db), Arc::clone(&self.clock), overrides).await
    }

    /// Another instance like [`TestApp::spawn_peer`] that reads and watches the configuration
    /// file of this one (started by [`TestApp::spawn_with_config_file`]).
    pub async fn spawn_peer_with_config_file(&self, overrides: &[(&str, &str)]) -> TestApp {
        let source = tessera::reload::ConfigSource {
            file: Some(self.config_file()),
            env: test_env(&self.db, overrides),
        };
        let settings = source.load().expect("peer settings from the file");
        let app = Application::build(&settings, self.clock.clone())
            .await
            .expect("peer server starts");
        app.watch_config(source);
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let service = app.service();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            http: http_client(),
            clock: Arc::clone(&self.clock),
            service,
            settings,
            handle,
            db: Arc::clone(&self.db),
        }
    }
}

/// The `tessera` binary built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A port that was free a moment ago, for a server started as a separate process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local address")
        .port()
}

/// Starts the binary in `dir` on `port` with extra environment `env`, and waits until it listens
/// and has written its first-start credentials to `dir/data/initial-credentials.env`.
pub fn start_server_with(
    dir: &std::path::Path,
    port: u16,
    stdout: std::process::Stdio,
    env: &[(&str, &str)],
) -> std::process::Child {
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("TESSERA_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env_remove("TESSERA_CONFIG")
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the tessera binary");
    let creds_file = dir.join("data/initial-credentials.env");
    for _ in 0..600 {
        if creds_file.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert_arenas_bounded(&child);
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

/// The binary starts itself again with `MALLOC_ARENA_MAX=2` (src/main.rs): the serving process
/// (same pid after `exec`) has it in its environment.
fn assert_arenas_bounded(child: &std::process::Child) {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("MALLOC_ARENA_MAX").is_some()
    {
        return;
    }
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).expect("environ");
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"MALLOC_ARENA_MAX=2"),
        "the server runs without MALLOC_ARENA_MAX"
    );
}

/// The tests' HTTP client: a new connection per request. Reusing a kept-alive connection at the
/// moment the server's keep-alive timer closes it fails the request with `IncompleteMessage`;
/// on a loaded machine (16 servers of one test in one process, PostgreSQL beside them) a
/// starved server worker can see that timer expire before the request that arrived meanwhile.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client")
}
