//! Check 6: the database holds no usable token or secret. Every row of every table is read
//! (SQLite: the raw database and WAL files; PostgreSQL: each row as JSON) and searched for
//! every token, refresh token, client secret and password that was handed out.
use diesel::{Connection, QueryableByName, RunQueryDsl};

use crate::helpers::{Db, TestApp, str_of};
use crate::on_both_backends;

on_both_backends!(no_handed_out_secret_rests_in_the_database);

#[derive(QueryableByName)]
struct RowText {
    #[diesel(sql_type = diesel::sql_types::Text)]
    row: String,
}

const TABLES: [&str; 5] = [
    "users",
    "clients",
    "sessions",
    "access_tokens",
    "refresh_tokens",
];

async fn no_handed_out_secret_rests_in_the_database(db: Db) {
    let app = TestApp::spawn(db.clone()).await;
    let client = app.add_full_client("app");
    app.add_user("frank", "a-password-nobody-guesses", &["#"]);
    let mut secrets = vec![
        client.secret.clone(),
        "a-password-nobody-guesses".to_owned(),
    ];
    let tokens = app
        .password_grant(&client, "frank", "a-password-nobody-guesses", None)
        .await;
    secrets.push(str_of(&tokens, "access_token").to_owned());
    secrets.push(str_of(&tokens, "refresh_token").to_owned());
    let resp = app.refresh(&client, str_of(&tokens, "refresh_token")).await;
    let refreshed: serde_json::Value = resp.json().await.unwrap();
    secrets.push(str_of(&refreshed, "access_token").to_owned());
    secrets.push(str_of(&refreshed, "refresh_token").to_owned());
    secrets.push(app.client_credentials_token(&client).await);

    let dump = match db {
        Db::Sqlite => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(app.db.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
            assert!(bytes.len() > 4096, "the database files were read");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Db::Postgres(_) => {
            let mut conn = diesel::PgConnection::establish(&app.db.url).unwrap();
            let mut all = String::new();
            for table in TABLES {
                let rows: Vec<RowText> =
                    diesel::sql_query(format!("SELECT row_to_json(t)::text AS row FROM {table} t"))
                        .load(&mut conn)
                        .unwrap();
                assert!(!rows.is_empty(), "{table} has rows");
                for r in rows {
                    all.push_str(&r.row);
                    all.push('\n');
                }
            }
            all
        }
    };
    // The digests are there (so the search would have found the clear values if stored).
    assert!(dump.contains(&tessera::crypto::token::digest(&client.secret)));
    for secret in &secrets {
        assert!(
            !dump.contains(secret.as_str()),
            "a handed-out secret rests in the database"
        );
    }
}
