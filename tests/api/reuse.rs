//! Checks 3, 4 and 5: refresh-token reuse (DESIGN.md §6).
//!
//! - A rotated-out refresh token presented again revokes its whole family, refresh and access
//!   tokens, and nothing else of the user.
//! - Exact retry: inside `reuse_grace` and `reuse_grace_max`, replaying the immediately previous
//!   token returns the very same answer; past the window, past the count or an older generation
//!   is reuse. The answer rests sealed: no column of `refresh_tokens` holds a token.
//! - Concurrency: many refreshes of one token at once are one rotation and its retries (grace),
//!   or one winner and a revoked family (no grace); never a 5xx.
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use diesel::{QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, TestClient, str_of};
use crate::on_both_backends;

on_both_backends!(
    a_replayed_refresh_token_revokes_its_family_and_nothing_else,
    a_replay_inside_the_grace_window_gets_the_same_answer_once,
    a_replay_past_the_grace_window_is_reuse,
    replaying_an_older_generation_inside_the_window_is_reuse,
    the_retry_answer_rests_sealed,
    concurrent_refreshes_inside_the_grace_all_get_the_one_answer,
    concurrent_refreshes_without_grace_have_one_winner_and_revoke_the_family,
    a_wazo_replay_inside_the_grace_is_the_same_answer_then_reuse,
);

const REUSED: &str = "Refresh token was already used; every token of its grant is revoked.";

/// A server with `overrides`, a full client `app` and the user `alice`.
async fn spawn(db: Db, overrides: &[(&str, &str)]) -> (TestApp, TestClient) {
    let app = TestApp::spawn_with(db, overrides).await;
    let client = app.add_full_client("app");
    app.add_user("alice", "pw", &["#"]);
    (app, client)
}

/// `(access_token, refresh_token)` of a token answer.
fn pair(body: &Value) -> (String, String) {
    (
        str_of(body, "access_token").to_owned(),
        str_of(body, "refresh_token").to_owned(),
    )
}

/// A password grant for alice: `(access_token, refresh_token)`.
async fn login(app: &TestApp, client: &TestClient) -> (String, String) {
    pair(&app.password_grant(client, "alice", "pw", None).await)
}

