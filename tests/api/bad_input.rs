//! Check 5: bad input on every endpoint answers the RFC error, never a 5xx; plus the
//! authentication rules of the token, revocation and introspection endpoints.
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tessera::domain::GrantType;

use crate::helpers::{Db, TestApp, TestClient, str_of};
use crate::wso2_flow::base64_basic;

/// Asserts an RFC 6749 §5.2 error: status, code, JSON shape and description characters.
async fn expect_error(resp: Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "RFC 6749 §5.2 characters only: {description}"
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    if status == 401 {
        assert!(
            headers.get("www-authenticate").is_some(),
            "401 without a challenge"
        );
    }
    body
}

struct Fixture {
    app: TestApp,
    client: TestClient,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn(Db::Sqlite).await;
    let client = app.add_full_client("app");
    app.add_user("alice", "pw", &["read", "write"]);
    Fixture { app, client }
}

impl Fixture {
    fn post(&self, path: &str) -> RequestBuilder {
        self.app.http.post(self.app.url(path))
    }

    fn basic(&self, path: &str) -> RequestBuilder {
        self.post(path)
            .basic_auth(&self.client.id, Some(&self.client.secret))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_rejects_malformed_requests_with_rfc_errors() {
    let f = fixture().await;
    let cases: Vec<(&str, RequestBuilder, u16, &str)> = vec![
        (
            "no grant_type",
            f.basic("/oauth2/token").form(&[("scope", "read")]),
            400,
            "invalid_request",
        ),
        (
            "empty grant_type",
            f.basic("/oauth2/token")
                .body("grant_type=")
                .header("content-type", "application/x-www-form-urlencoded"),
            400,
            "invalid_request",
        ),
        (
            "unknown grant",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "authorization_code")]),
            400,
            "unsupported_grant_type",
        ),
        (
            "repeated grant_type",
            f.basic("/oauth2/token")
                .body("grant_type=password&grant_type=password&username=alice&password=pw"),
            400,
            "invalid_request",
        ),
        (
            "missing password",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "password"), ("username", "alice")]),
            400,
            "invalid_request",
        ),
        (
            "missing refresh_token",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "refresh_token")]),
            400,
            "invalid_request",
        ),
        (
            "non-UTF-8 body",
            f.basic("/oauth2/token")
                .body(b"grant_type=password&username=\xff\xfe&password=pw".to_vec()),
            400,
            "invalid_request",
        ),
        (
            "non-UTF-8 escape",
            f.basic("/oauth2/token")
                .body("grant_type=password&username=%C3%28&password=pw"),
            400,
            "invalid_request",
        ),
        (
            "JSON array",
            f.basic("/oauth2/token")
                .header("content-type", "application/json")
                .body("[\"grant_type\"]"),
            400,
            "invalid_request",
        ),
        (
            "JSON number",
            f.basic("/oauth2/token").json(&json!({"grant_type": 5})),
            400,
            "invalid_request",
        ),
        (
            "JSON nested",
            f.basic("/oauth2/token")
                .json(&json!({"grant_type": {"a": "b"}})),
            400,
            "invalid_request",
        ),
        (
            "truncated JSON",
            f.basic("/oauth2/token")
                .header("content-type", "application/json")
                .body("{\"grant_type\":"),
            400,
            "invalid_request",
        ),
        (
            "secret in query",
            f.post("/oauth2/token?client_secret=x")
                .form(&[("grant_type", "client_credentials"), ("client_id", "app")]),
            400,
            "invalid_request",
        ),
        (
            "password in query",
            f.basic("/oauth2/token?password=pw")
                .form(&[("grant_type", "password"), ("username", "alice")]),
            400,
            "invalid_request",
        ),
        (
            "two auth methods",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "client_credentials"), ("client_secret", "x")]),
            400,
            "invalid_request",
        ),
        (
            "Basic with a different client_id",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "client_credentials"), ("client_id", "other")]),
            400,
            "invalid_request",
        ),
        (
            "no client",
            f.post("/oauth2/token")
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "wrong secret",
            f.post("/oauth2/token")
                .basic_auth("app", Some("nope"))
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "unknown client in body",
            f.post("/oauth2/token").form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "ghost"),
                ("client_secret", "x"),
            ]),
            401,
            "invalid_client",
        ),
        (
            "Basic not base64",
            f.post("/oauth2/token")
                .header("authorization", "Basic !!!!")
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "Basic without colon",
            f.post("/oauth2/token")
                .header("authorization", "Basic YXBw")
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "Basic empty",
            f.post("/oauth2/token")
                .header("authorization", "Basic")
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "Basic non-UTF-8",
            f.post("/oauth2/token")
                .header("authorization", "Basic //46YQ==")
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "unknown scheme",
            f.post("/oauth2/token")
                .header("authorization", "Digest abc")
                .form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
        (
            "wrong password",
            f.basic("/oauth2/token").form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ]),
            400,
            "invalid_grant",
        ),
        (
            "unknown user",
            f.basic("/oauth2/token").form(&[
                ("grant_type", "password"),
                ("username", "nobody"),
                ("password", "pw"),
            ]),
            400,
            "invalid_grant",
        ),
        (
            "unknown refresh token",
            f.basic("/oauth2/token").form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "garbage"),
            ]),
            400,
            "invalid_grant",
        ),
        (
            "scope outside the ACL",
            f.basic("/oauth2/token").form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
                ("scope", "admin"),
            ]),
            400,
            "invalid_scope",
        ),
        (
            "scope with a quote",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "client_credentials"), ("scope", "a\"b")]),
            400,
            "invalid_scope",
        ),
        (
            "wildcard scope",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "client_credentials"), ("scope", "#")]),
            400,
            "invalid_scope",
        ),
        (
            "pattern scope",
            f.basic("/oauth2/token")
                .form(&[("grant_type", "client_credentials"), ("scope", "read.*")]),
            400,
            "invalid_scope",
        ),
        (
            "hostile scope",
            f.basic("/oauth2/token").form(&[
                ("grant_type", "client_credentials"),
                ("scope", &"a ".repeat(5000)),
            ]),
            400,
            "invalid_scope",
        ),
    ];
    for (name, request, status, code) in cases {
        eprintln!("case: {name}");
        expect_error(request.send().await.unwrap(), status, code).await;
    }

    // A 1 MiB body is refused before it is parsed.
    let huge = format!("grant_type=client_credentials&pad={}", "a".repeat(1 << 20));
    let resp = reqwest::Client::new()
        .post(f.app.url("/oauth2/token"))
        .basic_auth(&f.client.id, Some(&f.client.secret))
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, "invalid_request").await;

    // Basic failures carry the Basic challenge.
    let resp = f
        .post("/oauth2/token")
        .basic_auth("app", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"tessera\""
    );

    // Only POST.
    let resp = f
        .app
        .http
        .get(f.app.url("/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Unknown parameters are ignored; empty ones are absent (RFC 6749 §3.2).
    let resp = f
        .basic("/oauth2/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("foo", "bar"),
            ("scope", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_follow_client_registration() {
    let f = fixture().await;
    let only_cc = f
        .app
        .add_client("machine", &[GrantType::ClientCredentials], &["read"]);
    let resp = f
        .app
        .post_form(
            "/oauth2/token",
            Some(&only_cc),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
            ],
        )
        .await;
    expect_error(resp, 400, "unauthorized_client").await;

    // client_credentials: no refresh token (RFC 6749 §4.4.3), scopes within the client's.
    let resp = f
        .app
        .post_form(
            "/oauth2/token",
            Some(&only_cc),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    assert!(body.get("refresh_token").is_none());
    let resp = f
        .app
        .post_form(
            "/oauth2/token",
            Some(&only_cc),
            &[("grant_type", "client_credentials"), ("scope", "write")],
        )
        .await;
    expect_error(resp, 400, "invalid_scope").await;

    // A public client: client_id alone, only for its grants, never client_credentials.
    f.app.insert_client(
        "public-app",
        None,
        &[GrantType::Password, GrantType::RefreshToken],
        &["read"],
        &["read"],
    );
    let resp = f
        .post("/oauth2/token")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "public-app"),
            ("username", "alice"),
            ("password", "pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "read", "default scopes apply");
    let resp = f
        .post("/oauth2/token")
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "public-app"),
            ("refresh_token", str_of(&body, "refresh_token")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = f
        .post("/oauth2/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "public-app"),
        ])
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "unauthorized_client").await;
    // A confidential client cannot drop its secret.
    let resp = f
        .post("/oauth2/token")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", "pw"),
        ])
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "invalid_client").await;

    // client_secret_post and Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    let resp = f
        .post("/oauth2/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", f.client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    f.app.insert_client(
        "odd:id %+",
        Some("s:e%c r+t"),
        &[GrantType::ClientCredentials],
        &["#"],
        &[],
    );
    let basic = base64_basic("odd%3Aid+%25%2B", "s%3Ae%25c+r%2Bt");
    let resp = f
        .post("/oauth2/token")
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // WSO2 also takes JSON bodies carrying grant_type.
    let resp = f.basic("/oauth2/token").json(&json!({"grant_type": "password", "username": "alice", "password": "pw", "scope": "read write"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "read write");

    // A refresh narrows the access token's scope; the refresh token keeps the original.
    let resp = f
        .app
        .post_form(
            "/oauth2/token",
            Some(&f.client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", str_of(&body, "refresh_token")),
                ("scope", "read"),
            ],
        )
        .await;
    let narrowed: Value = resp.json().await.unwrap();
    assert_eq!(narrowed["scope"], "read");
    let resp = f
        .app
        .post_form(
            "/oauth2/token",
            Some(&f.client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", str_of(&narrowed, "refresh_token")),
                ("scope", "read write admin"),
            ],
        )
        .await;
    expect_error(resp, 400, "invalid_scope").await;
    let resp = f
        .app
        .post_form(
            "/oauth2/token",
            Some(&f.client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", str_of(&narrowed, "refresh_token")),
                ("scope", "read write"),
            ],
        )
        .await;
    let widened_back: Value = resp.json().await.unwrap();
    assert_eq!(widened_back["scope"], "read write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_introspection_reject_bad_input_and_check_callers() {
    let f = fixture().await;
    let tokens = f.app.password_grant(&f.client, "alice", "pw", None).await;
    let access = str_of(&tokens, "access_token");
    for path in ["/oauth2/revoke", "/revoke", "/oauth2/introspect"] {
        expect_error(
            f.basic(path)
                .form(&[("token_type_hint", "access_token")])
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
        expect_error(
            f.basic(path).body("token=a&token=b").send().await.unwrap(),
            400,
            "invalid_request",
        )
        .await;
        expect_error(
            f.basic(&format!("{path}?token=abc"))
                .form(&[("token", "x")])
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
        expect_error(
            f.basic(path)
                .body(b"token=\xff".to_vec())
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        )
        .await;
        expect_error(
            f.post(path)
                .form(&[("token", access)])
                .send()
                .await
                .unwrap(),
            401,
            "invalid_client",
        )
        .await;
        expect_error(
            f.post(path)
                .basic_auth("app", Some("bad"))
                .form(&[("token", access)])
                .send()
                .await
                .unwrap(),
            401,
            "invalid_client",
        )
        .await;
        expect_error(
            f.post(path)
                .header("authorization", "Bearer not-a-token")
                .form(&[("token", access)])
                .send()
                .await
                .unwrap(),
            401,
            "invalid_token",
        )
        .await;
        // A fresh connection: the server closes one whose body it refused to read.
        let huge = format!("token={}", "a".repeat(1 << 20));
        let resp = reqwest::Client::new()
            .post(f.app.url(path))
            .basic_auth(&f.client.id, Some(&f.client.secret))
            .body(huge)
            .send()
            .await
            .unwrap();
        expect_error(resp, 413, "invalid_request").await;
    }
    // Unknown tokens: 200 on revoke (RFC 7009 §2.2), inactive on introspect; a bad hint is ignored.
    let resp = f
        .basic("/oauth2/revoke")
        .form(&[("token", "unknown"), ("token_type_hint", "bogus")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        f.app.introspect(&f.client, "unknown").await,
        json!({"active": false})
    );
    // A wrong hint still finds the token (RFC 7009 §2.1, RFC 7662 §2.1).
    let resp = f
        .basic("/oauth2/introspect")
        .form(&[("token", access), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["active"], true);
    assert_eq!(seen["token_type"], "Bearer");

    // Introspection needs a real authentication: a public client is refused.
    f.app
        .insert_client("public-app", None, &[GrantType::Password], &["#"], &[]);
    let resp = f
        .post("/oauth2/introspect")
        .form(&[("token", access), ("client_id", "public-app")])
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "invalid_client").await;

    // An administrator's bearer token revokes any client's token; a plain one is 403.
    f.app.add_user("root", "pw", &["#"]);
    let other = f.app.add_full_client("other");
    let admin = f
        .app
        .password_grant(
            &other,
            "root",
            "pw",
            Some("auth.tokens.revoke auth.tokens.introspect"),
        )
        .await;
    let plain = f
        .app
        .password_grant(&other, "root", "pw", Some("read"))
        .await;
    let resp = f
        .post("/oauth2/revoke")
        .bearer_auth(str_of(&plain, "access_token"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 403, "insufficient_scope").await;
    assert_eq!(body["error"], "insufficient_scope");
    let resp = f
        .post("/oauth2/introspect")
        .bearer_auth(str_of(&admin, "access_token"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(
        (seen["active"].clone(), seen["client_id"].clone()),
        (json!(true), json!("app"))
    );
    let resp = f
        .post("/oauth2/revoke")
        .bearer_auth(str_of(&admin, "access_token"))
        .form(&[("token", str_of(&tokens, "refresh_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        f.app.introspect(&f.client, access).await["active"],
        false,
        "revoking the refresh token revokes its access tokens"
    );

    // A disabled administrator's token loses its power at once.
    {
        let mut conn = f.app.service.store().conn().unwrap();
        let root = tessera::store::users::find_by_login(&mut conn, "root")
            .unwrap()
            .unwrap();
        tessera::store::users::set_enabled(&mut conn, &root.id, false).unwrap();
    }
    let resp = f
        .post("/oauth2/revoke")
        .bearer_auth(str_of(&admin, "access_token"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "invalid_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_advertises_exactly_what_works() {
    let f = fixture().await;
    let meta: Value = f
        .app
        .http
        .get(f.app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = meta["issuer"].as_str().unwrap();
    assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth2/token"));
    assert_eq!(
        meta["grant_types_supported"],
        json!(["password", "client_credentials", "refresh_token"])
    );
    // Every advertised endpoint answers on this server.
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let path = meta[key].as_str().unwrap().trim_start_matches(issuer);
        let resp = f
            .basic(path)
            .form(&[("grant_type", "client_credentials"), ("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{key}");
    }
}
