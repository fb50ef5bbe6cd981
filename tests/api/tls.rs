//! Issue 6: TLS served by Tessera itself (`[server.tls]`), the refusal of plain HTTP off
//! loopback (`[server] allow_insecure_http`), and the client address behind trusted proxies
//! (`[server] trusted_proxies`). SQLite only: nothing here depends on the store.
//!
//! - A CA and a server certificate are made at test time (rcgen); a client that trusts only
//!   that CA, and verifies the certificate, runs a password grant, a refresh, an introspection
//!   and a Wazo login over HTTPS, on HTTP/2 and HTTP/1.1; a client that does not trust the CA
//!   is refused, and so is plain HTTP on the TLS port.
//! - The real binary refuses to serve plain HTTP on 0.0.0.0 (exit 2, the reason on stderr,
//!   nothing written), and serves it with `allow_insecure_http = true`.
//! - A certificate or key file that cannot be used stops the start with a message naming it.
//! - `X-Forwarded-For` moves the brute-force address count only from a trusted proxy.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{StatusCode, Version};
use serde_json::{Value, json};
use tessera::app::{Application, StartError};
use tessera::clock::ManualClock;

use crate::helpers::{Db, TestApp, TestDb, str_of, test_settings};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A test CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Tessera test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();

        let dir = tempfile::tempdir().unwrap();
        // The chain as servers ship it: the server's certificate, then its issuer.
        std::fs::write(
            dir.path().join("cert.pem"),
            format!("{}{}", cert.pem(), ca_cert.pem()),
        )
        .unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Pki {
            dir,
            ca_pem: ca_cert.pem(),
        }
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The server certificate's private key, as PEM.
    fn key_pem(&self) -> String {
        std::fs::read_to_string(self.key_file()).unwrap()
    }

    /// A file of this test's directory holding `contents`.
    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// An HTTPS client that trusts this CA only (no built-in roots), and reaches `localhost` at
    /// 127.0.0.1.
    fn client(&self, port: u16) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .https_only(true)
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// The port of a base URL such as `http://127.0.0.1:41234`.
fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A server with `[server.tls]` on 127.0.0.1, whose `http` and `base` speak HTTPS to it.
async fn spawn_tls(pki: &Pki) -> TestApp {
    let (cert, key) = (pki.cert_file(), pki.key_file());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let overrides = [
        ("TESSERA_SERVER__TLS__CERT_FILE", cert.as_str()),
        ("TESSERA_SERVER__TLS__KEY_FILE", key.as_str()),
    ];
    let mut app = TestApp::spawn_with(Db::Sqlite, &overrides).await;
    let port = port_of(&app.base);
    app.base = format!("https://localhost:{port}");
    app.http = pki.client(port).build().unwrap();
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_flow_runs_over_tls_with_a_verified_certificate() {
    let pki = Pki::new();
    let app = spawn_tls(&pki).await;
    let client = app.add_full_client("app");
    app.add_user("alice", "alice-pw", &["#"]);

    // OAuth2: password grant, refresh, introspection, all over HTTPS.
    let tokens = app.password_grant(&client, "alice", "alice-pw", None).await;
    let resp = app.refresh(&client, str_of(&tokens, "refresh_token")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: Value = resp.json().await.unwrap();
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    let introspection = app
        .introspect(&client, str_of(&refreshed, "access_token"))
        .await;
    assert_eq!(introspection["active"], json!(true), "{introspection}");
    assert_eq!(introspection["username"], json!("alice"));
    // With TLS on and no [server] issuer, the issuer is https://<bind>.
    assert_eq!(introspection["iss"], json!("https://127.0.0.1:0"));

    // Wazo: a login, then its token validated.
    let data = app.wazo_login("alice", "alice-pw", json!({})).await;
    let token = str_of(&data, "token");
    assert_eq!(app.wazo_check(token).await, StatusCode::NO_CONTENT.as_u16());
    assert_eq!(data["remote_addr"], json!("127.0.0.1"));

    // The client offered h2 and http/1.1 by ALPN: HTTP/2 was chosen; HTTP/1.1 works too.
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    let port = port_of(&app.base);
    let http1 = pki.client(port).http1_only().build().unwrap();
    let resp = http1.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        (resp.status(), resp.version()),
        (StatusCode::OK, Version::HTTP_11)
    );
    // TLS 1.2 is accepted as well as 1.3.
    let tls12 = pki
        .client(port)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let resp = tls12.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // By address: the certificate names 127.0.0.1 too.
    let resp = pki
        .client(port)
        .build()
        .unwrap()
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_really_verified_and_plain_http_gets_nothing() {
    let pki = Pki::new();
    let app = spawn_tls(&pki).await;
    let port = port_of(&app.base);

    // A client that does not trust the test CA refuses the certificate.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(Pki::new().ca_pem.as_bytes()).unwrap())
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let err = stranger
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .expect_err("an untrusted certificate is refused");
    assert!(err.is_connect(), "{err:?}");
    // A name the certificate does not hold is refused too.
    let err = pki
        .client(port)
        .resolve("tessera.example", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap()
        .get(format!("https://tessera.example:{port}/healthz"))
        .send()
        .await
        .expect_err("a certificate for another name is refused");
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // The server is still fine.
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Runs the binary with the test environment of a fresh SQLite database plus `env`.
fn tessera(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_DATABASE__URL", "sqlite://data/tessera.db")
        .env("TESSERA_LOG__LEVEL", "warn")
        .envs(env.iter().copied())
        .arg("serve");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn plain_http_on_a_public_address_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(dir.path(), &[("TESSERA_SERVER__BIND", "0.0.0.0:0")])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "tessera: invalid configuration: key `server.bind`: 0.0.0.0:0 is not a loopback \
         address, and plain HTTP there would carry passwords and tokens in clear: set \
         [server.tls] cert_file and key_file, or, behind a TLS-terminating proxy, set [server] \
         allow_insecure_http = true"
    );
    // Nothing was started or written: no database, no credentials.
    assert!(!dir.path().join("data").exists());
    // `config check` says the same about a file.
    let file = dir.path().join("public.toml");
    std::fs::write(&file, "[server]\nbind = \"[::]:9497\"\n").unwrap();
    let out = Command::new(BIN)
        .env_remove("TESSERA_CONFIG")
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[::]:9497 is not a loopback address"),
        "{stderr}"
    );

    // Allowed: it serves (checked through loopback, the only address this test talks to).
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let mut child = tessera(
        dir.path(),
        &[
            ("TESSERA_SERVER__BIND", &bind),
            ("TESSERA_SERVER__ALLOW_INSECURE_HTTP", "true"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let http = reqwest::blocking::Client::new();
    let mut status = None;
    for _ in 0..600 {
        if let Some(exit) = child.try_wait().unwrap() {
            panic!("the server exited: {exit}");
        }
        if let Ok(resp) = http.get(format!("http://127.0.0.1:{port}/healthz")).send() {
            status = Some(resp.status());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, Some(StatusCode::OK));
}

/// The start error for `[server.tls]` files `cert` and `key`, in-process.
async fn start_error(cert: &Path, key: &Path) -> String {
    let db = TestDb::create(&Db::Sqlite);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let settings = test_settings(
        &db,
        &[
            ("TESSERA_SERVER__TLS__CERT_FILE", &cert),
            ("TESSERA_SERVER__TLS__KEY_FILE", &key),
        ],
    );
    let clock = std::sync::Arc::new(ManualClock::starting_now());
    match Application::build(&settings, clock).await {
        Ok(_) => panic!("the server started with {cert} and {key}"),
        Err(e) => {
            assert!(matches!(e, StartError::Tls { .. }), "{e:?}");
            // Nothing was written before the refusal.
            assert!(!db.dir.path().join("data").exists());
            e.to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_certificate_or_key_stops_the_start_naming_the_file() {
    let pki = Pki::new();
    let (cert, key) = (pki.cert_file(), pki.key_file());
    let garbage = pki.file("garbage.pem", b"this is not PEM\n");
    let truncated = pki.file("truncated.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
    let other_key = pki.file("other-key.pem", Pki::new().key_pem().as_bytes());
    let missing = pki.dir.path().join("missing.pem");

    let cases: Vec<(&Path, &Path, String)> = vec![
        (
            &garbage,
            &key,
            format!(
                "cannot load TLS certificate {}: no certificate found (expected PEM \"BEGIN \
                 CERTIFICATE\" blocks)",
                garbage.display()
            ),
        ),
        // The key file holds no certificate.
        (
            &key,
            &key,
            format!(
                "cannot load TLS certificate {}: no certificate found (expected PEM \"BEGIN \
                 CERTIFICATE\" blocks)",
                key.display()
            ),
        ),
        (
            &cert,
            &garbage,
            format!(
                "cannot load TLS private key {}: no private key found (expected a PEM \"PRIVATE \
                 KEY\" block)",
                garbage.display()
            ),
        ),
        // The certificate file holds no key.
        (
            &cert,
            &cert,
            format!(
                "cannot load TLS private key {}: no private key found (expected a PEM \"PRIVATE \
                 KEY\" block)",
                cert.display()
            ),
        ),
        (
            &cert,
            &other_key,
            format!(
                "cannot load TLS certificate {}: its public key does not match the private key {}",
                cert.display(),
                other_key.display()
            ),
        ),
        (
            &missing,
            &key,
            format!(
                "cannot load TLS certificate {}: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
    ];
    for (cert, key, expected) in cases {
        assert_eq!(start_error(cert, key).await, expected);
    }
    let msg = start_error(&truncated, &key).await;
    assert!(
        msg.starts_with(&format!(
            "cannot load TLS certificate {}: bad PEM: ",
            truncated.display()
        )),
        "{msg}"
    );
    // The key's contents never appear in the message.
    let key_text = std::fs::read_to_string(&key).unwrap();
    let body_line = key_text.lines().nth(1).unwrap();
    let msg = start_error(&cert, &other_key).await;
    assert!(!msg.contains(body_line), "{msg}");

    // The binary prints the same and exits non-zero.
    let dir = tempfile::tempdir().unwrap();
    let garbage_path = garbage.display().to_string();
    let key_path = key.display().to_string();
    let out = tessera(
        dir.path(),
        &[
            ("TESSERA_SERVER__BIND", "127.0.0.1:0"),
            ("TESSERA_SERVER__TLS__CERT_FILE", &garbage_path),
            ("TESSERA_SERVER__TLS__KEY_FILE", &key_path),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "tessera: cannot load TLS certificate {garbage_path}: no certificate found"
        )),
        "{stderr}"
    );
}

/// `[security]` limits where the third failure from one address locks that address.
const ADDRESS_LIMIT: &[(&str, &str)] = &[
    ("TESSERA_SECURITY__LOGIN_FAILURES", "100"),
    ("TESSERA_SECURITY__ADDRESS_FAILURES", "2"),
    ("TESSERA_SECURITY__CLIENT_FAILURES", "100"),
    ("TESSERA_SECURITY__WINDOW", "60"),
];

/// An OAuth2 password grant for bob, with `X-Forwarded-For: forwarded` if given; the status
/// and the `error_description` (empty on success).
async fn bob_logs_in(app: &TestApp, pw: &str, forwarded: Option<&str>) -> (StatusCode, String) {
    let mut req = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth("app", Some(APP_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", pw),
        ]);
    if let Some(addr) = forwarded {
        req = req.header("X-Forwarded-For", addr);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Bob's Wazo login with `forwarded` as `X-Forwarded-For`.
async fn bob_wazo_login(app: &TestApp, forwarded: &str) -> reqwest::Response {
    app.wazo_post_token(
        "/0.1/token",
        Some(("bob", "bob-pw")),
        &json!({}),
        &[("X-Forwarded-For", forwarded)],
    )
    .await
}

const WRONG: &str = "Invalid resource owner credentials.";
const LOCKED: &str = "Too many failed attempts; retry later.";

/// The secret of the client `app` that [`spawn_for_addresses`] registers.
const APP_SECRET: &str = "app-secret-for-the-address-tests";

async fn spawn_for_addresses(extra: &[(&str, &str)]) -> TestApp {
    let mut overrides = ADDRESS_LIMIT.to_vec();
    overrides.extend_from_slice(extra);
    let app = TestApp::spawn_with(Db::Sqlite, &overrides).await;
    app.insert_client(
        "app",
        Some(APP_SECRET),
        &tessera::domain::GrantType::ALL,
        &["#"],
        &[],
    );
    app.add_user("bob", "bob-pw", &["#"]);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_is_counted() {
    let app = spawn_for_addresses(&[("TESSERA_SERVER__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let attacker = Some("203.0.113.9");
    for _ in 0..2 {
        assert_eq!(
            bob_logs_in(&app, "guess", attacker).await,
            (StatusCode::BAD_REQUEST, WRONG.into())
        );
    }
    // The attacker's address is locked, right password or not …
    assert_eq!(
        bob_logs_in(&app, "bob-pw", attacker).await,
        (StatusCode::BAD_REQUEST, LOCKED.into())
    );
    // … even when it puts another address in front (the proxy appended the real one) …
    assert_eq!(
        bob_logs_in(&app, "bob-pw", Some("198.51.100.1, 203.0.113.9")).await,
        (StatusCode::BAD_REQUEST, LOCKED.into())
    );
    let wazo = bob_wazo_login(&app, "203.0.113.9").await;
    assert_eq!(wazo.status(), StatusCode::TOO_MANY_REQUESTS);
    // … while another client behind the same proxy, and the proxy itself, are not.
    assert_eq!(
        bob_logs_in(&app, "bob-pw", Some("203.0.113.10")).await,
        (StatusCode::OK, String::new())
    );
    assert_eq!(
        bob_logs_in(&app, "bob-pw", None).await,
        (StatusCode::OK, String::new())
    );
    // A Wazo session records the forwarded address.
    let resp = bob_wazo_login(&app, "2001:db8::10").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["remote_addr"], json!("2001:db8::10"));
    // A header that is not an address list is not believed: the proxy's address is used.
    let resp = bob_wazo_login(&app, "203.0.113.10, not-an-address").await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["remote_addr"], json!("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_a_spoofed_header_is_ignored() {
    let app = spawn_for_addresses(&[]).await;
    // Two failures, each "from" another address: both count against the peer, 127.0.0.1.
    for spoofed in ["203.0.113.9", "203.0.113.10"] {
        assert_eq!(
            bob_logs_in(&app, "guess", Some(spoofed)).await,
            (StatusCode::BAD_REQUEST, WRONG.into())
        );
    }
    // The peer is locked, whatever address it claims.
    assert_eq!(
        bob_logs_in(&app, "bob-pw", Some("198.51.100.77")).await,
        (StatusCode::BAD_REQUEST, LOCKED.into())
    );
    assert_eq!(
        bob_logs_in(&app, "bob-pw", None).await,
        (StatusCode::BAD_REQUEST, LOCKED.into())
    );
    let resp = bob_wazo_login(&app, "198.51.100.77").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Once the window has passed, a Wazo session records the peer, not the header.
    app.clock.advance_secs(61);
    let resp = bob_wazo_login(&app, "198.51.100.77").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["remote_addr"], json!("127.0.0.1"));
}