/// A refresh that must succeed; returns the whole answer.
async fn refresh_ok(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let resp = app.refresh(client, token).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A refresh that must be refused `invalid_grant`; returns the description.
async fn refresh_refused(app: &TestApp, client: &TestClient, token: &str) -> String {
    let resp = app.refresh(client, token).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    str_of(&body, "error_description").to_owned()
}

/// The whole family is dead: each access token introspects exactly `{"active": false}` and
/// each refresh token is refused.
async fn assert_family_revoked(
    app: &TestApp,
    client: &TestClient,
    access: &[&str],
    refresh: &[&str],
) {
    for token in access {
        assert_eq!(
            app.introspect(client, token).await,
            json!({"active": false})
        );
    }
    for token in refresh {
        refresh_refused(app, client, token).await;
        assert_eq!(
            app.introspect(client, token).await,
            json!({"active": false})
        );
    }
}

/// Check 3: R1 → R2; R1 again revokes the family (R2, and the access tokens of the grant and
/// of the refresh); another family of the same user lives on.
async fn a_replayed_refresh_token_revokes_its_family_and_nothing_else(db: Db) {
    let (app, client) = spawn(db, &[]).await;
    let (a1, r1) = login(&app, &client).await;
    let (other_access, other_refresh) = login(&app, &client).await;
    let (a2, r2) = pair(&refresh_ok(&app, &client, &r1).await);
    assert_eq!(app.introspect(&client, &a2).await["active"], true);

    app.clock.advance_secs(1);
    assert_eq!(refresh_refused(&app, &client, &r1).await, REUSED);
    assert_eq!(
        refresh_refused(&app, &client, &r2).await,
        "Refresh token is revoked."
    );
    assert_family_revoked(&app, &client, &[&a1, &a2], &[&r1, &r2]).await;

    // The other family of the same user and client is untouched.
    assert_eq!(app.introspect(&client, &other_access).await["active"], true);
    let (other_a2, _) = pair(&refresh_ok(&app, &client, &other_refresh).await);
    assert_eq!(app.introspect(&client, &other_a2).await["active"], true);
    assert_eq!(app.introspect(&client, &other_access).await["active"], true);
}

/// Check 4: within 30 s, the first replay of R1 is the first answer again, byte for byte; the
/// second is reuse.
async fn a_replay_inside_the_grace_window_gets_the_same_answer_once(db: Db) {
    let (app, client) = spawn(db, &[("TESSERA_POLICY__REUSE_GRACE", "30")]).await;
    let (a1, r1) = login(&app, &client).await;
    let first = refresh_ok(&app, &client, &r1).await;
    let (a2, r2) = pair(&first);
    assert_eq!(first["expires_in"], 3600);

    app.clock.advance_secs(10);
    let again = refresh_ok(&app, &client, &r1).await;
    let mut expected = first.clone();
    expected["expires_in"] = json!(3590);
    assert_eq!(
        again, expected,
        "the same tokens, expires_in counted from now"
    );
    assert_eq!(pair(&again), (a2.clone(), r2.clone()));
    assert_eq!(app.introspect(&client, &a2).await["active"], true);

    // reuse_grace_max = 1: the second replay is reuse.
    assert_eq!(refresh_refused(&app, &client, &r1).await, REUSED);
    assert_family_revoked(&app, &client, &[&a1, &a2], &[&r2]).await;
}

/// Check 4: a replay 31 s after the rotation is reuse; 30 s is still a retry (two families on
/// one clock).
async fn a_replay_past_the_grace_window_is_reuse(db: Db) {
    let (app, client) = spawn(db, &[("TESSERA_POLICY__REUSE_GRACE", "30")]).await;
    let (_, late_r1) = login(&app, &client).await;
    let (_, edge_r1) = login(&app, &client).await;
    let (late_a2, late_r2) = pair(&refresh_ok(&app, &client, &late_r1).await);
    let edge_first = refresh_ok(&app, &client, &edge_r1).await;

    app.clock.advance_secs(30);
    let edge_again = refresh_ok(&app, &client, &edge_r1).await;
    assert_eq!(pair(&edge_again), pair(&edge_first), "30 s: still a retry");

    app.clock.advance_secs(1);
    assert_eq!(refresh_refused(&app, &client, &late_r1).await, REUSED);
    assert_family_revoked(&app, &client, &[&late_a2], &[&late_r2]).await;
    // The family retried at 30 s is not touched.
    let (_, edge_r2) = pair(&edge_first);
    refresh_ok(&app, &client, &edge_r2).await;
}

/// Check 4: R1 → R2 → R3 inside the window; R1 is no longer the immediately previous token.
async fn replaying_an_older_generation_inside_the_window_is_reuse(db: Db) {
    let (app, client) = spawn(db, &[("TESSERA_POLICY__REUSE_GRACE", "30")]).await;
    let (a1, r1) = login(&app, &client).await;
    let (a2, r2) = pair(&refresh_ok(&app, &client, &r1).await);
    app.clock.advance_secs(5);
    let (a3, r3) = pair(&refresh_ok(&app, &client, &r2).await);
    app.clock.advance_secs(5);
    assert_eq!(refresh_refused(&app, &client, &r1).await, REUSED);
    assert_family_revoked(&app, &client, &[&a1, &a2, &a3], &[&r2, &r3]).await;
}

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    v: Option<String>,
}

/// Every column of `refresh_tokens`, as the database lists them.
fn refresh_token_columns(app: &TestApp, db: &Db) -> Vec<String> {
    let mut conn = app.service.store().conn().unwrap();
    let query = match db {
        Db::Sqlite => "SELECT name AS v FROM pragma_table_info('refresh_tokens')",
        Db::Postgres(_) => {
            "SELECT column_name::text AS v FROM information_schema.columns \
             WHERE table_name = 'refresh_tokens' AND table_schema = current_schema()"
        }
    };
    let names: Vec<Text> = diesel::sql_query(query).load(&mut *conn).unwrap();
    names.into_iter().filter_map(|n| n.v).collect()
}

