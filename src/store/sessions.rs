//! The `sessions` table: every access token belongs to one session. A session is *live* while
//! it holds an access token that is neither revoked nor expired; deleting a session deletes its
//! access tokens (ON DELETE CASCADE).
use diesel::dsl::exists;
use diesel::prelude::*;

use super::prepared::prepared_insert;
use super::schema::{access_tokens, sessions};
use super::{DbBackend, DbConnection, Listing, Page, StoreError};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub tenant_uuid: Option<String>,
    pub mobile: bool,
    pub user_agent: String,
    pub remote_addr: String,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConnection, session: &SessionRecord) -> Result<(), StoreError> {
    InsertRow(session).execute(conn)?;
    Ok(())
}

prepared_insert!(InsertRow for SessionRecord, sessions, [
    id, user_id, client_id, tenant_uuid, mobile, user_agent, remote_addr, created_at,
]);

type Boxed = sessions::BoxedQuery<'static, DbBackend>;

/// Whose sessions a listing or deletion covers.
#[derive(Debug, Clone)]
pub enum Scope {
    User(String),
    Tenants(Vec<String>),
}

fn live(now: i64) -> Boxed {
    sessions::table.into_boxed().filter(exists(
        access_tokens::table
            .filter(access_tokens::session_id.eq(sessions::id))
            .filter(access_tokens::revoked_at.is_null())
            .filter(access_tokens::expires_at.ge(now)),
    ))
}

fn scoped(query: Boxed, scope: &Scope) -> Boxed {
    match scope {
        Scope::User(id) => query.filter(sessions::user_id.eq(id.clone())),
        Scope::Tenants(tenants) => query.filter(sessions::tenant_uuid.eq_any(tenants.clone())),
    }
}

/// How many live sessions a user holds.
pub fn count_live(conn: &mut DbConnection, user_id: &str, now: i64) -> Result<i64, StoreError> {
    Ok(scoped(live(now), &Scope::User(user_id.to_owned()))
        .count()
        .get_result(conn)?)
}

/// One page of live sessions, ordered by `mobile` then id.
pub fn list(
    conn: &mut DbConnection,
    scope: &Scope,
    page: Page,
    now: i64,
) -> Result<Listing<SessionRecord>, StoreError> {
    let total: i64 = scoped(live(now), scope).count().get_result(conn)?;
    let mut query = scoped(live(now), scope);
    query = if page.descending {
        query.order((
            sessions::mobile.desc(),
            sessions::created_at.desc(),
            sessions::id.desc(),
        ))
    } else {
        query.order((
            sessions::mobile.asc(),
            sessions::created_at.asc(),
            sessions::id.asc(),
        ))
    };
    query = page.apply(query);
    let items = query.select(SessionRecord::as_select()).load(conn)?;
    Ok(Listing {
        total,
        filtered: total,
        items,
    })
}

/// Deletes a session (and its access tokens) if it is within `scope`; returns whether it did.
pub fn delete(conn: &mut DbConnection, id: &str, scope: &Scope) -> Result<bool, StoreError> {
    let matching = scoped(sessions::table.into_boxed(), scope)
        .filter(sessions::id.eq(id.to_owned()))
        .select(sessions::id);
    let ids: Vec<String> = matching.load(conn)?;
    if ids.is_empty() {
        return Ok(false);
    }
    Ok(diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(conn)? > 0)
}

/// Deletes one session whatever its owner; returns whether it existed.
pub fn delete_by_id(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(sessions::table.find(id)).execute(conn)? == 1)
}

/// Deletes the sessions holding access tokens of the given refresh-token families; returns how
/// many sessions went.
pub fn delete_of_families(
    conn: &mut DbConnection,
    family_ids: &[String],
) -> Result<usize, StoreError> {
    let ids: Vec<String> = access_tokens::table
        .filter(access_tokens::family_id.eq_any(family_ids))
        .select(access_tokens::session_id)
        .distinct()
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(conn)?)
}

/// Deletes every session of a user (password change, disabling); returns how many went.
pub fn delete_of_user(conn: &mut DbConnection, user_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}
