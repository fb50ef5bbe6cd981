//! Issue check 2: every status code and error body of wazo-contract §1.2–§1.7, asserted whole.
//! JSON is compared as values (the entire body, `timestamp` included), with the relevant headers;
//! the clock is fixed, so every timestamp is known to the microsecond.
//!
//! Where the contract leaves a string open (marshmallow's field messages), the expected value is
//! Tessera's (`src/http/wazo/{token,validate,management}.rs`); everything the contract fixes is
//! asserted as the contract states it.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Local};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tessera::clock::{Clock, Timestamp};

use crate::helpers::{Db, TestApp};
use crate::on_both_backends;

/// 2026-05-05T16:00:00.123456Z: the clock of every test, so timestamps are exact.
const T0: i64 = 1_777_996_800_123_456;
/// Its whole second.
const T0_SECS: i64 = 1_777_996_800;
const UA: &str = "Wazo Python auth client";
const XIVO_UUID: &str = "the-predefined-xivo-uuid";
const NOT_UNDERSTOOD: &str =
    "The browser (or proxy) sent a request that this server could not understand.";

// The five `_schema` messages of §1.3.
const OFFLINE_NEEDS_CLIENT_ID: &str =
    "\"client_id\" must be specified when using \"access_type\" is \"offline\"";
const OFFLINE_WITH_REFRESH: &str =
    "cannot use the \"access_type\" \"offline\" with a refresh token";
const REFRESH_NEEDS_CLIENT_ID: &str =
    "\"client_id\" must be specified when using a \"refresh_token\"";
const TENANT_OR_DOMAIN: &str = "\"tenant_id\" and \"domain_name\" must be mutually exclusive";
const SAML_WITH_REFRESH: &str =
    "Cannot use a \"saml_session_id\" and a \"refresh_token\" at the same time";

const RANGE: &str = "{'expiration': [{'constraint_id': 'range', 'constraint': {'min': 1, 'max': 315360000}, 'message': 'Must be greater than or equal to 1 and less than or equal to 315360000.'}]}";

// ---------------------------------------------------------------------------------------------
// Plumbing.

/// A whole answer: status, headers and body bytes.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let mut req = app.http.request(method, app.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.body(body.to_vec());
    }
    let resp = req.send().await.expect("request sent");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body read").to_vec(),
    }
}

fn basic(login: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{login}:{password}")))
}

/// `POST /0.1/token` with a raw body, optional Basic credentials, wazo-auth-client's
/// User-Agent and extra headers.
async fn post_token(
    app: &TestApp,
    credentials: Option<(&str, &str)>,
    body: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let auth = credentials.map(|(l, p)| basic(l, p));
    let mut headers = vec![("Content-Type", "application/json"), ("User-Agent", UA)];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    headers.extend_from_slice(extra);
    call(
        app,
        Method::POST,
        "/0.1/token",
        &headers,
        Some(body.as_bytes()),
    )
    .await
}

