//! Check 2 in full: rotation on/off × extension on/off × ttl / idle timeout / family max age.
//! Each scenario is a password grant followed by five refreshes on the manual clock; after each
//! step the introspected `exp` of the current refresh token must be the deadline an independent
//! model of the policy (below, written from DESIGN.md §6, not from `src/policy.rs`) computes.
//! At the end the chain is driven to its deadline: a refresh at that second succeeds, and the
//! token it leaves is active through its own deadline and refused `invalid_grant` one second
//! later.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, TestClient, str_of};
use crate::on_both_backends;

on_both_backends!(every_refresh_token_of_a_chain_expires_when_the_policy_says);

/// One policy and the clock steps between the five refreshes.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    rotate: bool,
    extend: bool,
    /// `refresh_token_ttl`; 0 = never.
    ttl: i64,
    /// `refresh_idle_timeout`; 0 = off.
    idle: i64,
    /// `refresh_family_max_age`; 0 = none.
    max_age: i64,
    /// Seconds the clock moves before each refresh.
    steps: [i64; 5],
}

const fn scenario(
    name: &'static str,
    (rotate, extend): (bool, bool),
    (ttl, idle, max_age): (i64, i64, i64),
    steps: [i64; 5],
) -> Scenario {
    Scenario {
        name,
        rotate,
        extend,
        ttl,
        idle,
        max_age,
        steps,
    }
}

const ROTATE: bool = true;
const EXTEND: bool = true;

const SCENARIOS: [Scenario; 16] = [
    // The four combinations of rotation × extension, each with a ttl.
    scenario(
        "rotate+extend, ttl",
        (ROTATE, EXTEND),
        (1000, 0, 0),
        [100, 250, 400, 999, 1],
    ),
    scenario(
        "rotate, no extend, ttl",
        (ROTATE, !EXTEND),
        (1000, 0, 0),
        [100, 200, 300, 150, 249],
    ),
    scenario(
        "no rotate, extend, ttl",
        (!ROTATE, EXTEND),
        (1000, 0, 0),
        [100, 200, 300, 150, 249],
    ),
    scenario(
        "no rotate, no extend, ttl",
        (!ROTATE, !EXTEND),
        (1000, 0, 0),
        [1, 1, 1, 1, 1],
    ),
    // ttl 0: never expires.
    scenario(
        "rotate+extend, ttl 0",
        (ROTATE, EXTEND),
        (0, 0, 0),
        [86_400, 1, 1000, 7, 99_999],
    ),
    scenario(
        "no rotate, ttl 0",
        (!ROTATE, EXTEND),
        (0, 0, 0),
        [86_400, 1, 1000, 7, 99_999],
    ),
    // Idle timeout alone, rotation on and off: every use starts a new idle period.
    scenario(
        "rotate, idle",
        (ROTATE, EXTEND),
        (0, 300, 0),
        [300, 299, 1, 250, 300],
    ),
    scenario(
        "no rotate, idle",
        (!ROTATE, EXTEND),
        (0, 300, 0),
        [300, 299, 1, 250, 300],
    ),
    // Idle under a written expiry that ends first, or not.
    scenario(
        "rotate, no extend, ttl+idle",
        (ROTATE, !EXTEND),
        (1000, 300, 0),
        [250, 250, 250, 200, 40],
    ),
    scenario(
        "no rotate, ttl+idle",
        (!ROTATE, EXTEND),
        (1000, 300, 0),
        [250, 250, 250, 200, 40],
    ),
    // The family max age caps an extending chain and non-extending ones.
    scenario(
        "rotate+extend, max age",
        (ROTATE, EXTEND),
        (600, 0, 1000),
        [150, 150, 150, 150, 150],
    ),
    scenario(
        "rotate, no extend, max age",
        (ROTATE, !EXTEND),
        (2000, 0, 700),
        [100, 100, 100, 100, 100],
    ),
    scenario(
        "no rotate, max age",
        (!ROTATE, EXTEND),
        (2000, 0, 700),
        [100, 100, 100, 100, 100],
    ),
    scenario(
        "rotate+extend, ttl 0, max age",
        (ROTATE, EXTEND),
        (0, 0, 900),
        [100, 200, 300, 150, 149],
    ),
    // ttl, idle and max age together.
    scenario(
        "rotate+extend, ttl+idle+max age",
        (ROTATE, EXTEND),
        (500, 200, 800),
        [150, 150, 150, 150, 150],
    ),
    scenario(
        "no rotate, ttl+idle+max age",
        (!ROTATE, EXTEND),
        (700, 200, 600),
        [100, 100, 100, 100, 100],
    ),
];

