//! `cargo bench --bench store`: the use cases alone against the store, no HTTP, one call at a
//! time (criterion). The refresh transaction with rotation on is the database bound of the
//! HTTP `refresh_rotate` figure: on SQLite every refresh takes the one write lock, so no number
//! of connections refreshes faster than one transaction after another. Rotation off,
//! client_credentials, introspection and Wazo token validation are measured the same way, to
//! tell what the HTTP figures add to the store's own cost.
//!
//! SQLite (a temp file) always; PostgreSQL too when `TESSERA_TEST_POSTGRES_URL` is set (a
//! database created for the run and dropped after it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use diesel::{Connection, PgConnection, RunQueryDsl};
use tessera::app::open_store;
use tessera::clock::SystemClock;
use tessera::config::Settings;
use tessera::crypto::derive::ServerSecret;
use tessera::crypto::{password, token};
use tessera::domain::{Client, GrantType, Secret, User};
use tessera::oauth::ClientCredentials;
use tessera::oauth::Service;
use tessera::oauth::introspection::IntrospectRequest;
use tessera::oauth::login::{LoginCredentials, LoginRequest};
use tessera::oauth::service::{Caller, GrantRequest, JwtOptions, TokenRequest, WazoOptions};
use tessera::policy::Policies;
use tessera::store::{clients, users};

/// A service on a fresh store with a user and three clients: `bench-rotate` (rotation on),
/// `bench-static` (rotation off) and `bench-cc` (client_credentials).
struct Fixture {
    label: &'static str,
    service: Service,
    secret: String,
    _database: Database,
}

/// The store of one run; a PostgreSQL database is dropped with it.
struct Database {
    dir: tempfile::TempDir,
    url: String,
    created: Option<(String, String)>,
}

impl Database {
    fn sqlite() -> Database {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
        Database {
            dir,
            url,
            created: None,
        }
    }

