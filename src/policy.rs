//! The token policy: how long tokens live and whether refresh tokens rotate. Pure values and
//! functions; the current policy sits in `AppState` and is read once per request.
//!
//! Key names follow WSO2 Identity Server's meaning (its names in `conf/tessera.toml`).
//! `[policy]` holds the OAuth2 defaults; `[policy.wazo]` overrides any of its keys for the Wazo
//! dialect; `[policy.clients."<id>"]` overrides any of them for one client, in both dialects
//! (DESIGN.md §6). Resolution is client over dialect over global, per request.
use std::collections::BTreeMap;

use serde::Deserialize;

/// Longest accepted lifetime: ten years, as wazo-auth's `expiration` bound.
pub const MAX_TTL: u64 = 315_360_000;
/// Longest accepted `reuse_grace`: the sealed retry answer is scrubbed after it.
pub const MAX_REUSE_GRACE: u64 = 300;
/// Most accepted `reuse_grace_max`.
pub const MAX_REUSE_GRACE_USES: u64 = 1000;

/// The format of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// 256 random bits (OAuth2) or a UUID (Wazo); only the digest is stored.
    Opaque,
    /// An RFC 9068 JWT signed with the server's key; its `jti` is what is stored.
    Jwt,
}

impl TokenFormat {
    fn as_toml(self) -> &'static str {
        match self {
            TokenFormat::Opaque => "\"opaque\"",
            TokenFormat::Jwt => "\"jwt\"",
        }
    }
}

/// A policy value as written in TOML (for `tessera policy show`).
trait TomlValue {
    fn to_toml(&self) -> String;
}

impl TomlValue for u64 {
    fn to_toml(&self) -> String {
        self.to_string()
    }
}

impl TomlValue for bool {
    fn to_toml(&self) -> String {
        self.to_string()
    }
}

impl TomlValue for TokenFormat {
    fn to_toml(&self) -> String {
        self.as_toml().to_owned()
    }
}

