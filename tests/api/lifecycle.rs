//! Token lifecycle around the grants: the cleanup task's batched purge of expired rows, and a
//! disabled user's tokens.
use reqwest::StatusCode;
use tessera::store::cleanup::{Purged, purge_expired};

use crate::helpers::{Db, TestApp, error_of, str_of};
use crate::on_both_backends;

on_both_backends!(
    expired_tokens_are_purged_in_batches,
    a_disabled_user_can_no_longer_refresh
);

async fn expired_tokens_are_purged_in_batches(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_POLICY__REFRESH_TOKEN_TTL", "7200")]).await;
    let client = app.add_full_client("app");
    app.add_user("hank", "pw", &["#"]);
    let mut kept = Vec::new();
    for _ in 0..5 {
        kept.push(app.password_grant(&client, "hank", "pw", None).await);
    }
    let cc = app
        .post_form(
            "/oauth2/token",
            Some(&client),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let cc_token = str_of(&cc.json().await.unwrap(), "access_token").to_owned();

    let service = app.service.clone();
    let purge = move |now: i64| {
        let mut conn = service.store().conn().unwrap();
        purge_expired(&mut conn, now, 2).unwrap()
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
            sessions: 1
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
            sessions: 5
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
