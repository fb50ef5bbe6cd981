//! The `clients` table (the *registrar*): ids, secret digests, grants and scopes.
use diesel::prelude::*;

use super::schema::clients;
use super::{DbConnection, StoreError, list_from_json, list_to_json};
use crate::domain::{Client, GrantType};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
struct ClientRow {
    id: String,
    secret_hash: Option<String>,
    grant_types: String,
    scopes: String,
    default_scopes: String,
    created_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        let grant_types = list_from_json(&r.grant_types)?
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("client {}: {e}", r.id)))?;
        Ok(Client {
            id: r.id,
            secret_hash: r.secret_hash,
            grant_types,
            scopes: list_from_json(&r.scopes)?,
            default_scopes: list_from_json(&r.default_scopes)?,
            created_at: r.created_at,
        })
    }
}

pub fn insert(conn: &mut DbConnection, client: &Client) -> Result<(), StoreError> {
    let grants: Vec<String> = client
        .grant_types
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    let row = ClientRow {
        id: client.id.clone(),
        secret_hash: client.secret_hash.clone(),
        grant_types: list_to_json(&grants),
        scopes: list_to_json(&client.scopes),
        default_scopes: list_to_json(&client.default_scopes),
        created_at: client.created_at,
    };
    diesel::insert_into(clients::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Client>, StoreError> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .get_result(conn)
        .optional()?
        .map(Client::try_from)
        .transpose()
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Client>, StoreError> {
    clients::table
        .order(clients::id)
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(clients::table.count().get_result(conn)?)
}

/// Deletes a client and revokes every token issued to it, so that re-registering the same id
/// cannot revive them. Returns false if there was no such client. Run it in a transaction.
pub fn delete(conn: &mut DbConnection, id: &str, now: i64) -> Result<bool, StoreError> {
    use super::schema::{access_tokens, refresh_tokens};
    diesel::update(access_tokens::table.filter(access_tokens::client_id.eq(id)))
        .filter(access_tokens::revoked_at.is_null())
        .set(access_tokens::revoked_at.eq(now))
        .execute(conn)?;
    diesel::update(refresh_tokens::table.filter(refresh_tokens::client_id.eq(id)))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)?;
    Ok(diesel::delete(clients::table.find(id)).execute(conn)? == 1)
}
