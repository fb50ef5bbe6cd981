//! The token policy: how long tokens live and whether refresh tokens rotate. Pure values and
//! functions; the current policy sits in `AppState` and is read once per request.
//!
//! Key names follow WSO2 Identity Server's meaning (its names in `conf/tessera.toml`).
//! This issue implements the `[policy]` table; per-dialect and per-client tables come with the
//! policy engine (DESIGN.md §6).
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
}

impl PolicySettings {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(1..=MAX_TTL).contains(&self.access_token_ttl) {
            return Err((
                "policy.access_token_ttl",
                "must be between 1 and 315360000 seconds",
            ));
        }
        if self.refresh_token_ttl > MAX_TTL {
            return Err((
                "policy.refresh_token_ttl",
                "must be between 0 (never expires) and 315360000 seconds",
            ));
        }
        Ok(())
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
        };
        assert_eq!(
            s.validate().map_err(|e| e.0),
            Err("policy.access_token_ttl")
        );
        s.access_token_ttl = 1;
        s.refresh_token_ttl = MAX_TTL + 1;
        assert_eq!(
            s.validate().map_err(|e| e.0),
            Err("policy.refresh_token_ttl")
        );
    }
}
