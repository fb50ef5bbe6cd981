//! Check 2: refresh tokens expire after `refresh_token_ttl`, never with 0 (manual clock).
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Db, TestApp, error_of, str_of};
use crate::on_both_backends;

on_both_backends!(
    a_refresh_token_past_its_ttl_is_invalid_grant,
    a_zero_ttl_never_expires,
    a_client_table_overrides_the_dialect_policy,
);

async fn a_refresh_token_past_its_ttl_is_invalid_grant(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_POLICY__REFRESH_TOKEN_TTL", "60"),
            ("TESSERA_POLICY__EXTEND_ON_ROTATION", "false"),
        ],
    )
    .await;
    let client = app.add_full_client("app");
    app.add_user("bob", "pw", &["#"]);
    let first = app.password_grant(&client, "bob", "pw", None).await;
    let r1 = str_of(&first, "refresh_token").to_owned();

    // 59 s later: still valid, and (no extension) the successor keeps the original expiry.
    app.clock.advance_secs(59);
    let resp = app.refresh(&client, &r1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let r2 = str_of(&resp.json::<Value>().await.unwrap(), "refresh_token").to_owned();

    app.clock.advance_secs(1);
    assert_eq!(
        app.introspect(&client, &r2).await["active"],
        true,
        "valid through its expiry second"
    );
    app.clock.advance_secs(1);
    let resp = app.refresh(&client, &r2).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Refresh token is expired.");
    assert_eq!(
        app.introspect(&client, &r2).await,
        serde_json::json!({"active": false})
    );
}

async fn a_zero_ttl_never_expires(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_POLICY__REFRESH_TOKEN_TTL", "0")]).await;
    let client = app.add_full_client("app");
    app.add_user("bob", "pw", &["#"]);
    let first = app.password_grant(&client, "bob", "pw", None).await;
    let mut refresh = str_of(&first, "refresh_token").to_owned();
    let introspected = app.introspect(&client, &refresh).await;
    assert_eq!(introspected["active"], true);
    assert!(
        introspected.get("exp").is_none(),
        "a token that never expires has no exp"
    );

    for _ in 0..3 {
        app.clock.advance_secs(10 * 365 * 86_400);
        let resp = app.refresh(&client, &refresh).await;
        assert_eq!(resp.status(), StatusCode::OK);
        refresh = str_of(&resp.json::<Value>().await.unwrap(), "refresh_token").to_owned();
    }
    // The access tokens still expire.
    let resp = app.refresh(&client, &refresh).await;
    let access = str_of(&resp.json::<Value>().await.unwrap(), "access_token").to_owned();
    app.clock.advance_secs(3601);
    assert_eq!(app.introspect(&client, &access).await["active"], false);
    let _ = error_of;
}

/// `[policy.clients."<id>"]` applies to that client only, in both dialects.
async fn a_client_table_overrides_the_dialect_policy(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            (
                "TESSERA_POLICY__CLIENTS__steady__ROTATE_REFRESH_TOKENS",
                "false",
            ),
            (
                "TESSERA_POLICY__CLIENTS__phone__ROTATE_REFRESH_TOKENS",
                "true",
            ),
            ("TESSERA_POLICY__CLIENTS__phone__ACCESS_TOKEN_TTL", "120"),
        ],
    )
    .await;
    let steady = app.add_full_client("steady");
    let rotating = app.add_full_client("rotating");
    app.add_user("ivan", "pw", &["#"]);
    for (client, rotates) in [(&steady, false), (&rotating, true)] {
        let tokens = app.password_grant(client, "ivan", "pw", None).await;
        let first = str_of(&tokens, "refresh_token").to_owned();
        let resp = app.refresh(client, &first).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let next: Value = resp.json().await.unwrap();
        assert_eq!(
            str_of(&next, "refresh_token") != first,
            rotates,
            "{}",
            client.id
        );
    }
    // A Wazo client id with a table of its own: rotation and its access-token lifetime.
    let login = app
        .wazo_login(
            "ivan",
            "pw",
            serde_json::json!({"client_id": "phone", "access_type": "offline"}),
        )
        .await;
    let rt = str_of(&login, "refresh_token").to_owned();
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &serde_json::json!({"client_id": "phone", "refresh_token": rt}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let data = resp.json::<Value>().await.unwrap()["data"].clone();
    assert_ne!(str_of(&data, "refresh_token"), rt);
    let token = str_of(&data, "token").to_owned();
    app.clock.advance_secs(120);
    assert_eq!(app.wazo_check(&token).await, 204);
    app.clock.advance_secs(1);
    assert_eq!(app.wazo_check(&token).await, 404);
}
