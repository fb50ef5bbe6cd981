//! The seeds' Wazo story over a real socket (wazo-contract §1.3, §2): offline login, refresh,
//! one refresh token per (user, client id), deletion, and the shared token store.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

const USER_ACL: &[&str] = &[
    "auth.users.me.tokens.#",
    "auth.users.me.sessions.#",
    "confd.#",
];

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

async fn the_seed_story_holds_end_to_end(db: Db) {
    let app = TestApp::spawn(db).await;
    let alice = app.add_user("alice", "s3cret", USER_ACL);

    // Offline login → an access token and a refresh token, both UUIDs.
    let resp = app
        .wazo_post_token(
            "/api/auth/0.1/token",
            Some(("alice", "s3cret")),
            &json!({"client_id": "example", "access_type": "offline"}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["Wazo-Sessions-Revoked"], "0");
    let first: Value = resp.json().await.unwrap();
    let data = &first["data"];
    let access = str_of(data, "token").to_owned();
    let refresh = str_of(data, "refresh_token").to_owned();
    assert!(is_uuid(&access) && is_uuid(&refresh), "{data}");
    assert_eq!(data["auth_id"], alice.as_str());
    assert_eq!(data["xivo_user_uuid"], alice.as_str());
    assert_eq!(data["metadata"]["pbx_user_uuid"], alice.as_str());
    assert_eq!(data["metadata"]["purpose"], "user");
    assert!(data.get("pbx_user_uuid").is_none());
    assert_eq!(data["acl"], json!(USER_ACL));

    // Refresh with it and no credentials: an access token, no refresh token.
    let resp = app
        .wazo_post_token(
            "/api/auth/0.1/token",
            None,
            &json!({"expiration": 3600, "client_id": "example", "refresh_token": refresh}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: Value = resp.json().await.unwrap();
    assert!(
        refreshed["data"].get("refresh_token").is_none(),
        "{refreshed}"
    );
    let access2 = str_of(&refreshed["data"], "token").to_owned();
    assert_ne!(access2, access);
    assert_ne!(refreshed["data"]["session_uuid"], data["session_uuid"]);
    assert_eq!(app.wazo_check(&access2).await, 204);

    // The refresh token is no access token: 401 on a protected endpoint, 404 on validation.
    let resp = app.wazo_get("/0.1/users/me/tokens", &refresh).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["details"]["reason"], "not_found_or_expired");
    assert_eq!(app.wazo_check(&refresh).await, 404);

    // An access token is no refresh token.
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "example", "refresh_token": access}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], json!(["Authentication Failed"]));

    // A refresh token cannot mint another one.
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "example", "refresh_token": refresh, "access_type": "offline"}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // The wrong client id is an unknown refresh token.
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            Some(("alice", "s3cret")),
            &json!({"client_id": "other", "refresh_token": refresh}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A second offline login hands back the very same refresh token.
    let again = app
        .wazo_login(
            "alice",
            "s3cret",
            json!({"client_id": "example", "access_type": "offline"}),
        )
        .await;
    assert_eq!(again["refresh_token"], refresh.as_str());
    // Another client id gets another one.
    let other = app
        .wazo_login(
            "alice",
            "s3cret",
            json!({"client_id": "other", "access_type": "offline"}),
        )
        .await;
    assert_ne!(other["refresh_token"], refresh.as_str());

    // The list shows both, without their values.
    let resp = app.wazo_get("/0.1/users/me/tokens", &access2).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["filtered"], 2);
    assert!(!list.to_string().contains(&refresh));

    // Delete it: refreshing is 401 from now on, but issued access tokens stay valid.
    let resp = app
        .wazo_delete("/api/auth/0.1/users/me/tokens/example", &access2)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "example", "refresh_token": refresh}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.wazo_check(&access2).await, 204);
    let resp = app
        .wazo_delete("/0.1/users/me/tokens/example", &access2)
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // A new offline login mints a new value; the deleted one never comes back.
    let fresh = app
        .wazo_login(
            "alice",
            "s3cret",
            json!({"client_id": "example", "access_type": "offline"}),
        )
        .await;
    assert!(is_uuid(str_of(&fresh, "refresh_token")));
    assert_ne!(fresh["refresh_token"], refresh.as_str());
}

