//! The `users` table. Logins are unique case-insensitively (`username_key` is the lower-cased
//! username, as wazo-auth compares them).
use diesel::prelude::*;

use super::schema::users;
use super::{DbConnection, StoreError, list_from_json, list_to_json};
use crate::domain::User;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    username: String,
    username_key: String,
    email: Option<String>,
    email_confirmed: bool,
    password_hash: Option<String>,
    enabled: bool,
    acl: String,
    tenant_uuid: String,
    purpose: String,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id,
            username: r.username,
            email: r.email,
            email_confirmed: r.email_confirmed,
            password_hash: r.password_hash,
            enabled: r.enabled,
            acl: list_from_json(&r.acl)?,
            tenant_uuid: r.tenant_uuid,
            purpose: r.purpose,
            created_at: r.created_at,
        })
    }
}

/// The case-insensitive key of a login.
pub fn login_key(login: &str) -> String {
    login.to_lowercase()
}

pub fn insert(conn: &mut DbConnection, user: &User) -> Result<(), StoreError> {
    let row = UserRow {
        id: user.id.clone(),
        username: user.username.clone(),
        username_key: login_key(&user.username),
        email: user.email.clone(),
        email_confirmed: user.email_confirmed,
        password_hash: user.password_hash.clone(),
        enabled: user.enabled,
        acl: list_to_json(&user.acl),
        tenant_uuid: user.tenant_uuid.clone(),
        purpose: user.purpose.clone(),
        created_at: user.created_at,
    };
    diesel::insert_into(users::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<User>, StoreError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// Finds a user by login (case-insensitive username).
pub fn find_by_login(conn: &mut DbConnection, login: &str) -> Result<Option<User>, StoreError> {
    users::table
        .filter(users::username_key.eq(login_key(login)))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);

/// Finds an enabled or disabled user by login: the username case-insensitively, else a
/// confirmed email address case-insensitively (wazo-auth's rule).
pub fn find_by_login_or_email(
    conn: &mut DbConnection,
    login: &str,
) -> Result<Option<User>, StoreError> {
    if let Some(user) = find_by_login(conn, login)? {
        return Ok(Some(user));
    }
    users::table
        .filter(users::email_confirmed.eq(true))
        .filter(lower(users::email).eq(login_key(login)))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<User>, StoreError> {
    users::table
        .order(users::username_key)
        .select(UserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(User::try_from)
        .collect()
}

pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(users::table.count().get_result(conn)?)
}

/// Sets the password hash; false if no such user.
pub fn set_password(conn: &mut DbConnection, id: &str, hash: &str) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)?;
    Ok(n == 1)
}

/// Rewrites a user's login, email, ACL, tenant and purpose; false if no such user.
pub fn update(conn: &mut DbConnection, user: &User) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(&user.id))
        .set((
            users::username.eq(&user.username),
            users::username_key.eq(login_key(&user.username)),
            users::email.eq(&user.email),
            users::email_confirmed.eq(user.email_confirmed),
            users::acl.eq(list_to_json(&user.acl)),
            users::tenant_uuid.eq(&user.tenant_uuid),
            users::purpose.eq(&user.purpose),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Enables or disables a user; false if no such user.
pub fn set_enabled(conn: &mut DbConnection, id: &str, enabled: bool) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set(users::enabled.eq(enabled))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a user; its sessions and tokens go with it (ON DELETE CASCADE).
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? == 1)
}
