//! Refresh-token and session management for token holders with the right ACL
//! (wazo-contract §1.6, §1.7): list and delete a user's Wazo refresh tokens, list and delete
//! sessions, always within the tenant the caller acts in (`Principal::scoped_tenant`).
use crate::domain::{Metadata, User};
use crate::oauth::issuance::WAZO;
use crate::oauth::validation::Principal;
use crate::oauth::{Error, Service};
use crate::store::refresh_tokens::{Filter, Order, Owner};
use crate::store::sessions::{Scope, SessionRecord};
use crate::store::{
    DbConnection, Listing, Page, connection, refresh_tokens, sessions, tenants, users,
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
        connection::write(&mut conn, |conn| {
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
        connection::write(&mut conn, |conn| {
            sessions::delete(conn, session_id, &scope)?;
            Ok(())
        })
    }
}
