//! Administration from the shell, through the real binary on a running server's database:
//! `token list|revoke`, `user show|enable|disable`, `client show|rotate-secret`, `backup`, the
//! exit statuses (0 done, 1 failed, 2 bad usage), `--json`, and `docs/cli.md` holding every
//! `--help` text verbatim.
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel::{Connection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::crypto::token::digest;

use crate::helpers::{Db, TestApp, TestClient, error_of, str_of, test_env};
use crate::on_both_backends;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
const ACL: &[&str] = &["confd.#", "auth.users.me.#"];

/// What a run of the binary left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The JSON printed by a successful run.
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:?}");
        &self.stdout
    }
}

/// Runs `tessera ARGS` in `dir` with exactly the `TESSERA_*` variables of `env`, feeding
/// `stdin` if any.
fn run_blocking(
    dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    stdin: Option<String>,
) -> Run {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_remove("TESSERA_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("CLICOLOR_FORCE")
        .envs(env)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `tessera ARGS` on the database and data directory of `app`, as an operator would run it
/// beside the server.
async fn tessera(app: &TestApp, args: &[&str]) -> Run {
    tessera_stdin(app, args, None).await
}

async fn tessera_stdin(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Run {
    let dir = app.db.dir.path().to_path_buf();
    let env = test_env(&app.db, &[]);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || run_blocking(dir, env, args, stdin))
        .await
        .unwrap()
}

/// An OAuth2 password grant: (access token, refresh token).
async fn login(app: &TestApp, client: &TestClient, user: &str) -> (String, String) {
    let body = app.password_grant(client, user, "pw", None).await;
    (
        str_of(&body, "access_token").to_owned(),
        str_of(&body, "refresh_token").to_owned(),
    )
}

/// An offline Wazo login: (access token, refresh token).
async fn wazo_login(app: &TestApp, user: &str, client_id: &str) -> (String, String) {
    let data = app
        .wazo_login(
            user,
            "pw",
            json!({"client_id": client_id, "access_type": "offline"}),
        )
        .await;
    (
        str_of(&data, "token").to_owned(),
        str_of(&data, "refresh_token").to_owned(),
    )
}

/// A Wazo refresh; returns the status.
async fn wazo_refresh(app: &TestApp, client_id: &str, refresh: &str) -> u16 {
    app.wazo_post_token(
        "/0.1/token",
        None,
        &json!({"client_id": client_id, "refresh_token": refresh}),
        &[],
    )
    .await
    .status()
    .as_u16()
}

/// An OAuth2 refresh; returns the status and the new tokens' body.
async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> (u16, Value) {
    let resp = app.refresh(client, token).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn active(app: &TestApp, client: &TestClient, token: &str) -> bool {
    app.introspect(client, token).await["active"] == true
}

/// The keys `token list --json` promises for every token.
const TOKEN_KEYS: [&str; 12] = [
    "kind",
    "state",
    "dialect",
    "family_id",
    "generation",
    "client_id",
    "user_uuid",
    "username",
    "issued_at",
    "expires_at",
    "consumed_at",
    "revoked_at",
];

fn count(items: &Value, kind: &str, state: &str) -> usize {
    items
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == kind && t["state"] == state)
        .count()
}

async fn token_list_shows_the_tokens_of_a_user_or_a_client_never_their_values(db: Db) {
    let app = TestApp::spawn(db).await;
    let web = app.add_full_client("web");
    let alice = app.add_user("alice", "pw", ACL);
    let (a1, r1) = login(&app, &web, "alice").await;
    let (status, body) = refresh(&app, &web, &r1).await;
    assert_eq!(status, 200);
    let (a2, r2) = (
        str_of(&body, "access_token"),
        str_of(&body, "refresh_token"),
    );
    let (w1, wr1) = wazo_login(&app, "alice", "wazo-app").await;
    let c1 = app.client_credentials_token(&web).await;

    let by_user = tessera(&app, &["token", "list", "--user", "alice", "--json"]).await;
    let items = by_user.json();
    for t in items.as_array().unwrap() {
        let keys: BTreeSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, TOKEN_KEYS.into_iter().collect(), "{t}");
        assert_eq!(t["user_uuid"], alice.as_str());
        assert_eq!(t["username"], "alice");
    }
    assert_eq!(items.as_array().unwrap().len(), 6, "{items:#}");
    assert_eq!(count(&items, "refresh", "consumed"), 1);
    assert_eq!(count(&items, "refresh", "active"), 2);
    assert_eq!(count(&items, "access", "active"), 3);
    let wazo_refresh = items
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "refresh" && t["dialect"] == "wazo")
        .unwrap();
    assert_eq!(wazo_refresh["client_id"], "wazo-app");
    assert_eq!(
        wazo_refresh["expires_at"],
        Value::Null,
        "Wazo: never expires"
    );
    let rotated = items
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "refresh" && t["state"] == "active" && t["dialect"] == "oauth2")
        .unwrap();
    assert_eq!(rotated["generation"], 1);

    // No token value, nor its digest, in any output.
    let text = tessera(&app, &["token", "list", "--user", "alice"]).await;
    let by_client = tessera(&app, &["token", "list", "--client", "web", "--json"]).await;
    for secret in [&*a1, &*r1, a2, r2, &*w1, &*wr1, &*c1] {
        for out in [&by_user.stdout, &text.stdout, &by_client.stdout] {
            assert!(!out.contains(secret), "a token value was printed");
            assert!(!out.contains(&digest(secret)), "a token digest was printed");
        }
    }

    // Text: a header, then one line per token, refresh tokens first.
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(
        lines[0],
        "KIND\tSTATE\tDIALECT\tCLIENT\tUSER\tFAMILY\tISSUED\tEXPIRES"
    );
    assert_eq!(lines.len(), 7, "{}", text.stdout);
    assert!(
        lines[1..4].iter().all(|l| l.starts_with("refresh\t")),
        "{}",
        text.stdout
    );
    assert!(
        lines[4..].iter().all(|l| l.starts_with("access\tactive\t")),
        "{}",
        text.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("refresh\tconsumed\toauth2\tweb\talice\t")),
        "{}",
        text.stdout
    );
    assert!(
        lines.iter().any(|l| {
            l.starts_with("refresh\tactive\twazo\twazo-app\talice\t") && l.ends_with("\tnever")
        }),
        "{}",
        text.stdout
    );

    // By client: alice's OAuth2 tokens and the client's own token, which has no user.
    let items = by_client.json();
    assert_eq!(items.as_array().unwrap().len(), 5, "{items:#}");
    assert_eq!(
        items
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["user_uuid"].is_null() && t["username"].is_null())
            .count(),
        1
    );
    // A Wazo client id needs no registration: its tokens name it.
    let wazo = tessera(&app, &["token", "list", "--client", "wazo-app", "--json"]).await;
    assert_eq!(wazo.json().as_array().unwrap().len(), 2);
    // Both at once, and the live ones only.
    let both = tessera(
        &app,
        &[
            "token", "list", "--user", "alice", "--client", "web", "--active", "--json",
        ],
    )
    .await;
    let items = both.json();
    assert_eq!(items.as_array().unwrap().len(), 3, "{items:#}");
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "active")
    );
}

