//! Log hygiene (issue 6 check 5): the real binary, logging at `debug` (and once at `trace`, in
//! JSON), serves full flows of both dialects; its whole output (stdout and stderr) then holds
//! access lines with request ids and route patterns, and none of the tokens it handed out,
//! the client secret, the passwords or the `Basic` values it received, raw or encoded.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Alice's password, with characters that percent- or JSON-encoding would change.
const PASSWORD: &str = "Tr0ub4dor &3 p@ss\"w+rd";
/// The password of the failed logins.
const WRONG_PASSWORD: &str = "n0t-her p@ssword!";

/// A served binary in its own directory, killed when dropped (even if the test fails).
struct Served {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Served {
    /// Creates alice and the client `app` with the CLI, then starts `serve` logging at
    /// `level` in `format`, with `rust_log` as `RUST_LOG` if given. Returns the server and
    /// the client secret.
    fn start(level: &str, format: &str, rust_log: Option<&str>) -> (Served, String) {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("tessera.toml"),
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\nconfig_watch_ms = 0\n\
                 [log]\nlevel = \"{level}\"\nformat = \"{format}\"\n"
            ),
        )
        .unwrap();
        cli(
            dir.path(),
            &["user", "add", "alice", "--password-stdin", "--acl", "#"],
            PASSWORD,
        );
        let out = cli(dir.path(), &["client", "add", "app", "--scope", "#"], "");
        let secret = out
            .lines()
            .find_map(|l| l.strip_prefix("client secret (shown once): "))
            .unwrap_or_else(|| panic!("no client secret in {out}"))
            .to_owned();
        let mut command = Command::new(BIN);
        command
            .current_dir(dir.path())
            .args(["--config", "tessera.toml", "serve"])
            .env_remove("TESSERA_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let mut served = Served {
            child: Some(command.spawn().unwrap()),
            dir,
            port,
        };
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (served, secret);
            }
            let exited = served.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "the server exited: {}", served.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not start: {}", served.stderr());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Stops the server with SIGTERM (graceful, so its last records are written) and returns
    /// its stdout and its stderr.
    fn stop(mut self) -> (String, String) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap();
        (read("stdout.log"), read("stderr.log"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a CLI command in `dir` with `stdin`; returns its stdout. Its log (stderr) must not
/// hold the password it was given either.
fn cli(dir: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["--config", "tessera.toml"])
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that reads nothing may have exited already.
    let _ = writeln!(child.stdin.take().unwrap(), "{stdin}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(!stderr.contains(PASSWORD), "the CLI logged the password");
    String::from_utf8(out.stdout).unwrap()
}

/// What went over the wire: every credential sent or received, and the requests' ids.
#[derive(Default)]
struct Flow {
    secrets: Vec<String>,
    /// How many requests were sent: one access line each.
    requests: usize,
}

impl Flow {
    fn keep(&mut self, secret: &str) {
        assert!(!secret.is_empty());
        self.secrets.push(secret.to_owned());
    }

    fn send(&mut self, request: RequestBuilder) -> Response {
        self.requests += 1;
        let resp = request.send().unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{id:?}"
        );
        resp
    }

    /// Sends and expects `status`; returns the JSON body, if any.
    fn expect(&mut self, request: RequestBuilder, status: u16) -> Value {
        let resp = self.send(request);
        assert_eq!(resp.status().as_u16(), status);
        let text = resp.text().unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

fn token<'a>(body: &'a Value, pointer: &str) -> &'a str {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {body}"))
}

/// Both dialects' full flows; returns every credential involved and alice's uuid.
fn run_flows(served: &Served, secret: &str) -> (Flow, String) {
    let http = Client::new();
    let mut flow = Flow::default();
    flow.keep(secret);
    flow.keep(PASSWORD);
    flow.keep(WRONG_PASSWORD);
    for (user, pass) in [
        ("app", secret),
        ("alice", PASSWORD),
        ("alice", WRONG_PASSWORD),
    ] {
        flow.keep(&STANDARD.encode(format!("{user}:{pass}")));
    }
    let oauth2 = || {
        http.post(served.url("/oauth2/token"))
            .basic_auth("app", Some(secret))
    };

    // OAuth2: a password grant (client_secret_basic), its refresh, client_credentials (both
    // client authentication methods), introspection, revocation, a wrong password.
    let grant = flow.expect(
        oauth2().form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]),
        200,
    );
    flow.keep(token(&grant, "/access_token"));
    flow.keep(token(&grant, "/refresh_token"));
    let refreshed = flow.expect(
        oauth2().form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token(&grant, "/refresh_token")),
        ]),
        200,
    );
    let access = token(&refreshed, "/access_token").to_owned();
    let refresh = token(&refreshed, "/refresh_token").to_owned();
    flow.keep(&access);
    flow.keep(&refresh);
    let machine = flow.expect(oauth2().form(&[("grant_type", "client_credentials")]), 200);
    flow.keep(token(&machine, "/access_token"));
    let posted = flow.expect(
        http.post(served.url("/oauth2/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", secret),
        ]),
        200,
    );
    flow.keep(token(&posted, "/access_token"));
    let introspected = flow.expect(
        http.post(served.url("/oauth2/introspect"))
            .basic_auth("app", Some(secret))
            .form(&[("token", access.as_str())]),
        200,
    );
    assert_eq!(introspected["active"], json!(true));
    flow.expect(
        http.post(served.url("/oauth2/revoke"))
            .basic_auth("app", Some(secret))
            .form(&[
                ("token", refresh.as_str()),
                ("token_type_hint", "refresh_token"),
            ]),
        200,
    );
    flow.expect(
        oauth2().form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", WRONG_PASSWORD),
        ]),
        400,
    );

    // Wazo: an offline Basic login, GET and HEAD of the token, a refresh-token login, the
    // user's refresh tokens, DELETE of the token, a wrong password.
    let wazo = |path: &str| served.url(&format!("/api/auth/0.1{path}"));
    let login = flow.expect(
        http.post(wazo("/token"))
            .basic_auth("alice", Some(PASSWORD))
            .json(&json!({"access_type": "offline", "client_id": "wazo-app", "expiration": 600})),
        200,
    );
    let wazo_token = token(&login, "/data/token").to_owned();
    let wazo_refresh = token(&login, "/data/refresh_token").to_owned();
    let alice = token(&login, "/data/auth_id").to_owned();
    flow.keep(&wazo_token);
    flow.keep(&wazo_refresh);
    flow.expect(http.get(wazo(&format!("/token/{wazo_token}"))), 200);
    flow.expect(
        http.head(served.url(&format!("/0.1/token/{wazo_token}"))),
        204,
    );
    let renewed = flow.expect(
        http.post(wazo("/token"))
            .json(&json!({"refresh_token": wazo_refresh, "client_id": "wazo-app"})),
        200,
    );
    let renewed_token = token(&renewed, "/data/token").to_owned();
    flow.keep(&renewed_token);
    let listed = flow.expect(
        http.get(wazo("/users/me/tokens"))
            .header("X-Auth-Token", &renewed_token),
        200,
    );
    assert_eq!(listed["total"], json!(1), "{listed}");
    flow.expect(http.delete(wazo(&format!("/token/{wazo_token}"))), 200);
    flow.expect(
        http.post(wazo("/token"))
            .basic_auth("alice", Some(WRONG_PASSWORD))
            .json(&json!({})),
        401,
    );
    // A token where no route expects one, and one in a query string.
    flow.expect(
        http.get(served.url(&format!("/0.1/tokens/{renewed_token}/x"))),
        404,
    );
    flow.expect(
        http.get(served.url(&format!("/healthz?access_token={renewed_token}"))),
        200,
    );
    (flow, alice)
}

