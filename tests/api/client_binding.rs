//! Check 3: client B can neither refresh, revoke nor introspect client A's tokens, and A's
//! tokens keep working afterwards (RFC 6749 §10.4, RFC 7009 §2.1, RFC 7662 §4).
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, error_of, str_of};
use crate::on_both_backends;

on_both_backends!(another_client_cannot_use_refresh_revoke_or_introspect);

async fn another_client_cannot_use_refresh_revoke_or_introspect(db: Db) {
    let app = TestApp::spawn(db).await;
    let a = app.add_full_client("client-a");
    let b = app.add_full_client("client-b");
    app.add_user("carol", "pw", &["#"]);
    let tokens = app.password_grant(&a, "carol", "pw", None).await;
    let refresh = str_of(&tokens, "refresh_token");
    let access = str_of(&tokens, "access_token");

    let resp = app.refresh(&b, refresh).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token."})
    );

    for token in [refresh, access] {
        let (status, code) = error_of(
            app.post_form("/oauth2/revoke", Some(&b), &[("token", token)])
                .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (400, "unauthorized_client"));
        assert_eq!(app.introspect(&b, token).await, json!({"active": false}));
    }

    // A's tokens are untouched.
    let seen = app.introspect(&a, access).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], "client-a");
    assert_eq!(seen["username"], "carol");
    let resp = app.refresh(&a, refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
}