/// Declares the policy keys once: the `[policy]` table, the override tables, overlaying and
/// explaining follow from the list.
macro_rules! policy_keys {
    ($($(#[$doc:meta])* $key:ident: $ty:ty,)*) => {
        /// The `[policy]` table as written in the configuration.
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct PolicySettings {
            $($(#[$doc])* pub $key: $ty,)*
            /// Overrides for the Wazo dialect.
            #[serde(default)]
            pub wazo: PolicyOverrides,
            /// Overrides for one client id (an OAuth2 client, or a Wazo `client_id`).
            #[serde(default)]
            pub clients: BTreeMap<String, PolicyOverrides>,
        }

        /// A table whose keys override `[policy]` where present.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct PolicyOverrides {
            $(pub $key: Option<$ty>,)*
        }

        impl PolicySettings {
            /// `[policy]` with `overrides` applied.
            fn overlaid(&self, o: &PolicyOverrides) -> PolicySettings {
                PolicySettings {
                    $($key: o.$key.unwrap_or(self.$key),)*
                    wazo: PolicyOverrides::default(),
                    clients: BTreeMap::new(),
                }
            }

            /// Each key's value as written in TOML, with where it came from: the first of
            /// `layers` that sets it, else `[policy]`.
            fn explain_layers(
                &self,
                layers: &[(&PolicyOverrides, Source)],
            ) -> Vec<(&'static str, String, Source)> {
                vec![$({
                    let found = layers
                        .iter()
                        .find_map(|(o, src)| o.$key.map(|v| (v.to_toml(), src.clone())));
                    let (value, source) =
                        found.unwrap_or_else(|| (self.$key.to_toml(), Source::Global));
                    (stringify!($key), value, source)
                },)*]
            }
        }
    };
}

policy_keys! {
    /// Lifetime of access tokens, seconds (WSO2 `user_access_token_validity`).
    access_token_ttl: u64,
    /// A refresh returns a new refresh token (WSO2 `RenewRefreshTokenForRefreshGrant`).
    rotate_refresh_tokens: bool,
    /// Lifetime of refresh tokens, seconds; 0 = never (WSO2 `RefreshTokenValidityPeriod`).
    refresh_token_ttl: u64,
    /// A rotated token gets a fresh lifetime (WSO2 `extend_refresh_token_expiry_time_on_renewal`).
    extend_on_rotation: bool,
    /// Seconds unused after which a refresh token dies; 0 = off.
    refresh_idle_timeout: u64,
    /// Absolute cap on a family, seconds from the original grant; 0 = none.
    refresh_family_max_age: u64,
    /// A rotated-out refresh token presented again revokes its family.
    reuse_detection: bool,
    /// Seconds after a rotation in which replaying the previous token is a retry.
    reuse_grace: u64,
    /// How many retries the grace window allows.
    reuse_grace_max: u64,
    /// `opaque` or `jwt` (RFC 9068) access tokens.
    token_format: TokenFormat,
}

impl PolicySettings {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), (String, &'static str)> {
        self.validate_table("policy")?;
        let wazo = self.overlaid(&self.wazo);
        wazo.validate_table("policy.wazo")?;
        for (id, overrides) in &self.clients {
            if id.is_empty() {
                return Err(("policy.clients".into(), "client ids must not be empty"));
            }
            let table = format!("policy.clients.\"{id}\"");
            self.overlaid(overrides).validate_table(&table)?;
            wazo.overlaid(overrides).validate_table(&table)?;
        }
        Ok(())
    }

    fn validate_table(&self, table: &str) -> Result<(), (String, &'static str)> {
        let checks: [(&str, bool, &'static str); 6] = [
            (
                "access_token_ttl",
                (1..=MAX_TTL).contains(&self.access_token_ttl),
                "must be between 1 and 315360000 seconds",
            ),
            (
                "refresh_token_ttl",
                self.refresh_token_ttl <= MAX_TTL,
                "must be between 0 (never expires) and 315360000 seconds",
            ),
            (
                "refresh_idle_timeout",
                self.refresh_idle_timeout <= MAX_TTL,
                "must be between 0 (off) and 315360000 seconds",
            ),
            (
                "refresh_family_max_age",
                self.refresh_family_max_age <= MAX_TTL,
                "must be between 0 (no cap) and 315360000 seconds",
            ),
            (
                "reuse_grace",
                self.reuse_grace <= MAX_REUSE_GRACE,
                "must be between 0 (no retry) and 300 seconds",
            ),
            (
                "reuse_grace_max",
                self.reuse_grace_max <= MAX_REUSE_GRACE_USES,
                "must be between 0 and 1000 retries",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((key, _, reason)) => Err((format!("{table}.{key}"), reason)),
            None => Ok(()),
        }
    }
}

/// The dialect a token is issued in; each has its own policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OAuth2,
    Wazo,
}

impl Dialect {
    /// The name stored in the `dialect` column of token rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OAuth2 => "oauth2",
            Dialect::Wazo => "wazo",
        }
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Global,
    Dialect,
    Client(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Global => f.write_str("[policy]"),
            Source::Dialect => f.write_str("[policy.wazo]"),
            Source::Client(id) => write!(f, "[policy.clients.\"{id}\"]"),
        }
    }
}

/// Every policy table, ready to resolve per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    settings: PolicySettings,
    oauth2: Policy,
    wazo: Policy,
}

impl Policies {
    /// The policy of a dialect, for requests that name no client with a table of its own.
    pub fn for_dialect(&self, dialect: Dialect) -> Policy {
        match dialect {
            Dialect::OAuth2 => self.oauth2,
            Dialect::Wazo => self.wazo,
        }
    }

