//! Token introspection (RFC 7662). The caller must authenticate (§2.1): a confidential client
//! learns about its own tokens only, an administrator (ACL `auth.tokens.introspect`) about any.
//! Anything unknown, expired, revoked or not the caller's is `{"active": false}` (§2.2).
use crate::crypto::token::digest;
use crate::domain::{ScopeSet, Secret};
use crate::oauth::issuance::WAZO;
use crate::oauth::service::{Authorized, Caller};
use crate::oauth::{AuthScheme, ClientCredentials, Error, Service};
use crate::policy::{Dialect, Policy};
use crate::store::{refresh_tokens, tokens, users};

pub use crate::oauth::revocation::TokenTypeHint;

/// The ACL entry that lets a bearer introspect any token.
pub const INTROSPECT_ACCESS: &str = "auth.tokens.introspect";

#[derive(Debug)]
pub struct IntrospectRequest {
    pub caller: Caller,
    pub token: Secret,
    pub hint: Option<TokenTypeHint>,
}

/// What introspection reveals about an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    pub kind: TokenTypeHint,
    pub scope: ScopeSet,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub sub: Option<String>,
    pub iat: i64,
    pub exp: Option<i64>,
}

/// RFC 7662 §2.2: `None` is `{"active": false}`.
pub type Introspection = Option<ActiveToken>;

impl Service {
    pub fn introspect(&self, request: IntrospectRequest) -> Result<Introspection, Error> {
        // Introspection needs real authentication: a public client proves nothing (§2.1).
        if let Caller::Client(ClientCredentials::Public { .. }) = request.caller {
            return Err(Error::ClientAuthenticationFailed {
                scheme: AuthScheme::Body,
            });
        }
        let now = self.now();
        let hash = digest(request.token.expose());
        let mut conn = self.store().conn()?;
        let caller = self.authorize(&mut conn, &request.caller, INTROSPECT_ACCESS, now)?;
        let visible = |client_id: Option<&str>| match &caller {
            Authorized::Admin => true,
            Authorized::Client(client) => client_id == Some(client.id.as_str()),
        };
        let refresh_first = request.hint == Some(TokenTypeHint::RefreshToken);
        let mut found = None;
        for look_at_refresh in [refresh_first, !refresh_first] {
            found = if look_at_refresh {
                refresh_tokens::find_by_hash(&mut conn, &hash)?.map(|t| {
                    // The deadline the policy in force gives it (expiry, idle, family age).
                    let dialect = if t.dialect == WAZO {
                        Dialect::Wazo
                    } else {
                        Dialect::OAuth2
                    };
                    let policy = self.policy_for_client(dialect, Some(&t.client_id));
                    let deadline = policy.refresh_deadline(t.times());
                    let live = t.revoked_at.is_none()
                        && t.consumed_at.is_none()
                        && Policy::is_live(deadline, now);
                    (
                        live,
                        TokenTypeHint::RefreshToken,
                        Some(t.client_id),
                        t.user_id,
                        t.scopes,
                        t.issued_at,
                        deadline,
                    )
                })
            } else {
                let key = self.access_token_key(request.token.expose());
                let record = match key {
                    Some(key) => tokens::find(&mut conn, &key)?,
                    None => None,
                };
                record.map(|t| {
                    (
                        t.is_active(now),
                        TokenTypeHint::AccessToken,
                        t.client_id,
                        t.user_id,
                        t.scopes,
                        t.issued_at,
                        Some(t.expires_at),
                    )
                })
            };
            if found.is_some() {
                break;
            }
        }
        let Some((live, kind, client_id, user_id, scopes, iat, exp)) = found else {
            return Ok(None);
        };
        if !live || !visible(client_id.as_deref()) {
            return Ok(None);
        }
        let username = match &user_id {
            Some(id) => match users::find_by_id(&mut conn, id)? {
                Some(user) if user.enabled => Some(user.username),
                _ => return Ok(None),
            },
            None => None,
        };
        Ok(Some(ActiveToken {
            kind,
            scope: ScopeSet::from_list(scopes),
            client_id,
            username,
            sub: user_id,
            iat,
            exp,
        }))
    }
}