/// Request ids: a well-formed one is echoed, a malformed one replaced, a missing one made.
fn check_request_ids(served: &Served, flow: &mut Flow) {
    let http = Client::new();
    let healthz = || http.get(served.url("/healthz"));
    let echoed = flow.send(healthz().header("X-Request-Id", "log-hygiene.Test_1"));
    assert_eq!(echoed.headers()["x-request-id"], "log-hygiene.Test_1");
    let longest = "b".repeat(64);
    let echoed = flow.send(healthz().header("X-Request-Id", &longest));
    assert_eq!(echoed.headers()["x-request-id"], longest.as_str());
    for bad in ["c".repeat(65), "bad id".into(), "a/b".into(), "é".into()] {
        let resp = flow.send(healthz().header("X-Request-Id", bad.as_str()));
        assert_ne!(resp.headers()["x-request-id"].as_bytes(), bad.as_bytes());
    }
    let a = flow.send(healthz());
    let b = flow.send(healthz());
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
    // Unknown paths and errors carry one too.
    let resp = flow.send(http.get(served.url("/nowhere")));
    assert_eq!(resp.status(), 404);
}

/// The forms a credential could be logged in: as is, base64 (standard and URL-safe),
/// hex, percent-encoded (a form body) and JSON-escaped.
fn variants(secret: &str) -> Vec<String> {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let form: String = url_encode(secret);
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        hex.clone(),
        hex.to_uppercase(),
        form,
        json.trim_matches('"').to_owned(),
    ]
}

