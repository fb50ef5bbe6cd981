//! The `tenants` table: a tree of tenants by `parent_uuid`. A user sees its own tenant and the
//! tenants below it. A user's tenant need not be registered: an unregistered tenant is a root
//! without sub-tenants.
use diesel::prelude::*;

use super::schema::tenants;
use super::{DbConnection, StoreError};

/// Deepest tenant tree walked; deeper (or cyclic) chains stop there.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct TenantRecord {
    pub uuid: String,
    pub parent_uuid: Option<String>,
    pub name: String,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConnection, tenant: &TenantRecord) -> Result<(), StoreError> {
    diesel::insert_into(tenants::table)
        .values(tenant)
        .execute(conn)?;
    Ok(())
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<TenantRecord>, StoreError> {
    Ok(tenants::table
        .order(tenants::name)
        .select(TenantRecord::as_select())
        .load(conn)?)
}

/// Whether `tenant` is `ancestor` or lies below it.
pub fn is_within(
    conn: &mut DbConnection,
    tenant: &str,
    ancestor: &str,
) -> Result<bool, StoreError> {
    let mut current = tenant.to_owned();
    for _ in 0..MAX_DEPTH {
        if current == ancestor {
            return Ok(true);
        }
        let parent: Option<Option<String>> = tenants::table
            .find(&current)
            .select(tenants::parent_uuid)
            .get_result(conn)
            .optional()?;
        match parent.flatten() {
            Some(p) if p != current => current = p,
            _ => return Ok(false),
        }
    }
    Ok(false)
}

/// `root` and every tenant below it.
pub fn subtree(conn: &mut DbConnection, root: &str) -> Result<Vec<String>, StoreError> {
    let mut all = vec![root.to_owned()];
    let mut frontier = vec![root.to_owned()];
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let children: Vec<String> = tenants::table
            .filter(tenants::parent_uuid.eq_any(&frontier))
            .select(tenants::uuid)
            .load(conn)?;
        frontier = children.into_iter().filter(|c| !all.contains(c)).collect();
        all.extend(frontier.iter().cloned());
    }
    Ok(all)
}