    /// Whether any table, resolved in any dialect, mints JWT access tokens (the signing key
    /// must then be loaded).
    pub fn uses_jwt(&self) -> bool {
        let jwt = |p: Policy| p.token_format == TokenFormat::Jwt;
        jwt(self.oauth2)
            || jwt(self.wazo)
            || self.settings.clients.keys().any(|id| {
                jwt(self.resolve(Dialect::OAuth2, Some(id)))
                    || jwt(self.resolve(Dialect::Wazo, Some(id)))
            })
    }

    /// The policy for `client_id` in `dialect`: client over dialect over global.
    pub fn resolve(&self, dialect: Dialect, client_id: Option<&str>) -> Policy {
        match client_id.and_then(|id| self.settings.clients.get(id)) {
            None => self.for_dialect(dialect),
            Some(overrides) => Policy::from(&self.dialect_settings(dialect).overlaid(overrides)),
        }
    }

    fn dialect_settings(&self, dialect: Dialect) -> PolicySettings {
        match dialect {
            Dialect::OAuth2 => self.settings.overlaid(&PolicyOverrides::default()),
            Dialect::Wazo => self.settings.overlaid(&self.settings.wazo),
        }
    }

    /// Each key's effective value (as written in TOML) and the table it came from.
    pub fn explain(
        &self,
        dialect: Dialect,
        client_id: Option<&str>,
    ) -> Vec<(&'static str, String, Source)> {
        let mut layers = Vec::new();
        if let Some((id, o)) = client_id.and_then(|id| self.settings.clients.get_key_value(id)) {
            layers.push((o, Source::Client(id.clone())));
        }
        if dialect == Dialect::Wazo {
            layers.push((&self.settings.wazo, Source::Dialect));
        }
        self.settings.explain_layers(&layers)
    }
}

impl From<&PolicySettings> for Policies {
    fn from(s: &PolicySettings) -> Self {
        Self {
            settings: s.clone(),
            oauth2: Policy::from(s),
            wazo: Policy::from(&s.overlaid(&s.wazo)),
        }
    }
}

/// The policy that applies to one request. Durations are seconds; `None` = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub access_token_ttl: i64,
    pub rotate_refresh_tokens: bool,
    /// `None` = refresh tokens never expire.
    pub refresh_token_ttl: Option<i64>,
    pub extend_on_rotation: bool,
    pub refresh_idle_timeout: Option<i64>,
    pub refresh_family_max_age: Option<i64>,
    pub reuse_detection: bool,
    /// 0 = a replay is never a retry.
    pub reuse_grace: i64,
    pub reuse_grace_max: i64,
    pub token_format: TokenFormat,
}

impl From<&PolicySettings> for Policy {
    fn from(s: &PolicySettings) -> Self {
        // validate() bounds every duration by MAX_TTL, far inside i64.
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let limit = |v: u64| (v > 0).then(|| secs(v));
        Self {
            access_token_ttl: secs(s.access_token_ttl),
            rotate_refresh_tokens: s.rotate_refresh_tokens,
            refresh_token_ttl: limit(s.refresh_token_ttl),
            extend_on_rotation: s.extend_on_rotation,
            refresh_idle_timeout: limit(s.refresh_idle_timeout),
            refresh_family_max_age: limit(s.refresh_family_max_age),
            reuse_detection: s.reuse_detection,
            reuse_grace: secs(s.reuse_grace),
            reuse_grace_max: secs(s.reuse_grace_max),
            token_format: s.token_format,
        }
    }
}