async fn token_revoke_by_user_and_client_revokes_exactly_those_tokens(db: Db) {
    let app = TestApp::spawn(db).await;
    let web = app.add_full_client("web");
    app.add_user("alice", "pw", ACL);
    app.add_user("bob", "pw", ACL);
    let (a1, r1) = login(&app, &web, "alice").await;
    let (w1, wr1) = wazo_login(&app, "alice", "wazo-app").await;
    let (b1, br1) = login(&app, &web, "bob").await;

    let run = tessera(
        &app,
        &[
            "token", "revoke", "--user", "alice", "--client", "web", "--json",
        ],
    )
    .await;
    assert_eq!(
        run.json(),
        json!({"kind": null, "family_id": null, "refresh_tokens_revoked": 1, "access_tokens_revoked": 1})
    );
    assert!(!active(&app, &web, &a1).await);
    assert!(!active(&app, &web, &r1).await);
    assert_eq!(app.wazo_check(&a1).await, 404);
    let resp = app.refresh(&web, &r1).await;
    assert_eq!(error_of(resp).await, (400, "invalid_grant".to_owned()));
    // Alice's Wazo tokens and Bob's tokens still work.
    assert_eq!(app.wazo_check(&w1).await, 204);
    assert!(active(&app, &web, &b1).await);
    assert!(active(&app, &web, &br1).await);

    // Every token of alice: the Wazo ones now, in the text form.
    let run = tessera(&app, &["token", "revoke", "--user", "alice"]).await;
    assert_eq!(
        run.ok(),
        "revoked 1 refresh and 1 access tokens (user alice)\n"
    );
    assert_eq!(app.wazo_check(&w1).await, 404);
    assert_eq!(wazo_refresh(&app, "wazo-app", &wr1).await, 401);
    assert!(active(&app, &web, &b1).await);
    let (status, _) = refresh(&app, &web, &br1).await;
    assert_eq!(status, 200);

    // Every token of a client id (it stays registered): Bob's family, its consumed token
    // included, and its access tokens; a second run changes nothing.
    let run = tessera(&app, &["token", "revoke", "--client", "web"]).await;
    assert_eq!(
        run.ok(),
        "revoked 2 refresh and 2 access tokens (client web)\n"
    );
    assert!(!active(&app, &web, &b1).await);
    let run = tessera(&app, &["token", "revoke", "--client", "web"]).await;
    assert_eq!(
        run.ok(),
        "revoked 0 refresh and 0 access tokens (client web)\n"
    );
    let (fresh, _) = login(&app, &web, "bob").await;
    assert!(active(&app, &web, &fresh).await);
}