/// Column `column` of every row of `refresh_tokens` (as text), keyed by the row's hash.
fn refresh_token_column(app: &TestApp, column: &str) -> Vec<(String, Option<String>)> {
    #[derive(QueryableByName)]
    struct Cell {
        #[diesel(sql_type = diesel::sql_types::Text)]
        hash: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        v: Option<String>,
    }
    let mut conn = app.service.store().conn().unwrap();
    let cells: Vec<Cell> = diesel::sql_query(format!(
        "SELECT hash, CAST({column} AS TEXT) AS v FROM refresh_tokens ORDER BY issued_at, id"
    ))
    .load(&mut *conn)
    .unwrap();
    cells.into_iter().map(|c| (c.hash, c.v)).collect()
}

/// The forms in which a token's value could rest: as is, its bytes in hex and base64, and (for
/// base64url tokens) the decoded bytes in hex and standard base64.
fn encodings(token: &str) -> Vec<String> {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut forms = vec![
        token.to_owned(),
        hex(token.as_bytes()),
        URL_SAFE_NO_PAD.encode(token),
        STANDARD_NO_PAD.encode(token),
    ];
    if let Ok(raw) = URL_SAFE_NO_PAD.decode(token) {
        forms.extend([
            hex(&raw),
            STANDARD_NO_PAD.encode(&raw),
            URL_SAFE.encode(&raw),
            STANDARD.encode(&raw),
        ]);
    }
    forms
}

/// Check 4: the answer kept for a retry is sealed; no column of any row holds a token.
async fn the_retry_answer_rests_sealed(db: Db) {
    let (app, client) = spawn(db.clone(), &[("TESSERA_POLICY__REUSE_GRACE", "30")]).await;
    let (a1, r1) = login(&app, &client).await;
    let (a2, r2) = pair(&refresh_ok(&app, &client, &r1).await);
    app.clock.advance_secs(3);
    let (a3, r3) = pair(&refresh_ok(&app, &client, &r2).await);
    // A retry read the sealed answer of R2's row: it stays sealed.
    assert_eq!(
        pair(&refresh_ok(&app, &client, &r2).await),
        (a3.clone(), r3.clone())
    );

    let digest = tessera::crypto::token::digest;
    let sealed: Vec<(String, Option<String>)> = refresh_token_column(&app, "retry_answer");
    let answer_of = |token: &str| {
        sealed
            .iter()
            .find(|(hash, _)| *hash == digest(token))
            .unwrap_or_else(|| panic!("no row for a refresh token"))
            .1
            .clone()
    };
    for (consumed, token) in [("R1", &r1), ("R2", &r2)] {
        let answer = answer_of(token).unwrap_or_else(|| panic!("{consumed} has no retry_answer"));
        let bytes = URL_SAFE_NO_PAD
            .decode(&answer)
            .unwrap_or_else(|e| panic!("{consumed}'s retry_answer is not base64url: {e}"));
        assert!(
            bytes.len() > 12 + 16 + 2 * 43,
            "{consumed}'s answer holds a nonce, two tokens and a tag"
        );
    }
    assert_eq!(answer_of(&r3), None, "the live token has no answer to keep");

    let columns = refresh_token_columns(&app, &db);
    assert!(columns.len() >= 20, "{columns:?}");
    assert!(columns.iter().any(|c| c == "retry_answer"), "{columns:?}");
    let tokens = [
        ("A1", &a1),
        ("R1", &r1),
        ("A2", &a2),
        ("R2", &r2),
        ("A3", &a3),
        ("R3", &r3),
    ];
    for column in &columns {
        for (hash, value) in refresh_token_column(&app, column) {
            let Some(value) = value else { continue };
            for (name, token) in tokens {
                for form in encodings(token) {
                    assert!(
                        !value.contains(&form),
                        "column {column} of row {hash} holds {name} ({form})"
                    );
                }
            }
        }
    }
}