/// The times of a refresh token that decide how long it stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshTimes {
    pub issued_at: i64,
    /// When the family's first token was issued (the original grant).
    pub family_issued_at: i64,
    /// The expiry written at issue; `None` = never.
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// The earlier of two optional deadlines (`None` = no deadline).
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Policy {
    /// Expiry (epoch seconds) of an access token issued at `now`.
    pub fn access_token_expiry(&self, now: i64) -> i64 {
        now.saturating_add(self.access_token_ttl)
    }

    /// The family's absolute end, if `refresh_family_max_age` is set.
    fn family_end(&self, family_issued_at: i64) -> Option<i64> {
        self.refresh_family_max_age
            .map(|age| family_issued_at.saturating_add(age))
    }

    /// Expiry of the first refresh token of a family, minted at `now`; `None` = never.
    pub fn refresh_token_expiry(&self, now: i64) -> Option<i64> {
        earliest(
            self.refresh_token_ttl.map(|ttl| now.saturating_add(ttl)),
            self.family_end(now),
        )
    }

    /// Expiry of the successor of a refresh token that expired at `parent_expiry`, rotated at
    /// `now`: a fresh lifetime when `extend_on_rotation`, else the parent's expiry; either way
    /// capped by the family's max age.
    pub fn rotated_refresh_token_expiry(
        &self,
        now: i64,
        parent_expiry: Option<i64>,
        family_issued_at: i64,
    ) -> Option<i64> {
        let base = if self.extend_on_rotation {
            self.refresh_token_ttl.map(|ttl| now.saturating_add(ttl))
        } else {
            parent_expiry
        };
        earliest(base, self.family_end(family_issued_at))
    }

    /// The last second a refresh token is usable under this policy: its written expiry, its
    /// last activity plus the idle timeout, the family's start plus its max age, whichever
    /// comes first. Idle and max age are read from the policy in force, so tightening them
    /// applies to tokens already issued.
    pub fn refresh_deadline(&self, t: RefreshTimes) -> Option<i64> {
        let last_activity = t.last_used_at.map_or(t.issued_at, |u| u.max(t.issued_at));
        let idle_end = self
            .refresh_idle_timeout
            .map(|idle| last_activity.saturating_add(idle));
        earliest(
            earliest(t.expires_at, idle_end),
            self.family_end(t.family_issued_at),
        )
    }

    /// Whether a refresh token with these times is usable at `now`.
    pub fn refresh_usable(&self, t: RefreshTimes, now: i64) -> bool {
        Self::is_live(self.refresh_deadline(t), now)
    }

    /// Whether replaying a token consumed at `consumed_at` is still inside the retry window.
    pub fn within_grace(&self, consumed_at: i64, now: i64) -> bool {
        self.reuse_grace > 0 && self.reuse_grace_max > 0 && now - consumed_at <= self.reuse_grace
    }

    /// Whether a token that expires at `expiry` is still usable at `now`.
    /// A token is valid up to and including its expiry second.
    pub fn is_live(expiry: Option<i64>, now: i64) -> bool {
        expiry.is_none_or(|at| now <= at)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unreachable)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Every key at its `[policy]` default (conf/tessera.toml), no override table.
    fn base() -> serde_json::Map<String, Value> {
        let v = json!({
            "access_token_ttl": 3600, "rotate_refresh_tokens": true,
            "refresh_token_ttl": 86400, "extend_on_rotation": true,
            "refresh_idle_timeout": 0, "refresh_family_max_age": 0,
            "reuse_detection": true, "reuse_grace": 0, "reuse_grace_max": 1,
            "token_format": "opaque",
        });
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn settings(m: serde_json::Map<String, Value>) -> PolicySettings {
        serde_json::from_value(Value::Object(m)).expect("valid policy")
    }

    fn with(key: &str, value: &Value) -> PolicySettings {
        let mut m = base();
        m.insert(key.to_owned(), value.clone());
        settings(m)
    }

    /// Issue check 1: each key set at each level (global; global + dialect; global + client;
    /// all three), resolved for each dialect with and without the client: the value is the
    /// client's, else the dialect's (Wazo only), else the global one, and `explain` names
    /// the table it came from.
    #[test]
    fn resolution_is_client_over_dialect_over_global() {
        let keys: [(&str, [Value; 3]); 10] = [
            ("access_token_ttl", [json!(100), json!(200), json!(300)]),
            (
                "rotate_refresh_tokens",
                [json!(true), json!(false), json!(true)],
            ),
            ("refresh_token_ttl", [json!(0), json!(60), json!(120)]),
            (
                "extend_on_rotation",
                [json!(true), json!(false), json!(true)],
            ),
            ("refresh_idle_timeout", [json!(0), json!(30), json!(90)]),
            (
                "refresh_family_max_age",
                [json!(1000), json!(0), json!(5000)],
            ),
            ("reuse_detection", [json!(true), json!(false), json!(true)]),
            ("reuse_grace", [json!(0), json!(10), json!(30)]),
            ("reuse_grace_max", [json!(1), json!(5), json!(100)]),
            (
                "token_format",
                [json!("opaque"), json!("jwt"), json!("opaque")],
            ),
        ];
        let contexts = [
            (Dialect::OAuth2, None),
            (Dialect::OAuth2, Some("app")),
            (Dialect::OAuth2, Some("other")),
            (Dialect::Wazo, None),
            (Dialect::Wazo, Some("app")),
            (Dialect::Wazo, Some("other")),
        ];
        let mut cases = 0;
        for (key, [global, dialect, client]) in &keys {
            for (dialect_set, client_set) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                let mut m = base();
                m.insert((*key).to_owned(), global.clone());
                if dialect_set {
                    m.insert("wazo".into(), json!({ *key: dialect }));
                }
                if client_set {
                    m.insert("clients".into(), json!({ "app": { *key: client } }));
                }
                let s = settings(m);
                assert_eq!(s.validate(), Ok(()));
                let policies = Policies::from(&s);
                for (d, c) in contexts {
                    let (value, source) = if client_set && c == Some("app") {
                        (client, Source::Client("app".into()))
                    } else if dialect_set && d == Dialect::Wazo {
                        (dialect, Source::Dialect)
                    } else {
                        (global, Source::Global)
                    };
                    let what = format!(
                        "{key} dialect_set={dialect_set} client_set={client_set} {d:?} {c:?}"
                    );
                    assert_eq!(
                        policies.resolve(d, c),
                        Policy::from(&with(key, value)),
                        "{what}"
                    );
                    let explained = policies.explain(d, c);
                    let row = explained
                        .iter()
                        .find(|(k, _, _)| k == key)
                        .expect("explained");
                    assert_eq!(
                        (row.1.as_str(), &row.2),
                        (value.to_string().as_str(), &source),
                        "{what}"
                    );
                    // Every other key keeps its [policy] value.
                    assert!(
                        explained
                            .iter()
                            .filter(|(k, _, _)| k != key)
                            .all(|r| r.2 == Source::Global),
                        "{what}"
                    );
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 10 * 4 * 6);
    }

    #[test]
    fn validation_names_the_key() {
        let table: [(&str, Value, &str); 8] = [
            ("access_token_ttl", json!(0), "policy.access_token_ttl"),
            (
                "refresh_token_ttl",
                json!(MAX_TTL + 1),
                "policy.refresh_token_ttl",
            ),
            (
                "refresh_idle_timeout",
                json!(MAX_TTL + 1),
                "policy.refresh_idle_timeout",
            ),
            (
                "refresh_family_max_age",
                json!(MAX_TTL + 1),
                "policy.refresh_family_max_age",
            ),
            ("reuse_grace", json!(301), "policy.reuse_grace"),
            ("reuse_grace_max", json!(1001), "policy.reuse_grace_max"),
            (
                "wazo",
                json!({"access_token_ttl": MAX_TTL + 1}),
                "policy.wazo.access_token_ttl",
            ),
            (
                "clients",
                json!({"x": {"reuse_grace": 1000}}),
                "policy.clients.\"x\".reuse_grace",
            ),
        ];
        for (key, value, named) in table {
            assert_eq!(
                with(key, &value).validate().map_err(|e| e.0),
                Err(named.to_owned())
            );
        }
        assert_eq!(with("reuse_grace", &json!(300)).validate(), Ok(()));
        let mut m = base();
        m.insert("token_format".into(), json!("paseto"));
        assert!(serde_json::from_value::<PolicySettings>(Value::Object(m)).is_err());
    }

    fn policy(pairs: &[(&str, Value)]) -> Policy {
        let mut m = base();
        for (k, v) in pairs {
            m.insert((*k).to_owned(), v.clone());
        }
        Policy::from(&settings(m))
    }

    #[test]
    fn refresh_expiry_follows_ttl_extension_and_family_cap() {
        let now = 1_000_000;
        let family = now - 500;
        // (extend, ttl, max age, parent expiry) -> successor expiry
        let table = [
            (true, 86_400, 0, Some(now + 10), Some(now + 86_400)),
            (false, 86_400, 0, Some(now + 10), Some(now + 10)),
            (true, 0, 0, None, None),
            (false, 0, 0, None, None),
            (true, 86_400, 1000, Some(now + 10), Some(family + 1000)),
            (true, 0, 1000, None, Some(family + 1000)),
            (false, 60, 100_000, Some(now + 10), Some(now + 10)),
        ];
        for (extend, ttl, max_age, parent, expected) in table {
            let p = policy(&[
                ("extend_on_rotation", json!(extend)),
                ("refresh_token_ttl", json!(ttl)),
                ("refresh_family_max_age", json!(max_age)),
            ]);
            assert_eq!(
                p.rotated_refresh_token_expiry(now, parent, family),
                expected
            );
        }
        let p = |ttl: u64, age: u64| {
            policy(&[
                ("refresh_token_ttl", json!(ttl)),
                ("refresh_family_max_age", json!(age)),
            ])
        };
        assert_eq!(p(0, 0).refresh_token_expiry(now), None);
        assert_eq!(p(60, 0).refresh_token_expiry(now), Some(now + 60));
        assert_eq!(p(60, 30).refresh_token_expiry(now), Some(now + 30));
        assert_eq!(p(0, 30).refresh_token_expiry(now), Some(now + 30));
    }

    #[test]
    fn the_deadline_is_the_earliest_of_expiry_idle_and_family_age() {
        let t = RefreshTimes {
            issued_at: 1000,
            family_issued_at: 500,
            expires_at: Some(5000),
            last_used_at: None,
        };
        let p = |idle: u64, age: u64| {
            policy(&[
                ("refresh_idle_timeout", json!(idle)),
                ("refresh_family_max_age", json!(age)),
            ])
        };
        assert_eq!(p(0, 0).refresh_deadline(t), Some(5000));
        assert_eq!(p(100, 0).refresh_deadline(t), Some(1100));
        let used = RefreshTimes {
            last_used_at: Some(2000),
            ..t
        };
        assert_eq!(p(100, 0).refresh_deadline(used), Some(2100));
        assert_eq!(p(100, 1000).refresh_deadline(used), Some(1500));
        assert_eq!(
            p(0, 0).refresh_deadline(RefreshTimes {
                expires_at: None,
                ..t
            }),
            None
        );
        assert!(p(100, 0).refresh_usable(t, 1100));
        assert!(!p(100, 0).refresh_usable(t, 1101));
    }

    #[test]
    fn the_grace_window_counts_seconds_and_needs_uses() {
        let p = |grace: u64, uses: u64| {
            policy(&[
                ("reuse_grace", json!(grace)),
                ("reuse_grace_max", json!(uses)),
            ])
        };
        assert!(!p(0, 1).within_grace(100, 100));
        assert!(p(30, 1).within_grace(100, 130));
        assert!(!p(30, 1).within_grace(100, 131));
        assert!(!p(30, 0).within_grace(100, 100));
    }

    #[test]
    fn a_token_lives_through_its_expiry_second() {
        assert!(Policy::is_live(Some(10), 10));
        assert!(!Policy::is_live(Some(10), 11));
        assert!(Policy::is_live(None, i64::MAX));
    }
}
