//! The request limits of docs/security.md "Request limits", on every endpoint of both dialects:
//! body size (announced or chunked), body time, parameter count, repeated parameters,
//! credentials in the query string, and the size of the request head. Each refusal is the
//! dialect's error (or, for a head, a 4xx or a closed connection), never a 5xx, writes nothing,
//! and leaves the server serving the next connection.
//!
//! Requests go over raw TCP (one connection each, `Connection: close`) so that the tests choose
//! the framing (`Content-Length` or chunked) and can send heads no HTTP client would.
use std::time::Duration;

use diesel::{QueryDsl, RunQueryDsl};
use serde_json::{Value, json};
use tessera::clock::Stopwatch;
use tessera::http::body::BODY_TIMEOUT;
use tessera::http::limits::{MAX_HEADER_BYTES, MAX_HEADER_FIELD_BYTES, MAX_TARGET_BYTES};
use tessera::http::params::MAX_PARAMS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Db, TestApp, TestClient, str_of};
use crate::wso2_flow::base64_basic;

/// The default `[server] max_body_bytes`.
const MAX_BODY: usize = 16 * 1024;

/// The OAuth2 endpoints, all of which take a form or JSON body.
const OAUTH2: [&str; 5] = [
    "/oauth2/token",
    "/token",
    "/oauth2/revoke",
    "/revoke",
    "/oauth2/introspect",
];

const TOO_LARGE: &str =
    r#"{"error":"invalid_request","error_description":"Request body too large."}"#;
const TOO_MANY: &str =
    r#"{"error":"invalid_request","error_description":"Malformed request: too many parameters."}"#;
const REPEATED: &str = r#"{"error":"invalid_request","error_description":"Invalid request with repeated parameters."}"#;
const IN_URL: &str = r#"{"error":"invalid_request","error_description":"Invalid request with sensitive data in the URL."}"#;

/// Header fields, in order.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// How a request's body is framed.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Sized(&'a [u8]),
    /// `Transfer-Encoding: chunked`, in chunks of 4 KiB: the size is known only as it arrives.
    Chunked(&'a [u8]),
}

/// An HTTP/1.1 request as bytes, with `Connection: close`.
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: Body<'_>) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut out = match body {
        Body::None => format!("{out}\r\n").into_bytes(),
        Body::Sized(bytes) => {
            let mut out = format!("{out}Content-Length: {}\r\n\r\n", bytes.len()).into_bytes();
            out.extend_from_slice(bytes);
            out
        }
        Body::Chunked(bytes) => {
            let mut out = format!("{out}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
            for chunk in bytes.chunks(4096) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out
        }
    };
    if matches!(body, Body::Chunked(_)) {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

/// A response read off the wire.
#[derive(Debug)]
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

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.text()))
    }
}