/// Fires `n` refreshes of `token` at once; returns each status and body.
async fn refresh_at_once(
    app: &Arc<TestApp>,
    client: &TestClient,
    token: &str,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (app, client, token, barrier) = (
                Arc::clone(app),
                client.clone(),
                token.to_owned(),
                Arc::clone(&barrier),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = app.refresh(&client, &token).await;
                let status = resp.status();
                let body: Value = resp
                    .json()
                    .await
                    .unwrap_or_else(|e| json!({"unreadable": e.to_string()}));
                (status, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    for (status, body) in &answers {
        assert!(!status.is_server_error(), "{status}: {body}");
    }
    answers
}

/// Check 5: 100 refreshes at once with a grace of 10 s and 100 retries: one rotation, every
/// answer the same, and the family lives on.
async fn concurrent_refreshes_inside_the_grace_all_get_the_one_answer(db: Db) {
    let (app, client) = spawn(
        db,
        &[
            ("TESSERA_POLICY__REUSE_GRACE", "10"),
            ("TESSERA_POLICY__REUSE_GRACE_MAX", "100"),
        ],
    )
    .await;
    let app = Arc::new(app);
    let (_, r1) = login(&app, &client).await;
    let answers = refresh_at_once(&app, &client, &r1, 100).await;
    let (status, body) = &answers[0];
    assert_eq!(*status, StatusCode::OK, "{body}");
    let (access, refresh) = pair(body);
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(pair(body), (access.clone(), refresh.clone()));
    }
    // One rotation and 99 retries, each counted once.
    let digest = tessera::crypto::token::digest(&r1);
    let counts = refresh_token_column(&app, "retry_count");
    let count = counts
        .iter()
        .find(|(hash, _)| *hash == digest)
        .map(|(_, v)| v.clone());
    assert_eq!(count, Some(Some("99".to_owned())));
    assert_eq!(app.introspect(&client, &access).await["active"], true);
    let next = refresh_ok(&app, &client, &refresh).await;
    assert_eq!(
        app.introspect(&client, str_of(&next, "access_token")).await["active"],
        true
    );
}

/// Check 5: 100 refreshes at once without grace: one winner, 99 `invalid_grant`, and the
/// replays revoked the winner's family.
async fn concurrent_refreshes_without_grace_have_one_winner_and_revoke_the_family(db: Db) {
    let (app, client) = spawn(db, &[("TESSERA_POLICY__REUSE_GRACE", "0")]).await;
    let app = Arc::new(app);
    let (a1, r1) = login(&app, &client).await;
    let answers = refresh_at_once(&app, &client, &r1, 100).await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    let (a2, r2) = pair(winners[0]);
    assert_family_revoked(&app, &client, &[&a1, &a2], &[&r2]).await;
}

/// The Wazo dialect with rotation and a 30 s grace: the replay of the first refresh token is
/// the same answer once, then reuse (401) that kills the new refresh token too.
async fn a_wazo_replay_inside_the_grace_is_the_same_answer_then_reuse(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_POLICY__WAZO__ROTATE_REFRESH_TOKENS", "true"),
            ("TESSERA_POLICY__WAZO__REUSE_GRACE", "30"),
        ],
    )
    .await;
    app.add_user("alice", "pw", &["auth.users.me.#"]);
    let login = app
        .wazo_login(
            "alice",
            "pw",
            json!({"client_id": "phone", "access_type": "offline"}),
        )
        .await;
    let first = str_of(&login, "refresh_token").to_owned();
    let login_token = str_of(&login, "token").to_owned();
    let refresh = |token: &str| {
        let body = json!({"client_id": "phone", "refresh_token": token});
        let app = &app;
        async move { app.wazo_post_token("/0.1/token", None, &body, &[]).await }
    };

    let resp = refresh(&first).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let data = resp.json::<Value>().await.unwrap()["data"].clone();
    let (token, next) = (
        str_of(&data, "token").to_owned(),
        str_of(&data, "refresh_token").to_owned(),
    );
    assert_ne!(next, first, "rotation is on for the Wazo dialect");

    app.clock.advance_secs(10);
    let resp = refresh(&first).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let again = resp.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(again["token"], data["token"], "the same access token");
    assert_eq!(
        again["refresh_token"], data["refresh_token"],
        "the same refresh token"
    );
    assert_eq!(app.wazo_check(&token).await, 204);

    // reuse_grace_max = 1: the second replay is reuse.
    let resp = refresh(&first).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = refresh(&next).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the new refresh token is revoked too"
    );
    assert_eq!(
        app.wazo_check(&token).await,
        404,
        "the refresh's access token is revoked"
    );
    assert_eq!(
        app.wazo_check(&login_token).await,
        404,
        "the login's access token is revoked"
    );
}
