//! Which scopes a grant receives (RFC 6749 §3.3): the requested scopes must be allowed by the
//! client's scope patterns and, for a user's token, by the user's ACL; without a request the
//! client's default scopes apply, keeping those the user's ACL allows.
use crate::domain::{Client, ScopeSet, User};
use crate::oauth::Error;
use crate::oauth::acl::{AclContext, is_allowed};

/// The scopes granted to `client` (and `user`, for a user's token) for `requested`.
pub fn grant(
    requested: Option<&ScopeSet>,
    client: &Client,
    user: Option<&User>,
) -> Result<ScopeSet, Error> {
    let ctx = AclContext {
        auth_id: user.map(|u| u.id.as_str()),
        session_id: None,
    };
    let user_allows = |scope: &str| user.is_none_or(|u| is_allowed(&u.acl, scope, ctx));
    match requested.filter(|r| !r.is_empty()) {
        Some(requested) => {
            for scope in requested.iter() {
                // A requested scope is a literal: granting `#` or `auth.*` would hand out a
                // pattern that later matches far more than the ACL allowed.
                if scope.contains(['*', '#']) || scope.starts_with('!') {
                    return Err(Error::InvalidScope);
                }
                if !is_allowed(&client.scopes, scope, ctx) || !user_allows(scope) {
                    return Err(Error::InvalidScope);
                }
            }
            Ok(requested.clone())
        }
        None => Ok(ScopeSet::from_list(
            client
                .default_scopes
                .iter()
                .filter(|s| user_allows(s))
                .cloned(),
        )),
    }
}

/// The scopes of an access token minted by a refresh (RFC 6749 §6): the original scopes, or a
/// subset of them when the request narrows them. Widening is `invalid_scope`.
pub fn narrow(requested: Option<&ScopeSet>, original: &ScopeSet) -> Result<ScopeSet, Error> {
    match requested.filter(|r| !r.is_empty()) {
        Some(requested) if requested.is_subset(original) => Ok(requested.clone()),
        Some(_) => Err(Error::InvalidScope),
        None => Ok(original.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GrantType;

    fn client(scopes: &[&str], defaults: &[&str]) -> Client {
        Client {
            id: "c".into(),
            secret_hash: None,
            grant_types: vec![GrantType::Password],
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            default_scopes: defaults.iter().map(|s| (*s).to_owned()).collect(),
            created_at: 0,
        }
    }

    fn user(acl: &[&str]) -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            email: None,
            email_confirmed: false,
            password_hash: None,
            enabled: true,
            acl: acl.iter().map(|s| (*s).to_owned()).collect(),
            tenant_uuid: "t".into(),
            purpose: "user".into(),
            created_at: 0,
        }
    }

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap_or_default()
    }

    #[test]
    fn requested_scopes_need_both_the_client_and_the_user() {
        let c = client(&["read", "write", "admin.#"], &["read"]);
        let u = user(&["read", "admin.users.me"]);
        assert_eq!(
            grant(Some(&set("read")), &c, Some(&u)).ok(),
            Some(set("read"))
        );
        assert!(matches!(
            grant(Some(&set("write")), &c, Some(&u)),
            Err(Error::InvalidScope)
        ));
        assert!(matches!(
            grant(Some(&set("other")), &c, Some(&u)),
            Err(Error::InvalidScope)
        ));
        assert_eq!(
            grant(Some(&set("admin.users.u1")), &c, Some(&u)).ok(),
            Some(set("admin.users.u1"))
        );
        assert_eq!(
            grant(Some(&set("write")), &c, None).ok(),
            Some(set("write"))
        );
    }

    #[test]
    fn defaults_apply_without_a_request_filtered_by_the_acl() {
        let c = client(&["#"], &["read", "write"]);
        assert_eq!(
            grant(None, &c, Some(&user(&["read"]))).ok(),
            Some(set("read"))
        );
        assert_eq!(
            grant(Some(&set("")), &c, None).ok(),
            Some(set("read write"))
        );
    }

    #[test]
    fn wildcards_and_negations_cannot_be_requested() {
        let c = client(&["#"], &[]);
        let u = user(&["#", "!auth.tokens.revoke"]);
        for s in ["#", "auth.tokens.*", "auth.#", "!x"] {
            assert!(
                matches!(grant(Some(&set(s)), &c, Some(&u)), Err(Error::InvalidScope)),
                "{s}"
            );
        }
    }

    #[test]
    fn a_refresh_narrows_but_never_widens() {
        let original = set("a b");
        assert_eq!(narrow(Some(&set("a")), &original).ok(), Some(set("a")));
        assert_eq!(narrow(None, &original).ok(), Some(set("a b")));
        assert!(matches!(
            narrow(Some(&set("a c")), &original),
            Err(Error::InvalidScope)
        ));
    }
}