async fn token_revoke_by_family_and_by_value(db: Db) {
    let app = TestApp::spawn(db).await;
    let web = app.add_full_client("web");
    app.add_user("alice", "pw", ACL);
    let families = |run: Run| -> BTreeSet<String> {
        run.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "refresh")
            .map(|t| t["family_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (a1, r1) = login(&app, &web, "alice").await;
    let first = families(tessera(&app, &["token", "list", "--user", "alice", "--json"]).await);
    let (a2, r2) = login(&app, &web, "alice").await;
    let both = families(tessera(&app, &["token", "list", "--user", "alice", "--json"]).await);
    assert_eq!((first.len(), both.len()), (1, 2));
    let f1 = first.iter().next().unwrap().clone();

    // A family: its refresh and access tokens, nothing else.
    let run = tessera(&app, &["token", "revoke", "--family", &f1]).await;
    assert_eq!(
        run.ok(),
        format!("revoked 1 refresh and 1 access tokens (family {f1})\n")
    );
    assert!(!active(&app, &web, &a1).await);
    assert!(!active(&app, &web, &r1).await);
    assert!(active(&app, &web, &a2).await);
    assert!(active(&app, &web, &r2).await);

    // OAuth2 tokens are base64url, so one in 64 starts with a dash: a value, not an option.
    let run = tessera(
        &app,
        &["token", "revoke", "--token", "-yK2pHl2Uu1hZxjb8cTvA"],
    )
    .await;
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(1), "tessera: no such token\n")
    );

    // An access token by value: that token alone; its refresh token still refreshes.
    let run = tessera(&app, &["token", "revoke", "--token", &a2, "--json"]).await;
    let out = run.json();
    assert_eq!(out["kind"], "access");
    assert_eq!(out["access_tokens_revoked"], 1);
    assert_eq!(out["refresh_tokens_revoked"], 0);
    assert!(!active(&app, &web, &a2).await);
    let (status, body) = refresh(&app, &web, &r2).await;
    assert_eq!(status, 200);
    let (a3, r3) = (
        str_of(&body, "access_token"),
        str_of(&body, "refresh_token"),
    );

    // A refresh token by value, read from standard input: its whole family (the consumed r2
    // too; a2 was revoked already).
    let run = tessera_stdin(
        &app,
        &["token", "revoke", "--token", "-"],
        Some(&format!("{r3}\n")),
    )
    .await;
    assert!(
        run.ok().starts_with(
            "revoked 2 refresh and 1 access tokens (a refresh token, with its family "
        ),
        "{run:?}"
    );
    assert!(!active(&app, &web, a3).await);
    assert_eq!(
        error_of(app.refresh(&web, r3).await).await,
        (400, "invalid_grant".to_owned())
    );

    // Wazo tokens by value: the access token alone, then the refresh token.
    let (w1, wr1) = wazo_login(&app, "alice", "wazo-app").await;
    let run = tessera(&app, &["token", "revoke", "--token", &w1]).await;
    assert_eq!(
        run.ok(),
        "revoked 0 refresh and 1 access tokens (an access token)\n"
    );
    assert_eq!(app.wazo_check(&w1).await, 404);
    assert_eq!(wazo_refresh(&app, "wazo-app", &wr1).await, 200);
    tessera(&app, &["token", "revoke", "--token", &wr1])
        .await
        .ok();
    assert_eq!(wazo_refresh(&app, "wazo-app", &wr1).await, 401);

    // Unknown, and already revoked.
    let run = tessera(&app, &["token", "revoke", "--token", "not-a-token"]).await;
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(1), "tessera: no such token\n")
    );
    let run = tessera(&app, &["token", "revoke", "--token", &a2]).await;
    assert_eq!(
        run.ok(),
        "revoked 0 refresh and 0 access tokens (an access token)\n"
    );
}

