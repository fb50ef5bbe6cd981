//! Scopes (RFC 6749 §3.3): `ScopeSet::parse` (space-delimited scope-tokens of
//! `%x21 / %x23-5B / %x5D-7E`, at most `MAX_SCOPES`), its normal form (sorted, each once,
//! single spaces) and its round trip; then what a grant receives (`oauth::scope::grant`: the
//! requested scopes, each allowed by the client's patterns and the user's ACL and never a
//! pattern itself, or the client's defaults the user's ACL allows) and what a refresh may ask
//! (`narrow`: a subset of the original, never more, §6).
//!
//! Input (UTF-8): the whole text is parsed as a scope; then, one per line, the requested
//! scope, the client's scope patterns (also the original scope of a refresh), the client's
//! default scopes, and the user's ACL (no fourth line: a client's own token).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::domain::{Client, GrantType, User};
use tessera::fuzzing::{
    AclContext, MAX_SCOPES, ScopeError, ScopeSet, grant_scopes, is_allowed, narrow_scopes,
};
use tessera::oauth::Error;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    parse(text);
    let mut lines = text.split('\n');
    let requested = lines.next().unwrap_or_default();
    let client_scopes = lines.next().unwrap_or_default();
    let defaults = lines.next().unwrap_or_default();
    let user_acl = lines.next();
    if let Ok(requested) = ScopeSet::parse(requested) {
        narrow(&requested, client_scopes);
        grant(&requested, client_scopes, defaults, user_acl);
    }
});

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

fn parse(raw: &str) {
    let tokens: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).collect();
    match ScopeSet::parse(raw) {
        Ok(set) => {
            let scopes: Vec<&str> = set.iter().collect();
            assert!(scopes.len() <= MAX_SCOPES && tokens.len() <= MAX_SCOPES);
            // Sorted, each once, each a token of the input and every token in it.
            assert!(scopes.windows(2).all(|w| w[0] < w[1]), "{scopes:?}");
            for scope in &scopes {
                assert!(
                    !scope.is_empty() && scope.bytes().all(is_scope_char),
                    "{scope:?}"
                );
                assert!(tokens.contains(scope));
            }
            for token in &tokens {
                assert!(scopes.contains(token));
            }
            assert_eq!(set.is_empty(), tokens.is_empty());
            // The normal form: single spaces, no space at either end, and it parses back to
            // the same set (also from its list, also in any order).
            let normal = set.to_string();
            assert_eq!(normal, scopes.join(" "));
            assert_eq!(ScopeSet::parse(&normal), Ok(set.clone()));
            assert_eq!(ScopeSet::from_list(set.to_vec()), set);
            let reversed: Vec<&str> = tokens.iter().rev().copied().collect();
            assert_eq!(ScopeSet::parse(&reversed.join("  ")), Ok(set.clone()));
            assert!(set.is_subset(&set));
            assert!(ScopeSet::default().is_subset(&set));
        }
        Err(ScopeError::TooMany) => {
            assert!(
                tokens.len() > MAX_SCOPES,
                "TooMany for {} tokens",
                tokens.len()
            );
            // Only the first MAX_SCOPES were looked at, and they were fine.
            assert!(
                tokens
                    .iter()
                    .take(MAX_SCOPES)
                    .all(|t| t.bytes().all(is_scope_char))
            );
        }
        Err(ScopeError::BadCharacter) => {
            let first = tokens
                .iter()
                .take(MAX_SCOPES)
                .position(|t| !t.bytes().all(is_scope_char));
            assert!(first.is_some(), "BadCharacter without one: {raw:?}");
        }
    }
}

fn narrow(requested: &ScopeSet, original: &str) {
    let Ok(original) = ScopeSet::parse(original) else {
        return;
    };
    assert_eq!(narrow_scopes(None, &original).ok(), Some(original.clone()));
    assert_eq!(
        narrow_scopes(Some(&original), &original).ok(),
        Some(original.clone())
    );
    match narrow_scopes(Some(requested), &original) {
        Ok(got) if requested.is_empty() => assert_eq!(got, original),
        Ok(got) => {
            assert_eq!(&got, requested);
            assert!(got.is_subset(&original), "widened");
        }
        Err(Error::InvalidScope) => assert!(!requested.is_subset(&original)),
        Err(other) => panic!("narrow: {other:?}"),
    }
}

fn grant(requested: &ScopeSet, client_scopes: &str, defaults: &str, user_acl: Option<&str>) {
    let words = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let client = Client {
        id: "fuzz-client".into(),
        secret_hash: None,
        grant_types: GrantType::ALL.to_vec(),
        scopes: words(client_scopes),
        default_scopes: words(defaults),
        created_at: 0,
    };
    let user = user_acl.map(|acl| User {
        id: "fuzz-user".into(),
        username: "fuzz".into(),
        email: None,
        email_confirmed: false,
        password_hash: None,
        enabled: true,
        acl: words(acl),
        tenant_uuid: "t".into(),
        purpose: "user".into(),
        created_at: 0,
    });
    let ctx = AclContext {
        auth_id: user.as_ref().map(|u| u.id.as_str()),
        session_id: None,
    };
    let user_allows = |s: &str| user.as_ref().is_none_or(|u| is_allowed(&u.acl, s, ctx));
    let acceptable = |s: &str| {
        !s.contains(['*', '#'])
            && !s.starts_with('!')
            && is_allowed(&client.scopes, s, ctx)
            && user_allows(s)
    };
    let result = grant_scopes(Some(requested), &client, user.as_ref());
    // No request and an empty one are the same.
    let without = grant_scopes(None, &client, user.as_ref());
    assert!(without.is_ok(), "the defaults never fail: {without:?}");
    if requested.is_empty() {
        assert_eq!(result.ok(), without.ok());
        let expected = ScopeSet::from_list(
            client
                .default_scopes
                .iter()
                .filter(|s| user_allows(s))
                .cloned(),
        );
        assert_eq!(
            grant_scopes(None, &client, user.as_ref()).ok(),
            Some(expected)
        );
        return;
    }
    match result {
        Ok(granted) => {
            assert_eq!(&granted, requested);
            for scope in granted.iter() {
                assert!(acceptable(scope), "{scope:?} granted");
            }
        }
        Err(Error::InvalidScope) => {
            assert!(
                requested.iter().any(|s| !acceptable(s)),
                "all of {requested} acceptable"
            );
        }
        Err(other) => panic!("grant: {other:?}"),
    }
}
