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

/// The `[policy]` table as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub access_token_ttl: u64,
    pub rotate_refresh_tokens: bool,
    pub refresh_token_ttl: u64,
    pub extend_on_rotation: bool,
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
    pub access_token_ttl: Option<u64>,
    pub rotate_refresh_tokens: Option<bool>,
    pub refresh_token_ttl: Option<u64>,
    pub extend_on_rotation: Option<bool>,
}

impl PolicySettings {
    /// `[policy]` with `overrides` applied.
    fn overlaid(&self, o: &PolicyOverrides) -> PolicySettings {
        PolicySettings {
            access_token_ttl: o.access_token_ttl.unwrap_or(self.access_token_ttl),
            rotate_refresh_tokens: o
                .rotate_refresh_tokens
                .unwrap_or(self.rotate_refresh_tokens),
            refresh_token_ttl: o.refresh_token_ttl.unwrap_or(self.refresh_token_ttl),
            extend_on_rotation: o.extend_on_rotation.unwrap_or(self.extend_on_rotation),
            wazo: PolicyOverrides::default(),
            clients: BTreeMap::new(),
        }
    }

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
        if !(1..=MAX_TTL).contains(&self.access_token_ttl) {
            return Err((
                format!("{table}.access_token_ttl"),
                "must be between 1 and 315360000 seconds",
            ));
        }
        if self.refresh_token_ttl > MAX_TTL {
            return Err((
                format!("{table}.refresh_token_ttl"),
                "must be between 0 (never expires) and 315360000 seconds",
            ));
        }
        Ok(())
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
        let client = client_id.and_then(|id| self.settings.clients.get(id).map(|o| (id, o)));
        let wazo = (dialect == Dialect::Wazo).then_some(&self.settings.wazo);
        let pick = |get: &dyn Fn(&PolicyOverrides) -> Option<String>, global: String| {
            if let Some((id, o)) = client {
                if let Some(v) = get(o) {
                    return (v, Source::Client(id.to_owned()));
                }
            }
            if let Some(v) = wazo.and_then(get) {
                return (v, Source::Dialect);
            }
            (global, Source::Global)
        };
        let s = &self.settings;
        let rows: [(&'static str, (String, Source)); 4] = [
            (
                "access_token_ttl",
                pick(
                    &|o| o.access_token_ttl.map(|v| v.to_string()),
                    s.access_token_ttl.to_string(),
                ),
            ),
            (
                "rotate_refresh_tokens",
                pick(
                    &|o| o.rotate_refresh_tokens.map(|v| v.to_string()),
                    s.rotate_refresh_tokens.to_string(),
                ),
            ),
            (
                "refresh_token_ttl",
                pick(
                    &|o| o.refresh_token_ttl.map(|v| v.to_string()),
                    s.refresh_token_ttl.to_string(),
                ),
            ),
            (
                "extend_on_rotation",
                pick(
                    &|o| o.extend_on_rotation.map(|v| v.to_string()),
                    s.extend_on_rotation.to_string(),
                ),
            ),
        ];
        rows.into_iter().map(|(k, (v, src))| (k, v, src)).collect()
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

/// The policy that applies to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub access_token_ttl: i64,
    pub rotate_refresh_tokens: bool,
    /// `None` = refresh tokens never expire.
    pub refresh_token_ttl: Option<i64>,
    pub extend_on_rotation: bool,
}

impl From<&PolicySettings> for Policy {
    fn from(s: &PolicySettings) -> Self {
        // validate() bounds both values by MAX_TTL, far inside i64.
        let ttl = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            access_token_ttl: ttl(s.access_token_ttl),
            rotate_refresh_tokens: s.rotate_refresh_tokens,
            refresh_token_ttl: (s.refresh_token_ttl > 0).then(|| ttl(s.refresh_token_ttl)),
            extend_on_rotation: s.extend_on_rotation,
        }
    }
}

impl Policy {
    /// Expiry (epoch seconds) of an access token issued at `now`.
    pub fn access_token_expiry(&self, now: i64) -> i64 {
        now.saturating_add(self.access_token_ttl)
    }

    /// Expiry of a refresh token minted by a new grant at `now`; `None` = never.
    pub fn refresh_token_expiry(&self, now: i64) -> Option<i64> {
        self.refresh_token_ttl.map(|ttl| now.saturating_add(ttl))
    }

    /// Expiry of the successor of a refresh token that expired at `parent_expiry`, rotated at
    /// `now`: a fresh lifetime when `extend_on_rotation`, else the parent's expiry.
    pub fn rotated_refresh_token_expiry(
        &self,
        now: i64,
        parent_expiry: Option<i64>,
    ) -> Option<i64> {
        if self.extend_on_rotation {
            self.refresh_token_expiry(now)
        } else {
            parent_expiry
        }
    }

