//! Concurrency: 50 concurrent refreshes of one token with rotation on give exactly one 200, the
//! rest 400 `invalid_grant`, no 5xx; concurrent Wazo offline logins of one user and client id
//! all get the one refresh token.
use std::sync::Arc;

use reqwest::StatusCode;

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

on_both_backends!(
    concurrent_refreshes_of_one_token_have_exactly_one_winner,
    concurrent_offline_logins_share_one_wazo_refresh_token,
);

async fn concurrent_refreshes_of_one_token_have_exactly_one_winner(db: Db) {
    let app = Arc::new(TestApp::spawn(db).await);
    let client = app.add_full_client("spa");
    app.add_user("dave", "pw", &["#"]);
    let tokens = app.password_grant(&client, "dave", "pw", None).await;
    let refresh = str_of(&tokens, "refresh_token").to_owned();

    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, client, refresh, barrier) = (
            app.clone(),
            client.clone(),
            refresh.clone(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = app.refresh(&client, &refresh).await;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => winners += 1,
            StatusCode::BAD_REQUEST => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners, 1);
}

async fn concurrent_offline_logins_share_one_wazo_refresh_token(db: Db) {
    let app = Arc::new(TestApp::spawn(db).await);
    app.add_user("erin", "pw", &["auth.users.me.#"]);
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = app
                .wazo_post_token(
                    "/0.1/token",
                    Some(("erin", "pw")),
                    &serde_json::json!({"client_id": "app", "access_type": "offline"}),
                    &[],
                )
                .await;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        }));
    }
    let mut values = std::collections::BTreeSet::new();
    let mut token = String::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        values.insert(str_of(&body["data"], "refresh_token").to_owned());
        token = str_of(&body["data"], "token").to_owned();
    }
    assert_eq!(values.len(), 1, "{values:?}");
    let list: serde_json::Value = app
        .wazo_get("/0.1/users/me/tokens", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
}
