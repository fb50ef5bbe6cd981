//! Refresh-token and session management for token holders with the right ACL
//! (wazo-contract §1.6, §1.7): list and delete a user's Wazo refresh tokens, list and delete
//! sessions, always within the tenant the caller acts in (`Principal::scoped_tenant`).
//!
//! Also the administration of the command line (`tessera token …`, `client rotate-secret`),
//! run by the operator who holds the database: list the tokens of a user or a client id, and
//! revoke them by owner, family or value. A refresh token is revoked with its whole family,
//! refresh and access tokens, exactly as RFC 7009 revocation (`revocation.rs`) and reuse
//! detection (`rotation.rs`) revoke it; an access token alone leaves its refresh token.
use crate::crypto::jwt::JwtSigner;
use crate::crypto::token::{self, digest};
use crate::domain::{Metadata, Secret, User};
use crate::oauth::issuance::{WAZO, access_row_key};
use crate::oauth::validation::Principal;
use crate::oauth::{Error, Service};
use crate::store::admin::{self, TokenOwner};
use crate::store::refresh_tokens::{Filter, Order, Owner};
use crate::store::sessions::{Scope, SessionRecord};
use crate::store::{
    DbConnection, Listing, Page, clients, connection, refresh_tokens, sessions, tenants, tokens,
    users,
};

/// A refresh token as listed: never its value, user agent or address.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenItem {
    pub client_id: String,
    pub created_at: i64,
    pub mobile: bool,
    pub user_uuid: Option<String>,
    pub tenant_uuid: Option<String>,
    pub metadata: Metadata,
}

/// Whose refresh tokens or sessions to list.
#[derive(Debug, Clone)]
pub enum Target {
    /// The scoped tenant, and with `recurse` the tenants below it.
    Tenant { recurse: bool },
    /// One user (a uuid; `me` is resolved by the caller).
    User(String),
}

/// A refresh-token listing request.
#[derive(Debug, Clone)]
pub struct RefreshTokenQuery {
    pub target: Target,
    pub filter: Filter,
    pub order: Order,
    pub page: Page,
}

impl Service {
    /// The tenants a tenant-wide listing covers.
    fn tenants_in_scope(
        &self,
        conn: &mut DbConnection,
        principal: &Principal,
        recurse: bool,
    ) -> Result<Vec<String>, Error> {
        let Some(tenant) = &principal.scoped_tenant else {
            return Ok(Vec::new());
        };
        if recurse {
            Ok(tenants::subtree(conn, tenant)?)
        } else {
            Ok(vec![tenant.clone()])
        }
    }

    /// The user, if it exists and its tenant lies within the caller's scoped tenant.
    fn visible_user(
        &self,
        conn: &mut DbConnection,
        principal: &Principal,
        user_uuid: &str,
    ) -> Result<User, Error> {
        let unknown = || Error::UnknownUser(user_uuid.to_owned());
        let user = users::find_by_id(conn, user_uuid)?.ok_or_else(unknown)?;
        let visible = match &principal.scoped_tenant {
            Some(scope) => tenants::is_within(conn, &user.tenant_uuid, scope)?,
            None => principal.user_id.as_deref() == Some(user.id.as_str()),
        };
        if visible { Ok(user) } else { Err(unknown()) }
    }

    /// `GET /tokens`, `GET /users/{uuid|me}/tokens`.
    pub fn list_refresh_tokens(
        &self,
        principal: &Principal,
        query: &RefreshTokenQuery,
    ) -> Result<Listing<RefreshTokenItem>, Error> {
        let now = self.now();
        let mut conn = self.store().conn()?;
        let owner = match &query.target {
            Target::Tenant { recurse } => {
                Owner::Tenants(self.tenants_in_scope(&mut conn, principal, *recurse)?)
            }
            Target::User(uuid) => Owner::User(self.visible_user(&mut conn, principal, uuid)?.id),
        };
        let listing = refresh_tokens::list(
            &mut conn,
            WAZO,
            &owner,
            &query.filter,
            query.order,
            query.page,
            now,
        )?;
        Ok(Listing {
            total: listing.total,
            filtered: listing.filtered,
            items: listing
                .items
                .into_iter()
                .map(|(r, tenant_uuid)| RefreshTokenItem {
                    client_id: r.client_id,
                    created_at: r.family_issued_at,
                    mobile: r.mobile,
                    user_uuid: r.user_id,
                    tenant_uuid,
                    metadata: r.metadata,
                })
                .collect(),
        })
    }

