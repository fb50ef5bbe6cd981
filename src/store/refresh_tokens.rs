//! The `refresh_tokens` table. Each row records its family, parent and generation, its issue
//! time and last use, and whether it was consumed (rotated out) or revoked. Rotation consumes a
//! row with a conditional update, so exactly one of several concurrent refreshes wins.
use diesel::prelude::*;

use super::schema::refresh_tokens;
use super::{DbConnection, StoreError, list_from_json, list_to_json};

/// A refresh token as stored; the token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: String,
    pub hash: String,
    pub family_id: String,
    pub parent_id: Option<String>,
    pub generation: i64,
    pub client_id: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub dialect: String,
    pub scopes: Vec<String>,
    pub issued_at: i64,
    pub family_issued_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
struct Row {
    id: String,
    hash: String,
    family_id: String,
    parent_id: Option<String>,
    generation: i64,
    client_id: String,
    user_id: Option<String>,
    session_id: Option<String>,
    dialect: String,
    scopes: String,
    issued_at: i64,
    family_issued_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    consumed_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<Row> for RefreshTokenRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(RefreshTokenRecord {
            scopes: list_from_json(&r.scopes)?,
            id: r.id,
            hash: r.hash,
            family_id: r.family_id,
            parent_id: r.parent_id,
            generation: r.generation,
            client_id: r.client_id,
            user_id: r.user_id,
            session_id: r.session_id,
            dialect: r.dialect,
            issued_at: r.issued_at,
            family_issued_at: r.family_issued_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            consumed_at: r.consumed_at,
            revoked_at: r.revoked_at,
        })
    }
}

pub fn insert(conn: &mut DbConnection, t: &RefreshTokenRecord) -> Result<(), StoreError> {
    let row = Row {
        id: t.id.clone(),
        hash: t.hash.clone(),
        family_id: t.family_id.clone(),
        parent_id: t.parent_id.clone(),
        generation: t.generation,
        client_id: t.client_id.clone(),
        user_id: t.user_id.clone(),
        session_id: t.session_id.clone(),
        dialect: t.dialect.clone(),
        scopes: list_to_json(&t.scopes),
        issued_at: t.issued_at,
        family_issued_at: t.family_issued_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        consumed_at: t.consumed_at,
        revoked_at: t.revoked_at,
    };
    diesel::insert_into(refresh_tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// One indexed lookup by digest.
pub fn find_by_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    refresh_tokens::table
        .filter(refresh_tokens::hash.eq(hash))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(RefreshTokenRecord::try_from)
        .transpose()
}

/// Marks a live token consumed; true only for the one caller whose update found it live.
pub fn consume(conn: &mut DbConnection, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::consumed_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set((
        refresh_tokens::consumed_at.eq(now),
        refresh_tokens::last_used_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records a use of a token that is not rotated; false if it was revoked meanwhile.
pub fn touch(conn: &mut DbConnection, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::consumed_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::last_used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes every refresh token of a family; returns how many rows changed.
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?)
}
