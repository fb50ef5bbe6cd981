//! The `refresh_tokens` table. Each row records its family, parent and generation, its issue
//! time and last use, and whether it was consumed (rotated out) or revoked. Rotation consumes a
//! row with a conditional update, so exactly one of several concurrent refreshes wins.
use diesel::prelude::*;

use super::prepared::{UseRefreshToken, prepared_insert};
use super::schema::{refresh_tokens, users};
use super::{
    DbBackend, DbConnection, Listing, Page, StoreError, list_from_json, list_to_json,
    object_from_json, object_to_json,
};
use crate::domain::Metadata;
use crate::policy::RefreshTimes;

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
    /// Issued to a mobile session (`Wazo-Session-Type: mobile`).
    pub mobile: bool,
    /// Persistent metadata merged under every access token minted from it.
    pub metadata: Metadata,
    /// The sealed answer of the refresh that consumed it (exact retry), base64url.
    pub retry_answer: Option<String>,
    /// Retries served from `retry_answer`.
    pub retry_count: i64,
}

impl RefreshTokenRecord {
    /// The times the policy judges it by.
    pub fn times(&self) -> RefreshTimes {
        RefreshTimes {
            issued_at: self.issued_at,
            family_issued_at: self.family_issued_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
        }
    }
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
    mobile: bool,
    metadata: String,
    retry_answer: Option<String>,
    retry_count: i64,
}

impl TryFrom<Row> for RefreshTokenRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(RefreshTokenRecord {
            scopes: list_from_json(&r.scopes)?,
            metadata: object_from_json(&r.metadata)?,
            mobile: r.mobile,
            retry_answer: r.retry_answer,
            retry_count: r.retry_count,
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
        mobile: t.mobile,
        metadata: object_to_json(&t.metadata),
        retry_answer: t.retry_answer.clone(),
        retry_count: t.retry_count,
    };
    InsertRow(&row).execute(conn)?;
    Ok(())
}

prepared_insert!(InsertRow for Row, refresh_tokens, [
    id, hash, family_id, parent_id, generation, client_id, user_id, session_id, dialect, scopes,
    issued_at, family_issued_at, expires_at, last_used_at, consumed_at, revoked_at, mobile,
    metadata, retry_answer, retry_count,
]);

/// One indexed lookup by digest.
pub fn find_by_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    refresh_tokens::table
        .filter(refresh_tokens::hash.eq(hash))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?
        .map(RefreshTokenRecord::try_from)
        .transpose()
}

/// Marks a live token consumed, with the sealed answer of the refresh that consumes it (for an
/// exact retry) if any; true only for the one caller whose update found it live.
pub fn consume(
    conn: &mut DbConnection,
    id: &str,
    now: i64,
    retry_answer: Option<&str>,
) -> Result<bool, StoreError> {
    let n = UseRefreshToken::<true> {
        id,
        now,
        retry_answer,
    }
    .execute(conn)?;
    Ok(n == 1)
}

/// Records a use of a token that is not rotated; false if it was revoked meanwhile.
pub fn touch(conn: &mut DbConnection, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = UseRefreshToken::<false> {
        id,
        now,
        retry_answer: None,
    }
    .execute(conn)?;
    Ok(n == 1)
}

/// The token that rotation minted from `parent`, if any. Found through the family's index
/// (a family is a short chain): `parent_id` has no index of its own, which would cost a write
/// on every rotation.
pub fn find_child(
    conn: &mut DbConnection,
    parent: &RefreshTokenRecord,
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(&parent.family_id))
        .filter(refresh_tokens::parent_id.eq(&parent.id))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?
        .map(RefreshTokenRecord::try_from)
        .transpose()
}

/// Stores the sealed answer of the refresh that consumed `id`.
pub fn set_retry_answer(conn: &mut DbConnection, id: &str, sealed: &str) -> Result<(), StoreError> {
    diesel::update(refresh_tokens::table.find(id))
        .set(refresh_tokens::retry_answer.eq(sealed))
        .execute(conn)?;
    Ok(())
}

/// Counts one retry served from `id`'s answer; false once `max` retries were served.
pub fn claim_retry(conn: &mut DbConnection, id: &str, max: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::retry_answer.is_not_null())
            .filter(refresh_tokens::retry_count.lt(max)),
    )
    .set(refresh_tokens::retry_count.eq(refresh_tokens::retry_count + 1))
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

/// The live (neither consumed nor revoked) refresh token of `dialect` for a user and client.
pub fn find_live_for(
    conn: &mut DbConnection,
    dialect: &str,
    user_id: &str,
    client_id: &str,
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::client_id.eq(client_id))
        .filter(refresh_tokens::dialect.eq(dialect))
        .filter(refresh_tokens::consumed_at.is_null())
        .filter(refresh_tokens::revoked_at.is_null())
        .select(Row::as_select())
        .get_result(conn)
        .optional()?
        .map(RefreshTokenRecord::try_from)
        .transpose()
}