fn limit(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// What the policy says about the family's current refresh token.
#[derive(Debug)]
struct Model {
    s: Scenario,
    family_start: i64,
    /// The expiry written at issue.
    written: Option<i64>,
    issued: i64,
    last_used: Option<i64>,
}

impl Model {
    /// The first token, from a password grant at `now`.
    fn grant(s: Scenario, now: i64) -> Model {
        let mut m = Model {
            s,
            family_start: now,
            written: None,
            issued: now,
            last_used: None,
        };
        m.written = earliest(limit(s.ttl).map(|ttl| now + ttl), m.family_end());
        m
    }

    fn family_end(&self) -> Option<i64> {
        limit(self.s.max_age).map(|age| self.family_start + age)
    }

    /// A refresh at `now`: a successor (rotation) or one more use of the same token.
    fn refresh(&mut self, now: i64) {
        if self.s.rotate {
            let base = if self.s.extend {
                limit(self.s.ttl).map(|ttl| now + ttl)
            } else {
                self.written
            };
            self.written = earliest(base, self.family_end());
            self.issued = now;
            self.last_used = None;
        } else {
            self.last_used = Some(now);
        }
    }

    /// The last second the current token is usable.
    fn deadline(&self) -> Option<i64> {
        let last_activity = self.last_used.map_or(self.issued, |u| u.max(self.issued));
        let idle_end = limit(self.s.idle).map(|idle| last_activity + idle);
        earliest(earliest(self.written, idle_end), self.family_end())
    }
}

/// Introspects a refresh token as its client, with the hint.
async fn introspect_refresh(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let resp = app
        .post_form(
            "/oauth2/introspect",
            Some(client),
            &[("token", token), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// The introspected token is active, issued when the model says, with the model's deadline.
async fn assert_deadline(app: &TestApp, client: &TestClient, token: &str, m: &Model, when: &str) {
    let name = m.s.name;
    let seen = introspect_refresh(app, client, token).await;
    assert_eq!(seen["active"], true, "{name}, {when}: {seen}");
    assert_eq!(seen["iat"], json!(m.issued), "{name}, {when}: iat");
    assert_eq!(
        seen.get("exp").cloned(),
        m.deadline().map(|d| json!(d)),
        "{name}, {when}: exp (model {m:?})"
    );
}

/// Refreshes `token` at the current second; returns the refresh token of the answer.
async fn refresh_ok(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    s: &Scenario,
    when: &str,
) -> String {
    let resp = app.refresh(client, token).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}, {when}: {body}", s.name);
    let next = str_of(&body, "refresh_token").to_owned();
    assert_eq!(next != token, s.rotate, "{}, {when}: rotated?", s.name);
    next
}

async fn run(db: Db, s: Scenario) {
    let flag = |b: bool| if b { "true" } else { "false" };
    let (ttl, idle, max_age) = (s.ttl.to_string(), s.idle.to_string(), s.max_age.to_string());
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_POLICY__ROTATE_REFRESH_TOKENS", flag(s.rotate)),
            ("TESSERA_POLICY__EXTEND_ON_ROTATION", flag(s.extend)),
            ("TESSERA_POLICY__REFRESH_TOKEN_TTL", &ttl),
            ("TESSERA_POLICY__REFRESH_IDLE_TIMEOUT", &idle),
            ("TESSERA_POLICY__REFRESH_FAMILY_MAX_AGE", &max_age),
        ],
    )
    .await;
    let client = app.add_full_client("app");
    app.add_user("carol", "pw", &["#"]);

    let mut now = app.service.now();
    let granted = app.password_grant(&client, "carol", "pw", None).await;
    let mut token = str_of(&granted, "refresh_token").to_owned();
    let mut model = Model::grant(s, now);
    assert_deadline(&app, &client, &token, &model, "after the grant").await;

    for (i, step) in s.steps.into_iter().enumerate() {
        let when = format!("refresh {} at +{}", i + 1, now + step - model.family_start);
        app.clock.advance_secs(step);
        now += step;
        assert!(
            model.deadline().is_none_or(|d| now <= d),
            "{}: the steps outlive the chain at {when}",
            s.name
        );
        token = refresh_ok(&app, &client, &token, &s, &when).await;
        model.refresh(now);
        assert_deadline(&app, &client, &token, &model, &format!("after {when}")).await;
    }

    let Some(deadline) = model.deadline() else {
        // Nothing ever ends the chain: ten years later it still refreshes.
        app.clock.advance_secs(10 * 365 * 86_400);
        now += 10 * 365 * 86_400;
        token = refresh_ok(&app, &client, &token, &s, "ten years later").await;
        model.refresh(now);
        assert_deadline(&app, &client, &token, &model, "ten years later").await;
        return;
    };
    // Usable through its deadline second: a refresh at exactly that second succeeds.
    app.clock.advance_secs(deadline - now);
    now = deadline;
    assert_deadline(&app, &client, &token, &model, "at the deadline").await;
    token = refresh_ok(&app, &client, &token, &s, "at the deadline").await;
    model.refresh(now);
    assert_deadline(
        &app,
        &client,
        &token,
        &model,
        "after the refresh at the deadline",
    )
    .await;

    // The token that leaves is active through its own deadline, refused one second later.
    let last = model
        .deadline()
        .unwrap_or_else(|| panic!("{}: a deadline once, a deadline still", s.name));
    app.clock.advance_secs(last - now);
    assert_deadline(&app, &client, &token, &model, "at the last deadline").await;
    app.clock.advance_secs(1);
    let resp = app.refresh(&client, &token).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{}", s.name);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Refresh token is expired."}),
        "{}: one second past the deadline",
        s.name
    );
    assert_eq!(
        introspect_refresh(&app, &client, &token).await,
        json!({"active": false}),
        "{}: introspected past the deadline",
        s.name
    );
}

/// Every scenario, each on its own server and clock, run concurrently.
async fn every_refresh_token_of_a_chain_expires_when_the_policy_says(db: Db) {
    let runs = SCENARIOS.into_iter().map(|s| {
        let db = db.clone();
        tokio::spawn(run(db, s))
    });
    let mut failures = Vec::new();
    for (s, handle) in SCENARIOS.iter().zip(runs.collect::<Vec<_>>()) {
        if let Err(e) = handle.await {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}
