//! The refresh token grant (RFC 6749 §6). One write transaction: look the token up by digest,
//! check client binding (§10.4), state and expiry, then either consume it and mint a successor
//! (rotation on) or record its use (rotation off), and mint an access token. The consuming
//! update is conditional, so of several concurrent refreshes exactly one wins.
use crate::crypto::token::digest;
use crate::domain::{Client, Metadata, ScopeSet, Secret};
use crate::oauth::grants::IssuedTokens;
use crate::oauth::issuance::{self, Grantee, OAUTH2};
use crate::oauth::{Error, RefreshTokenProblem as Problem, Service, scope};
use crate::policy::{Dialect, Policy};
use crate::store::{connection, refresh_tokens, users};

pub fn exchange(
    service: &Service,
    client: &Client,
    presented: &Secret,
    requested: Option<&ScopeSet>,
) -> Result<IssuedTokens, Error> {
    let now = service.now();
    let policy = service.policy_for_client(Dialect::OAuth2, Some(&client.id));
    let hash = digest(presented.expose());
    let mut conn = service.store().conn()?;
    connection::write(&mut conn, |conn| {
        let invalid = |p| Error::InvalidRefreshToken(p);
        let current = refresh_tokens::find_by_hash(conn, &hash)?
            .filter(|t| t.dialect == OAUTH2)
            .ok_or(invalid(Problem::Unknown))?;
        if current.client_id != client.id {
            return Err(invalid(Problem::OtherClient));
        }
        if current.revoked_at.is_some() {
            return Err(invalid(Problem::Revoked));
        }
        if current.consumed_at.is_some() {
            return Err(invalid(Problem::Consumed));
        }
        if !Policy::is_live(current.expires_at, now) {
            return Err(invalid(Problem::Expired));
        }
        let metadata = match &current.user_id {
            Some(user_id) => match users::find_by_id(conn, user_id)? {
                Some(user) if user.enabled => {
                    issuance::user_metadata(&user, service.wazo().xivo_uuid.as_deref())
                }
                _ => return Err(invalid(Problem::UserDisabled)),
            },
            None => Metadata::new(),
        };
        let original = ScopeSet::from_list(current.scopes.iter().cloned());
        let scopes = scope::narrow(requested, &original)?;

        let refresh_token = if policy.rotate_refresh_tokens {
            if !refresh_tokens::consume(conn, &current.id, now)? {
                return Err(invalid(Problem::Consumed));
            }
            issuance::rotate_refresh_token(conn, now, &policy, service.secret(), &current)?
        } else {
            if !refresh_tokens::touch(conn, &current.id, now)? {
                return Err(invalid(Problem::Consumed));
            }
            presented.clone()
        };
        let session_id = match &current.session_id {
            Some(id) => id.clone(),
            None => issuance::new_session(conn, now, &client.id, None)?,
        };
        let to = Grantee {
            client_id: &client.id,
            user_id: current.user_id.as_deref(),
            session_id: &session_id,
            family_id: Some(&current.family_id),
            metadata: &metadata,
        };
        let access = issuance::access_token(conn, now, &policy, to, &scopes)?;
        Ok(IssuedTokens {
            access_token: access.token,
            expires_in: access.expires_at - now,
            refresh_token: Some(refresh_token),
            scope: scopes,
        })
    })
}
