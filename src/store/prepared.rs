//! Statements of the token paths that diesel keeps prepared. Diesel prepares every `UPDATE`
//! anew (its `UpdateStatement` is never cached), and finds the `INSERT` of a struct with
//! optional columns in its statement cache by the SQL text, which it builds again at every call
//! (every identifier quoted into a new string). A type here has a static query id: its
//! statement is prepared once per connection and found by type, and only its bind parameters
//! are collected at each call. Under a refresh load the `UPDATE` that consumes a token was
//! prepared 4 % of the server's CPU, and building the SQL of the two inserts 6 %.
use diesel::query_builder::{AstPass, QueryFragment, QueryId};

use super::DbConnection;

/// The backend of [`DbConnection`].
pub(super) type Db = <DbConnection as diesel::Connection>::Backend;

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

        impl diesel::query_builder::QueryFragment<$crate::store::prepared::Db> for $name<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, $crate::store::prepared::Db>,
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
