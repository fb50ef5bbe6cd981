//! Malformed, oversized, missing and hostile input on the Wazo endpoints: the contract's error
//! formats, never a 500, and nothing written.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

const ACL: &[&str] = &["auth.users.me.#", "auth.tokens.read", "auth.sessions.read"];

async fn session_count(app: &TestApp, token: &str) -> i64 {
    let resp = app.wazo_get("/0.1/sessions", token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["total"]
        .as_i64()
        .unwrap()
}

async fn hostile_input_gets_a_wazo_error_and_writes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    app.add_user("mallory", "pw", ACL);
    let data = app.wazo_login("mallory", "pw", json!({})).await;
    let token = str_of(&data, "token").to_owned();
    assert_eq!(session_count(&app, &token).await, 1);

    // Bodies: too large, not UTF-8, too deep, wrong shapes.
    let post = |body: Vec<u8>| {
        app.http
            .post(app.url("/0.1/token"))
            .basic_auth("mallory", Some("pw"))
            .body(body)
            .send()
    };
    // A fresh connection: the server closes one whose body it refused to read.
    let resp = reqwest::Client::new()
        .post(app.url("/0.1/token"))
        .basic_auth("mallory", Some("pw"))
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status_code"], 413);
    for bad in [
        b"\xff\xfe{}".to_vec(),
        b"{\"expiration\": 60".to_vec(),
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        Vec::new(),
    ] {
        let resp = post(bad).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"message": "The browser (or proxy) sent a request that this server could not understand."})
        );
    }
    for bad in [
        json!(42),
        json!("x"),
        json!([1]),
        json!({"client_id": "x".repeat(1025), "access_type": "offline"}),
        json!({"client_id": "", "access_type": "offline"}),
        json!({"client_id": ["a"], "access_type": "offline"}),
        json!({"expiration": {"$gt": 0}}),
        json!({"expiration": 1e300}),
        json!({"expiration": "1e3"}),
        json!({"expiration": -5}),
        json!({"access_type": "OFFLINE", "client_id": "c"}),
        json!({"refresh_token": 7, "client_id": "c"}),
        json!({"tenant_id": "a", "domain_name": "b"}),
    ] {
        let resp = post(bad.to_string().into_bytes()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status_code"], 400, "{bad}");
        assert!(
            body["reason"][0].as_str().unwrap().starts_with('{'),
            "{body}"
        );
    }

    // Credentials: broken Basic headers are just no credentials.
    for header in [
        "Basic !!!!",
        "Basic",
        "Basic Og==",
        "Basic bWFsbG9yeQ==",
        "Bearer abc",
        "Basic bWFsbG9yeTrv",
    ] {
        let resp = app
            .http
            .post(app.url("/0.1/token"))
            .header("Authorization", header)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["reason"],
            json!(["Authentication Failed"])
        );
    }
    // SQL in the login or refresh token is only data.
    for login in ["' OR '1'='1", "mallory'--", "%", "_"] {
        let resp = app
            .wazo_post_token("/0.1/token", Some((login, "pw")), &json!({}), &[])
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{login}");
    }
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "c", "refresh_token": "' OR 1=1 --"}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Paths: absurd tokens are unknown tokens.
    for path in [
        format!("/0.1/token/{}", "a".repeat(5000)),
        "/0.1/token/%00".to_owned(),
        "/0.1/token/..%2F..%2Fetc".to_owned(),
        "/0.1/token/abcdef?scope=%ZZ".to_owned(),
    ] {
        let resp = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["reason"],
            json!(["No such token"])
        );
    }
    // A hostile scope is just a string the ACL does not grant.
    let resp = app
        .http
        .get(app.url(&format!("/0.1/token/{token}?scope={}", "%23.".repeat(300))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Headers: hostile X-Auth-Token and Wazo-Tenant values.
    for hostile in ["' OR 1=1 --", &"x".repeat(4000), "\u{1}"] {
        let resp = app
            .http
            .get(app.url("/0.1/users/me/tokens"))
            .header("X-Auth-Token", hostile.replace('\u{1}', "%01"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .http
        .get(app.url("/0.1/sessions"))
        .header("X-Auth-Token", &token)
        .header("Wazo-Tenant", "' OR 1=1 --")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error_id"],
        "unauthorized-tenant"
    );

    // List parameters: LIKE wildcards are literal, bad numbers are 400.
    app.wazo_login(
        "mallory",
        "pw",
        json!({"client_id": "abc", "access_type": "offline"}),
    )
    .await;
    for (query, filtered) in [
        ("search=%25", 0),
        ("search=_", 0),
        ("search=B", 1),
        ("search=a+c", 1),
    ] {
        let resp = app
            .wazo_get(&format!("/0.1/users/me/tokens?{query}"), &token)
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{query}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["filtered"],
            filtered,
            "{query}"
        );
    }
    for query in [
        "limit=-1",
        "offset=x",
        "limit=99999999999999999999",
        "direction=up",
        "order=uuid",
        "mobile=maybe",
        "recurse=2",
    ] {
        let resp = app.wazo_get(&format!("/0.1/tokens?{query}"), &token).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error_id"],
            "invalid-list-param"
        );
    }

    // scopes/check: wrong shapes.
    for bad in [
        json!({"scopes": "a"}),
        json!({"scopes": [1]}),
        json!({}),
        json!({"scopes": [], "tenant_uuid": 5}),
    ] {
        let resp = app
            .http
            .post(app.url(&format!("/0.1/token/{token}/scopes/check")))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    // None of it opened a session (the offline login above did, once).
    assert_eq!(session_count(&app, &token).await, 2);
}

on_both_backends!(hostile_input_gets_a_wazo_error_and_writes_nothing);