    /// Whether a refresh token that expires at `expiry` is still usable at `now`.
    /// A token is valid up to and including its expiry second.
    pub fn is_live(expiry: Option<i64>, now: i64) -> bool {
        expiry.is_none_or(|at| now <= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rotate: bool, ttl: u64, extend: bool) -> Policy {
        Policy::from(&PolicySettings {
            access_token_ttl: 3600,
            rotate_refresh_tokens: rotate,
            refresh_token_ttl: ttl,
            extend_on_rotation: extend,
            wazo: PolicyOverrides::default(),
            clients: BTreeMap::new(),
        })
    }

    #[test]
    fn refresh_expiry_follows_ttl_and_extension() {
        let now = 1_000_000;
        // (rotate, ttl, extend, parent expiry) -> successor expiry
        let table = [
            (true, 86_400, true, Some(now + 10), Some(now + 86_400)),
            (true, 86_400, false, Some(now + 10), Some(now + 10)),
            (true, 0, true, None, None),
            (true, 0, false, None, None),
        ];
        for (rotate, ttl, extend, parent, expected) in table {
            let p = policy(rotate, ttl, extend);
            assert_eq!(p.rotated_refresh_token_expiry(now, parent), expected);
        }
        assert_eq!(policy(true, 0, true).refresh_token_expiry(now), None);
        assert_eq!(
            policy(true, 60, true).refresh_token_expiry(now),
            Some(now + 60)
        );
    }

    #[test]
    fn a_token_lives_through_its_expiry_second() {
        assert!(Policy::is_live(Some(10), 10));
        assert!(!Policy::is_live(Some(10), 11));
        assert!(Policy::is_live(None, i64::MAX));
    }

    #[test]
    fn validation_names_the_key() {
        let mut s = PolicySettings {
            access_token_ttl: 0,
            rotate_refresh_tokens: true,
            refresh_token_ttl: 0,
            extend_on_rotation: true,
            wazo: PolicyOverrides::default(),
            clients: BTreeMap::new(),
        };
        assert_eq!(
            s.validate().map_err(|e| e.0),
            Err("policy.access_token_ttl".to_owned())
        );
        s.access_token_ttl = 1;
        s.refresh_token_ttl = MAX_TTL + 1;
        assert_eq!(
            s.validate().map_err(|e| e.0),
            Err("policy.refresh_token_ttl".to_owned())
        );
        s.refresh_token_ttl = 0;
        s.wazo.access_token_ttl = Some(MAX_TTL + 1);
        assert_eq!(
            s.validate().map_err(|e| e.0),
            Err("policy.wazo.access_token_ttl".to_owned())
        );
    }

    /// Each key set at each level: client over dialect over global.
    #[test]
    fn resolution_is_client_over_dialect_over_global() {
        let over = |a, r, t, e| PolicyOverrides {
            access_token_ttl: a,
            rotate_refresh_tokens: r,
            refresh_token_ttl: t,
            extend_on_rotation: e,
        };
        let mut clients = BTreeMap::new();
        clients.insert(
            "all".to_owned(),
            over(Some(60), Some(false), Some(30), Some(false)),
        );
        clients.insert("ttl-only".to_owned(), over(None, None, Some(0), None));
        let s = PolicySettings {
            access_token_ttl: 3600,
            rotate_refresh_tokens: true,
            refresh_token_ttl: 86_400,
            extend_on_rotation: true,
            wazo: over(Some(7200), Some(false), None, None),
            clients,
        };
        let p = Policies::from(&s);
        let policy = |ttl, rotate, refresh: Option<i64>, extend| Policy {
            access_token_ttl: ttl,
            rotate_refresh_tokens: rotate,
            refresh_token_ttl: refresh,
            extend_on_rotation: extend,
        };
        use Dialect::{OAuth2, Wazo};
        let table = [
            (OAuth2, None, policy(3600, true, Some(86_400), true)),
            (
                OAuth2,
                Some("unknown"),
                policy(3600, true, Some(86_400), true),
            ),
            (Wazo, None, policy(7200, false, Some(86_400), true)),
            (OAuth2, Some("all"), policy(60, false, Some(30), false)),
            (Wazo, Some("all"), policy(60, false, Some(30), false)),
            (OAuth2, Some("ttl-only"), policy(3600, true, None, true)),
            (Wazo, Some("ttl-only"), policy(7200, false, None, true)),
        ];
        for (dialect, client, expected) in table {
            assert_eq!(
                p.resolve(dialect, client),
                expected,
                "{dialect:?} {client:?}"
            );
        }
        let explained = p.explain(Wazo, Some("ttl-only"));
        assert_eq!(
            explained,
            vec![
                ("access_token_ttl", "7200".to_owned(), Source::Dialect),
                ("rotate_refresh_tokens", "false".to_owned(), Source::Dialect),
                (
                    "refresh_token_ttl",
                    "0".to_owned(),
                    Source::Client("ttl-only".to_owned())
                ),
                ("extend_on_rotation", "true".to_owned(), Source::Global),
            ]
        );
        let mut bad = s.clone();
        bad.clients
            .insert("x".to_owned(), over(Some(0), None, None, None));
        assert_eq!(
            bad.validate().map_err(|e| e.0),
            Err("policy.clients.\"x\".access_token_ttl".to_owned())
        );
    }

    #[test]
    fn the_wazo_table_overrides_only_the_keys_it_names() {
        let s = PolicySettings {
            access_token_ttl: 3600,
            rotate_refresh_tokens: true,
            refresh_token_ttl: 86_400,
            extend_on_rotation: false,
            wazo: PolicyOverrides {
                access_token_ttl: Some(7200),
                rotate_refresh_tokens: Some(false),
                refresh_token_ttl: None,
                extend_on_rotation: None,
            },
            clients: BTreeMap::new(),
        };
        let p = Policies::from(&s);
        assert_eq!(p.oauth2.access_token_ttl, 3600);
        assert_eq!(p.wazo.access_token_ttl, 7200);
        assert!(p.oauth2.rotate_refresh_tokens);
        assert!(!p.wazo.rotate_refresh_tokens);
        assert_eq!(p.wazo.refresh_token_ttl, Some(86_400));
        assert!(!p.wazo.extend_on_rotation);
    }
}
