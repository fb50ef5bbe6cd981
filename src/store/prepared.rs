//! Statements of the token paths that diesel keeps prepared. Diesel prepares every `UPDATE`
//! anew (its `UpdateStatement` is never cached), and finds the `INSERT` of a struct with
//! optional columns in its statement cache by the SQL text, which it builds again at every call
//! (every identifier quoted into a new string). A type here has a static query id: its
//! statement is prepared once per connection and found by type, and only its bind parameters
//! are collected at each call. Under a refresh load the `UPDATE` that consumes a token was
//! prepared 4 % of the server's CPU, and building the SQL of the two inserts 6 %.
use diesel::query_builder::{AstPass, QueryFragment, QueryId};

use super::{DbBackend as Db, DbConnection};

/// `$name<'a>(&'a $row)`: the `INSERT` of a row into `$table`, column by column, each bound
/// with the SQL type the schema gives it. Every column of the table must be listed: one left
/// out would take its default.
macro_rules! prepared_insert {
    ($name:ident for $row:ty, $table:ident, [$first:ident $(, $col:ident)* $(,)?]) => {
        struct $name<'a>(&'a $row);

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<$crate::store::DbBackend> for $name<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, $crate::store::DbBackend>,
            ) -> diesel::QueryResult<()> {
                out.push_sql(concat!(
                    "INSERT INTO ",
                    stringify!($table),
                    " (",
                    stringify!($first),
                    $(", ", stringify!($col),)*
                    ") VALUES ("
                ));
                out.push_bind_param::<<$table::$first as diesel::Expression>::SqlType, _>(
                    &self.0.$first,
                )?;
                $(
                    out.push_sql(", ");
                    out.push_bind_param::<<$table::$col as diesel::Expression>::SqlType, _>(
                        &self.0.$col,
                    )?;
                )*
                out.push_sql(")");
                Ok(())
            }
        }

        impl diesel::RunQueryDsl<$crate::store::DbConnection> for $name<'_> {}
    };
}
pub(super) use prepared_insert;

/// `UPDATE refresh_tokens … WHERE id = ? AND consumed_at IS NULL AND revoked_at IS NULL`,
/// recording a use (`last_used_at`) and, with `CONSUME`, consuming the token (`consumed_at`,
/// and the sealed answer of an exact retry).
pub(super) struct UseRefreshToken<'a, const CONSUME: bool> {
    pub id: &'a str,
    pub now: i64,
    pub retry_answer: Option<&'a str>,
}

impl<const CONSUME: bool> QueryId for UseRefreshToken<'_, CONSUME> {
    type QueryId = UseRefreshToken<'static, CONSUME>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const CONSUME: bool> QueryFragment<Db> for UseRefreshToken<'_, CONSUME> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> diesel::QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text};
        out.push_sql("UPDATE refresh_tokens SET last_used_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        if CONSUME {
            out.push_sql(", consumed_at = ");
            out.push_bind_param::<BigInt, _>(&self.now)?;
            out.push_sql(", retry_answer = ");
            out.push_bind_param::<Nullable<Text>, _>(&self.retry_answer)?;
        }
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(" AND consumed_at IS NULL AND revoked_at IS NULL");
        Ok(())
    }
}

impl<const CONSUME: bool> diesel::RunQueryDsl<DbConnection> for UseRefreshToken<'_, CONSUME> {}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failing test stops at the unwrap")]
mod tests {
    use std::time::Duration;

    use crate::domain::{Metadata, User};
    use crate::store::connection::PoolOptions;
    use crate::store::refresh_tokens::{self, RefreshTokenRecord};
    use crate::store::sessions::{self, SessionRecord};
    use crate::store::tokens::{self, AccessTokenRecord};
    use crate::store::{Store, migrations, users};

    /// A column left out of a prepared insert would take its default: every field here is set
    /// to something else, and comes back as written.
    #[test]
    fn the_prepared_inserts_write_every_column() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let options = PoolOptions {
            size: 1,
            timeout: Duration::from_secs(5),
            busy_timeout_ms: 5000,
        };
        let store = Store::open(&url, &options).unwrap();
        let mut conn = store.conn().unwrap();
        migrations::run(&mut conn).unwrap();
        let user = User {
            id: "u1".into(),
            username: "alice".into(),
            email: None,
            email_confirmed: false,
            password_hash: None,
            enabled: true,
            acl: vec![],
            tenant_uuid: "t1".into(),
            purpose: "user".into(),
            created_at: 1,
        };
        users::insert(&mut conn, &user).unwrap();
        let metadata: Metadata = serde_json::from_str(r#"{"k":"v"}"#).unwrap();
        let session = SessionRecord {
            id: "s1".into(),
            user_id: Some("u1".into()),
            client_id: Some("c1".into()),
            tenant_uuid: Some("t1".into()),
            mobile: true,
            user_agent: "ua".into(),
            remote_addr: "10.0.0.1".into(),
            created_at: 2,
        };
        sessions::insert(&mut conn, &session).unwrap();
        let refresh = RefreshTokenRecord {
            id: "r1".into(),
            hash: "h1".into(),
            family_id: "f1".into(),
            parent_id: Some("r0".into()),
            generation: 3,
            client_id: "c1".into(),
            user_id: Some("u1".into()),
            session_id: Some("s1".into()),
            dialect: "oauth2".into(),
            scopes: vec!["a".into()],
            issued_at: 4,
            family_issued_at: 5,
            expires_at: Some(6),
            last_used_at: Some(7),
            consumed_at: Some(8),
            revoked_at: Some(9),
            mobile: true,
            metadata: metadata.clone(),
            retry_answer: Some("sealed".into()),
            retry_count: 10,
        };
        refresh_tokens::insert(&mut conn, &refresh).unwrap();
        let access = AccessTokenRecord {
            hash: "h2".into(),
            session_id: "s1".into(),
            user_id: Some("u1".into()),
            client_id: Some("c1".into()),
            family_id: Some("f1".into()),
            dialect: "oauth2".into(),
            scopes: vec!["a".into()],
            issued_at: 11,
            expires_at: 12,
            revoked_at: Some(13),
            metadata,
        };
        tokens::insert(&mut conn, &access).unwrap();
        assert_eq!(
            refresh_tokens::find_by_hash(&mut conn, "h1").unwrap(),
            Some(refresh)
        );
        let (stored, stored_session) = tokens::find_with_session(&mut conn, "h2").unwrap().unwrap();
        assert_eq!((stored, stored_session), (access, session));
    }
}
