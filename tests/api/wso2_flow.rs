//! Check 1: the seeds' WSO2 flow through a real socket, with rotation on and off.
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Db, TestApp, error_of, str_of};
use crate::on_both_backends;

on_both_backends!(
    password_refresh_revoke_with_rotation_on,
    password_refresh_with_rotation_off
);

async fn password_refresh_revoke_with_rotation_on(db: Db) {
    let app = TestApp::spawn(db).await;
    let client = app.add_full_client("wso2-app");
    app.add_user("alice", "correct horse", &["PRODUCTION", "read"]);

    // Password grant: an access token and a refresh token, with no-store headers.
    let resp = app
        .post_form(
            "/oauth2/token",
            Some(&client),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "correct horse"),
                ("scope", "PRODUCTION"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 3600);
    assert_eq!(first["scope"], "PRODUCTION");
    let r1 = str_of(&first, "refresh_token").to_owned();
    let a1 = str_of(&first, "access_token").to_owned();

    // The seed's refresh: the Basic header and the content type slipped into one header.
    let basic = base64_basic(&client.id, &client.secret);
    let resp = app
        .http
        .post(app.url("/token"))
        .header(
            "Authorization",
            format!("Basic {basic}, Content-Type: application/x-www-form-urlencoded"),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={r1}&scope=PRODUCTION"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let second: Value = resp.json().await.unwrap();
    let r2 = str_of(&second, "refresh_token").to_owned();
    let a2 = str_of(&second, "access_token").to_owned();
    assert_ne!(r1, r2, "rotation on issues a new refresh token");
    assert_ne!(a1, a2);

    // Both access tokens are active until the family is revoked.
    assert_eq!(app.introspect(&client, &a1).await["active"], true);
    let resp = app
        .post_form(
            "/revoke",
            Some(&client),
            &[("token", &r2), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.text().await.unwrap(), "");

    // The revoked one and the consumed one are refused.
    for refresh in [&r2, &r1] {
        let (status, code) = error_of(app.refresh(&client, refresh).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    }
    for access in [&a1, &a2] {
        assert_eq!(
            app.introspect(&client, access).await,
            serde_json::json!({"active": false})
        );
    }
}

async fn password_refresh_with_rotation_off(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_POLICY__ROTATE_REFRESH_TOKENS", "false")]).await;
    let client = app.add_full_client("wso2-app");
    app.add_user("alice", "pw", &["#"]);
    let first = app.password_grant(&client, "alice", "pw", None).await;
    let r1 = str_of(&first, "refresh_token").to_owned();

    for _ in 0..3 {
        let resp = app.refresh(&client, &r1).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            str_of(&body, "refresh_token"),
            r1,
            "rotation off returns the same refresh token"
        );
        assert_ne!(
            str_of(&body, "access_token"),
            str_of(&first, "access_token")
        );
    }

    // Revoking an access token leaves the refresh token working.
    let resp = app
        .post_form(
            "/oauth2/revoke",
            Some(&client),
            &[("token", str_of(&first, "access_token"))],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.introspect(&client, str_of(&first, "access_token"))
            .await["active"],
        false
    );
    assert_eq!(app.refresh(&client, &r1).await.status(), StatusCode::OK);

    // Revoking the refresh token ends it.
    app.post_form("/oauth2/revoke", Some(&client), &[("token", &r1)])
        .await;
    let (status, code) = error_of(app.refresh(&client, &r1).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
}

pub fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}
