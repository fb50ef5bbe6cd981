//! The `sessions` table: every access token belongs to one session.
use diesel::prelude::*;

use super::schema::sessions;
use super::{DbConnection, StoreError};

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
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)?;
    Ok(())
}