/// The live mobile refresh tokens of `dialect` held by a user, any client.
pub fn live_mobile_of(
    conn: &mut DbConnection,
    dialect: &str,
    user_id: &str,
) -> Result<Vec<RefreshTokenRecord>, StoreError> {
    refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::dialect.eq(dialect))
        .filter(refresh_tokens::mobile.eq(true))
        .filter(refresh_tokens::consumed_at.is_null())
        .filter(refresh_tokens::revoked_at.is_null())
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(RefreshTokenRecord::try_from)
        .collect()
}

/// Deletes every refresh token of the given families; returns how many rows went.
pub fn delete_families(
    conn: &mut DbConnection,
    family_ids: &[String],
) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::family_id.eq_any(family_ids)))
            .execute(conn)?,
    )
}

/// Whose refresh tokens a listing covers.
#[derive(Debug, Clone)]
pub enum Owner {
    User(String),
    /// Users of any of these tenants.
    Tenants(Vec<String>),
}

/// The strict filters and search of a refresh-token listing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub client_id: Option<String>,
    pub created_at: Option<i64>,
    pub mobile: Option<bool>,
    /// Words matched, in order, case-insensitively inside `client_id`.
    pub search: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    CreatedAt,
    ClientId,
    Mobile,
}

type Boxed = refresh_tokens::BoxedQuery<'static, DbBackend>;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Live refresh tokens of `dialect` belonging to `owner`, not expired at `now`.
fn in_scope(dialect: &str, owner: &Owner, now: i64) -> Boxed {
    let query = refresh_tokens::table
        .into_boxed()
        .filter(refresh_tokens::dialect.eq(dialect.to_owned()))
        .filter(refresh_tokens::consumed_at.is_null())
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(
            refresh_tokens::expires_at
                .is_null()
                .or(refresh_tokens::expires_at.ge(now)),
        );
    match owner {
        Owner::User(id) => query.filter(refresh_tokens::user_id.eq(id.clone())),
        Owner::Tenants(tenants) => query.filter(
            refresh_tokens::user_id.eq_any(
                users::table
                    .filter(users::tenant_uuid.eq_any(tenants.clone()))
                    .select(users::id.nullable()),
            ),
        ),
    }
}

fn filtered(query: Boxed, filter: &Filter) -> Boxed {
    let mut query = query;
    if let Some(client_id) = &filter.client_id {
        query = query.filter(refresh_tokens::client_id.eq(client_id.clone()));
    }
    if let Some(created_at) = filter.created_at {
        query = query.filter(refresh_tokens::family_issued_at.eq(created_at));
    }
    if let Some(mobile) = filter.mobile {
        query = query.filter(refresh_tokens::mobile.eq(mobile));
    }
    if !filter.search.is_empty() {
        let escaped: Vec<String> = filter
            .search
            .iter()
            .map(|w| {
                w.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            })
            .collect();
        let pattern = format!("%{}%", escaped.join("%"));
        query = query.filter(lower(refresh_tokens::client_id).like(pattern).escape('\\'));
    }
    query
}

/// One page of refresh tokens with the total in scope and the count after filtering. Each
/// item comes with its user's tenant.
pub fn list(
    conn: &mut DbConnection,
    dialect: &str,
    owner: &Owner,
    filter: &Filter,
    order: Order,
    page: Page,
    now: i64,
) -> Result<Listing<(RefreshTokenRecord, Option<String>)>, StoreError> {
    let total = in_scope(dialect, owner, now).count().get_result(conn)?;
    let filtered_count = filtered(in_scope(dialect, owner, now), filter)
        .count()
        .get_result(conn)?;
    let mut query = filtered(in_scope(dialect, owner, now), filter);
    query = match (order, page.descending) {
        (Order::CreatedAt, false) => query.order((
            refresh_tokens::family_issued_at.asc(),
            refresh_tokens::id.asc(),
        )),
        (Order::CreatedAt, true) => query.order((
            refresh_tokens::family_issued_at.desc(),
            refresh_tokens::id.desc(),
        )),
        (Order::ClientId, false) => {
            query.order((refresh_tokens::client_id.asc(), refresh_tokens::id.asc()))
        }
        (Order::ClientId, true) => {
            query.order((refresh_tokens::client_id.desc(), refresh_tokens::id.desc()))
        }
        (Order::Mobile, false) => {
            query.order((refresh_tokens::mobile.asc(), refresh_tokens::id.asc()))
        }
        (Order::Mobile, true) => {
            query.order((refresh_tokens::mobile.desc(), refresh_tokens::id.desc()))
        }
    };
    query = page.apply(query);
    let rows: Vec<RefreshTokenRecord> = query
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(RefreshTokenRecord::try_from)
        .collect::<Result<_, _>>()?;
    let user_ids: Vec<String> = rows.iter().filter_map(|r| r.user_id.clone()).collect();
    let tenants: Vec<(String, String)> = users::table
        .filter(users::id.eq_any(&user_ids))
        .select((users::id, users::tenant_uuid))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|r| {
            let tenant = tenants
                .iter()
                .find(|(id, _)| Some(id) == r.user_id.as_ref())
                .map(|(_, t)| t.clone());
            (r, tenant)
        })
        .collect();
    Ok(Listing {
        total,
        filtered: filtered_count,
        items,
    })
}