    fn postgres(server: &str) -> Database {
        let name = format!("tessera_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(server)
            .unwrap_or_else(|e| panic!("PostgreSQL at TESSERA_TEST_POSTGRES_URL: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create the benchmark database");
        let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
        Database {
            dir: tempfile::tempdir().expect("temp dir"),
            url: format!("{base}/{name}"),
            created: Some((server.to_owned(), name)),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.created {
            if let Ok(mut conn) = PgConnection::establish(server) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

const PASSWORD: &str = "bench-password";

impl Fixture {
    fn new(label: &'static str, database: Database) -> Fixture {
        let file = database.dir.path().join("tessera.toml");
        std::fs::write(
            &file,
            "[policy.clients.\"bench-rotate\"]\nrotate_refresh_tokens = true\n\
             [policy.clients.\"bench-static\"]\nrotate_refresh_tokens = false\n",
        )
        .expect("write the configuration");
        let env = [
            ("TESSERA_DATABASE__URL".to_owned(), database.url.clone()),
            (
                "TESSERA_SERVER__DATA_DIR".to_owned(),
                database.dir.path().join("data").display().to_string(),
            ),
        ];
        let settings = Settings::load_with_env(Some(&file), env).expect("settings");
        let store = open_store(&settings).expect("open the store");
        let service = Service::new(
            store,
            Arc::new(SystemClock),
            Policies::from(&settings.policy),
            ServerSecret::generate(),
            WazoOptions {
                max_user_concurrent_sessions: i64::MAX,
                ..WazoOptions::default()
            },
            JwtOptions {
                key_file: database.dir.path().join("jwt.pem"),
                issuer: "http://127.0.0.1".into(),
                audience: "http://127.0.0.1".into(),
            },
        );
        let secret = token::new_client_secret().expose().to_owned();
        {
            let mut conn = service.store().conn().expect("connection");
            for id in ["bench-rotate", "bench-static", "bench-cc"] {
                clients::insert(
                    &mut conn,
                    &Client {
                        id: id.into(),
                        secret_hash: Some(token::digest(&secret)),
                        grant_types: GrantType::ALL.to_vec(),
                        scopes: vec!["#".into()],
                        default_scopes: Vec::new(),
                        created_at: service.now(),
                    },
                )
                .expect("insert a client");
            }
            users::insert(
                &mut conn,
                &User {
                    id: uuid::Uuid::new_v4().to_string(),
                    username: "admin".into(),
                    email: None,
                    email_confirmed: false,
                    password_hash: Some(password::hash_password(PASSWORD).expect("hash")),
                    enabled: true,
                    acl: vec!["#".into()],
                    tenant_uuid: uuid::Uuid::new_v4().to_string(),
                    purpose: "user".into(),
                    created_at: service.now(),
                },
            )
            .expect("insert the user");
        }
        Fixture {
            label,
            service,
            secret,
            _database: database,
        }
    }

    fn client(&self, id: &str) -> ClientCredentials {
        ClientCredentials::Basic {
            id: id.into(),
            secret: Secret::new(self.secret.clone()),
        }
    }

    fn exchange(&self, client: &str, grant: GrantRequest) -> tessera::oauth::grants::IssuedTokens {
        self.service
            .exchange(TokenRequest {
                client: self.client(client),
                grant,
            })
            .expect("exchange")
    }

    /// A password grant for admin through `client` (one argon2 verification, outside the
    /// measurement).
    fn password_grant(&self, client: &str) -> tessera::oauth::grants::IssuedTokens {
        self.exchange(
            client,
            GrantRequest::Password {
                username: "admin".into(),
                password: Secret::new(PASSWORD),
                scope: None,
            },
        )
    }
}

fn fixtures() -> Vec<Fixture> {
    let mut out = vec![Fixture::new("sqlite", Database::sqlite())];
    match std::env::var("TESSERA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => out.push(Fixture::new("postgres", Database::postgres(&url))),
        _ => eprintln!("TESSERA_TEST_POSTGRES_URL not set: SQLite only"),
    }
    out
}

fn store(c: &mut Criterion) {
    for f in fixtures() {
        let mut group = c.benchmark_group(format!("store/{}", f.label));

        // Rotation on: each refresh consumes the token and mints its successor, which the
        // next iteration presents.
        let mut refresh = f
            .password_grant("bench-rotate")
            .refresh_token
            .expect("refresh");
        group.bench_function("refresh_rotate", |b| {
            b.iter(|| {
                let issued = f.exchange(
                    "bench-rotate",
                    GrantRequest::RefreshToken {
                        refresh_token: refresh.clone(),
                        scope: None,
                    },
                );
                refresh = issued.refresh_token.expect("a rotated refresh token");
            });
        });

        let fixed = f
            .password_grant("bench-static")
            .refresh_token
            .expect("refresh");
        group.bench_function("refresh_static", |b| {
            b.iter(|| {
                f.exchange(
                    "bench-static",
                    GrantRequest::RefreshToken {
                        refresh_token: fixed.clone(),
                        scope: None,
                    },
                )
            });
        });

        group.bench_function("client_credentials", |b| {
            b.iter(|| f.exchange("bench-cc", GrantRequest::ClientCredentials { scope: None }));
        });

        let access = f.password_grant("bench-cc").access_token;
        group.bench_function("introspect", |b| {
            b.iter(|| {
                let found = f
                    .service
                    .introspect(IntrospectRequest {
                        caller: Caller::Client(f.client("bench-cc")),
                        token: access.clone(),
                        hint: None,
                    })
                    .expect("introspect");
                assert!(found.is_some(), "the token is active");
            });
        });

        let wazo = f
            .service
            .login(LoginRequest {
                credentials: LoginCredentials::Password {
                    login: "admin".into(),
                    password: Secret::new(PASSWORD),
                },
                expiration: None,
                offline_client_id: None,
                mobile: false,
                user_agent: String::new(),
                remote_addr: "127.0.0.1".into(),
            })
            .expect("Wazo login")
            .token
            .token;
        group.bench_function("wazo_validate", |b| {
            b.iter(|| f.service.validate(&wazo, None, None).expect("valid token"));
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = store
}
criterion_main!(benches);