/// The seeds send JSON to `/token` too: without `grant_type` it is a Wazo login.
async fn a_json_body_without_grant_type_on_token_is_a_wazo_login(db: Db) {
    let app = TestApp::spawn(db).await;
    app.add_user("bob", "pw", USER_ACL);
    let resp = app
        .wazo_post_token(
            "/token",
            Some(("bob", "pw")),
            &json!({"expiration": 3600}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(is_uuid(str_of(&body["data"], "token")));
}

/// Check 5: a revoked token is refused at once; an expired one from the second after expiry.
async fn revoked_and_expired_tokens_are_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.add_user("carol", "pw", USER_ACL);
    let data = app
        .wazo_login("carol", "pw", json!({"expiration": 60}))
        .await;
    let token = str_of(&data, "token").to_owned();
    assert_eq!(app.wazo_check(&token).await, 204);
    app.clock.advance_secs(60);
    assert_eq!(
        app.wazo_check(&token).await,
        204,
        "valid through its expiry second"
    );
    app.clock.advance_secs(1);
    assert_eq!(app.wazo_check(&token).await, 404);

    let data = app.wazo_login("carol", "pw", json!({})).await;
    let token = str_of(&data, "token").to_owned();
    assert_eq!(app.wazo_check(&token).await, 204);
    let resp = app
        .http
        .delete(app.url(&format!("/0.1/token/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"data": {"message": "success"}})
    );
    assert_eq!(app.wazo_check(&token).await, 404);
    let resp = app.wazo_get("/0.1/users/me/tokens", &token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// Check 6: one token store for both dialects.
async fn both_dialects_share_one_token_store(db: Db) {
    let app = TestApp::spawn(db).await;
    let client = app.add_full_client("app");
    let dave = app.add_user(
        "dave",
        "pw",
        &["confd.users.me.read", "auth.tokens.introspect"],
    );

    // An OAuth2 token validates on the Wazo endpoint, its scopes as `acl`.
    let granted = app
        .password_grant(&client, "dave", "pw", Some("confd.users.me.read"))
        .await;
    let oauth_token = str_of(&granted, "access_token").to_owned();
    let resp = app
        .http
        .get(app.url(&format!(
            "/0.1/token/{oauth_token}?scope=confd.users.{dave}.read"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["acl"], json!(["confd.users.me.read"]));
    assert_eq!(body["data"]["auth_id"], dave.as_str());
    assert_eq!(body["data"]["metadata"]["uuid"], dave.as_str());

    // A Wazo token introspects as active on the OAuth2 endpoint (for its owner's admin).
    let data = app.wazo_login("dave", "pw", json!({})).await;
    let wazo_token = str_of(&data, "token").to_owned();
    let resp = app
        .http
        .post(app.url("/oauth2/introspect"))
        .bearer_auth(&wazo_token)
        .form(&[("token", wazo_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let intro: Value = resp.json().await.unwrap();
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["sub"], dave.as_str());
    assert!(
        intro.get("client_id").is_none(),
        "an online login names no client: {intro}"
    );

    // Revoking the OAuth2 token through the Wazo DELETE works too.
    let resp = app
        .http
        .delete(app.url(&format!("/0.1/token/{oauth_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.introspect(&client, &oauth_token).await["active"], false);
}

/// `[wazo]` settings show in every token; `[policy.wazo]` rotation makes a refresh return a new
/// refresh token and retire the old one (replaying it is reuse); `Authorization: Bearer` works like `X-Auth-Token`.
async fn wazo_settings_and_policy_shape_the_tokens(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_WAZO__XIVO_UUID", "the-predefined-xivo-uuid"),
            (
                "TESSERA_WAZO__DEFAULT_USER_ACL",
                "auth.users.me.tokens.#,dird.me.#",
            ),
            ("TESSERA_POLICY__WAZO__ACCESS_TOKEN_TTL", "600"),
            ("TESSERA_POLICY__WAZO__ROTATE_REFRESH_TOKENS", "true"),
        ],
    )
    .await;
    let grace = app.add_user("grace", "pw", &["confd.users.me.read"]);
    let data = app
        .wazo_login(
            "grace",
            "pw",
            json!({"client_id": "app", "access_type": "offline"}),
        )
        .await;
    assert_eq!(data["xivo_uuid"], "the-predefined-xivo-uuid");
    assert_eq!(data["metadata"]["xivo_uuid"], "the-predefined-xivo-uuid");
    assert_eq!(
        data["acl"],
        json!(["auth.users.me.tokens.#", "dird.me.#", "confd.users.me.read"])
    );
    let issued = chrono::NaiveDateTime::parse_from_str(
        str_of(&data, "utc_issued_at"),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    let expires = chrono::NaiveDateTime::parse_from_str(
        str_of(&data, "utc_expires_at"),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    assert_eq!((expires - issued).num_seconds(), 600);

    let first = str_of(&data, "refresh_token").to_owned();
    let resp = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "app", "refresh_token": first}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: Value = resp.json().await.unwrap();
    let second = str_of(&refreshed["data"], "refresh_token").to_owned();
    assert_ne!(second, first);
    let retry = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "app", "refresh_token": first}),
            &[],
        )
        .await;
    assert_eq!(retry.status(), StatusCode::UNAUTHORIZED);
    // That replay was reuse (no grace by default): the family is revoked, so the current one
    // is refused too, and the next offline login starts a new family.
    let current = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "app", "refresh_token": second}),
            &[],
        )
        .await;
    assert_eq!(current.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.wazo_check(str_of(&refreshed["data"], "token")).await,
        404
    );
    let again = app
        .wazo_login(
            "grace",
            "pw",
            json!({"client_id": "app", "access_type": "offline"}),
        )
        .await;
    assert_ne!(again["refresh_token"], second.as_str());
    assert_ne!(again["refresh_token"], first.as_str());

    let resp = app
        .http
        .get(app.url(&format!("/0.1/users/{grace}/tokens")))
        .bearer_auth(str_of(&again, "token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["total"], 1);
}

/// Browsers (the @wazo/sdk JS client) may call the Wazo API from any origin, as wazo-auth
/// allows, and read the answer's `X-Request-Id`; the OAuth2 endpoints stay same-origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_may_call_the_wazo_api_from_any_origin() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.add_user("frank", "pw", USER_ACL);
    let resp = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/auth/0.1/token"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,wazo-session-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let allowed = resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "x-auth-token",
        "wazo-tenant",
        "wazo-session-type",
        "authorization",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let resp = app
        .wazo_post_token(
            "/api/auth/0.1/token",
            Some(("frank", "pw")),
            &json!({}),
            &[("Origin", "https://app.example")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    // Scripts may read the request id (to quote it in a report), and nothing else: not
    // `Wazo-Sessions-Revoked`, as upstream.
    assert!(resp.headers().contains_key("x-request-id"));
    assert!(resp.headers().contains_key("wazo-sessions-revoked"));
    assert_eq!(
        resp.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase(),
        "x-request-id"
    );
}

on_both_backends!(
    the_seed_story_holds_end_to_end,
    a_json_body_without_grant_type_on_token_is_a_wazo_login,
    revoked_and_expired_tokens_are_refused,
    both_dialects_share_one_token_store,
    wazo_settings_and_policy_shape_the_tokens,
);