/// `application/x-www-form-urlencoded`, as reqwest writes a form.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_no_secret(output: &str, flow: &Flow) {
    for secret in &flow.secrets {
        for variant in variants(secret) {
            assert!(
                !output.contains(&variant),
                "a credential ({variant}) is in the output:\n{output}"
            );
        }
    }
}

#[test]
fn debug_logs_hold_access_lines_and_no_credential() {
    let (served, secret) = Served::start("debug", "text", None);
    let (mut flow, alice) = run_flows(&served, &secret);
    check_request_ids(&served, &mut flow);
    let (stdout, stderr) = served.stop();
    let output = format!("{stdout}{stderr}");
    assert_no_secret(&output, &flow);

    let access: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" tessera::access]"))
        .collect();
    assert_eq!(access.len(), flow.requests, "{stderr}");
    assert!(
        access.iter().all(|l| l.contains(" request_id=")),
        "{stderr}"
    );
    assert!(
        stderr.contains("DEBUG"),
        "the binary logged at debug: {stderr}"
    );
    // Some line holds every one of `needles`.
    let has = |needles: &[&str]| access.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    let expected: [&[&str]; 10] = [
        &["request_id=log-hygiene.Test_1 "],
        &["\"GET /api/auth/0.1/token/{token}\" 200 "],
        &["\"HEAD /0.1/token/{token}\" 204 "],
        &["\"DELETE /api/auth/0.1/token/{token}\" 200 "],
        &["\"GET /0.1/tokens/{…}/x\" 404 "],
        &["\"GET /healthz\" 200 "],
        &["\"POST /oauth2/token\" 200 ", "client_id=app user=alice"],
        &[
            "\"POST /api/auth/0.1/token\" 200 ",
            &format!("client_id=wazo-app user={alice}"),
        ],
        // Failed logins name no user: the login field may hold a password.
        &["\"POST /oauth2/token\" 400 ", "client_id=app user=-"],
        &["\"POST /api/auth/0.1/token\" 401 ", "client_id=- user=-"],
    ];
    for needles in expected {
        assert!(
            has(needles),
            "no access line with {needles:?} in:\n{stderr}"
        );
    }
}

#[test]
fn json_logs_are_one_object_per_line_with_the_access_fields() {
    let (served, secret) = Served::start("info", "json", Some("trace"));
    let (mut flow, alice) = run_flows(&served, &secret);
    check_request_ids(&served, &mut flow);
    let (stdout, stderr) = served.stop();
    assert_no_secret(&format!("{stdout}{stderr}"), &flow);

    let records: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(records.iter().all(|r| {
        ["ts", "level", "target", "message"]
            .iter()
            .all(|k| r[k].is_string())
    }));
    assert!(
        records
            .iter()
            .any(|r| r["level"] == "DEBUG" || r["level"] == "TRACE"),
        "RUST_LOG=trace is applied: {stderr}"
    );
    let access: Vec<&Value> = records
        .iter()
        .filter(|r| r["target"] == "tessera::access")
        .collect();
    assert_eq!(access.len(), flow.requests, "{stderr}");
    for line in &access {
        assert!(line["request_id"].is_string(), "{line}");
        assert!(line["method"].is_string(), "{line}");
        assert!(line["route"].is_string(), "{line}");
        assert!(line["status"].is_u64(), "{line}");
        assert!(line["latency_ms"].is_number(), "{line}");
        assert!(line["remote"] == "127.0.0.1", "{line}");
    }
    let find = |method: &str, route: &str, status: u64| {
        access
            .iter()
            .find(|r| r["method"] == method && r["route"] == route && r["status"] == status)
            .unwrap_or_else(|| panic!("no {method} {route} {status} in {stderr}"))
    };
    let grant = find("POST", "/oauth2/token", 200);
    assert_eq!(
        (&grant["client_id"], &grant["user"]),
        (&json!("app"), &json!("alice"))
    );
    let login = find("POST", "/api/auth/0.1/token", 200);
    assert_eq!(
        (&login["client_id"], &login["user"]),
        (&json!("wazo-app"), &json!(alice))
    );
    let failed = find("POST", "/api/auth/0.1/token", 401);
    assert_eq!(
        (&failed["client_id"], &failed["user"]),
        (&Value::Null, &Value::Null)
    );
    find("GET", "/api/auth/0.1/token/{token}", 200);
    find("GET", "/api/auth/0.1/users/{user}/tokens", 200);
    assert!(
        access
            .iter()
            .any(|r| r["request_id"] == "log-hygiene.Test_1"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_log_format_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[log]\nformat = \"xml\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log.format"), "{stderr}");
}