    /// `DELETE /users/{uuid|me}/tokens/{client_id}`: stops new access tokens; those already
    /// issued stay valid until they expire (wazo-auth's behaviour).
    pub fn delete_refresh_token(
        &self,
        principal: &Principal,
        user_uuid: &str,
        client_id: &str,
    ) -> Result<(), Error> {
        let mut conn = self.store().conn()?;
        let user = self.visible_user(&mut conn, principal, user_uuid)?;
        self.store().write(&mut conn, |conn| {
            let Some(record) = refresh_tokens::find_live_for(conn, WAZO, &user.id, client_id)?
            else {
                return Err(Error::UnknownClientRefreshToken(client_id.to_owned()));
            };
            refresh_tokens::delete_families(conn, &[record.family_id])?;
            Ok(())
        })
    }

    /// `GET /sessions`, `GET /users/{uuid}/sessions`.
    pub fn list_sessions(
        &self,
        principal: &Principal,
        target: &Target,
        page: Page,
    ) -> Result<Listing<SessionRecord>, Error> {
        let now = self.now();
        let mut conn = self.store().conn()?;
        let scope = match target {
            Target::Tenant { recurse } => {
                Scope::Tenants(self.tenants_in_scope(&mut conn, principal, *recurse)?)
            }
            Target::User(uuid) => Scope::User(self.visible_user(&mut conn, principal, uuid)?.id),
        };
        Ok(sessions::list(&mut conn, &scope, page, now)?)
    }

    /// `DELETE /sessions/{uuid}` (any session in the scoped tenant and below) and
    /// `DELETE /users/{uuid}/sessions/{uuid}` (that user's session only). Idempotent.
    pub fn delete_session(
        &self,
        principal: &Principal,
        target: &Target,
        session_id: &str,
    ) -> Result<(), Error> {
        let mut conn = self.store().conn()?;
        let scope = match target {
            Target::Tenant { .. } => {
                Scope::Tenants(self.tenants_in_scope(&mut conn, principal, true)?)
            }
            Target::User(uuid) => Scope::User(self.visible_user(&mut conn, principal, uuid)?.id),
        };
        self.store().write(&mut conn, |conn| {
            sessions::delete(conn, session_id, &scope)?;
            Ok(())
        })
    }
}

/// Access or refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// Where a stored token stands. A refresh token is judged by its stored expiry only: the
/// idle timeout and family age of the policy are checked when it is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    /// Rotated out (refresh tokens only); presenting it again is reuse.
    Consumed,
    Revoked,
    Expired,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Consumed => "consumed",
            TokenState::Revoked => "revoked",
            TokenState::Expired => "expired",
        }
    }
}

/// A stored token as the command line lists it: never its value or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenItem {
    pub kind: TokenKind,
    pub state: TokenState,
    /// `oauth2` or `wazo`.
    pub dialect: String,
    /// The refresh-token family; `None` for an access token minted without a refresh token.
    pub family_id: Option<String>,
    /// A refresh token's rank in its family (0 = the login's).
    pub generation: Option<i64>,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub issued_at: i64,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// How many tokens a revocation changed (those already revoked are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    pub refresh: usize,
    pub access: usize,
}

/// What a presented token turned out to be, and what revoking it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedRevocation {
    pub kind: TokenKind,
    /// The family revoked with a refresh token, or the access token's own family.
    pub family_id: Option<String>,
    pub revoked: Revoked,
}

/// The outcome of `rotate_client_secret`.
#[derive(Debug)]
pub enum SecretRotation {
    /// The new secret, to be shown once; the old one is refused from now on.
    Rotated(Secret),
    /// A public client has no secret.
    Public,
    UnknownClient,
}

