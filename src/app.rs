//! Start-up: open the store, run migrations, create the first administrator on an empty
//! database, and serve HTTP, or HTTPS with `[server.tls]` (rustls: TLS 1.2 and 1.3 only,
//! RFC 9325). The same [`Application::build`] runs in production and in tests (bound to port 0,
//! with a manual clock).
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle, Service as _};
use actix_web::http::ConnectionType;
use actix_web::{App, HttpServer, web};
use uuid::Uuid;

mod tls;

pub use tls::tls_config;

use crate::clock::{Clock, Stopwatch};
use crate::config::Settings;
use crate::crypto::derive::ServerSecret;
use crate::crypto::{password, token};
use crate::domain::{Client, GrantType, Secret, User};
use crate::http::AppState;
use crate::http::access_log::AccessLog;
use crate::http::client_addr::TrustedProxies;
use crate::http::routes::{self, RoutePattern};
use crate::metrics::Metrics;
use crate::oauth::Service;
use crate::oauth::service::{JwtOptions, WazoOptions};
use crate::oauth::throttle::FailureLimits;
use crate::policy::Policies;
use crate::reload::{ConfigSource, Reloader, spawn_watcher};
use crate::store::connection::PoolOptions;
use crate::store::{Store, StoreError, cleanup, clients, connection, migrations, users};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    /// A `[server.tls]` file that cannot be used; `what` is "certificate" or "private key".
    #[error("cannot load TLS {what} {path}: {reason}")]
    Tls {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// Opens the store described by the settings and brings its schema up to date.
pub fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    let store = Store::open(
        &settings.database.url,
        &PoolOptions {
            size: settings.database.pool_size,
            timeout: Duration::from_secs(settings.database.pool_timeout),
            busy_timeout_ms: settings.database.busy_timeout_ms,
        },
    )?;
    let mut conn = store.conn()?;
    migrations::run(&mut conn)?;
    Ok(store)
}

/// The credentials created on first start.
#[derive(Debug)]
pub struct InitialCredentials {
    pub username: String,
    pub password: Secret,
    pub client_id: String,
    pub client_secret: Secret,
    pub file: PathBuf,
}

/// On an empty database (no user, no client), creates the `admin` user (ACL `#`) and one
/// confidential client, and writes their credentials to a 0600 file in `data_dir`.
pub fn bootstrap(
    store: &Store,
    data_dir: &Path,
    now: i64,
) -> Result<Option<InitialCredentials>, StartError> {
    let mut conn = store.conn()?;
    if users::count(&mut conn)? > 0 || clients::count(&mut conn)? > 0 {
        return Ok(None);
    }
    let admin_password = token::new_password();
    let client_secret = token::new_client_secret();
    let hash = password::hash_password(admin_password.expose())
        .map_err(|e| StartError::Other(e.to_string()))?;
    let admin = User {
        id: Uuid::new_v4().to_string(),
        username: "admin".into(),
        email: None,
        email_confirmed: false,
        password_hash: Some(hash),
        enabled: true,
        acl: vec!["#".into()],
        tenant_uuid: Uuid::new_v4().to_string(),
        purpose: "user".into(),
        created_at: now,
    };
    let client = Client {
        id: "tessera".into(),
        secret_hash: Some(token::digest(client_secret.expose())),
        grant_types: GrantType::ALL.to_vec(),
        scopes: vec!["#".into()],
        default_scopes: Vec::new(),
        created_at: now,
    };
    let credentials = InitialCredentials {
        username: admin.username.clone(),
        password: admin_password,
        client_id: client.id.clone(),
        client_secret,
        file: data_dir.join("initial-credentials.env"),
    };
    // The file first: if it cannot be written, nothing is created and the next start retries.
    write_private(&credentials.file, &credentials.as_env())?;
    connection::write(&mut conn, |c| {
        users::insert(c, &admin)?;
        clients::insert(c, &client)
    })?;
    Ok(Some(credentials))
}

impl InitialCredentials {
    /// The file format: shell variables, so `. data/initial-credentials.env` loads them.
    pub fn as_env(&self) -> String {
        format!(
            "# Created by Tessera on first start. Keep this file secret; delete it once stored elsewhere.\n\
             TESSERA_ADMIN_USERNAME={}\nTESSERA_ADMIN_PASSWORD={}\n\
             TESSERA_CLIENT_ID={}\nTESSERA_CLIENT_SECRET={}\n",
            self.username,
            self.password.expose(),
            self.client_id,
            self.client_secret.expose()
        )
    }
}

