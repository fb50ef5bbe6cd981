//! The queries of the administration commands (`tessera token …`, `tessera client
//! rotate-secret`): the tokens of a user or a client id, listed without their digests; the
//! refresh-token families they hold; bulk revocation of the access tokens they hold; a client's
//! new secret digest. No function here reads or returns a token digest.
use diesel::dsl::exists;
use diesel::prelude::*;

use super::schema::{access_tokens, clients, refresh_tokens};
use super::{DbBackend, DbConnection, StoreError};

/// Whose tokens: a user, a client id, or the tokens of both at once. Neither matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
}

impl TokenOwner {
    fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.client_id.is_none()
    }
}

/// An access token as listed: everything but its digest.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = access_tokens)]
pub struct AccessTokenSummary {
    pub session_id: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub family_id: Option<String>,
    pub dialect: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A refresh token as listed: everything but its digest and sealed retry answer.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenSummary {
    pub family_id: String,
    pub generation: i64,
    pub client_id: String,
    pub user_id: Option<String>,
    pub dialect: String,
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn access_of_owner(owner: &TokenOwner) -> access_tokens::BoxedQuery<'static, DbBackend> {
    let mut query = access_tokens::table.into_boxed();
    if let Some(user) = &owner.user_id {
        query = query.filter(access_tokens::user_id.eq(user.clone()));
    }
    if let Some(client) = &owner.client_id {
        query = query.filter(access_tokens::client_id.eq(client.clone()));
    }
    query
}

fn refresh_of_owner(owner: &TokenOwner) -> refresh_tokens::BoxedQuery<'static, DbBackend> {
    let mut query = refresh_tokens::table.into_boxed();
    if let Some(user) = &owner.user_id {
        query = query.filter(refresh_tokens::user_id.eq(user.clone()));
    }
    if let Some(client) = &owner.client_id {
        query = query.filter(refresh_tokens::client_id.eq(client.clone()));
    }
    query
}

/// The access tokens of `owner`, oldest first.
pub fn access_tokens_of(
    conn: &mut DbConnection,
    owner: &TokenOwner,
) -> Result<Vec<AccessTokenSummary>, StoreError> {
    if owner.is_empty() {
        return Ok(Vec::new());
    }
    Ok(access_of_owner(owner)
        .order((access_tokens::issued_at.asc(), access_tokens::hash.asc()))
        .select(AccessTokenSummary::as_select())
        .load(conn)?)
}

/// The refresh tokens of `owner`, by family (oldest first), then generation.
pub fn refresh_tokens_of(
    conn: &mut DbConnection,
    owner: &TokenOwner,
) -> Result<Vec<RefreshTokenSummary>, StoreError> {
    if owner.is_empty() {
        return Ok(Vec::new());
    }
    Ok(refresh_of_owner(owner)
        .order((
            refresh_tokens::family_issued_at.asc(),
            refresh_tokens::family_id.asc(),
            refresh_tokens::generation.asc(),
        ))
        .select(RefreshTokenSummary::as_select())
        .load(conn)?)
}

/// The refresh-token families of `owner` (every token of a family has one user and client).
pub fn families_of(conn: &mut DbConnection, owner: &TokenOwner) -> Result<Vec<String>, StoreError> {
    if owner.is_empty() {
        return Ok(Vec::new());
    }
    Ok(refresh_of_owner(owner)
        .select(refresh_tokens::family_id)
        .distinct()
        .order(refresh_tokens::family_id.asc())
        .load(conn)?)
}

/// Whether any refresh token of the family is stored.
pub fn family_exists(conn: &mut DbConnection, family_id: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(exists(
        refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)),
    ))
    .get_result(conn)?)
}

/// Whether a client id is registered or named by any stored token (Wazo client ids need no
/// registration).
pub fn client_id_known(conn: &mut DbConnection, client_id: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(
        exists(clients::table.filter(clients::id.eq(client_id)))
            .or(exists(
                refresh_tokens::table.filter(refresh_tokens::client_id.eq(client_id)),
            ))
            .or(exists(
                access_tokens::table.filter(access_tokens::client_id.eq(client_id)),
            )),
    )
    .get_result(conn)?)
}

/// Revokes every access token of `owner` not yet revoked; returns how many rows changed.
pub fn revoke_access_tokens_of(
    conn: &mut DbConnection,
    owner: &TokenOwner,
    now: i64,
) -> Result<usize, StoreError> {
    if owner.is_empty() {
        return Ok(0);
    }
    let mut query = diesel::update(access_tokens::table)
        .filter(access_tokens::revoked_at.is_null())
        .into_boxed();
    if let Some(user) = &owner.user_id {
        query = query.filter(access_tokens::user_id.eq(user.clone()));
    }
    if let Some(client) = &owner.client_id {
        query = query.filter(access_tokens::client_id.eq(client.clone()));
    }
    Ok(query.set(access_tokens::revoked_at.eq(now)).execute(conn)?)
}

/// Replaces a confidential client's secret digest; false if there is no such client or it is
/// public (no digest to replace).
pub fn set_client_secret(
    conn: &mut DbConnection,
    client_id: &str,
    secret_digest: &str,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        clients::table
            .find(client_id)
            .filter(clients::secret_hash.is_not_null()),
    )
    .set(clients::secret_hash.eq(secret_digest))
    .execute(conn)?;
    Ok(n == 1)
}
