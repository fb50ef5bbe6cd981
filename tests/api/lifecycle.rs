//! Token lifecycle around the grants: the cleanup task's batched purge of expired rows, and a
//! disabled user's tokens.
use reqwest::StatusCode;
use tessera::store::cleanup::{Purged, purge_expired};

use crate::helpers::{Db, TestApp, error_of, str_of};
use crate::on_both_backends;

on_both_backends!(
    expired_tokens_are_purged_in_batches,
    a_disabled_user_can_no_longer_refresh,
    removing_a_client_revokes_its_tokens_for_good
);

async fn expired_tokens_are_purged_in_batches(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_POLICY__REFRESH_TOKEN_TTL", "7200")]).await;
    let client = app.add_full_client("app");
    app.add_user("hank", "pw", &["#"]);
    let mut kept = Vec::new();
    for _ in 0..5 {
        kept.push(app.password_grant(&client, "hank", "pw", None).await);
    }
    let cc_token = app.client_credentials_token(&client).await;

    let service = app.service.clone();
    let purge = move |now: i64| {
        let mut conn = service.store().conn().unwrap();
        purge_expired(service.store(), &mut conn, now, 2, 300).unwrap()
    };
    // Nothing has expired yet.
    let now = app.service.now();
    assert_eq!(purge(now), Purged::default());

    // After the access tokens expire (1 h) but before the refresh tokens (2 h): six access
    // tokens go, the client_credentials session with them; refresh tokens keep theirs.
    app.clock.advance_secs(3601);
    let purged = purge(app.service.now());
    assert_eq!(
        purged,
        Purged {
            access_tokens: 6,
            refresh_tokens: 0,
            retry_answers: 0,
            sessions: 1,
            auth_failures: 0
        }
    );
    assert_eq!(app.introspect(&client, &cc_token).await["active"], false);
    let resp = app
        .refresh(&client, str_of(&kept[0], "refresh_token"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    // After the refresh tokens expire everything goes, batch after batch.
    app.clock.advance_secs(7201);
    let purged = purge(app.service.now());
    assert_eq!(
        purged,
        Purged {
            access_tokens: 1,
            refresh_tokens: 6,
            retry_answers: 0,
            sessions: 5,
            auth_failures: 0
        }
    );
}

async fn a_disabled_user_can_no_longer_refresh(db: Db) {
    let app = TestApp::spawn(db).await;
    let client = app.add_full_client("app");
    let id = app.add_user("ivy", "pw", &["#"]);
    let tokens = app.password_grant(&client, "ivy", "pw", None).await;
    {
        let mut conn = app.service.store().conn().unwrap();
        tessera::store::users::set_enabled(&mut conn, &id, false).unwrap();
    }
    let (status, code) =
        error_of(app.refresh(&client, str_of(&tokens, "refresh_token")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    assert_eq!(
        app.introspect(&client, str_of(&tokens, "access_token"))
            .await["active"],
        false
    );
    let resp = app
        .post_form(
            "/oauth2/token",
            Some(&client),
            &[
                ("grant_type", "password"),
                ("username", "ivy"),
                ("password", "pw"),
            ],
        )
        .await;
    assert_eq!(error_of(resp).await, (400, "invalid_grant".to_owned()));
}

async fn removing_a_client_revokes_its_tokens_for_good(db: Db) {
    let app = TestApp::spawn(db).await;
    let gone = app.add_full_client("gone");
    let witness = app.add_full_client("witness");
    app.add_user("jo", "pw", &["#"]);
    let tokens = app.password_grant(&gone, "jo", "pw", None).await;
    let admin = app
        .password_grant(&witness, "jo", "pw", Some("auth.tokens.introspect"))
        .await;
    {
        let mut conn = app.service.store().conn().unwrap();
        let now = app.service.now();
        tessera::store::connection::write(&mut conn, |c| {
            tessera::store::clients::delete(c, "gone", now)
        })
        .unwrap();
    }
    let introspect = |token: String| {
        let req = app
            .http
            .post(app.url("/oauth2/introspect"))
            .bearer_auth(str_of(&admin, "access_token"));
        async move {
            req.form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        introspect(str_of(&tokens, "access_token").to_owned()).await["active"],
        false
    );
    // Registering the same id again does not revive the old refresh token.
    let again = app.add_full_client("gone");
    let (status, code) =
        error_of(app.refresh(&again, str_of(&tokens, "refresh_token")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
}