/// A successful login: `(token, session_uuid, refresh_token)`.
async fn login(
    app: &TestApp,
    user: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (String, String, Option<String>) {
    let answer = post_token(app, Some((user, "pw")), body, extra).await;
    assert_eq!(answer.status, 200, "login of {user}: {}", answer.text());
    let data = &answer.json()["data"];
    (
        data["token"].as_str().expect("token").to_owned(),
        data["session_uuid"].as_str().expect("session").to_owned(),
        data["refresh_token"].as_str().map(str::to_owned),
    )
}

async fn get(app: &TestApp, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Answer {
    let mut headers: Vec<(&str, &str)> = token.map(|t| ("X-Auth-Token", t)).into_iter().collect();
    headers.extend_from_slice(extra);
    call(app, Method::GET, path, &headers, None).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Answer {
    call(app, Method::DELETE, path, &[("X-Auth-Token", token)], None).await
}

async fn head_token(app: &TestApp, token: &str) -> u16 {
    call(app, Method::HEAD, &format!("/0.1/token/{token}"), &[], None)
        .await
        .status
}

/// The status, `Content-Type: application/json` and the whole JSON body.
#[track_caller]
fn expect_json(what: &str, answer: &Answer, status: u16, body: &Value) {
    assert_eq!(
        answer.status,
        status,
        "{what}: status; body {}",
        answer.text()
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{what}: content type"
    );
    assert_eq!(&answer.json(), body, "{what}: body");
}

/// The status and an empty body.
#[track_caller]
fn expect_empty(what: &str, answer: &Answer, status: u16) {
    assert_eq!(
        answer.status,
        status,
        "{what}: status; body {}",
        answer.text()
    );
    assert!(answer.body.is_empty(), "{what}: body {:?}", answer.text());
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The fixed clock as wazo-auth's `time.time()`.
fn now(app: &TestApp) -> f64 {
    app.clock.now().micros() as f64 / 1e6
}

/// A test app at `T0`, reporting `XIVO_UUID`.
async fn spawn(db: Db, overrides: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("TESSERA_WAZO__XIVO_UUID", XIVO_UUID)];
    all.extend_from_slice(overrides);
    let app = TestApp::spawn_with(db, &all).await;
    app.clock.set(Timestamp::from_micros(T0));
    app
}

/// The tenant tree of the tenant tests: `root` > `own` > `child`, and `root` > `sibling`.
struct Tenants {
    root: String,
    own: String,
    child: String,
    sibling: String,
}

fn tenants(app: &TestApp) -> Tenants {
    let t = Tenants {
        root: new_uuid(),
        own: new_uuid(),
        child: new_uuid(),
        sibling: new_uuid(),
    };
    app.add_tenant(&t.root, None);
    app.add_tenant(&t.own, Some(&t.root));
    app.add_tenant(&t.child, Some(&t.own));
    app.add_tenant(&t.sibling, Some(&t.root));
    t
}

/// A user with password `pw` in `tenant`.
fn user(app: &TestApp, name: &str, tenant: &str, acl: &[&str]) -> String {
    let tenant = tenant.to_owned();
    app.add_user_with(name, "pw", acl, |u| u.tenant_uuid = tenant)
}

// ---------------------------------------------------------------------------------------------
// Expected bodies.

/// Format A (§1.2): one-element `reason` and `timestamp` arrays.
fn format_a(status: u16, reason: &str, at: f64) -> Value {
    json!({"reason": [reason], "timestamp": [at], "status_code": status})
}

/// Format B (§1.2): the APIException body.
fn format_b(
    at: f64,
    message: Value,
    error_id: &str,
    details: Value,
    resource: Option<&str>,
) -> Value {
    let mut body = json!({
        "message": message,
        "error_id": error_id,
        "details": details,
        "timestamp": at,
    });
    if let Some(resource) = resource {
        body["resource"] = json!(resource);
    }
    body
}

fn not_found_or_expired(at: f64, token: &str, required: &str) -> Value {
    format_b(
        at,
        json!("Unauthorized"),
        "unauthorized",
        json!({"invalid_token": token, "reason": "not_found_or_expired", "required_access": required}),
        None,
    )
}

fn missing_permission(at: f64, token: &str, required: &str, tenant: Option<&str>) -> Value {
    format_b(
        at,
        json!("Unauthorized"),
        "unauthorized",
        json!({
            "invalid_token": token,
            "reason": "missing_permission_or_invalid_tenant",
            "required_access": required,
            "tenant_uuid": tenant,
        }),
        None,
    )
}

fn unauthorized_tenant(at: f64, tenant: &str) -> Value {
    format_b(
        at,
        json!("Unauthorized tenant"),
        "unauthorized-tenant",
        json!({"tenant_uuid": tenant}),
        None,
    )
}

fn unknown_user(at: f64, uuid: &str) -> Value {
    format_b(
        at,
        json!(format!("No such user: \"{uuid}\"")),
        "unknown-user",
        json!({"uuid": uuid}),
        Some("users"),
    )
}

fn unknown_refresh_token(at: f64, client_id: &str) -> Value {
    format_b(
        at,
        json!(format!(
            "unknown refresh_token for client_id \"{client_id}\""
        )),
        "cannot-find-refresh-token-matching-client-id",
        json!({"client_id": client_id}),
        Some("tokens"),
    )
}

fn invalid_list_param(at: f64, field: &str, message: &str) -> Value {
    format_b(
        at,
        json!({ field: [message] }),
        "invalid-list-param",
        json!({}),
        Some("users"),
    )
}

/// `datetime.fromtimestamp(t).isoformat()` in the server's (this process's) local time.
fn local_iso(micros: i64, fraction: bool) -> String {
    let local = DateTime::from_timestamp_micros(micros)
        .expect("valid time")
        .with_timezone(&Local)
        .naive_local();
    if fraction {
        local.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    } else {
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// `%Y-%m-%dT%H:%M:%S.%f` in UTC.
fn utc_iso(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .expect("valid time")
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Who a token belongs to.
struct Holder<'a> {
    uuid: &'a str,
    tenant: &'a str,
    purpose: &'a str,
    acl: &'a [&'a str],
}

/// The `data` of a token answer (§1.3): for POST (`get` false) with the microseconds of the
/// clock, for GET with whole seconds; `refresh_token` only when given.
fn token_data(
    holder: &Holder<'_>,
    token: &str,
    session: &str,
    issued_micros: i64,
    lifetime: i64,
    get: bool,
    refresh_token: Option<&str>,
) -> Value {
    let issued = if get {
        issued_micros.div_euclid(1_000_000) * 1_000_000
    } else {
        issued_micros
    };
    let expires = issued + lifetime * 1_000_000;
    let pbx_user_uuid = (holder.purpose == "user").then_some(holder.uuid);
    let mut data = json!({
        "token": token,
        "auth_id": holder.uuid,
        "xivo_user_uuid": pbx_user_uuid,
        "xivo_uuid": XIVO_UUID,
        "issued_at": local_iso(issued, !get),
        "expires_at": local_iso(expires, !get),
        "utc_issued_at": utc_iso(issued),
        "utc_expires_at": utc_iso(expires),
        "acl": holder.acl,
        "metadata": {
            "uuid": holder.uuid,
            "tenant_uuid": holder.tenant,
            "auth_id": holder.uuid,
            "pbx_user_uuid": pbx_user_uuid,
            "xivo_uuid": XIVO_UUID,
            "purpose": holder.purpose,
        },
        "session_uuid": session,
        "remote_addr": "127.0.0.1",
        "user_agent": UA,
    });
    if let Some(refresh) = refresh_token {
        data["refresh_token"] = json!(refresh);
    }
    data
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// A successful POST /token: 200, JSON, `Wazo-Sessions-Revoked`, and `data` exactly as
/// expected once the random values (token, session, refresh token) are read from it.
#[track_caller]
fn expect_login(
    what: &str,
    answer: &Answer,
    holder: &Holder<'_>,
    issued_micros: i64,
    lifetime: i64,
    revoked: &str,
) -> (String, String, Option<String>) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(
        answer.header("Wazo-Sessions-Revoked"),
        Some(revoked),
        "{what}"
    );
    let body = answer.json();
    let data = &body["data"];
    let token = data["token"].as_str().expect("token").to_owned();
    let session = data["session_uuid"].as_str().expect("session").to_owned();
    let refresh = data["refresh_token"].as_str().map(str::to_owned);
    assert!(is_uuid(&token) && is_uuid(&session), "{what}: {data}");
    assert!(refresh.as_deref().is_none_or(is_uuid), "{what}: {data}");
    let expected = token_data(
        holder,
        &token,
        &session,
        issued_micros,
        lifetime,
        false,
        refresh.as_deref(),
    );
    assert_eq!(body, json!({ "data": expected }), "{what}");
    (token, session, refresh)
}

// ---------------------------------------------------------------------------------------------
// §1.2 format A and C, §1.3 POST /token.

async fn post_token_answers_are_exact(db: Db) {
    let app = spawn(db, &[]).await;
    let tenant = new_uuid();
    app.add_tenant(&tenant, None);
    let acl = ["auth.users.me.tokens.#", "confd.users.me.read"];
    let alice = user(&app, "alice", &tenant, &acl);
    let ivan = app.add_user_with("ivan", "pw", &[], |u| {
        u.tenant_uuid = tenant.clone();
        u.purpose = "internal".into();
    });
    app.add_user_with("dave", "pw", &acl, |u| {
        u.tenant_uuid = tenant.clone();
        u.enabled = false;
    });
    let at = now(&app);
    let alice_holder = Holder {
        uuid: &alice,
        tenant: &tenant,
        purpose: "user",
        acl: &acl,
    };

    // 200: the whole `data`, with microseconds on every time and Wazo-Sessions-Revoked: 0.
    let answer = post_token(&app, Some(("alice", "pw")), "{}", &[]).await;
    let (_, _, refresh) = expect_login("default lifetime", &answer, &alice_holder, T0, 7200, "0");
    assert_eq!(refresh, None, "online logins have no refresh_token key");
    let data = &answer.json()["data"];
    assert_eq!(data["utc_issued_at"], "2026-05-05T16:00:00.123456");
    assert_eq!(data["utc_expires_at"], "2026-05-05T18:00:00.123456");
    assert!(
        data["issued_at"]
            .as_str()
            .expect("str")
            .ends_with(".123456")
    );
    assert!(data.get("pbx_user_uuid").is_none());

    for (what, body, lifetime) in [
        (
            "expiration as a string (wazo-auth-cli)",
            r#"{"expiration": "3600"}"#,
            3600,
        ),
        (
            "expiration as a float, truncated",
            r#"{"expiration": 10.7}"#,
            10,
        ),
        (
            "expiration at its maximum",
            r#"{"expiration": 315360000}"#,
            315_360_000,
        ),
        ("null body counts as {}", "null", 7200),
        ("[] counts as {}", "[]", 7200),
        (
            "unknown keys are ignored",
            r#"{"foo": 1, "backend": "ldap"}"#,
            7200,
        ),
    ] {
        let answer = post_token(&app, Some(("alice", "pw")), body, &[]).await;
        expect_login(what, &answer, &alice_holder, T0, lifetime, "0");
    }
    // Without a Content-Type the body is still JSON (`get_json(force=True)`), and the
    // /api/auth/0.1 prefix answers the same.
    let answer = call(
        &app,
        Method::POST,
        "/api/auth/0.1/token",
        &[("Authorization", &basic("alice", "pw")), ("User-Agent", UA)],
        Some(br#"{"expiration": 60}"#),
    )
    .await;
    expect_login(
        "no Content-Type, nginx prefix",
        &answer,
        &alice_holder,
        T0,
        60,
        "0",
    );

    // Offline: the refresh token is in `data`; a refresh answers without one.
    let answer = post_token(
        &app,
        Some(("alice", "pw")),
        r#"{"access_type": "offline", "client_id": "app"}"#,
        &[],
    )
    .await;
    let (_, _, refresh) = expect_login("offline login", &answer, &alice_holder, T0, 7200, "0");
    let refresh = refresh.expect("offline logins return a refresh token");
    let answer = post_token(
        &app,
        None,
        &json!({"refresh_token": refresh, "client_id": "app", "expiration": 120}).to_string(),
        &[],
    )
    .await;
    let (_, _, none) = expect_login("refresh", &answer, &alice_holder, T0, 120, "0");
    assert_eq!(none, None, "a refresh returns no refresh_token");

    // Purpose internal: no pbx_user_uuid, anywhere.
    let answer = post_token(&app, Some(("ivan", "pw")), "{}", &[]).await;
    let ivan_holder = Holder {
        uuid: &ivan,
        tenant: &tenant,
        purpose: "internal",
        acl: &[],
    };
    expect_login("internal user", &answer, &ivan_holder, T0, 7200, "0");

    // A mobile offline login that replaces one reports the revoked session.
    let mobile = [("Wazo-Session-Type", "Mobile")];
    let offline_phone = r#"{"access_type": "offline", "client_id": "phone"}"#;
    let answer = post_token(&app, Some(("alice", "pw")), offline_phone, &mobile).await;
    let (first, _, _) = expect_login("mobile login", &answer, &alice_holder, T0, 7200, "0");
    let answer = post_token(&app, Some(("alice", "pw")), offline_phone, &mobile).await;
    expect_login("mobile re-login", &answer, &alice_holder, T0, 7200, "1");
    assert_eq!(
        head_token(&app, &first).await,
        404,
        "its session was revoked"
    );

    // An exact second still shows six digits on POST.
    let whole = T0_SECS * 1_000_000 + 1_000_000;
    app.clock.set(Timestamp::from_micros(whole));
    let answer = post_token(&app, Some(("alice", "pw")), "{}", &[]).await;
    expect_login("exact second", &answer, &alice_holder, whole, 7200, "0");
    let data = &answer.json()["data"];
    assert_eq!(data["utc_issued_at"], "2026-05-05T16:00:01.000000");
    assert!(
        data["issued_at"]
            .as_str()
            .expect("str")
            .ends_with(":01.000000")
    );
    assert!(
        data["expires_at"]
            .as_str()
            .expect("str")
            .ends_with(":01.000000")
    );
    app.clock.set(Timestamp::from_micros(T0));

    // 400: the reason is the repr of marshmallow's error dict.
    let schema = |m: &str| format!("{{'_schema': ['{m}']}}");
    let field = |f: &str, m: &str| format!("{{'{f}': ['{m}']}}");
    let enum_error = "{'access_type': [{'constraint_id': 'enum', 'constraint': {'choices': ['online', 'offline']}, 'message': 'Must be one of: online, offline.'}]}";
    let length = |f: &str| {
        format!(
            "{{'{f}': [{{'constraint_id': 'length', 'constraint': {{'min': 1, 'max': 1024}}, 'message': 'Length must be between 1 and 1024.'}}]}}"
        )
    };
    let long_client_id = json!({ "client_id": "c".repeat(1025) }).to_string();
    let bad_requests: Vec<(&str, &str, String)> = vec![
        (
            "offline without client_id",
            r#"{"access_type": "offline"}"#,
            schema(OFFLINE_NEEDS_CLIENT_ID),
        ),
        (
            "offline with a refresh token",
            r#"{"access_type": "offline", "client_id": "app", "refresh_token": "x"}"#,
            schema(OFFLINE_WITH_REFRESH),
        ),
        (
            "refresh token without client_id",
            r#"{"refresh_token": "x"}"#,
            schema(REFRESH_NEEDS_CLIENT_ID),
        ),
        (
            "tenant_id and domain_name",
            r#"{"tenant_id": "a", "domain_name": "b"}"#,
            schema(TENANT_OR_DOMAIN),
        ),
        (
            "saml_session_id with a refresh token",
            r#"{"refresh_token": "x", "client_id": "app", "saml_session_id": "s"}"#,
            schema(SAML_WITH_REFRESH),
        ),
        // marshmallow runs every schema validator (by method name) and collects the messages.
        (
            "two schema errors at once",
            r#"{"access_type": "offline", "refresh_token": "x"}"#,
            format!("{{'_schema': ['{OFFLINE_WITH_REFRESH}', '{REFRESH_NEEDS_CLIENT_ID}']}}"),
        ),
        ("expiration 0", r#"{"expiration": 0}"#, RANGE.to_owned()),
        ("expiration -1", r#"{"expiration": -1}"#, RANGE.to_owned()),
        (
            "expiration over ten years",
            r#"{"expiration": 315360001}"#,
            RANGE.to_owned(),
        ),
        (
            "expiration true",
            r#"{"expiration": true}"#,
            field("expiration", "Not a valid integer."),
        ),
        (
            "expiration null",
            r#"{"expiration": null}"#,
            field("expiration", "Field may not be null."),
        ),
        (
            "expiration a word",
            r#"{"expiration": "string"}"#,
            field("expiration", "Not a valid integer."),
        ),
        (
            "access_type unknown",
            r#"{"access_type": "forever"}"#,
            enum_error.to_owned(),
        ),
        (
            "access_type is case-sensitive",
            r#"{"access_type": "OFFLINE", "client_id": "a"}"#,
            enum_error.to_owned(),
        ),
        (
            "access_type not a string",
            r#"{"access_type": 1}"#,
            field("access_type", "Not a valid string."),
        ),
        (
            "client_id empty",
            r#"{"client_id": ""}"#,
            length("client_id"),
        ),
        ("client_id too long", &long_client_id, length("client_id")),
        (
            "refresh_token not a string",
            r#"{"refresh_token": 1, "client_id": "a"}"#,
            field("refresh_token", "Not a valid string."),
        ),
        ("not an object", r#""text""#, schema("Invalid input type.")),
    ];
    for (what, body, reason) in &bad_requests {
        let answer = post_token(&app, Some(("alice", "pw")), body, &[]).await;
        expect_json(what, &answer, 400, &format_a(400, reason, at));
        assert_eq!(answer.header("Wazo-Sessions-Revoked"), None, "{what}");
    }

    // 401 Authentication Failed, whatever failed.
    let failed = format_a(401, "Authentication Failed", at);
    let wrong_client = json!({"refresh_token": refresh, "client_id": "other"}).to_string();
    let unknown_refresh = json!({"refresh_token": new_uuid(), "client_id": "app"}).to_string();
    let alice_basic = basic("alice", "pw");
    let cases: [(&str, Option<String>, &str); 8] = [
        ("wrong password", Some(basic("alice", "nope")), "{}"),
        ("unknown user", Some(basic("nobody", "pw")), "{}"),
        ("disabled user", Some(basic("dave", "pw")), "{}"),
        (
            "Basic Og== (no credentials)",
            Some("Basic Og==".into()),
            "{}",
        ),
        ("empty password", Some(basic("alice", "")), "{}"),
        ("no Authorization", None, "{}"),
        (
            "refresh token, wrong client_id, Basic ignored",
            Some(alice_basic),
            &wrong_client,
        ),
        ("unknown refresh token", None, &unknown_refresh),
    ];
    for (what, authorization, body) in &cases {
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend(authorization.as_deref().map(|a| ("Authorization", a)));
        let answer = call(
            &app,
            Method::POST,
            "/0.1/token",
            &headers,
            Some(body.as_bytes()),
        )
        .await;
        expect_json(what, &answer, 401, &failed);
        assert_eq!(answer.header("Wazo-Sessions-Revoked"), None, "{what}");
    }

    // Format C: an empty or non-JSON body, on POST /token and on scopes/check.
    let (token, _, _) = login(&app, "alice", "{}", &[]).await;
    let check = format!("/0.1/token/{token}/scopes/check");
    let framework = json!({ "message": NOT_UNDERSTOOD });
    for path in ["/0.1/token", "/api/auth/0.1/token", check.as_str()] {
        for (what, content_type, body) in [
            ("empty body", Some("application/json"), &b""[..]),
            ("empty body, no Content-Type", None, &b""[..]),
            (
                "not JSON",
                Some("application/json"),
                &b"expiration=3600"[..],
            ),
            (
                "truncated JSON",
                Some("application/json"),
                &b"{\"scopes\": ["[..],
            ),
            (
                "form body",
                Some("application/x-www-form-urlencoded"),
                &b"a=b"[..],
            ),
        ] {
            let auth = basic("alice", "pw");
            let mut headers = vec![("Authorization", auth.as_str())];
            headers.extend(content_type.map(|c| ("Content-Type", c)));
            let answer = call(&app, Method::POST, path, &headers, Some(body)).await;
            expect_json(&format!("{path}: {what}"), &answer, 400, &framework);
        }
    }
}

/// §1.3: the concurrent-session limit is a 429 in format A; `internal` users are exempt.
async fn the_session_limit_is_a_429(db: Db) {
    let app = spawn(db, &[("TESSERA_WAZO__MAX_USER_CONCURRENT_SESSIONS", "2")]).await;
    let tenant = new_uuid();
    app.add_tenant(&tenant, None);
    let alice = user(&app, "alice", &tenant, &[]);
    let eve = app.add_user_with("eve", "pw", &[], |u| {
        u.tenant_uuid = tenant.clone();
        u.purpose = "external_api".into();
    });
    app.add_user_with("ivan", "pw", &[], |u| {
        u.tenant_uuid = tenant.clone();
        u.purpose = "internal".into();
    });
    let at = now(&app);
    let limit = |uuid: &str| {
        format_a(
            429,
            &format!("User {uuid} has exceeded the maximum number of active sessions"),
            at,
        )
    };

    let (first, _, refresh) = login(
        &app,
        "alice",
        r#"{"access_type": "offline", "client_id": "app", "expiration": 60}"#,
        &[],
    )
    .await;
    login(&app, "alice", "{}", &[]).await;
    let answer = post_token(&app, Some(("alice", "pw")), "{}", &[]).await;
    expect_json("third session", &answer, 429, &limit(&alice));
    // As wazo-auth: no Retry-After and no Wazo-Sessions-Revoked on the 429.
    assert_eq!(answer.header("Retry-After"), None);
    assert_eq!(answer.header("Wazo-Sessions-Revoked"), None);
    // The check applies to refresh-token logins too.
    let body = json!({"refresh_token": refresh, "client_id": "app"}).to_string();
    let answer = post_token(&app, None, &body, &[]).await;
    expect_json("refresh at the limit", &answer, 429, &limit(&alice));
    // A mobile offline login is checked before its purge.
    let answer = post_token(
        &app,
        Some(("alice", "pw")),
        r#"{"access_type": "offline", "client_id": "app"}"#,
        &[("Wazo-Session-Type", "mobile")],
    )
    .await;
    expect_json("mobile login at the limit", &answer, 429, &limit(&alice));

    // Revoking one session makes room again.
    let answer = call(
        &app,
        Method::DELETE,
        &format!("/0.1/token/{first}"),
        &[],
        None,
    )
    .await;
    expect_json(
        "revoke",
        &answer,
        200,
        &json!({"data": {"message": "success"}}),
    );
    let answer = post_token(&app, None, &body, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // external_api users are limited too.
    login(&app, "eve", "{}", &[]).await;
    login(&app, "eve", "{}", &[]).await;
    let answer = post_token(&app, Some(("eve", "pw")), "{}", &[]).await;
    expect_json("external_api", &answer, 429, &limit(&eve));

    // internal users are exempt.
    for _ in 0..4 {
        login(&app, "ivan", "{}", &[]).await;
    }
}

// ---------------------------------------------------------------------------------------------
// §1.4 GET | HEAD | DELETE /token/{token}.

async fn token_validation_answers_are_exact(db: Db) {
    let app = spawn(db, &[]).await;
    let t = tenants(&app);
    let acl = [
        "confd.users.me.read",
        "dird.*.read",
        "auth.users.me.tokens.#",
    ];
    let alice = user(&app, "alice", &t.own, &acl);
    let holder = Holder {
        uuid: &alice,
        tenant: &t.own,
        purpose: "user",
        acl: &acl,
    };
    let (token, session, refresh) = login(
        &app,
        "alice",
        r#"{"access_type": "offline", "client_id": "app", "expiration": 3600}"#,
        &[],
    )
    .await;
    let refresh = refresh.expect("refresh token");
    let at = now(&app);
    let no_such_token = format_a(404, "No such token", at);
    let scope_denied = |scope: &str| format_a(403, &format!("Unauthorized for {scope}"), at);
    let tenant_denied =
        |tenant: &str| format_a(403, &format!("Unauthorized for tenant {tenant}"), at);

    // GET 200: the contract's keys exactly, no refresh_token, whole seconds read back.
    let get_data = json!({ "data": token_data(&holder, &token, &session, T0, 3600, true, None) });
    let answer = call(&app, Method::GET, &format!("/0.1/token/{token}"), &[], None).await;
    expect_json("GET", &answer, 200, &get_data);
    let body = answer.json();
    let mut keys: Vec<&str> = body["data"]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "acl",
            "auth_id",
            "expires_at",
            "issued_at",
            "metadata",
            "remote_addr",
            "session_uuid",
            "token",
            "user_agent",
            "utc_expires_at",
            "utc_issued_at",
            "xivo_user_uuid",
            "xivo_uuid",
        ]
    );
    assert_eq!(body["data"]["utc_issued_at"], "2026-05-05T16:00:00.000000");
    assert_eq!(body["data"]["utc_expires_at"], "2026-05-05T17:00:00.000000");
    assert!(
        !body["data"]["issued_at"]
            .as_str()
            .expect("str")
            .contains('.')
    );
    assert!(
        !body["data"]["expires_at"]
            .as_str()
            .expect("str")
            .contains('.')
    );

    // Each query against GET (JSON) and HEAD (status only).
    let upper = token.to_uppercase();
    let unknown = new_uuid();
    let cases: Vec<(&str, String, u16, Option<Value>)> = vec![
        (
            "upper-case token",
            upper.clone(),
            200,
            Some(get_data.clone()),
        ),
        (
            "scope granted",
            format!("{token}?scope=confd.users.me.read"),
            200,
            Some(get_data.clone()),
        ),
        (
            "scope via me",
            format!("{token}?scope=confd.users.{alice}.read"),
            200,
            Some(get_data.clone()),
        ),
        (
            "scope via *",
            format!("{token}?scope=dird.x.read"),
            200,
            Some(get_data.clone()),
        ),
        (
            "own tenant",
            format!("{token}?tenant={}", t.own),
            200,
            Some(get_data.clone()),
        ),
        (
            "sub-tenant",
            format!("{token}?tenant={}", t.child),
            200,
            Some(get_data.clone()),
        ),
        (
            "unknown token",
            unknown.clone(),
            404,
            Some(no_such_token.clone()),
        ),
        (
            "unknown token, bad scope",
            format!("{unknown}?scope=nope&tenant={}", t.sibling),
            404,
            Some(no_such_token.clone()),
        ),
        (
            "refresh token as token",
            refresh.clone(),
            404,
            Some(no_such_token.clone()),
        ),
        // The contract's 404 here is Flask's HTML page; Tessera validates any token by value
        // (DESIGN §4: OAuth2 tokens are not UUIDs), so an unknown one is format A.
        (
            "not a UUID",
            "abcdef".to_owned(),
            404,
            Some(no_such_token.clone()),
        ),
        (
            "scope denied",
            format!("{token}?scope=confd.users.other.read"),
            403,
            Some(scope_denied("confd.users.other.read")),
        ),
        (
            "* is one segment",
            format!("{token}?scope=dird.x.y.read"),
            403,
            Some(scope_denied("dird.x.y.read")),
        ),
        (
            "empty scope",
            format!("{token}?scope="),
            403,
            Some(scope_denied("")),
        ),
        (
            "non-ASCII scope",
            format!("{token}?scope=confd.caf%C3%A9"),
            403,
            Some(scope_denied("confd.cafe")),
        ),
        (
            "scope before tenant",
            format!("{token}?scope=nope&tenant={}", t.sibling),
            403,
            Some(scope_denied("nope")),
        ),
        (
            "sibling tenant",
            format!("{token}?tenant={}", t.sibling),
            403,
            Some(tenant_denied(&t.sibling)),
        ),
        (
            "parent tenant",
            format!("{token}?tenant={}", t.root),
            403,
            Some(tenant_denied(&t.root)),
        ),
        (
            "unknown tenant",
            format!("{token}?tenant={unknown}"),
            403,
            Some(tenant_denied(&unknown)),
        ),
    ];
    for (what, tail, status, body) in &cases {
        let path = format!("/0.1/token/{tail}");
        let answer = call(&app, Method::GET, &path, &[], None).await;
        if let Some(body) = body {
            expect_json(&format!("GET {what}"), &answer, *status, body);
        }
        let answer = call(&app, Method::HEAD, &path, &[], None).await;
        let head_status = if *status == 200 { 204 } else { *status };
        expect_empty(&format!("HEAD {what}"), &answer, head_status);
    }

    // DELETE: 200 success, known or not; the token is gone, its refresh token is not.
    let success = json!({"data": {"message": "success"}});
    let answer = call(
        &app,
        Method::DELETE,
        &format!("/0.1/token/{unknown}"),
        &[],
        None,
    )
    .await;
    expect_json("DELETE unknown", &answer, 200, &success);
    let answer = call(
        &app,
        Method::DELETE,
        &format!("/0.1/token/{token}"),
        &[],
        None,
    )
    .await;
    expect_json("DELETE", &answer, 200, &success);
    let answer = call(
        &app,
        Method::DELETE,
        &format!("/0.1/token/{token}"),
        &[],
        None,
    )
    .await;
    expect_json("DELETE again", &answer, 200, &success);
    let answer = call(&app, Method::GET, &format!("/0.1/token/{token}"), &[], None).await;
    expect_json("GET deleted", &answer, 404, &no_such_token);
    assert_eq!(head_token(&app, &token).await, 404);
    let body = json!({"refresh_token": refresh, "client_id": "app"}).to_string();
    assert_eq!(post_token(&app, None, &body, &[]).await.status, 200);

    // Expired: valid through its expiry second, 404 from the next one.
    let (short, _, _) = login(&app, "alice", r#"{"expiration": 60}"#, &[]).await;
    app.clock.advance_secs(60);
    assert_eq!(head_token(&app, &short).await, 204);
    app.clock.advance_secs(1);
    let answer = call(&app, Method::GET, &format!("/0.1/token/{short}"), &[], None).await;
    expect_json(
        "GET expired",
        &answer,
        404,
        &format_a(404, "No such token", now(&app)),
    );
    let answer = call(
        &app,
        Method::HEAD,
        &format!("/0.1/token/{short}"),
        &[],
        None,
    )
    .await;
    expect_empty("HEAD expired", &answer, 404);
}

// ---------------------------------------------------------------------------------------------
// §1.5 POST /token/{token}/scopes/check.

async fn scope_check_answers_are_exact(db: Db) {
    let app = spawn(db, &[]).await;
    let t = tenants(&app);
    let alice = user(
        &app,
        "alice",
        &t.own,
        &["confd.users.me.read", "dird.*.read", "!dird.secret.read"],
    );
    let (token, _, _) = login(&app, "alice", "{}", &[]).await;
    let at = now(&app);
    let check = |token: &str| format!("/0.1/token/{token}/scopes/check");
    let post = |path: String, body: String| {
        let app = &app;
        async move {
            call(
                app,
                Method::POST,
                &path,
                &[("Content-Type", "application/json")],
                Some(body.as_bytes()),
            )
            .await
        }
    };
    let me = format!("confd.users.{alice}.read");
    let scopes = json!([
        "confd.users.me.read",
        me,
        "dird.x.read",
        "dird.x.y.read",
        "dird.secret.read",
        "calld",
        "confd.users.me.read",
    ]);
    let expected = json!({"scopes": {
        "confd.users.me.read": true,
        me.as_str(): true,
        "dird.x.read": true,
        "dird.x.y.read": false,
        "dird.secret.read": false,
        "calld": false,
    }});
    let unknown = new_uuid();
    let cases: Vec<(&str, String, Value, u16, Value)> = vec![
        (
            "scopes",
            check(&token),
            json!({"scopes": scopes}),
            200,
            expected.clone(),
        ),
        (
            "own tenant",
            check(&token),
            json!({"scopes": scopes, "tenant_uuid": t.own}),
            200,
            expected.clone(),
        ),
        (
            "sub-tenant",
            check(&token),
            json!({"scopes": scopes, "tenant_uuid": t.child}),
            200,
            expected.clone(),
        ),
        (
            "null tenant",
            check(&token),
            json!({"scopes": scopes, "tenant_uuid": null}),
            200,
            expected.clone(),
        ),
        (
            "empty list",
            check(&token),
            json!({"scopes": []}),
            200,
            json!({"scopes": {}}),
        ),
        (
            "upper-case token",
            check(&token.to_uppercase()),
            json!({"scopes": ["calld"]}),
            200,
            json!({"scopes": {"calld": false}}),
        ),
        (
            "unknown token",
            check(&unknown),
            json!({"scopes": ["calld"]}),
            404,
            format_a(404, "No such token", at),
        ),
        (
            "unknown token, bad tenant",
            check(&unknown),
            json!({"scopes": ["calld"], "tenant_uuid": t.sibling}),
            404,
            format_a(404, "No such token", at),
        ),
        (
            "sibling tenant",
            check(&token),
            json!({"scopes": ["calld"], "tenant_uuid": t.sibling}),
            403,
            format_a(403, &format!("Unauthorized for tenant {}", t.sibling), at),
        ),
        (
            "parent tenant",
            check(&token),
            json!({"scopes": ["calld"], "tenant_uuid": t.root}),
            403,
            format_a(403, &format!("Unauthorized for tenant {}", t.root), at),
        ),
        (
            "a non-string scope",
            check(&token),
            json!({"scopes": [true]}),
            400,
            format_a(400, "{'scopes': {0: ['Not a valid string.']}}", at),
        ),
        (
            "scopes missing",
            check(&token),
            json!({}),
            400,
            format_a(400, "{'scopes': ['Missing data for required field.']}", at),
        ),
        (
            "scopes not a list",
            check(&token),
            json!({"scopes": "calld"}),
            400,
            format_a(400, "{'scopes': ['Not a valid list.']}", at),
        ),
    ];
    for (what, path, body, status, expected) in &cases {
        let answer = post(path.clone(), body.to_string()).await;
        expect_json(what, &answer, *status, expected);
    }
    // Duplicates are collapsed: each scope appears once in the body text.
    let answer = post(check(&token), json!({"scopes": scopes}).to_string()).await;
    assert_eq!(
        answer.text().matches("\"confd.users.me.read\"").count(),
        1,
        "{}",
        answer.text()
    );

    // An expired token is unknown.
    app.clock.advance_secs(7201);
    let answer = post(check(&token), json!({"scopes": ["calld"]}).to_string()).await;
    expect_json(
        "expired",
        &answer,
        404,
        &format_a(404, "No such token", now(&app)),
    );
}

// ---------------------------------------------------------------------------------------------
// §1.6 refresh-token endpoints.

/// A GET on an `X-Auth-Token` endpoint and its whole expected answer.
struct Get<'a> {
    what: &'a str,
    token: Option<&'a str>,
    path: String,
    wazo_tenant: Option<&'a str>,
    status: u16,
    body: Value,
}

impl<'a> Get<'a> {
    fn new(what: &'a str, token: Option<&'a str>, path: String, status: u16, body: Value) -> Self {
        Get {
            what,
            token,
            path,
            wazo_tenant: None,
            status,
            body,
        }
    }

    /// A 200 answer.
    fn ok(what: &'a str, token: &'a str, path: String, body: Value) -> Self {
        Get::new(what, Some(token), path, 200, body)
    }

    fn in_tenant(mut self, tenant: &'a str) -> Self {
        self.wazo_tenant = Some(tenant);
        self
    }

    async fn check(&self, app: &TestApp) {
        let headers: Vec<(&str, &str)> = self
            .wazo_tenant
            .map(|t| ("Wazo-Tenant", t))
            .into_iter()
            .collect();
        let answer = get(app, &self.path, self.token, &headers).await;
        expect_json(self.what, &answer, self.status, &self.body);
    }
}

/// A DELETE on an `X-Auth-Token` endpoint: 204 and no body, or an error body.
async fn check_delete(
    app: &TestApp,
    what: &str,
    token: &str,
    path: &str,
    error: Option<(u16, Value)>,
) {
    let answer = delete(app, path, token).await;
    match error {
        Some((status, body)) => expect_json(what, &answer, status, &body),
        None => expect_empty(what, &answer, 204),
    }
}

/// A refresh-token list item (`created_at` with offset, `metadata` `{}`).
fn rt_item(client_id: &str, created_at: &str, mobile: bool, user: &str, tenant: &str) -> Value {
    json!({
        "client_id": client_id,
        "created_at": created_at,
        "mobile": mobile,
        "user_uuid": user,
        "tenant_uuid": tenant,
        "metadata": {},
    })
}

fn listing(total: u64, filtered: u64, items: &[&Value]) -> Value {
    json!({"total": total, "filtered": filtered, "items": items})
}

async fn refresh_token_endpoint_answers_are_exact(db: Db) {
    let app = spawn(db, &[]).await;
    let t = tenants(&app);
    let own_acl = ["auth.users.me.tokens.#"];
    let alice = user(&app, "alice", &t.own, &own_acl);
    let carol = user(&app, "carol", &t.child, &own_acl);
    let bob = user(&app, "bob", &t.sibling, &own_acl);
    let boss_acl = [
        "auth.tokens.read",
        "auth.users.*.tokens.read",
        "auth.users.*.tokens.*.delete",
    ];
    user(&app, "boss", &t.own, &boss_acl);
    let narrow_acl = format!("auth.users.{alice}.tokens.com_wazo_app.delete");
    user(&app, "narrow", &t.own, &[&narrow_acl]);
    let dotted_acl = format!("auth.users.{alice}.tokens.com.wazo.app.delete");
    user(&app, "dotted", &t.own, &[&dotted_acl]);
    user(&app, "plain", &t.own, &[]);

    let offline = |id: &str| json!({"access_type": "offline", "client_id": id}).to_string();
    let mobile = [("Wazo-Session-Type", "mobile")];
    let (alice_t, _, _) = login(&app, "alice", &offline("foobar"), &[]).await;
    app.clock.advance_secs(10);
    login(&app, "alice", &offline("com.wazo.app"), &mobile).await;
    app.clock.advance_secs(10);
    login(&app, "alice", &offline("baz"), &[]).await;
    app.clock.advance_secs(10);
    let (carol_t, _, _) = login(&app, "carol", &offline("carol-app"), &[]).await;
    login(&app, "bob", &offline("bob-app"), &[]).await;
    app.clock.advance_secs(10);
    let (boss_t, _, _) = login(&app, "boss", "{}", &[]).await;
    let (narrow_t, _, _) = login(&app, "narrow", "{}", &[]).await;
    let (dotted_t, _, _) = login(&app, "dotted", "{}", &[]).await;
    let (plain_t, _, _) = login(&app, "plain", "{}", &[]).await;
    let at = now(&app);

    let foobar_rt = rt_item("foobar", "2026-05-05T16:00:00+00:00", false, &alice, &t.own);
    let wazo_rt = rt_item(
        "com.wazo.app",
        "2026-05-05T16:00:10+00:00",
        true,
        &alice,
        &t.own,
    );
    let baz_rt = rt_item("baz", "2026-05-05T16:00:20+00:00", false, &alice, &t.own);
    let carol_rt = rt_item(
        "carol-app",
        "2026-05-05T16:00:30+00:00",
        false,
        &carol,
        &t.child,
    );
    let all = listing(3, 3, &[&foobar_rt, &wazo_rt, &baz_rt]);
    let mine = |query: &str| format!("/0.1/users/me/tokens{query}");
    let tokens_of = |uuid: &str| format!("/0.1/users/{uuid}/tokens");
    let me_read = "auth.users.me.tokens.read";
    let unknown = new_uuid();
    let alice_upper = alice.to_uppercase();
    let bad = |field: &str, message: &str| invalid_list_param(at, field, message);
    let a = alice_t.as_str();

    let cases = vec![
        Get::ok("me", a, mine(""), all.clone()),
        Get::ok("own uuid", a, tokens_of(&alice), all.clone()),
        Get::ok(
            "nginx prefix",
            a,
            "/api/auth/0.1/users/me/tokens".into(),
            all.clone(),
        ),
        Get::ok("search", a, mine("?search=baz"), listing(3, 1, &[&baz_rt])),
        Get::ok(
            "search, any case",
            a,
            mine("?search=BAZ"),
            listing(3, 1, &[&baz_rt]),
        ),
        Get::ok(
            "search, words",
            a,
            mine("?search=com%20app"),
            listing(3, 1, &[&wazo_rt]),
        ),
        Get::ok(
            "mobile=True",
            a,
            mine("?mobile=True"),
            listing(3, 1, &[&wazo_rt]),
        ),
        Get::ok(
            "mobile=False",
            a,
            mine("?mobile=False"),
            listing(3, 2, &[&foobar_rt, &baz_rt]),
        ),
        Get::ok(
            "client_id",
            a,
            mine("?client_id=baz"),
            listing(3, 1, &[&baz_rt]),
        ),
        Get::ok(
            "order, direction",
            a,
            mine("?order=client_id&direction=desc"),
            listing(3, 3, &[&foobar_rt, &wazo_rt, &baz_rt]),
        ),
        Get::ok(
            "order=mobile",
            a,
            mine("?order=mobile&direction=desc&limit=1"),
            listing(3, 3, &[&wazo_rt]),
        ),
        Get::ok(
            "limit, offset",
            a,
            mine("?limit=1&offset=1"),
            listing(3, 3, &[&wazo_rt]),
        ),
        Get::ok("limit=0", a, mine("?limit=0"), listing(3, 3, &[])),
        Get::ok(
            "unknown parameters",
            a,
            mine("?tenant_uuid=x&foo=bar"),
            all.clone(),
        ),
        // 400 invalid-list-param: `message` is a dict.
        Get::new(
            "order",
            Some(a),
            mine("?order=uuid"),
            400,
            bad("order", "Must be one of: created_at, client_id, mobile."),
        ),
        Get::new(
            "direction",
            Some(a),
            mine("?direction=up"),
            400,
            bad("direction", "Must be one of: asc, desc."),
        ),
        Get::new(
            "limit=-1",
            Some(a),
            mine("?limit=-1"),
            400,
            bad("limit", "Must be greater than or equal to 0."),
        ),
        Get::new(
            "offset=-1",
            Some(a),
            mine("?offset=-1"),
            400,
            bad("offset", "Must be greater than or equal to 0."),
        ),
        Get::new(
            "limit=abc",
            Some(a),
            mine("?limit=abc"),
            400,
            bad("limit", "Not a valid integer."),
        ),
        Get::new(
            "mobile=maybe",
            Some(a),
            mine("?mobile=maybe"),
            400,
            bad("mobile", "Not a valid boolean."),
        ),
        Get::new(
            "recurse=maybe",
            Some(&boss_t),
            "/0.1/tokens?recurse=maybe".into(),
            400,
            bad("recurse", "Not a valid boolean."),
        ),
        // 401 not_found_or_expired, echoing the header ("" when absent).
        Get::new(
            "no token",
            None,
            mine(""),
            401,
            not_found_or_expired(at, "", me_read),
        ),
        Get::new(
            "no token, bad parameter",
            None,
            mine("?limit=-1"),
            401,
            not_found_or_expired(at, "", me_read),
        ),
        Get::new(
            "unknown token",
            Some(&unknown),
            mine(""),
            401,
            not_found_or_expired(at, &unknown, me_read),
        ),
        Get::new(
            "not a token",
            Some("not-a-token"),
            mine(""),
            401,
            not_found_or_expired(at, "not-a-token", me_read),
        ),
        Get::new(
            "no token on /tokens",
            None,
            "/0.1/tokens".into(),
            401,
            not_found_or_expired(at, "", "auth.tokens.read"),
        ),
        // 401 missing_permission_or_invalid_tenant: `tenant_uuid` null or the Wazo-Tenant header.
        Get::new(
            "no ACL",
            Some(&plain_t),
            "/0.1/tokens".into(),
            401,
            missing_permission(at, &plain_t, "auth.tokens.read", None),
        ),
        Get::new(
            "no ACL, Wazo-Tenant",
            Some(&plain_t),
            "/0.1/tokens".into(),
            401,
            missing_permission(at, &plain_t, "auth.tokens.read", Some(&t.own)),
        )
        .in_tenant(&t.own),
        Get::new(
            "another user's tokens",
            Some(&carol_t),
            tokens_of(&alice),
            401,
            missing_permission(
                at,
                &carol_t,
                &format!("auth.users.{alice}.tokens.read"),
                None,
            ),
        ),
        Get::new(
            "ACL names use the lower-case uuid",
            Some(&plain_t),
            tokens_of(&alice_upper),
            401,
            missing_permission(
                at,
                &plain_t,
                &format!("auth.users.{alice}.tokens.read"),
                None,
            ),
        ),
        // 401 unauthorized-tenant.
        Get::new(
            "sibling Wazo-Tenant",
            Some(a),
            mine(""),
            401,
            unauthorized_tenant(at, &t.sibling),
        )
        .in_tenant(&t.sibling),
        Get::new(
            "parent Wazo-Tenant",
            Some(&boss_t),
            "/0.1/tokens".into(),
            401,
            unauthorized_tenant(at, &t.root),
        )
        .in_tenant(&t.root),
        // /tokens: the scoped tenant, `recurse` for those below.
        Get::ok("tenant", &boss_t, "/0.1/tokens".into(), all.clone()),
        Get::ok(
            "recurse=True",
            &boss_t,
            "/0.1/tokens?recurse=True".into(),
            listing(4, 4, &[&foobar_rt, &wazo_rt, &baz_rt, &carol_rt]),
        ),
        Get::ok(
            "Wazo-Tenant sub-tenant",
            &boss_t,
            "/0.1/tokens".into(),
            listing(1, 1, &[&carol_rt]),
        )
        .in_tenant(&t.child),
        Get::ok(
            "recurse, search",
            &boss_t,
            "/0.1/tokens?recurse=true&search=app".into(),
            listing(4, 2, &[&wazo_rt, &carol_rt]),
        ),
        // /users/{uuid}/tokens: always recursive; users out of sight do not exist.
        Get::ok(
            "sub-tenant user",
            &boss_t,
            tokens_of(&carol),
            listing(1, 1, &[&carol_rt]),
        ),
        Get::ok(
            "upper-case uuid",
            &boss_t,
            tokens_of(&alice_upper),
            all.clone(),
        ),
        Get::new(
            "sibling tenant user",
            Some(&boss_t),
            tokens_of(&bob),
            404,
            unknown_user(at, &bob),
        ),
        Get::new(
            "unknown user",
            Some(&boss_t),
            tokens_of(&unknown),
            404,
            unknown_user(at, &unknown),
        ),
        Get::new(
            "user above Wazo-Tenant",
            Some(&boss_t),
            tokens_of(&alice),
            404,
            unknown_user(at, &alice),
        )
        .in_tenant(&t.child),
    ];
    for case in &cases {
        case.check(&app).await;
    }

    // DELETE: the ACL names the client id with every `.` as `_`.
    let wazo_app = format!("/0.1/users/{alice}/tokens/com.wazo.app");
    let required = format!("auth.users.{alice}.tokens.com_wazo_app.delete");
    let dots = missing_permission(at, &dotted_t, &required, None);
    check_delete(
        &app,
        "dots in the ACL",
        &dotted_t,
        &wazo_app,
        Some((401, dots)),
    )
    .await;
    check_delete(&app, "com.wazo.app", &narrow_t, &wazo_app, None).await;
    let gone = unknown_refresh_token(at, "com.wazo.app");
    check_delete(
        &app,
        "com.wazo.app again",
        &narrow_t,
        &wazo_app,
        Some((404, gone)),
    )
    .await;

    let unknown_rt = |client_id: &str| Some((404, unknown_refresh_token(at, client_id)));
    let no_such_user = |uuid: &str| Some((404, unknown_user(at, uuid)));
    let no_right = missing_permission(
        at,
        &plain_t,
        &format!("auth.users.{alice}.tokens.baz.delete"),
        None,
    );
    let no_token = not_found_or_expired(at, "", "auth.users.me.tokens.baz.delete");
    let deletes = [
        ("me", a, mine("/foobar"), None),
        ("me again", a, mine("/foobar"), unknown_rt("foobar")),
        (
            "never existed",
            &boss_t,
            format!("/0.1/users/{alice}/tokens/nope"),
            unknown_rt("nope"),
        ),
        (
            "unknown user",
            &boss_t,
            format!("/0.1/users/{unknown}/tokens/x"),
            no_such_user(&unknown),
        ),
        (
            "sibling tenant user",
            &boss_t,
            format!("/0.1/users/{bob}/tokens/bob-app"),
            no_such_user(&bob),
        ),
        (
            "no right",
            &plain_t,
            format!("/0.1/users/{alice}/tokens/baz"),
            Some((401, no_right)),
        ),
        ("no token", "", mine("/baz"), Some((401, no_token))),
        (
            "sub-tenant user",
            &boss_t,
            format!("/0.1/users/{carol}/tokens/carol-app"),
            None,
        ),
    ];
    for (what, token, path, error) in deletes {
        check_delete(&app, what, token, &path, error).await;
    }
    let answer = get(&app, &mine(""), Some(a), &[]).await;
    expect_json(
        "after the deletes",
        &answer,
        200,
        &listing(1, 1, &[&baz_rt]),
    );
    // Access tokens issued from a deleted refresh token stay valid.
    assert_eq!(head_token(&app, a).await, 204);
}

// ---------------------------------------------------------------------------------------------
// §1.7 sessions.

fn session_item(uuid: &str, mobile: bool, tenant: &str, user: &str) -> Value {
    json!({"uuid": uuid, "mobile": mobile, "tenant_uuid": tenant, "user_uuid": user})
}

async fn session_endpoint_answers_are_exact(db: Db) {
    let app = spawn(db, &[]).await;
    let t = tenants(&app);
    let boss = user(
        &app,
        "boss",
        &t.own,
        &["auth.sessions.#", "auth.users.*.sessions.#"],
    );
    let alice = user(&app, "alice", &t.own, &["auth.users.me.sessions.#"]);
    let carol = user(&app, "carol", &t.child, &[]);
    user(&app, "bob", &t.sibling, &[]);

    let (boss_t, s_boss, _) = login(&app, "boss", "{}", &[]).await;
    app.clock.advance_secs(10);
    let mobile = [("Wazo-Session-Type", "mobile")];
    let (m1_t, m1, _) = login(&app, "alice", "{}", &mobile).await;
    app.clock.advance_secs(10);
    let (d1_t, d1, _) = login(&app, "alice", "{}", &[]).await;
    app.clock.advance_secs(5);
    let (alice_t, d2, _) = login(&app, "alice", "{}", &[]).await;
    app.clock.advance_secs(5);
    let (_, c1, _) = login(&app, "carol", "{}", &[]).await;
    let (bob_t, b1, _) = login(&app, "bob", "{}", &[]).await;
    let at = now(&app);

    let boss_s = session_item(&s_boss, false, &t.own, &boss);
    let m1_s = session_item(&m1, true, &t.own, &alice);
    let d1_s = session_item(&d1, false, &t.own, &alice);
    let d2_s = session_item(&d2, false, &t.own, &alice);
    let c1_s = session_item(&c1, false, &t.child, &carol);
    let own = listing(4, 4, &[&boss_s, &d1_s, &d2_s, &m1_s]);
    let sessions = |query: &str| format!("/0.1/sessions{query}");
    let sessions_of = |uuid: &str| format!("/0.1/users/{uuid}/sessions");
    let unknown = new_uuid();
    let bad = |field: &str, message: &str| invalid_list_param(at, field, message);
    let b = boss_t.as_str();
    let a = alice_t.as_str();

    let cases = vec![
        Get::ok("tenant", b, sessions(""), own.clone()),
        Get::ok("order=mobile", b, sessions("?order=mobile"), own.clone()),
        Get::ok(
            "recurse=True",
            b,
            sessions("?recurse=True"),
            listing(5, 5, &[&boss_s, &d1_s, &d2_s, &c1_s, &m1_s]),
        ),
        Get::ok(
            "desc",
            b,
            sessions("?direction=desc"),
            listing(4, 4, &[&m1_s, &d2_s, &d1_s, &boss_s]),
        ),
        Get::ok(
            "limit, offset",
            b,
            sessions("?limit=2&offset=1"),
            listing(4, 4, &[&d1_s, &d2_s]),
        ),
        Get::ok(
            "Wazo-Tenant sub-tenant",
            b,
            sessions(""),
            listing(1, 1, &[&c1_s]),
        )
        .in_tenant(&t.child),
        Get::new(
            "Wazo-Tenant sibling",
            Some(b),
            sessions(""),
            401,
            unauthorized_tenant(at, &t.sibling),
        )
        .in_tenant(&t.sibling),
        Get::ok(
            "own sessions",
            a,
            sessions_of(&alice),
            listing(3, 3, &[&d1_s, &d2_s, &m1_s]),
        ),
        Get::ok(
            "sub-tenant user",
            b,
            sessions_of(&carol),
            listing(1, 1, &[&c1_s]),
        ),
        Get::new(
            "unknown user",
            Some(b),
            sessions_of(&unknown),
            404,
            unknown_user(at, &unknown),
        ),
        Get::new(
            "no right",
            Some(a),
            sessions(""),
            401,
            missing_permission(at, a, "auth.sessions.read", None),
        ),
        Get::new(
            "another user's sessions",
            Some(a),
            sessions_of(&boss),
            401,
            missing_permission(at, a, &format!("auth.users.{boss}.sessions.read"), None),
        ),
        Get::new(
            "no token",
            None,
            sessions(""),
            401,
            not_found_or_expired(at, "", "auth.sessions.read"),
        ),
        Get::new(
            "limit=-1",
            Some(b),
            sessions("?limit=-1"),
            400,
            bad("limit", "Must be greater than or equal to 0."),
        ),
        Get::new(
            "offset=abc",
            Some(b),
            sessions("?offset=abc"),
            400,
            bad("offset", "Not a valid integer."),
        ),
        Get::new(
            "direction",
            Some(b),
            sessions("?direction=up"),
            400,
            bad("direction", "Must be one of: asc, desc."),
        ),
    ];
    for case in &cases {
        case.check(&app).await;
    }

    // DELETE: 204 with no body, known or not.
    let no_right = missing_permission(at, a, &format!("auth.sessions.{s_boss}.delete"), None);
    let deletes = [
        (
            "unknown session",
            b,
            format!("/0.1/sessions/{unknown}"),
            None,
        ),
        (
            "unknown session again",
            b,
            format!("/0.1/sessions/{unknown}"),
            None,
        ),
        (
            "another tenant's session",
            b,
            format!("/0.1/sessions/{b1}"),
            None,
        ),
        ("a session", b, format!("/0.1/sessions/{m1}"), None),
        ("a session again", b, format!("/0.1/sessions/{m1}"), None),
        (
            "a user's session",
            a,
            format!("/0.1/users/{alice}/sessions/{d1}"),
            None,
        ),
        (
            "a user's session again",
            a,
            format!("/0.1/users/{alice}/sessions/{d1}"),
            None,
        ),
        (
            "no right",
            a,
            format!("/0.1/sessions/{s_boss}"),
            Some((401, no_right)),
        ),
        (
            "unknown user",
            b,
            format!("/0.1/users/{unknown}/sessions/{s_boss}"),
            Some((404, unknown_user(at, &unknown))),
        ),
    ];
    for (what, token, path, error) in deletes {
        check_delete(&app, what, token, &path, error).await;
    }
    // A deleted session takes its token along; another tenant's session is left alone.
    assert_eq!(head_token(&app, &m1_t).await, 404);
    assert_eq!(head_token(&app, &d1_t).await, 404);
    let answer = call(&app, Method::GET, &format!("/0.1/token/{m1_t}"), &[], None).await;
    expect_json(
        "GET a deleted session's token",
        &answer,
        404,
        &format_a(404, "No such token", at),
    );
    assert_eq!(head_token(&app, &bob_t).await, 204);
    let answer = get(&app, &sessions(""), Some(b), &[]).await;
    expect_json(
        "after the deletes",
        &answer,
        200,
        &listing(2, 2, &[&boss_s, &d2_s]),
    );
}

on_both_backends!(
    post_token_answers_are_exact,
    the_session_limit_is_a_429,
    token_validation_answers_are_exact,
    scope_check_answers_are_exact,
    refresh_token_endpoint_answers_are_exact,
    session_endpoint_answers_are_exact,
);
