//! `GET /metrics` after a scripted flow (issue 7 check 1): the exact counts of issued,
//! refreshed and revoked tokens, reuse detections and login failures, read with a Prometheus
//! exposition parser as a scraper would.
use prometheus_parse::{Scrape, Value as PromValue};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

on_both_backends!(metrics_count_what_happened_to_tokens);

/// The value of the counter `name` whose labels include `labels`.
fn counter(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// A metric name, some of its labels, and the value expected.
type Expected = (&'static str, &'static [(&'static str, &'static str)], f64);

async fn scrape(app: &TestApp) -> Scrape {
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("a valid exposition")
}

async fn metrics_count_what_happened_to_tokens(db: Db) {
    let sqlite = matches!(db, Db::Sqlite);
    let app = TestApp::spawn(db).await;
    let client = app.add_full_client("app");
    app.add_user("alice", "pw", &["#"]);

    // OAuth2: two password grants (2 access + 2 refresh), a wrong password, three refreshes of
    // family A (3 access + 3 refresh), one client_credentials token.
    let a = app.password_grant(&client, "alice", "pw", None).await;
    let b = app.password_grant(&client, "alice", "pw", None).await;
    let wrong = app
        .post_form(
            "/oauth2/token",
            Some(&client),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let first_of_a = str_of(&a, "refresh_token").to_owned();
    let mut current = first_of_a.clone();
    for _ in 0..3 {
        let body: Value = app.refresh(&client, &current).await.json().await.unwrap();
        current = str_of(&body, "refresh_token").to_owned();
    }
    app.client_credentials_token(&client).await;
    // Revoking family B: 1 refresh and 1 access token.
    let resp = app
        .post_form(
            "/oauth2/revoke",
            Some(&client),
            &[("token", str_of(&b, "refresh_token"))],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Reuse in family A: 4 refresh tokens (3 consumed + the live one) and 4 access tokens.
    assert_eq!(
        app.refresh(&client, &first_of_a).await.status(),
        StatusCode::BAD_REQUEST
    );

    // Wazo: an offline login (1 access + 1 refresh), a refresh (1 access), a wrong password,
    // and a DELETE of the first token (1 access).
    let login = app
        .wazo_login(
            "alice",
            "pw",
            json!({"client_id": "phone", "access_type": "offline"}),
        )
        .await;
    let refreshed = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "phone", "refresh_token": str_of(&login, "refresh_token")}),
            &[],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let failed = app
        .wazo_post_token("/0.1/token", Some(("alice", "nope")), &json!({}), &[])
        .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .http
        .delete(app.url(&format!("/0.1/token/{}", str_of(&login, "token"))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A known path with another method counts under its pattern (an alias under the one it
    // stands for); a path no route knows, whatever it holds, as `unmatched`.
    for (path, status) in [
        ("/token", 405),
        ("/0.1/token", 405),
        ("/nowhere/at-all", 404),
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
    }
    let m = scrape(&app).await;
    let expected: [Expected; 16] = [
        (
            "tessera_tokens_issued_total",
            &[("dialect", "oauth2"), ("kind", "access")],
            6.0,
        ),
        (
            "tessera_tokens_issued_total",
            &[("dialect", "oauth2"), ("kind", "refresh")],
            5.0,
        ),
        (
            "tessera_tokens_issued_total",
            &[("dialect", "wazo"), ("kind", "access")],
            2.0,
        ),
        (
            "tessera_tokens_issued_total",
            &[("dialect", "wazo"), ("kind", "refresh")],
            1.0,
        ),
        (
            "tessera_tokens_refreshed_total",
            &[("dialect", "oauth2")],
            3.0,
        ),
        (
            "tessera_tokens_refreshed_total",
            &[("dialect", "wazo")],
            1.0,
        ),
        ("tessera_tokens_revoked_total", &[("kind", "refresh")], 5.0),
        ("tessera_tokens_revoked_total", &[("kind", "access")], 6.0),
        (
            "tessera_refresh_token_reuse_total",
            &[("dialect", "oauth2")],
            1.0,
        ),
        (
            "tessera_login_failures_total",
            &[("dialect", "oauth2")],
            1.0,
        ),
        ("tessera_login_failures_total", &[("dialect", "wazo")], 1.0),
        (
            "tessera_http_requests_total",
            &[
                ("route", "/oauth2/token"),
                ("method", "POST"),
                ("status", "200"),
            ],
            6.0,
        ),
        (
            "tessera_http_requests_total",
            &[
                ("route", "/0.1/token/:token"),
                ("method", "DELETE"),
                ("status", "200"),
            ],
            1.0,
        ),
        (
            "tessera_http_requests_total",
            &[
                ("route", "/oauth2/token"),
                ("method", "GET"),
                ("status", "405"),
            ],
            1.0,
        ),
        (
            "tessera_http_requests_total",
            &[
                ("route", "/0.1/token"),
                ("method", "GET"),
                ("status", "405"),
            ],
            1.0,
        ),
        (
            "tessera_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")],
            1.0,
        ),
    ];
    for (name, labels, value) in expected {
        assert_eq!(counter(&m, name, labels), value, "{name} {labels:?}");
    }
    // Routes are patterns: no token appears in any label.
    assert!(
        m.samples
            .iter()
            .all(|s| !format!("{:?}", s.labels).contains(str_of(&login, "token")))
    );
    // The pool is described.
    assert!(counter(&m, "tessera_db_pool_max_size", &[]) >= 1.0);
    // On SQLite every write of the flow went through a group commit (one writer at a time
    // here, so batches of one at least); PostgreSQL has none.
    let batched = m
        .samples
        .iter()
        .find(|s| s.metric == "tessera_db_write_batch_size_count")
        .map(|s| match s.value {
            prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        });
    if sqlite {
        assert!(batched.unwrap_or(0.0) >= 10.0, "group commits: {batched:?}");
    } else {
        assert_eq!(batched.unwrap_or(0.0), 0.0);
    }
    assert!(m.samples.iter().any(|s| {
        s.metric
            .starts_with("tessera_http_request_duration_seconds")
    }));
}
