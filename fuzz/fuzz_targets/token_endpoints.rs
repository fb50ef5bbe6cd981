//! The token endpoints of both dialects, end to end: a real Tessera server (fresh SQLite
//! database, shipped configuration, the brute-force limits on) receives `POST` requests over a
//! loopback socket, so the request types of both dialects are read by the handlers that serve
//! them: OAuth2 form and JSON bodies at `/oauth2/token` and `/token` (RFC 6749 §3.2, §4.3,
//! §4.4, §6; a JSON object without `grant_type` there is a Wazo login), and the Wazo JSON body
//! (`expiration`, `access_type`, `client_id`, `refresh_token`, …, marshmallow's validation) at
//! `/0.1/token` and `/api/auth/0.1/token`. Any answer must be a well-formed answer of one of
//! the dialects: never a 5xx, a JSON object, an RFC 6749 §5.2 error code, a challenge with a
//! 401, `no-store` on a token.
//!
//! Input: byte 0 chooses the path and `Content-Type` ([`ROUTES`]), byte 1 the `Authorization`
//! header ([`AUTHORIZATIONS`]), the rest is the body, where `{client_id}`, `{client_secret}`
//! and `{username}` stand for the bootstrap client's credentials and the admin's login (its
//! password is never given: a successful password login costs an argon2 hash per run).
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera::app::Application;
use tessera::clock::SystemClock;
use tessera::config::Settings;

const ROUTES: [(&str, Option<&str>); 8] = [
    ("/oauth2/token", Some("application/x-www-form-urlencoded")),
    ("/oauth2/token", Some("application/json")),
    (
        "/token",
        Some("application/x-www-form-urlencoded; charset=utf-8"),
    ),
    ("/token", None),
    ("/0.1/token", Some("application/json")),
    ("/0.1/token", None),
    ("/api/auth/0.1/token", Some("text/plain")),
    ("/oauth2/token", Some("application/merge-patch+json")),
];

/// `{client}` is the bootstrap client's `id:secret`, `{login}` the admin's login.
const AUTHORIZATIONS: [Option<&str>; 8] = [
    None,
    Some("Basic {client}"),
    Some("Basic {client_id}:wrong"),
    Some("Basic {login}:wrong"),
    Some("Bearer not-a-token"),
    Some("Basic !!!"),
    Some("Basic Og=="),
    Some("basic {client_id}%3A:x"),
];

/// RFC 6749 §5.2, plus RFC 6750 §3.1 for a bearer token where a client was expected.
const OAUTH2_ERRORS: [&str; 7] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_token",
];

struct Server {
    port: u16,
    client_id: String,
    client_secret: String,
    login: String,
    connection: Mutex<Option<BufReader<TcpStream>>>,
}

/// Starts the server once, on its own thread and runtime, for the whole fuzzing session.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let env = [
                (
                    "TESSERA_DATABASE__URL",
                    format!("sqlite://{}", dir.path().join("t.db").display()),
                ),
                ("TESSERA_SERVER__BIND", "127.0.0.1:0".to_owned()),
                (
                    "TESSERA_SERVER__DATA_DIR",
                    dir.path().join("data").display().to_string(),
                ),
                ("TESSERA_SERVER__WORKERS", "1".to_owned()),
                ("TESSERA_DATABASE__CLEANUP_INTERVAL", "0".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v));
            let settings = Settings::load_with_env(None, env).expect("settings");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let mut app = Application::build(&settings, Arc::new(SystemClock))
                    .await
                    .expect("the server starts");
                let initial = app.take_initial_credentials().expect("a fresh database");
                tx.send(Server {
                    port: app.port(),
                    client_id: initial.client_id.clone(),
                    client_secret: initial.client_secret.expose().to_owned(),
                    login: initial.username.clone(),
                    connection: Mutex::new(None),
                })
                .expect("the fuzzer waits");
                app.run_until_stopped().await.expect("the server runs");
                drop(dir);
            });
        });
        rx.recv().expect("the server thread reports its port")
    })
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Sends one request on the kept-alive connection (a new one if the server closed it).
    fn post(&self, request: &[u8]) -> Answer {
        let mut slot = self.connection.lock().expect("one fuzzing thread");
        for attempt in 0..2 {
            let conn = slot.get_or_insert_with(|| {
                let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                stream.set_nodelay(true).expect("nodelay");
                BufReader::new(stream)
            });
            match exchange(conn, request) {
                Ok(answer) => {
                    if answer
                        .header("connection")
                        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                    {
                        *slot = None;
                    }
                    return answer;
                }
                // A connection the server closed between two requests: once more on a new one.
                Err(e) if attempt == 0 => {
                    let _ = e;
                    *slot = None;
                }
                Err(e) => panic!("no answer from the server: {e}"),
            }
        }
        unreachable!()
    }
}

fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<Answer> {
    conn.get_mut().write_all(request)?;
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().expect("a content length"));
    assert!(
        !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
        "token answers have a length"
    );
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

// The server starts before the first input, so that its start-up is nobody's leak.
fuzz_target!(init: { server(); }, |data: &[u8]| run(data));

fn run(data: &[u8]) {
    let [route, auth, body @ ..] = data else {
        return;
    };
    let server = server();
    let (path, content_type) = ROUTES[usize::from(*route) % ROUTES.len()];
    let auth = AUTHORIZATIONS[usize::from(*auth) % AUTHORIZATIONS.len()];

    let body = substitute(body, server);
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: fuzz\r\n").into_bytes();
    if let Some(content_type) = content_type {
        request.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    if let Some(auth) = auth {
        let value = match auth.split_once(' ') {
            Some((scheme, credentials)) if credentials.contains('{') => {
                let credentials = credentials
                    .replace(
                        "{client}",
                        &format!("{}:{}", server.client_id, server.client_secret),
                    )
                    .replace("{client_id}", &server.client_id)
                    .replace("{login}", &server.login);
                format!("{scheme} {}", STANDARD.encode(credentials))
            }
            _ => auth.to_owned(),
        };
        request.extend_from_slice(format!("Authorization: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);

    let answer = server.post(&request);
    check(path, &answer);
}

fn substitute(body: &[u8], server: &Server) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    'outer: while !rest.is_empty() {
        for (placeholder, value) in [
            (&b"{client_id}"[..], server.client_id.as_str()),
            (b"{client_secret}", server.client_secret.as_str()),
            (b"{username}", server.login.as_str()),
        ] {
            if let Some(after) = rest.strip_prefix(placeholder) {
                out.extend_from_slice(value.as_bytes());
                rest = after;
                continue 'outer;
            }
        }
        out.push(rest[0]);
        rest = &rest[1..];
    }
    out
}

fn check(path: &str, answer: &Answer) {
    let status = answer.status;
    assert!(
        status < 500,
        "{path}: {status} {}",
        String::from_utf8_lossy(&answer.body)
    );
    let json: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
        panic!(
            "{path}: {status} with a body that is not JSON ({e}): {:?}",
            answer.body
        )
    });
    let object = json
        .as_object()
        .unwrap_or_else(|| panic!("{path}: {status} {json}"));
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{path}: {status} without a JSON content type"
    );
    if status == 200 {
        // RFC 6749 §5.1: tokens are never cached, in either dialect.
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        let oauth2 = object.get("access_token").is_some_and(Value::is_string)
            && object.get("token_type") == Some(&Value::from("Bearer"));
        let wazo = object
            .get("data")
            .and_then(|d| d.get("token"))
            .is_some_and(Value::is_string);
        assert!(oauth2 || wazo, "{path}: 200 {json}");
        return;
    }
    assert!((400..500).contains(&status), "{path}: {status}");
    if let Some(code) = object.get("error") {
        // The OAuth2 dialect (RFC 6749 §5.2).
        let code = code.as_str().unwrap_or_else(|| panic!("{path}: {json}"));
        assert!(OAUTH2_ERRORS.contains(&code), "{path}: error {code:?}");
        if status == 401 {
            assert!(
                answer.header("www-authenticate").is_some(),
                "{path}: 401 {json}"
            );
        }
    } else {
        // The Wazo dialect: format A (`reason`, `timestamp`, `status_code`), B (`message`,
        // `error_id`, …) or C (`message`).
        assert!(
            object.contains_key("reason") || object.contains_key("message"),
            "{path}: {status} {json}"
        );
    }
}
