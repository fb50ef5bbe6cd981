//! Check 7: a restart keeps every issued token valid.
use reqwest::StatusCode;

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

on_both_backends!(a_restart_keeps_every_issued_token_valid);

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