async fn a_jwt_access_token_is_revoked_by_value(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_POLICY__TOKEN_FORMAT", "jwt")]).await;
    let web = app.add_full_client("web");
    app.add_user("alice", "pw", ACL);
    let (jwt, refresh_token) = login(&app, &web, "alice").await;
    let (other, _) = login(&app, &web, "alice").await;
    assert_eq!(jwt.matches('.').count(), 2, "a JWT");
    let run = tessera(&app, &["token", "revoke", "--token", &jwt]).await;
    assert_eq!(
        run.ok(),
        "revoked 0 refresh and 1 access tokens (an access token)\n"
    );
    assert!(!active(&app, &web, &jwt).await);
    assert!(active(&app, &web, &other).await);
    assert!(active(&app, &web, &refresh_token).await);
    // A JWT this server did not sign is no token of its.
    let forged = format!("{}.e30.c2ln", jwt.split('.').next().unwrap());
    let run = tessera(&app, &["token", "revoke", "--token", &forged]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
}

async fn user_show_enable_and_disable(db: Db) {
    let app = TestApp::spawn(db).await;
    let web = app.add_full_client("web");
    let carol = app.add_user("carol", "pw", ACL);

    let shown = tessera(&app, &["user", "show", "carol", "--json"])
        .await
        .json();
    let keys: BTreeSet<&str> = shown
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "uuid",
            "username",
            "tenant_uuid",
            "purpose",
            "email",
            "email_confirmed",
            "enabled",
            "acl",
            "created_at"
        ])
    );
    assert_eq!(shown["uuid"], carol.as_str());
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["acl"], json!(ACL));
    // By UUID too, in text.
    let text = tessera(&app, &["user", "show", &carol]).await;
    assert!(text.ok().starts_with("username: carol\n"), "{text:?}");
    assert!(!text.stdout.contains("argon2"), "no password hash");

    let run = tessera(&app, &["user", "disable", "carol"]).await;
    assert_eq!(run.ok(), "disabled user carol\n");
    let resp = app
        .post_form(
            "/oauth2/token",
            Some(&web),
            &[
                ("grant_type", "password"),
                ("username", "carol"),
                ("password", "pw"),
            ],
        )
        .await;
    assert_eq!(error_of(resp).await, (400, "invalid_grant".to_owned()));
    let resp = app
        .wazo_post_token("/0.1/token", Some(("carol", "pw")), &json!({}), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let shown = tessera(&app, &["user", "show", "carol", "--json"])
        .await
        .json();
    assert_eq!(shown["enabled"], false);
    let listed = tessera(&app, &["user", "list", "--json"]).await.json();
    let listed: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["username"] == "carol")
        .collect();
    assert_eq!(listed, [&shown]);

    let run = tessera(&app, &["user", "enable", &carol]).await;
    assert_eq!(run.ok(), format!("enabled user {carol}\n"));
    login(&app, &web, "carol").await;
}

