//! The `access_tokens` table, keyed by the SHA-256 digest of the token (or of a JWT's `jti`).
use diesel::prelude::*;

use super::prepared::prepared_insert;
use super::schema::{access_tokens, sessions};
use super::sessions::SessionRecord;
use super::{
    DbConnection, StoreError, list_from_json, list_to_json, object_from_json, object_to_json,
};
use crate::domain::Metadata;

/// An access token as stored; the token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    pub hash: String,
    pub session_id: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub family_id: Option<String>,
    pub dialect: String,
    pub scopes: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// What the token says about its holder (wazo-auth `metadata`), fixed at issue.
    pub metadata: Metadata,
}

impl AccessTokenRecord {
    /// Not revoked and not past its expiry second.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now <= self.expires_at
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = access_tokens)]
struct Row {
    hash: String,
    session_id: String,
    user_id: Option<String>,
    client_id: Option<String>,
    family_id: Option<String>,
    dialect: String,
    scopes: String,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    metadata: String,
}

impl TryFrom<Row> for AccessTokenRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(AccessTokenRecord {
            scopes: list_from_json(&r.scopes)?,
            metadata: object_from_json(&r.metadata)?,
            hash: r.hash,
            session_id: r.session_id,
            user_id: r.user_id,
            client_id: r.client_id,
            family_id: r.family_id,
            dialect: r.dialect,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

pub fn insert(conn: &mut DbConnection, t: &AccessTokenRecord) -> Result<(), StoreError> {
    let row = Row {
        hash: t.hash.clone(),
        session_id: t.session_id.clone(),
        user_id: t.user_id.clone(),
        client_id: t.client_id.clone(),
        family_id: t.family_id.clone(),
        dialect: t.dialect.clone(),
        scopes: list_to_json(&t.scopes),
        issued_at: t.issued_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        metadata: object_to_json(&t.metadata),
    };
    InsertRow(&row).execute(conn)?;
    Ok(())
}

prepared_insert!(InsertRow for Row, access_tokens, [
    hash, session_id, user_id, client_id, family_id, dialect, scopes, issued_at, expires_at,
    revoked_at, metadata,
]);

/// One indexed lookup by digest.
pub fn find(conn: &mut DbConnection, hash: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
    access_tokens::table
        .find(hash)
        .select(Row::as_select())
        .get_result(conn)
        .optional()?
        .map(AccessTokenRecord::try_from)
        .transpose()
}

/// One indexed lookup by digest, joined with the token's session (its primary key).
pub fn find_with_session(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<(AccessTokenRecord, SessionRecord)>, StoreError> {
    let Some((token, session)) = access_tokens::table
        .inner_join(sessions::table)
        .filter(access_tokens::hash.eq(hash))
        .select((Row::as_select(), SessionRecord::as_select()))
        .get_result(conn)
        .optional()?
    else {
        return Ok(None);
    };
    Ok(Some((AccessTokenRecord::try_from(token)?, session)))
}

/// Revokes one access token; returns how many rows changed.
pub fn revoke(conn: &mut DbConnection, hash: &str, now: i64) -> Result<usize, StoreError> {
    Ok(diesel::update(
        access_tokens::table
            .find(hash)
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?)
}

/// Revokes every access token issued from a refresh-token family.
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        access_tokens::table
            .filter(access_tokens::family_id.eq(family_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?)
}
