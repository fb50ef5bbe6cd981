//! Mobile sessions, the session limit and session management (wazo-contract §1.3, §1.7, §2.2).
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

const ACL: &[&str] = &["auth.users.me.#", "auth.sessions.read"];

/// An offline login; returns (data, Wazo-Sessions-Revoked).
async fn offline(app: &TestApp, user: &str, client_id: &str, mobile: bool) -> (Value, String) {
    let headers: &[(&str, &str)] = if mobile {
        &[("Wazo-Session-Type", "Mobile")]
    } else {
        &[]
    };
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            Some((user, "pw")),
            &json!({"client_id": client_id, "access_type": "offline"}),
            headers,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let revoked = resp.headers()["Wazo-Sessions-Revoked"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    (body["data"].clone(), revoked)
}

async fn refresh(app: &TestApp, client_id: &str, refresh_token: &str) -> reqwest::Response {
    app.wazo_post_token(
        "/0.1/token",
        Some(("", "")),
        &json!({"client_id": client_id, "refresh_token": refresh_token}),
        &[],
    )
    .await
}

async fn a_mobile_login_keeps_one_mobile_device_per_user(db: Db) {
    let app = TestApp::spawn(db).await;
    app.add_user("alice", "pw", ACL);
    app.add_user("bob", "pw", ACL);

    let (phone, revoked) = offline(&app, "alice", "phone-app", true).await;
    assert_eq!(revoked, "0");
    let phone_rt = str_of(&phone, "refresh_token").to_owned();
    let resp = refresh(&app, "phone-app", &phone_rt).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let phone_refreshed: Value = resp.json().await.unwrap();
    let phone_access2 = str_of(&phone_refreshed["data"], "token").to_owned();
    let (desk, revoked) = offline(&app, "alice", "desk-app", false).await;
    assert_eq!(revoked, "0");
    let (bobs_phone, _) = offline(&app, "bob", "phone-app", true).await;

    // A mobile login from another app: the incumbent's two sessions end, its refresh token
    // is gone; desktop and other users are untouched.
    let (tablet, revoked) = offline(&app, "alice", "tablet-app", true).await;
    assert_eq!(revoked, "2");
    assert_eq!(app.wazo_check(str_of(&phone, "token")).await, 404);
    assert_eq!(app.wazo_check(&phone_access2).await, 404);
    assert_eq!(
        refresh(&app, "phone-app", &phone_rt).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.wazo_check(str_of(&desk, "token")).await, 204);
    assert_eq!(
        refresh(&app, "desk-app", str_of(&desk, "refresh_token"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.wazo_check(str_of(&bobs_phone, "token")).await, 204);

    // The same mobile app again: a fresh refresh token, the previous session ends.
    let (tablet2, revoked) = offline(&app, "alice", "tablet-app", true).await;
    assert_eq!(revoked, "1");
    assert_ne!(tablet2["refresh_token"], tablet["refresh_token"]);
    assert_eq!(app.wazo_check(str_of(&tablet, "token")).await, 404);
    assert_eq!(app.wazo_check(str_of(&tablet2, "token")).await, 204);

    // A desktop login never ends a mobile session.
    let (_, revoked) = offline(&app, "alice", "desk-app", false).await;
    assert_eq!(revoked, "0");
    assert_eq!(app.wazo_check(str_of(&tablet2, "token")).await, 204);

    // The list shows the mobile flag.
    let token = str_of(&tablet2, "token");
    let resp = app
        .wazo_get("/0.1/users/me/tokens?mobile=True", token)
        .await;
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["filtered"], 1);
    assert_eq!(list["items"][0]["client_id"], "tablet-app");
    assert_eq!(list["items"][0]["mobile"], true);
}

async fn the_session_limit_counts_live_sessions_only(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_WAZO__MAX_USER_CONCURRENT_SESSIONS", "2")]).await;
    let carol = app.add_user("carol", "pw", ACL);
    app.add_user_with("svc", "pw", &[], |u| u.purpose = "internal".into());

    let first = app
        .wazo_login("carol", "pw", json!({"expiration": 60}))
        .await;
    app.wazo_login(
        "carol",
        "pw",
        json!({"expiration": 3600, "client_id": "c", "access_type": "offline"}),
    )
    .await;
    let resp = app
        .wazo_post_token("/0.1/token", Some(("carol", "pw")), &json!({}), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["reason"],
        json!([format!(
            "User {carol} has exceeded the maximum number of active sessions"
        )])
    );
    // An offline login opens a session too, so it is limited alike.
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            Some(("carol", "pw")),
            &json!({"client_id": "c", "access_type": "offline"}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    // Internal users are exempt.
    for _ in 0..3 {
        app.wazo_login("svc", "pw", json!({})).await;
    }

    // An expired session frees its slot.
    app.clock.advance_secs(61);
    assert_eq!(app.wazo_check(str_of(&first, "token")).await, 404);
    let third = app.wazo_login("carol", "pw", json!({})).await;

    // So does a deleted one.
    let resp = app
        .wazo_delete(
            &format!(
                "/0.1/users/{carol}/sessions/{}",
                str_of(&third, "session_uuid")
            ),
            str_of(&third, "token"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.wazo_check(str_of(&third, "token")).await, 404);
    app.wazo_login("carol", "pw", json!({})).await;
}

async fn users_list_and_end_their_own_sessions_only(db: Db) {
    let app = TestApp::spawn(db).await;
    let dave = app.add_user("dave", "pw", ACL);
    let eve = app.add_user("eve", "pw", ACL);
    let d1 = app.wazo_login("dave", "pw", json!({})).await;
    let d2 = app
        .wazo_post_token(
            "/0.1/token",
            Some(("dave", "pw")),
            &json!({}),
            &[("Wazo-Session-Type", "mobile"), ("User-Agent", "phone/1.0")],
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["data"]
        .clone();
    assert_eq!(d2["user_agent"], "phone/1.0");
    let e1 = app.wazo_login("eve", "pw", json!({})).await;
    let token = str_of(&d1, "token");

    let resp = app
        .wazo_get(&format!("/0.1/users/{dave}/sessions"), token)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["filtered"], 2);
    // Ordered by `mobile`: the desktop session first.
    assert_eq!(
        list["items"],
        json!([
            {"uuid": d1["session_uuid"], "mobile": false, "tenant_uuid": d1["metadata"]["tenant_uuid"], "user_uuid": dave},
            {"uuid": d2["session_uuid"], "mobile": true, "tenant_uuid": d2["metadata"]["tenant_uuid"], "user_uuid": dave},
        ])
    );

    // Another user's sessions are out of reach, listed or deleted.
    let resp = app
        .wazo_get(&format!("/0.1/users/{eve}/sessions"), token)
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .wazo_delete(
            &format!("/0.1/users/{dave}/sessions/{}", str_of(&e1, "session_uuid")),
            token,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.wazo_check(str_of(&e1, "token")).await, 204);

    // Ending one's own other session works, and is idempotent.
    let path = format!("/0.1/users/me/sessions/{}", str_of(&d2, "session_uuid"));
    let path = path.replace("/me/", &format!("/{dave}/"));
    for _ in 0..2 {
        let resp = app.wazo_delete(&path, token).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(app.wazo_check(str_of(&d2, "token")).await, 404);
    assert_eq!(app.wazo_check(token).await, 204);
}

on_both_backends!(
    a_mobile_login_keeps_one_mobile_device_per_user,
    the_session_limit_counts_live_sessions_only,
    users_list_and_end_their_own_sessions_only,
);
