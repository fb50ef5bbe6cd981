//! A restart keeps every issued token valid; a new server secret keeps Wazo logins working.
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

on_both_backends!(
    a_restart_keeps_every_issued_token_valid,
    a_new_server_secret_replaces_wazo_refresh_tokens_it_cannot_derive,
);

async fn a_restart_keeps_every_issued_token_valid(db: Db) {
    let app = TestApp::spawn(db).await;
    let client = app.add_full_client("app");
    app.add_user("erin", "pw", &["#"]);
    let tokens = app
        .password_grant(&client, "erin", "pw", Some("read"))
        .await;
    let cc_token = app.client_credentials_token(&client).await;

    let app = app.restart(&[]).await;
    let access = app
        .introspect(&client, str_of(&tokens, "access_token"))
        .await;
    assert_eq!(access["active"], true);
    assert_eq!(access["scope"], "read");
    assert_eq!(app.introspect(&client, &cc_token).await["active"], true);
    let resp = app.refresh(&client, str_of(&tokens, "refresh_token")).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Same server secret after a restart: the same Wazo refresh token comes back. A replaced
/// secret cannot derive the old value again, so the next offline login mints a new, working
/// one (the old value keeps working until then: it is looked up by digest).
async fn a_new_server_secret_replaces_wazo_refresh_tokens_it_cannot_derive(db: Db) {
    let app = TestApp::spawn(db).await;
    app.add_user("wendy", "pw", &[]);
    let offline = json!({"client_id": "app", "access_type": "offline"});
    let first = app.wazo_login("wendy", "pw", offline.clone()).await;
    let first_rt = str_of(&first, "refresh_token").to_owned();

    let app = app.restart(&[]).await;
    let again = app.wazo_login("wendy", "pw", offline.clone()).await;
    assert_eq!(again["refresh_token"], first_rt.as_str());

    let secret = app.db.dir.path().join("data/server.secret");
    std::fs::remove_file(&secret).unwrap();
    let app = app.restart(&[]).await;
    assert!(secret.exists(), "a new secret is created");
    let refresh = |rt: String| {
        let app = &app;
        async move {
            app.wazo_post_token(
                "/0.1/token",
                None,
                &json!({"client_id": "app", "refresh_token": rt}),
                &[],
            )
            .await
            .status()
        }
    };
    assert_eq!(refresh(first_rt.clone()).await, StatusCode::OK);
    let renewed = app.wazo_login("wendy", "pw", offline).await;
    let renewed_rt = str_of(&renewed, "refresh_token").to_owned();
    assert_ne!(renewed_rt, first_rt);
    assert_eq!(refresh(renewed_rt).await, StatusCode::OK);
    assert_eq!(refresh(first_rt).await, StatusCode::UNAUTHORIZED);
}
