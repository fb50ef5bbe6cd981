//! Token revocation (RFC 7009). Unknown tokens succeed (§2.2); a client may revoke only its own
//! tokens (§2.1), an administrator (ACL `auth.tokens.revoke`) any. Revoking a refresh token
//! revokes its whole family, refresh and access tokens; revoking an access token leaves the
//! refresh token alive.
use crate::crypto::token::digest;
use crate::domain::Secret;
use crate::oauth::issuance::OAUTH2;
use crate::oauth::service::{Authorized, Caller};
use crate::oauth::{Error, Service};
use crate::store::{refresh_tokens, tokens};

/// The ACL entry that lets a bearer revoke any token.
pub const REVOKE_ACCESS: &str = "auth.tokens.revoke";

/// `token_type_hint` (RFC 7009 §2.1): where to look first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

#[derive(Debug)]
pub struct RevokeRequest {
    pub caller: Caller,
    pub token: Secret,
    pub hint: Option<TokenTypeHint>,
}

impl Service {
    pub fn revoke(&self, request: RevokeRequest) -> Result<(), Error> {
        let now = self.now();
        let hash = digest(request.token.expose());
        // A JWT access token is found through its `jti`.
        let access_key = self.access_token_key(request.token.expose());
        let mut conn = self.store().conn()?;
        let caller = self.authorize(&mut conn, &request.caller, REVOKE_ACCESS, now)?;
        let owns = |client_id: Option<&str>| match &caller {
            Authorized::Admin => true,
            Authorized::Client(client) => client_id == Some(client.id.as_str()),
        };
        // (refresh, access) tokens revoked, for metrics.
        let revoked = self.store().write(&mut conn, |conn| {
            let refresh_first = request.hint != Some(TokenTypeHint::AccessToken);
            for look_at_refresh in [refresh_first, !refresh_first] {
                if look_at_refresh {
                    if let Some(t) = refresh_tokens::find_by_hash(conn, &hash)? {
                        if t.dialect != OAUTH2 && !matches!(caller, Authorized::Admin) {
                            return Ok((0, 0));
                        }
                        if !owns(Some(&t.client_id)) {
                            return Err(Error::TokenOfAnotherClient);
                        }
                        let refresh = refresh_tokens::revoke_family(conn, &t.family_id, now)?;
                        let access = tokens::revoke_family(conn, &t.family_id, now)?;
                        return Ok((refresh, access));
                    }
                } else if let Some(key) = &access_key {
                    if let Some(t) = tokens::find(conn, key)? {
                        if !owns(t.client_id.as_deref()) {
                            return Err(Error::TokenOfAnotherClient);
                        }
                        let access = tokens::revoke(conn, key, now)?;
                        return Ok((0, access));
                    }
                }
            }
            Ok((0, 0))
        })?;
        self.count(|m| {
            m.tokens_revoked
                .with_label_values(&["refresh"])
                .inc_by(revoked.0 as u64);
            m.tokens_revoked
                .with_label_values(&["access"])
                .inc_by(revoked.1 as u64);
        });
        Ok(())
    }
}