/// The tokens of `owner`: refresh tokens by family, then access tokens, oldest first; with
/// `active_only`, only those still usable at `now`.
pub fn list_tokens(
    conn: &mut DbConnection,
    owner: &TokenOwner,
    active_only: bool,
    now: i64,
) -> Result<Vec<TokenItem>, Error> {
    let refresh = admin::refresh_tokens_of(conn, owner)?
        .into_iter()
        .map(|r| TokenItem {
            kind: TokenKind::Refresh,
            state: if r.revoked_at.is_some() {
                TokenState::Revoked
            } else if r.consumed_at.is_some() {
                TokenState::Consumed
            } else if r.expires_at.is_some_and(|e| e < now) {
                TokenState::Expired
            } else {
                TokenState::Active
            },
            dialect: r.dialect,
            family_id: Some(r.family_id),
            generation: Some(r.generation),
            client_id: Some(r.client_id),
            user_id: r.user_id,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            consumed_at: r.consumed_at,
            revoked_at: r.revoked_at,
        });
    let access = admin::access_tokens_of(conn, owner)?
        .into_iter()
        .map(|a| TokenItem {
            kind: TokenKind::Access,
            // As `AccessTokenRecord::is_active`: usable up to its expiry second included.
            state: if a.revoked_at.is_some() {
                TokenState::Revoked
            } else if now > a.expires_at {
                TokenState::Expired
            } else {
                TokenState::Active
            },
            dialect: a.dialect,
            family_id: a.family_id,
            generation: None,
            client_id: a.client_id,
            user_id: a.user_id,
            issued_at: a.issued_at,
            expires_at: Some(a.expires_at),
            consumed_at: None,
            revoked_at: a.revoked_at,
        });
    Ok(refresh
        .chain(access)
        .filter(|t| !active_only || t.state == TokenState::Active)
        .collect())
}

/// Revokes every refresh and access token of a family, as RFC 7009 revocation and reuse
/// detection do. Run it inside a write transaction.
fn revoke_family_in(conn: &mut DbConnection, family_id: &str, now: i64) -> Result<Revoked, Error> {
    Ok(Revoked {
        refresh: refresh_tokens::revoke_family(conn, family_id, now)?,
        access: tokens::revoke_family(conn, family_id, now)?,
    })
}

/// Revokes every token of `owner`: each refresh-token family it holds, whole, then its other
/// access tokens (those minted without a refresh token), in one transaction.
pub fn revoke_tokens_of(
    conn: &mut DbConnection,
    owner: &TokenOwner,
    now: i64,
) -> Result<Revoked, Error> {
    connection::write(conn, |conn| {
        let mut total = Revoked::default();
        for family in admin::families_of(conn, owner)? {
            let r = revoke_family_in(conn, &family, now)?;
            total.refresh += r.refresh;
            total.access += r.access;
        }
        total.access += admin::revoke_access_tokens_of(conn, owner, now)?;
        Ok(total)
    })
}

/// Revokes a whole family; `None` if no refresh token of it is stored.
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: &str,
    now: i64,
) -> Result<Option<Revoked>, Error> {
    connection::write(conn, |conn| {
        if !admin::family_exists(conn, family_id)? {
            return Ok(None);
        }
        revoke_family_in(conn, family_id, now).map(Some)
    })
}

/// Revokes what a presented token is (opaque, Wazo or JWT; looked up by digest as every
/// endpoint does): a refresh token with its whole family, an access token alone. `None` if it
/// is not a token of this database (a JWT needs the key that signed it).
pub fn revoke_presented(
    conn: &mut DbConnection,
    presented: &Secret,
    jwt: Option<&JwtSigner>,
    now: i64,
) -> Result<Option<PresentedRevocation>, Error> {
    let refresh_hash = digest(presented.expose());
    let access = access_row_key(presented.expose(), jwt);
    connection::write(conn, |conn| {
        if let Some(r) = refresh_tokens::find_by_hash(conn, &refresh_hash)? {
            let revoked = revoke_family_in(conn, &r.family_id, now)?;
            return Ok(Some(PresentedRevocation {
                kind: TokenKind::Refresh,
                family_id: Some(r.family_id),
                revoked,
            }));
        }
        let Some(key) = access else {
            return Ok(None);
        };
        let Some(t) = tokens::find(conn, &key)? else {
            return Ok(None);
        };
        Ok(Some(PresentedRevocation {
            kind: TokenKind::Access,
            family_id: t.family_id,
            revoked: Revoked {
                refresh: 0,
                access: tokens::revoke(conn, &key, now)?,
            },
        }))
    })
}

/// Gives a confidential client a new generated secret (≥ 256 bits; only its digest is
/// stored). Its tokens stay valid: revoke them with `revoke_tokens_of` if the old secret leaked.
pub fn rotate_client_secret(
    conn: &mut DbConnection,
    client_id: &str,
) -> Result<SecretRotation, Error> {
    let secret = token::new_client_secret();
    connection::write(conn, |conn| {
        let Some(client) = clients::find(conn, client_id)? else {
            return Ok(SecretRotation::UnknownClient);
        };
        if client.is_public() {
            return Ok(SecretRotation::Public);
        }
        if !admin::set_client_secret(conn, client_id, &digest(secret.expose()))? {
            return Ok(SecretRotation::UnknownClient);
        }
        Ok(SecretRotation::Rotated(secret))
    })
}