async fn client_show_and_rotate_secret(db: Db) {
    let app = TestApp::spawn(db).await;
    let web = app.add_client("web", &tessera::domain::GrantType::ALL, &["confd.#"]);
    app.add_user("alice", "pw", ACL);
    let (before, _) = login(&app, &web, "alice").await;

    let shown = tessera(&app, &["client", "show", "web", "--json"])
        .await
        .json();
    assert_eq!(
        shown,
        json!({
            "client_id": "web",
            "type": "confidential",
            "grant_types": ["password", "client_credentials", "refresh_token"],
            "scopes": ["confd.#"],
            "default_scopes": [],
            "created_at": shown["created_at"],
        })
    );
    let text = tessera(&app, &["client", "show", "web"]).await;
    assert!(
        text.ok().starts_with(
            "client_id: web\ntype: confidential\ngrant_types: password client_credentials refresh_token\nscopes: confd.#\ndefault_scopes: -\n"
        ),
        "{text:?}"
    );
    assert!(!text.stdout.contains(&digest(&web.secret)));
    let listed = tessera(&app, &["client", "list", "--json"]).await.json();
    let listed: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["client_id"] == "web")
        .collect();
    assert_eq!(listed, [&shown]);

    let run = tessera(&app, &["client", "rotate-secret", "web"]).await;
    let secret = run
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown once): "))
        .unwrap()
        .to_owned();
    assert_ne!(secret, web.secret);
    let old = app
        .post_form(
            "/oauth2/token",
            Some(&web),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(error_of(old).await, (401, "invalid_client".to_owned()));
    let rotated = TestClient {
        id: "web".into(),
        secret,
    };
    app.client_credentials_token(&rotated).await;
    // Tokens issued before stay valid.
    assert!(active(&app, &rotated, &before).await);

    app.insert_client(
        "spa",
        None,
        &[tessera::domain::GrantType::Password],
        &[],
        &[],
    );
    let run = tessera(&app, &["client", "rotate-secret", "spa"]).await;
    assert_eq!(
        (run.code, run.stderr.as_str(), run.stdout.as_str()),
        (
            Some(1),
            "tessera: client spa is public: it has no secret to rotate\n",
            ""
        )
    );
}