/// A complete response at the start of `buf`, if there is one.
fn parse(buf: &[u8], complete_at_eof: bool) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &buf[end + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match length {
        Some(n) if rest.len() >= n => rest[..n].to_vec(),
        None if complete_at_eof => rest.to_vec(),
        _ => return None,
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// Sends `bytes` on a new connection and reads the answer; `None` if the server closed the
/// connection without one. Write errors are ignored: a server may answer and close before it
/// has read everything.
async fn exchange(app: &TestApp, bytes: &[u8]) -> Option<Answer> {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0_u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return parse(&buf, true),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(answer) = parse(&buf, false) {
                return Some(answer);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the server answers or closes within 30 s")
}

/// Like [`exchange`], for a request that must be answered.
async fn send(app: &TestApp, bytes: &[u8]) -> Answer {
    exchange(app, bytes)
        .await
        .expect("an answer, not a closed connection")
}

/// The server still answers, on a new connection.
async fn still_serving(app: &TestApp) {
    let answer = send(app, &request("GET", "/healthz", &[], Body::None)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

/// Access tokens, refresh tokens, sessions and recorded authentication failures.
fn rows(app: &TestApp) -> [i64; 4] {
    use tessera::store::schema::{access_tokens, auth_failures, refresh_tokens, sessions};
    let mut conn = app.service.store().conn().unwrap();
    [
        access_tokens::table.count().get_result(&mut *conn).unwrap(),
        refresh_tokens::table
            .count()
            .get_result(&mut *conn)
            .unwrap(),
        sessions::table.count().get_result(&mut *conn).unwrap(),
        auth_failures::table.count().get_result(&mut *conn).unwrap(),
    ]
}

struct Fixture {
    app: TestApp,
    client: TestClient,
    /// `Authorization: Basic` of the client.
    client_basic: String,
    /// `Authorization: Basic` of the Wazo user.
    user_basic: String,
    /// An OAuth2 access token of the client.
    access: String,
    /// A Wazo token of the user (ACL `#`).
    wazo: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn(Db::Sqlite).await;
    let client = app.add_full_client("app");
    app.add_user("alice", "pw", &["#"]);
    let access = app.client_credentials_token(&client).await;
    let data = app.wazo_login("alice", "pw", json!({})).await;
    Fixture {
        client_basic: format!("Basic {}", base64_basic(&client.id, &client.secret)),
        user_basic: format!("Basic {}", base64_basic("alice", "pw")),
        wazo: str_of(&data, "token").to_owned(),
        access,
        client,
        app,
    }
}

/// A POST endpoint and a request to it that succeeds (and, for the token endpoints, writes).
struct PostCase {
    path: String,
    json: bool,
    headers: Vec<(&'static str, String)>,
    /// The body's parameters, before padding.
    params: Vec<(&'static str, String)>,
    ok: u16,
    wazo: bool,
}

impl PostCase {
    /// The body with `extra` parameters after the case's own.
    fn body_with(&self, extra: &[(String, String)]) -> Vec<u8> {
        let all: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .chain(extra.iter().cloned())
            .collect();
        if self.json {
            let mut body = String::from("{");
            for (i, (n, v)) in all.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                // The scope list of scopes/check is JSON already.
                let value = if n == "scopes" {
                    v.clone()
                } else {
                    json!(v).to_string()
                };
                body.push_str(&format!("{}:{value}", json!(n)));
            }
            body.push('}');
            body.into_bytes()
        } else {
            all.iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }
    }

    /// The body padded with a `pad` parameter to exactly `size` bytes.
    fn body_of_size(&self, size: usize) -> Vec<u8> {
        let bare = self.body_with(&[("pad".to_owned(), String::new())]).len();
        let pad = "a".repeat(size - bare);
        let body = self.body_with(&[("pad".to_owned(), pad)]);
        assert_eq!(body.len(), size);
        body
    }

    fn request(&self, target: &str, body: Body<'_>) -> Vec<u8> {
        let content_type = if self.json {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", content_type)];
        headers.extend(self.headers.iter().map(|(n, v)| (*n, v.as_str())));
        request("POST", target, &headers, body)
    }
}

impl Fixture {
    /// Every POST endpoint of both dialects, each with a request that succeeds.
    fn post_cases(&self) -> Vec<PostCase> {
        let client_auth = vec![("Authorization", self.client_basic.clone())];
        let mut cases = Vec::new();
        for json in [false, true] {
            for path in ["/oauth2/token", "/token"] {
                cases.push(PostCase {
                    path: path.to_owned(),
                    json,
                    headers: client_auth.clone(),
                    params: vec![("grant_type", "client_credentials".into())],
                    ok: 200,
                    wazo: false,
                });
            }
            for path in ["/oauth2/revoke", "/revoke", "/oauth2/introspect"] {
                cases.push(PostCase {
                    path: path.to_owned(),
                    json,
                    headers: client_auth.clone(),
                    params: vec![("token", self.access.clone())],
                    ok: 200,
                    wazo: false,
                });
            }
        }
        for path in ["/0.1/token", "/api/auth/0.1/token"] {
            cases.push(PostCase {
                path: path.to_owned(),
                json: true,
                headers: vec![("Authorization", self.user_basic.clone())],
                params: vec![("expiration", "60".into())],
                ok: 200,
                wazo: true,
            });
        }
        for prefix in ["/0.1", "/api/auth/0.1"] {
            cases.push(PostCase {
                path: format!("{prefix}/token/{}/scopes/check", self.wazo),
                json: true,
                headers: Vec::new(),
                params: vec![("scopes", r#"["confd.users.read"]"#.into())],
                ok: 200,
                wazo: true,
            });
        }
        cases
    }

    /// Whether the OAuth2 access token is still active.
    async fn access_is_active(&self) -> bool {
        self.app.introspect(&self.client, &self.access).await["active"] == true
    }
}

/// Asserts a Wazo format A answer with this status and reason.
fn assert_format_a(answer: &Answer, status: u16, reason: &str) {
    let body = answer.json();
    assert_eq!(
        (answer.status, &body["reason"], &body["status_code"]),
        (status, &json!([reason]), &json!(status)),
        "{body}"
    );
    assert!(body["timestamp"][0].is_f64(), "{body}");
}

/// Asserts an OAuth2 error answer: status, exact body, the no-store headers.
fn assert_oauth2(answer: &Answer, status: u16, body: &str) {
    assert_eq!((answer.status, answer.text().as_str()), (status, body));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_body_bytes_is_413_in_each_dialect_and_writes_nothing() {
    let f = fixture().await;
    assert_eq!(f.app.settings.server.max_body_bytes, MAX_BODY);
    let cases = f.post_cases();
    // Exactly at the limit: served, whether announced or chunked.
    for case in &cases {
        let body = case.body_of_size(MAX_BODY);
        for framing in [Body::Sized(&body), Body::Chunked(&body)] {
            let answer = send(&f.app, &case.request(&case.path, framing)).await;
            assert_eq!(answer.status, case.ok, "{} {}", case.path, answer.text());
        }
    }
    let before = rows(&f.app);
    for case in &cases {
        let body = case.body_of_size(MAX_BODY + 1);
        for framing in [Body::Sized(&body), Body::Chunked(&body)] {
            let answer = send(&f.app, &case.request(&case.path, framing)).await;
            if case.wazo {
                assert_format_a(&answer, 413, "Request Entity Too Large");
            } else {
                assert_oauth2(&answer, 413, TOO_LARGE);
            }
        }
        // Announced far over the limit and never sent: refused without waiting for it.
        let mut head = case.request(&case.path, Body::None);
        head.truncate(head.len() - 2);
        head.extend_from_slice(b"Content-Length: 1073741824\r\n\r\n");
        let answer = send(&f.app, &head).await;
        assert_eq!(answer.status, 413, "{}", case.path);
    }
    assert_eq!(rows(&f.app), before, "nothing written");
    still_serving(&f.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_over_the_limit_revokes_nothing() {
    let f = fixture().await;
    for path in ["/oauth2/revoke", "/revoke"] {
        let mut body = format!("token={}&pad=", f.access).into_bytes();
        body.resize(MAX_BODY + 1, b'a');
        for framing in [Body::Sized(&body), Body::Chunked(&body)] {
            let answer = send(
                &f.app,
                &request("POST", path, &[("Authorization", &f.client_basic)], framing),
            )
            .await;
            assert_oauth2(&answer, 413, TOO_LARGE);
            assert!(f.access_is_active().await, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_without_a_body_never_read_one() {
    let f = fixture().await;
    let session = format!("/0.1/token/{}", f.wazo);
    let small = vec![b'x'; MAX_BODY];
    let large = vec![b'x'; MAX_BODY + 1];
    let auth = [("X-Auth-Token", f.wazo.as_str())];
    let cases: [(&str, &str, Headers<'_>, u16); 5] = [
        ("GET", &session, &[], 200),
        ("HEAD", &session, &[], 204),
        ("GET", "/0.1/sessions", &auth, 200),
        ("GET", "/api/auth/0.1/users/me/tokens", &auth, 200),
        ("DELETE", "/0.1/token/unknown-token", &[], 200),
    ];
    let before = rows(&f.app);
    for (method, path, headers, status) in cases {
        for body in [&small, &large] {
            for framing in [Body::Sized(body), Body::Chunked(body)] {
                // The answer of the same request without a body; the body is not buffered
                // (so its size does not matter), and a connection whose body was not read is
                // closed after the answer.
                match exchange(&f.app, &request(method, path, headers, framing)).await {
                    Some(answer) => assert_eq!(answer.status, status, "{method} {path}"),
                    None => panic!("{method} {path}: no answer"),
                }
            }
        }
    }
    assert_eq!(rows(&f.app), before, "nothing written");
    assert_eq!(
        f.app.wazo_check(&f.wazo).await,
        204,
        "the session is intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_max_params_parameters_are_refused_in_each_dialect() {
    let f = fixture().await;
    let junk = |n: usize| -> Vec<(String, String)> {
        (0..n).map(|i| (format!("p{i}"), "1".to_owned())).collect()
    };
    let cases = f.post_cases();
    // MAX_PARAMS in all is fine.
    for case in &cases {
        let body = case.body_with(&junk(MAX_PARAMS - case.params.len()));
        let answer = send(&f.app, &case.request(&case.path, Body::Sized(&body))).await;
        assert_eq!(answer.status, case.ok, "{} {}", case.path, answer.text());
    }
    let before = rows(&f.app);
    for case in &cases {
        let body = case.body_with(&junk(MAX_PARAMS + 1 - case.params.len()));
        let answer = send(&f.app, &case.request(&case.path, Body::Sized(&body))).await;
        if case.wazo {
            assert_format_a(&answer, 400, "{'_schema': ['Too many fields.']}");
        } else {
            assert_oauth2(&answer, 400, TOO_MANY);
        }
    }
    // A JSON object without grant_type on the OAuth2 token endpoint is a Wazo login.
    let case = PostCase {
        path: "/oauth2/token".into(),
        json: true,
        headers: vec![("Authorization", f.user_basic.clone())],
        params: Vec::new(),
        ok: 200,
        wazo: true,
    };
    let body = case.body_with(&junk(MAX_PARAMS + 1));
    let answer = send(&f.app, &case.request("/oauth2/token", Body::Sized(&body))).await;
    assert_format_a(&answer, 400, "{'_schema': ['Too many fields.']}");
    assert_eq!(rows(&f.app), before, "nothing written");

    // Query strings (GET): as many parameters as the target holds cost nothing and hide
    // nothing; the first
    // occurrence of a name is the one read (Flask's `args.get`), wherever it is.
    f.app.add_user("bob", "pw", &["auth.sessions.read"]);
    let bob = f.app.wazo_login("bob", "pw", json!({})).await;
    let many = (0..1800).map(|i| format!("p{i}=1&")).collect::<String>();
    let target = format!(
        "/0.1/token/{}?{many}scope=confd.users.read&scope=auth.sessions.read",
        str_of(&bob, "token")
    );
    let answer = send(&f.app, &request("GET", &target, &[], Body::None)).await;
    assert_format_a(&answer, 403, "Unauthorized for confd.users.read");
    let answer = send(
        &f.app,
        &request(
            "GET",
            &format!("/0.1/sessions?{many}limit=x"),
            &[("X-Auth-Token", &f.wazo)],
            Body::None,
        ),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error_id"], "invalid-list-param");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_parameter_is_invalid_request_on_every_oauth2_endpoint() {
    let f = fixture().await;
    let before = rows(&f.app);
    for path in OAUTH2 {
        let forms = [
            "grant_type=client_credentials&grant_type=client_credentials&token=x".to_owned(),
            format!(
                "grant_type=client_credentials&token={0}&token={0}",
                f.access
            ),
            "grant_type=client_credentials&token=x&client_id=app&client_id=app".to_owned(),
            // Empty values are absent (RFC 6749 §3.2), but still count as given twice.
            "grant_type=client_credentials&token=x&scope=&scope=".to_owned(),
            // The same name, percent-encoded the second time.
            "grant_type=client_credentials&token=x&scope=a&sc%6Fpe=b".to_owned(),
        ];
        for form in &forms {
            let answer = send(
                &f.app,
                &request(
                    "POST",
                    path,
                    &[
                        ("Authorization", &f.client_basic),
                        ("Content-Type", "application/x-www-form-urlencoded"),
                    ],
                    Body::Sized(form.as_bytes()),
                ),
            )
            .await;
            assert_oauth2(&answer, 400, REPEATED);
        }
        let body = br#"{"grant_type":"client_credentials","token":"x","token":"y"}"#;
        let answer = send(
            &f.app,
            &request(
                "POST",
                path,
                &[
                    ("Authorization", &f.client_basic),
                    ("Content-Type", "application/json"),
                ],
                Body::Sized(body),
            ),
        )
        .await;
        assert_oauth2(&answer, 400, REPEATED);
    }
    assert_eq!(rows(&f.app), before, "nothing written");
    assert!(f.access_is_active().await);

    // The Wazo dialect reads a repeated JSON member as Flask does: the last one wins.
    let answer = send(
        &f.app,
        &request(
            "POST",
            "/0.1/token",
            &[("Authorization", &f.user_basic)],
            Body::Sized(br#"{"expiration": 1, "expiration": 60}"#),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let data = &answer.json()["data"];
    let at = |key: &str| {
        chrono::NaiveDateTime::parse_from_str(str_of(data, key), "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    };
    assert_eq!(
        (at("utc_expires_at") - at("utc_issued_at")).num_seconds(),
        60
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_in_the_query_string_is_refused_on_every_post_endpoint() {
    let f = fixture().await;
    let cases = f.post_cases();
    let before = rows(&f.app);
    for case in &cases {
        let body = case.body_with(&[]);
        for query in [
            "password=pw",
            "client_secret=s",
            "refresh_token=r",
            "token=t",
            "access_token=t",
            // Percent-encoded, after a harmless parameter, without a value.
            "scope=a&pass%77ord=pw",
            "refresh%5Ftoken",
        ] {
            let target = format!("{}?{query}", case.path);
            let answer = send(&f.app, &case.request(&target, Body::Sized(&body))).await;
            if case.wazo {
                assert_format_a(
                    &answer,
                    400,
                    "{'_schema': ['Invalid request with sensitive data in the URL.']}",
                );
            } else {
                assert_oauth2(&answer, 400, IN_URL);
            }
        }
    }
    assert_eq!(rows(&f.app), before, "nothing written");
    assert!(f.access_is_active().await, "nothing revoked");
    // A harmless query changes nothing.
    for case in &cases {
        let target = format!("{}?foo=bar", case.path);
        let answer = send(
            &f.app,
            &case.request(&target, Body::Sized(&case.body_with(&[]))),
        )
        .await;
        assert_eq!(answer.status, case.ok, "{target}: {}", answer.text());
    }
}

/// Heads over Tessera's limits get 431 (empty, connection closed) before any handler runs;
/// over actix-http's own 128 KiB, 431 or a closed connection. Never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_a_4xx_or_a_closed_connection_on_every_endpoint() {
    let f = fixture().await;
    let token_path = format!("/0.1/token/{}", f.wazo);
    let endpoints: Vec<(&str, String)> = OAUTH2
        .iter()
        .map(|p| ("POST", (*p).to_owned()))
        .chain([
            ("POST", "/0.1/token".to_owned()),
            ("POST", "/api/auth/0.1/token".to_owned()),
            ("POST", format!("{token_path}/scopes/check")),
            ("GET", token_path.clone()),
            ("HEAD", token_path.clone()),
            ("DELETE", token_path.clone()),
            ("GET", "/0.1/sessions".to_owned()),
            ("GET", "/healthz".to_owned()),
        ])
        .collect();
    let field = "x".repeat(40 * 1024);
    let many: Vec<(String, String)> = (0..200).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let third = "x".repeat(MAX_HEADER_BYTES / 3 + 1);
    let before = rows(&f.app);
    for (method, path) in &endpoints {
        let heads: [(&str, Vec<(&str, &str)>); 3] = [
            ("one 40 KiB field", vec![("X-Big", &field)]),
            (
                "200 fields",
                many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
            ),
            (
                "fields over 32 KiB together",
                vec![("X-A", &third), ("X-B", &third), ("X-C", &third)],
            ),
        ];
        for (what, headers) in heads {
            let answer = send(&f.app, &request(method, path, &headers, Body::None)).await;
            assert_eq!(answer.status, 431, "{what}: {method} {path}");
            assert!(answer.body.is_empty());
            assert_eq!(answer.header("connection"), Some("close"));
            still_serving(&f.app).await;
        }
    }
    assert_eq!(rows(&f.app), before, "nothing written");

    // Over actix-http's own 128 KiB head: 431, or the connection closed under the sender.
    let huge = "x".repeat(130 * 1024);
    if let Some(answer) = exchange(
        &f.app,
        &request("GET", "/healthz", &[("X-Huge", &huge)], Body::None),
    )
    .await
    {
        assert_eq!(answer.status, 431);
    }
    still_serving(&f.app).await;

    // Just under the limits: served.
    let fits = "x".repeat(MAX_HEADER_FIELD_BYTES - "X-Fits".len());
    let answer = send(
        &f.app,
        &request("GET", &token_path, &[("X-Fits", &fits)], Body::None),
    )
    .await;
    assert_eq!(answer.status, 200, "a 16 KiB field");
}

/// Long credentials are refused by the code that reads them, in the dialect's format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_credentials_and_paths_are_4xx_in_the_dialects_format() {
    let f = fixture().await;
    let before = rows(&f.app);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let b64 = "QUFB".repeat(9 * 1024 / 4);
    let basic = format!("Basic {b64}");
    let bearer = format!("Bearer {}", "a".repeat(9 * 1024));
    let x_auth = "a".repeat(10 * 1024);

    let answer = send(
        &f.app,
        &request(
            "POST",
            "/oauth2/token",
            &[form[0], ("Authorization", &basic)],
            Body::Sized(b"grant_type=client_credentials"),
        ),
    )
    .await;
    assert_oauth2(
        &answer,
        401,
        r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#,
    );
    let answer = send(
        &f.app,
        &request(
            "POST",
            "/oauth2/revoke",
            &[form[0], ("Authorization", &bearer)],
            Body::Sized(b"token=x"),
        ),
    )
    .await;
    assert_oauth2(
        &answer,
        401,
        r#"{"error":"invalid_token","error_description":"The access token is invalid, expired or revoked."}"#,
    );
    let answer = send(
        &f.app,
        &request(
            "POST",
            "/0.1/token",
            &[("Authorization", &basic)],
            Body::Sized(b"{}"),
        ),
    )
    .await;
    assert_format_a(&answer, 401, "Authentication Failed");
    let answer = send(
        &f.app,
        &request(
            "GET",
            "/0.1/sessions",
            &[("X-Auth-Token", &x_auth)],
            Body::None,
        ),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error_id"], "unauthorized");
    let answer = send(
        &f.app,
        &request(
            "GET",
            &format!("/0.1/token/{}", f.wazo),
            &[("X-Auth-Token", &x_auth)],
            Body::None,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "X-Auth-Token is not read there");

    // A token of 16 KiB in the path: the target is over 16 KiB, 414 whatever the method.
    let long = "a".repeat(16 * 1024);
    for method in ["GET", "HEAD", "DELETE"] {
        let path = format!("/0.1/token/{long}");
        assert!(path.len() > MAX_TARGET_BYTES);
        let answer = send(&f.app, &request(method, &path, &[], Body::None)).await;
        assert_eq!(answer.status, 414, "{method}");
    }
    let answer = send(
        &f.app,
        &request(
            "POST",
            &format!("/0.1/token/{long}/scopes/check"),
            &[],
            Body::Sized(br#"{"scopes":[]}"#),
        ),
    )
    .await;
    assert_eq!(answer.status, 414);
    // Just under it: an unknown token.
    let path = format!(
        "/0.1/token/{}",
        "a".repeat(MAX_TARGET_BYTES - "/0.1/token/".len())
    );
    let answer = send(&f.app, &request("GET", &path, &[], Body::None)).await;
    assert_format_a(&answer, 404, "No such token");
    // Over the 64 KiB the URI parser takes: 400 from actix-http, or a closed connection.
    let path = format!("/0.1/token/{}", "a".repeat(70 * 1024));
    if let Some(answer) = exchange(&f.app, &request("GET", &path, &[], Body::None)).await {
        assert_eq!(answer.status, 400);
    }
    assert_eq!(
        rows(&f.app)[..3],
        before[..3],
        "no token or session written"
    );
    still_serving(&f.app).await;
}

/// A body that stops arriving is refused after `BODY_TIMEOUT`, and a head after actix-web's
/// `client_request_timeout` (5 s): a stalled client holds nothing for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_are_answered_and_closed() {
    let f = fixture().await;
    let before = rows(&f.app);
    // 1000 bytes announced, a few sent.
    let stalled = |path: &str, headers: &[(&str, &str)], partial: &str| {
        let mut bytes = request("POST", path, headers, Body::None);
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(format!("Content-Length: 1000\r\n\r\n{partial}").as_bytes());
        bytes
    };
    let oauth2 = stalled(
        "/oauth2/token",
        &[
            ("Authorization", &f.client_basic),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "grant_type=client_credentials&pad=",
    );
    let wazo = stalled(
        "/0.1/token",
        &[("Authorization", &f.user_basic)],
        r#"{"expiration": 60, "pad": ""#,
    );
    let head_only = b"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    let watch = Stopwatch::start();
    let (oauth2, wazo, head_only) = tokio::join!(
        exchange(&f.app, &oauth2),
        exchange(&f.app, &wazo),
        exchange(&f.app, &head_only),
    );
    let waited = watch.elapsed_secs();
    let limit = BODY_TIMEOUT.as_secs_f64();
    assert!((limit..limit + 5.0).contains(&waited), "{waited} s");
    assert_oauth2(
        &oauth2.unwrap(),
        400,
        r#"{"error":"invalid_request","error_description":"Malformed request: the request body did not arrive in time."}"#,
    );
    let wazo = wazo.unwrap();
    assert_eq!(
        (wazo.status, wazo.json()),
        (
            400,
            json!({"message": "The browser (or proxy) sent a request that this server could not understand."})
        )
    );
    assert_eq!(head_only.unwrap().status, 408);
    assert_eq!(rows(&f.app), before, "nothing written");
    still_serving(&f.app).await;
}