/// Reads the server secret, creating it (mode 0600) on first start. A file that exists but
/// cannot be read or parsed stops the start: silently replacing it would make every Wazo
/// refresh token underivable (each is then replaced at its user's next offline login).
pub fn load_or_create_secret(path: &Path) -> Result<ServerSecret, StartError> {
    match std::fs::read_to_string(path) {
        Ok(text) => ServerSecret::from_hex(&text)
            .map_err(|e| StartError::Other(format!("server secret {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = ServerSecret::generate();
            write_private(path, &format!("{}\n", secret.to_hex().expose()))?;
            log::info!("created the server secret {}", path.display());
            Ok(secret)
        }
        Err(e) => Err(StartError::Other(format!(
            "cannot read the server secret {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> Result<(), StartError> {
    use std::io::Write;
    let err = |e: std::io::Error| StartError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)
}

/// A running server.
pub struct Application {
    port: u16,
    /// Set once a stop signal arrived.
    draining: Arc<AtomicBool>,
    server: Server,
    service: Arc<Service>,
    settings: Settings,
    initial_credentials: Option<InitialCredentials>,
}

impl Application {
    /// Opens the store, migrates, bootstraps, binds, and starts the cleanup task.
    /// Must be called inside a Tokio runtime.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let addr = settings.bind_addr()?;
        // Checked at load already; again here for settings edited after it. Before anything
        // is opened or written: a start that cannot serve safely does nothing.
        settings.validate_transport(addr)?;
        let tls = tls_config(&settings.server.tls)?;
        let trusted_proxies = TrustedProxies::new(settings.trusted_proxies()?);
        let settings_for_store = settings.clone();
        let now = clock.now().secs();
        let (store, initial_credentials) = web::block(move || {
            let store = open_store(&settings_for_store)?;
            let creds = bootstrap(&store, &settings_for_store.server.data_dir, now)?;
            password::warm_up();
            Ok::<_, StartError>((store, creds))
        })
        .await
        .map_err(|e| StartError::Other(e.to_string()))??;
        log::info!("storage: {}", store.backend().describe());

        let secret = load_or_create_secret(&settings.secret_path())?;
        let metrics = Arc::new(Metrics::new().map_err(|e| StartError::Other(e.to_string()))?);
        store.attach_metrics(Arc::clone(&metrics));
        let service = Arc::new(
            Service::new(
                store,
                clock,
                Policies::from(&settings.policy),
                secret,
                WazoOptions {
                    xivo_uuid: settings.xivo_uuid(),
                    default_user_acl: settings.wazo.default_user_acl.clone(),
                    max_user_concurrent_sessions: i64::from(
                        settings.wazo.max_user_concurrent_sessions,
                    ),
                },
                JwtOptions {
                    key_file: settings.jwt_key_path(),
                    issuer: settings.issuer(),
                    audience: settings.jwt_audience(),
                },
            )
            .with_metrics(Arc::clone(&metrics))
            .with_failure_limits(failure_limits(settings)),
        );
        {
            let service = Arc::clone(&service);
            let policies = Policies::from(&settings.policy);
            web::block(move || service.prepare_jwt_key(&policies))
                .await
                .map_err(|e| StartError::Other(e.to_string()))?
                .map_err(StartError::Other)?;
        }
        let state = AppState {
            service: Arc::clone(&service),
            issuer: settings.issuer(),
            max_body_bytes: settings.server.max_body_bytes,
            trusted_proxies,
        };
        let listener = TcpListener::bind(addr).map_err(|e| StartError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(addr.port());
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            n => n,
        };
        let draining = Arc::new(AtomicBool::new(false));
        let draining_flag = Arc::clone(&draining);
        let server = HttpServer::new(move || {
            let draining = Arc::clone(&draining_flag);
            let metrics = Arc::clone(&metrics);
            App::new()
                .app_data(web::Data::new(state.clone()))
                // Innermost: an oversized head is refused before routing, so no handler sees it.
                .wrap_fn(|req, srv| {
                    let outcome = match crate::http::limits::head_refusal(req.head()) {
                        Some(status) => Err(req.into_response(
                            actix_web::HttpResponse::build(status)
                                .force_close()
                                .finish(),
                        )),
                        None => Ok(srv.call(req)),
                    };
                    async move {
                        match outcome {
                            Ok(call) => call.await,
                            Err(refused) => Ok(refused),
                        }
                    }
                })
                // While stopping, every answer closes its connection, so that keep-alive
                // clients go elsewhere instead of holding the shutdown until its timeout.
                .wrap_fn(move |req, srv| {
                    let draining = Arc::clone(&draining);
                    let metrics = Arc::clone(&metrics);
                    let watch = Stopwatch::start();
                    let call = srv.call(req);
                    async move {
                        let mut res = call.await?;
                        // By route pattern (a raw path may hold a token), with `:name` for
                        // `{name}`: braces inside label values trip naive exposition parsers.
                        let request = res.request();
                        let route = RoutePattern::of(request);
                        let route = route.as_ref().map_or("unmatched", |r| r.label.as_str());
                        metrics
                            .http_requests
                            .with_label_values(&[
                                route,
                                request.method().as_str(),
                                res.status().as_str(),
                            ])
                            .inc();
                        metrics
                            .http_duration
                            .with_label_values(&[route])
                            .observe(watch.elapsed_secs());
                        if draining.load(Ordering::Relaxed) {
                            res.response_mut()
                                .head_mut()
                                .set_connection_type(ConnectionType::Close);
                        }
                        Ok(res)
                    }
                })
                // Outermost: times the whole request and sets `X-Request-Id` on every answer.
                .wrap(AccessLog)
                .configure(routes::configure)
        })
        .workers(workers)
        // actix-web's defaults, pinned because docs/security.md "Request limits" states them:
        // the head of a request must arrive within 5 s of the connection (or of the previous
        // answer) or the server answers 408 and closes; an idle keep-alive connection is
        // closed after 5 s.
        .client_request_timeout(Duration::from_secs(5))
        .keep_alive(Duration::from_secs(5))
        // Signals are ours (`stop_on_signals`): SIGINT must be graceful too.
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .map_err(|e| StartError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?
        .run();

        spawn_cleanup(
            Arc::clone(&service),
            settings.database.cleanup_interval,
            settings.database.cleanup_batch_size,
        );
        Ok(Self {
            port,
            draining,
            server,
            service,
            settings: settings.clone(),
            initial_credentials,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> Arc<Service> {
        Arc::clone(&self.service)
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Reloads the policy from `source` (the layers these settings were loaded from) on SIGHUP
    /// and, every `[server] config_watch_ms`, when the file's contents change. SIGHUP no
    /// longer terminates the process once this returns.
    pub fn watch_config(&self, source: ConfigSource) {
        let interval = Duration::from_millis(self.settings.server.config_watch_ms);
        let reloader = Reloader::new(self.service(), source, self.settings.clone());
        spawn_watcher(reloader, interval);
    }

    /// The credentials created if this start found an empty database.
    pub fn take_initial_credentials(&mut self) -> Option<InitialCredentials> {
        self.initial_credentials.take()
    }

    /// Serves until the server is stopped (by its handle or a signal).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Stops gracefully on SIGTERM or SIGINT: no new connections, the requests in flight
    /// finish (up to `[server] shutdown_timeout`), then `run_until_stopped` returns.
    pub fn stop_on_signals(&self) {
        let handle = self.server.handle();
        let draining = Arc::clone(&self.draining);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                log::error!("cannot listen for SIGTERM and SIGINT");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            log::info!("{name}: stopping; requests in flight may finish");
            draining.store(true, Ordering::Relaxed);
            handle.stop(true).await;
        });
    }
}

/// The brute-force limits of `[security]`.
fn failure_limits(settings: &Settings) -> FailureLimits {
    let s = &settings.security;
    FailureLimits {
        login: s.login_failures,
        address: s.address_failures,
        client: s.client_failures,
        window: i64::try_from(s.window).unwrap_or(i64::MAX),
    }
}

/// Deletes expired tokens every `interval` seconds (0 = never), in batches.
fn spawn_cleanup(service: Arc<Service>, interval: u64, batch: u32) {
    if interval == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(interval));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let worker = Arc::clone(&service);
            let result = web::block(move || {
                let service = worker;
                let now = service.now();
                let window = service.failure_limits().window;
                let mut conn = service.store().conn()?;
                cleanup::purge_expired(service.store(), &mut conn, now, i64::from(batch), window)
            })
            .await;
            match result {
                Ok(Ok(purged)) if purged != cleanup::Purged::default() => {
                    service.count(|m| {
                        let expired = |kind| m.tokens_expired.with_label_values(&[kind]);
                        expired("access").inc_by(purged.access_tokens as u64);
                        expired("refresh").inc_by(purged.refresh_tokens as u64);
                    });
                    log::info!(
                        "cleanup: deleted {} access tokens, {} refresh tokens, {} sessions, \
                         {} authentication failures",
                        purged.access_tokens,
                        purged.refresh_tokens,
                        purged.sessions,
                        purged.auth_failures
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("cleanup failed: {e}"),
                Err(e) => log::warn!("cleanup task failed: {e}"),
            }
        }
    });
}