/// Unknown names fail with 1 and say what is missing; bad usage fails with 2.
async fn errors_have_clear_messages_and_exit_statuses(db: Db) {
    let app = TestApp::spawn(db).await;
    app.add_user("alice", "pw", ACL);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["user", "show", "nobody"],
            1,
            "tessera: no such user: nobody\n",
        ),
        (
            &["user", "disable", "nobody"],
            1,
            "tessera: no such user: nobody\n",
        ),
        (
            &["user", "enable", "nobody"],
            1,
            "tessera: no such user: nobody\n",
        ),
        (
            &["client", "show", "nope"],
            1,
            "tessera: no such client: nope\n",
        ),
        (
            &["client", "rotate-secret", "nope"],
            1,
            "tessera: no such client: nope\n",
        ),
        (
            &["token", "list", "--user", "nobody"],
            1,
            "tessera: no such user: nobody\n",
        ),
        (
            &["token", "list", "--client", "nope"],
            1,
            "tessera: no such client: nope\n",
        ),
        (
            &["token", "revoke", "--user", "alice", "--client", "nope"],
            1,
            "tessera: no such client: nope\n",
        ),
        (
            &["token", "revoke", "--family", "nope"],
            1,
            "tessera: no such family: nope\n",
        ),
        (
            &["token", "revoke", "--token", "nope"],
            1,
            "tessera: no such token\n",
        ),
        (
            &["user", "add", "a:b"],
            2,
            "tessera: a username must be non-empty and contain no ':'\n",
        ),
        (
            &["tenant", "add", "t", "--uuid", "nope"],
            2,
            "tessera: --uuid must be a UUID\n",
        ),
        (
            &["token", "list"],
            2,
            "error: the following required arguments were not provided:",
        ),
        (
            &["token", "revoke"],
            2,
            "error: the following required arguments were not provided:",
        ),
        (
            &["token", "revoke", "--family", "f", "--user", "alice"],
            2,
            "error: the argument '--family <FAMILY>' cannot be used with",
        ),
        (
            &["token", "revoke", "--token", "t", "--client", "c"],
            2,
            "error: the argument '--token <TOKEN>' cannot be used with",
        ),
        (
            &["token", "revoke", "--token", "-"],
            2,
            "tessera: --token: empty token\n",
        ),
        (
            &["token", "frobnicate"],
            2,
            "error: unrecognized subcommand 'frobnicate'",
        ),
    ];
    for (args, code, message) in cases {
        let run = tessera(&app, args).await;
        assert_eq!(run.code, Some(*code), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with(message), "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}");
    }
    // `backup` is for SQLite; PostgreSQL is a usage error pointing at pg_dump.
    let file = app.db.dir.path().join("copy.db");
    let run = tessera(&app, &["backup", file.to_str().unwrap()]).await;
    if app.db.url.starts_with("postgres") {
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains("pg_dump"), "{run:?}");
    } else {
        run.ok();
        let again = tessera(&app, &["backup", file.to_str().unwrap()]).await;
        assert_eq!(again.code, Some(1), "{again:?}");
        assert_eq!(
            again.stderr,
            format!(
                "tessera: {} already exists; choose a new file or add --force to replace it\n",
                file.display()
            )
        );
        let forced = tessera(
            &app,
            &["backup", file.to_str().unwrap(), "--force", "--json"],
        )
        .await;
        assert_eq!(forced.json()["integrity_check"], "ok");
        let db_file = app.db.url.strip_prefix("sqlite://").unwrap();
        let itself = tessera(&app, &["backup", db_file, "--force"]).await;
        assert_eq!(itself.code, Some(2), "{itself:?}");
    }
}

on_both_backends!(
    token_list_shows_the_tokens_of_a_user_or_a_client_never_their_values,
    token_revoke_by_user_and_client_revokes_exactly_those_tokens,
    token_revoke_by_family_and_by_value,
    a_jwt_access_token_is_revoked_by_value,
    user_show_enable_and_disable,
    client_show_and_rotate_secret,
    errors_have_clear_messages_and_exit_statuses,
);

/// `PRAGMA integrity_check` of a SQLite file, as an independent reader sees it.
fn integrity_check(file: &Path) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = diesel::SqliteConnection::establish(file.to_str().unwrap()).unwrap();
    let rows: Vec<Row> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    rows.into_iter()
        .map(|r| r.integrity_check)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Check 6: `tessera backup`, run while the server serves, makes a file that a new instance
/// started on it (with copies of the secret and key files) serves every live token from:
/// OAuth2 opaque and JWT access tokens, rotated refresh tokens, client_credentials tokens,
/// and Wazo access and refresh tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_accepts_every_token_of_the_original() {
    const POLICY: &str = "[policy.clients.\"jwt-app\"]\ntoken_format = \"jwt\"\n";
    let app = TestApp::spawn_with_config_file(Db::Sqlite, POLICY, &[]).await;
    let web = app.add_full_client("web");
    let jwt_app = app.add_full_client("jwt-app");
    app.add_user("alice", "pw", ACL);

    let (a1, r1) = login(&app, &web, "alice").await;
    let (status, body) = refresh(&app, &web, &r1).await;
    assert_eq!(status, 200);
    let a2 = str_of(&body, "access_token").to_owned();
    let r2 = str_of(&body, "refresh_token").to_owned();
    let (j1, jr1) = login(&app, &jwt_app, "alice").await;
    assert_eq!(j1.matches('.').count(), 2, "a JWT");
    let c1 = app.client_credentials_token(&web).await;
    let (w1, wr1) = wazo_login(&app, "alice", "wazo-app").await;
    let refreshed = app
        .wazo_post_token(
            "/0.1/token",
            None,
            &json!({"client_id": "wazo-app", "refresh_token": wr1}),
            &[],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let w2 = str_of(&refreshed.json::<Value>().await.unwrap()["data"], "token").to_owned();

    // The backup, beside the running server, into a restore directory.
    let restore = tempfile::tempdir().unwrap();
    let copy = restore.path().join("tessera-backup.db");
    let run = tessera(&app, &["backup", copy.to_str().unwrap()]).await;
    let out = run.ok();
    let data = app.db.dir.path().join("data");
    let bytes = std::fs::metadata(&copy).unwrap().len();
    assert!(
        out.starts_with(&format!(
            "backup written to {} ({bytes} bytes); integrity_check: ok\n",
            copy.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  server secret: {}\n",
            data.join("server.secret").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  JWT signing key: {}\n",
            data.join("jwt-signing-key.pem").display()
        )),
        "{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(integrity_check(&copy), "ok");
    // Nothing but the copy is left in the directory (no staging file, no WAL).
    let names: Vec<String> = std::fs::read_dir(restore.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tessera-backup.db"]);

    // The restore: the copy with the secret and key files the command named.
    let secret = restore.path().join("server.secret");
    let key = restore.path().join("jwt-signing-key.pem");
    std::fs::copy(data.join("server.secret"), &secret).unwrap();
    std::fs::copy(data.join("jwt-signing-key.pem"), &key).unwrap();
    let url = format!("sqlite://{}", copy.display());
    let restored = TestApp::spawn_with_config_file(
        Db::Sqlite,
        POLICY,
        &[
            ("TESSERA_DATABASE__URL", url.as_str()),
            ("TESSERA_SERVER__SECRET_FILE", secret.to_str().unwrap()),
            ("TESSERA_JWT__KEY_FILE", key.to_str().unwrap()),
        ],
    )
    .await;

    // Introspection shows a client its own tokens.
    for (client, token) in [
        (&web, &a1),
        (&web, &a2),
        (&web, &c1),
        (&web, &r2),
        (&jwt_app, &j1),
        (&jwt_app, &jr1),
    ] {
        assert!(
            active(&restored, client, token).await,
            "inactive after restore"
        );
    }
    for token in [&a1, &a2, &j1, &c1, &w1, &w2] {
        assert_eq!(restored.wazo_check(token).await, 204);
    }
    let (status, _) = refresh(&restored, &web, &r2).await;
    assert_eq!(status, 200);
    let (status, _) = refresh(&restored, &jwt_app, &jr1).await;
    assert_eq!(status, 200);
    assert_eq!(wazo_refresh(&restored, "wazo-app", &wr1).await, 200);
    // The original still serves its own.
    assert!(active(&app, &web, &a2).await);
}

/// Every command path: `[]`, `["token"]`, `["token", "list"]`, …
fn command_paths() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        out.push(path.to_vec());
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut next = path.to_vec();
            next.push(sub.get_name().to_owned());
            walk(sub, &next, out);
        }
    }
    let mut out = Vec::new();
    walk(
        &<tessera::cli::Cli as clap::CommandFactory>::command(),
        &[],
        &mut out,
    );
    out
}

/// Text with the trailing blanks of each line removed (clap pads some lines; editors strip them).
fn trim_lines(text: &str) -> String {
    text.lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

/// `docs/cli.md` holds the `--help` of every command verbatim (but for trailing blanks), and
/// no other help text, so the two cannot drift apart.
#[test]
fn docs_cli_md_holds_every_help_text_verbatim() {
    let docs = trim_lines(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut helps = BTreeSet::new();
    for path in command_paths() {
        let mut args = path.clone();
        args.push("--help".into());
        let run = run_blocking(dir.path().to_path_buf(), Vec::new(), args, None);
        let help = trim_lines(run.ok());
        assert!(
            docs.contains(&format!("```text\n{help}```\n")),
            "docs/cli.md lacks the help of `tessera {}`; it is:\n{help}",
            path.join(" ")
        );
        helps.insert(help);
    }
    let documented: Vec<&str> = docs
        .split("```text\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("Usage: tessera"))
        .collect();
    for block in &documented {
        assert!(
            helps.contains(*block),
            "docs/cli.md has a stale help text:\n{block}"
        );
    }
    assert_eq!(documented.len(), helps.len(), "one help text per command");
}
