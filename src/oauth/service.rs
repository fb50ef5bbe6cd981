//! The entry points the HTTP layer calls: token exchange, revocation, introspection. Holds the
//! store, the clock and the current policy; reads `now` and the policy once per request.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::clock::{Clock, Timestamp};
use crate::crypto::derive::ServerSecret;
use crate::crypto::jwt::{self, JwtSigner};
use crate::domain::{Client, GrantType, ScopeSet, Secret};
use crate::metrics::Metrics;
use crate::oauth::acl::{AclContext, is_allowed};
use crate::oauth::grants::{self, IssuedTokens};
use crate::oauth::issuance::{AccessFormat, access_row_key};
use crate::oauth::throttle::FailureLimits;
use crate::oauth::{ClientCredentials, Error, client_auth};
use crate::policy::{Dialect, Policies, Policy, TokenFormat};
use crate::store::{DbConnection, Store, tokens, users};

/// A token request, parsed at the edge (RFC 6749 §4.3.2, §4.4.2, §6).
#[derive(Debug)]
pub struct TokenRequest {
    pub client: ClientCredentials,
    pub grant: GrantRequest,
}

/// The grant-specific part of a token request.
#[derive(Debug)]
pub enum GrantRequest {
    Password {
        username: String,
        password: Secret,
        scope: Option<ScopeSet>,
    },
    ClientCredentials {
        scope: Option<ScopeSet>,
    },
    RefreshToken {
        refresh_token: Secret,
        scope: Option<ScopeSet>,
    },
}

impl GrantRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::Password { .. } => GrantType::Password,
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
        }
    }
}

/// Who calls the revocation or introspection endpoint: a client, or the bearer of an access
/// token whose ACL grants the operation (an administrator).
#[derive(Debug)]
pub enum Caller {
    Client(ClientCredentials),
    Bearer(Secret),
}

/// The authenticated caller.
#[derive(Debug)]
pub enum Authorized {
    Client(Client),
    Admin,
}

/// What the Wazo dialect needs beyond the policy (wazo-auth's own settings).
#[derive(Debug, Clone, Default)]
pub struct WazoOptions {
    /// `xivo_uuid` reported in tokens.
    pub xivo_uuid: Option<String>,
    /// ACL entries every Wazo token gets before the user's own.
    pub default_user_acl: Vec<String>,
    /// Live sessions a `user` or `external_api` user may hold.
    pub max_user_concurrent_sessions: i64,
}

/// The outcome of each readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub database: Result<(), &'static str>,
    pub migrations: Result<(), &'static str>,
    pub policy: Result<(), &'static str>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.database.is_ok() && self.migrations.is_ok() && self.policy.is_ok()
    }
}

/// What JWT access tokens (RFC 9068) carry and where their signing key lives.
#[derive(Debug, Clone)]
pub struct JwtOptions {
    /// PKCS#8 PEM file of the RS256 key, created when first needed (mode 0600).
    pub key_file: PathBuf,
    /// `iss`: the issuer identifier.
    pub issuer: String,
    /// `aud`: the resource the tokens are meant for.
    pub audience: String,
}

/// The use cases, with what they share.
pub struct Service {
    store: Store,
    clock: Arc<dyn Clock>,
    policy: ArcSwap<Policies>,
    secret: ServerSecret,
    wazo: WazoOptions,
    jwt: JwtOptions,
    /// Loaded at start when the file exists or a policy mints JWTs, else when a reloaded
    /// policy first does; never replaced while running.
    jwt_key: OnceLock<JwtSigner>,
    /// What happened to tokens, for `/metrics` (absent only if the registry refused them).
    metrics: Option<Arc<Metrics>>,
    /// The brute-force limits (`oauth::throttle`); off unless set.
    limits: FailureLimits,
}

impl Service {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        policy: Policies,
        secret: ServerSecret,
        wazo: WazoOptions,
        jwt: JwtOptions,
    ) -> Self {
        Self {
            store,
            clock,
            policy: ArcSwap::from_pointee(policy),
            secret,
            wazo,
            jwt,
            jwt_key: OnceLock::new(),
            metrics: None,
            limits: FailureLimits::default(),
        }
    }

    /// Applies the brute-force limits of `[security]` (all off by default).
    pub fn with_failure_limits(mut self, limits: FailureLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn failure_limits(&self) -> FailureLimits {
        self.limits
    }

    /// Counts into `metrics` (the server's registry).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// Runs `f` on the metrics, if any.
    pub(crate) fn count(&self, f: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.metrics {
            f(m);
        }
    }

    /// Loads the JWT signing key if its file exists or `policies` mint JWTs (creating the
    /// file then). Blocking: call it at start or from a blocking task.
    pub fn prepare_jwt_key(&self, policies: &Policies) -> Result<(), String> {
        if self.jwt_key.get().is_some() || !(policies.uses_jwt() || self.jwt.key_file.exists()) {
            return Ok(());
        }
        let (signer, created) = jwt::load_or_create(&self.jwt.key_file)
            .map_err(|e| format!("JWT signing key {}: {e}", self.jwt.key_file.display()))?;
        if created {
            log::info!(
                "created the JWT signing key {}",
                self.jwt.key_file.display()
            );
        }
        // A concurrent caller may have set it first; both read the same file.
        let _ = self.jwt_key.set(signer);
        Ok(())
    }

    /// The JWT signing key, once loaded.
    pub fn jwt_signer(&self) -> Option<&JwtSigner> {
        self.jwt_key.get()
    }

    /// How `policy` wants access tokens minted.
    pub(crate) fn access_format(&self, policy: &Policy) -> Result<AccessFormat<'_>, Error> {
        match policy.token_format {
            TokenFormat::Opaque => Ok(AccessFormat::Opaque),
            TokenFormat::Jwt => {
                let signer = self
                    .jwt_signer()
                    .ok_or_else(|| Error::Internal("the JWT signing key is not loaded".into()))?;
                Ok(AccessFormat::Jwt {
                    signer,
                    issuer: &self.jwt.issuer,
                    audience: &self.jwt.audience,
                })
            }
        }
    }

    /// The row key of a presented access token: the digest of an opaque token, or of the
    /// `jti` of a JWT whose signature is ours. `None` = it cannot be one of ours (no lookup).
    pub(crate) fn access_token_key(&self, presented: &str) -> Option<String> {
        access_row_key(presented, self.jwt_signer())
    }

    pub(crate) fn secret(&self) -> &ServerSecret {
        &self.secret
    }

    pub fn wazo(&self) -> &WazoOptions {
        &self.wazo
    }

    /// The current time with microseconds (Wazo answers carry them).
    pub fn now_precise(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current time in epoch seconds.
    pub fn now(&self) -> i64 {
        self.clock.now().secs()
    }

    /// The policy of `dialect` in force for a request that starts now.
    pub fn policy_for(&self, dialect: Dialect) -> Policy {
        self.policy.load().for_dialect(dialect)
    }

    /// The policy for a client in `dialect` (its own table over the dialect's over the
    /// global one) in force for a request that starts now.
    pub fn policy_for_client(&self, dialect: Dialect, client_id: Option<&str>) -> Policy {
        self.policy.load().resolve(dialect, client_id)
    }

    /// Replaces the policies for requests that start from now on. Refused (the old policies
    /// stay) if they mint JWTs and the signing key cannot be loaded. Blocking.
    pub fn set_policies(&self, policies: Policies) -> Result<(), String> {
        self.prepare_jwt_key(&policies)?;
        self.policy.store(Arc::new(policies));
        Ok(())
    }

    /// Token exchange (RFC 6749 §3.2): authenticate the client, check it may use the grant,
    /// run the grant. The source address is unknown: of the brute-force limits, only those per
    /// login and per client id apply.
    pub fn exchange(&self, request: TokenRequest) -> Result<IssuedTokens, Error> {
        self.exchange_from(request, "")
    }

    /// [`Service::exchange`] for a request from `remote_addr` (the peer, or the client of a
    /// proxy on this host), which the brute-force limits count failures against.
    pub fn exchange_from(
        &self,
        request: TokenRequest,
        remote_addr: &str,
    ) -> Result<IssuedTokens, Error> {
        let grant = request.grant.grant_type();
        let result = self.exchange_uncounted(request, remote_addr);
        self.count(|m| match &result {
            Ok(tokens) => {
                let issued = |kind| m.tokens_issued.with_label_values(&["oauth2", kind]);
                if tokens.replayed {
                    m.refresh_retries.with_label_values(&["oauth2"]).inc();
                } else {
                    issued("access").inc();
                    if tokens.refresh_token_minted {
                        issued("refresh").inc();
                    }
                }
                if grant == GrantType::RefreshToken {
                    m.tokens_refreshed.with_label_values(&["oauth2"]).inc();
                }
            }
            Err(Error::InvalidUserCredentials) => {
                m.login_failures.with_label_values(&["oauth2"]).inc();
            }
            Err(Error::TooManyFailures { .. }) => {
                m.login_lockouts.with_label_values(&["oauth2"]).inc();
            }
            Err(_) => {}
        });
        result
    }

    fn exchange_uncounted(
        &self,
        request: TokenRequest,
        remote_addr: &str,
    ) -> Result<IssuedTokens, Error> {
        let mut conn = self.store.conn()?;
        // A refresh or client_credentials grant writes once its reads are done: the open
        // group commit waits for it. A password grant announces nothing here: argon2 first.
        let _intent = match request.grant {
            GrantRequest::Password { .. } => None,
            _ => self.store.intend_write(),
        };
        let client = self.authenticate_client(&mut conn, &request.client, remote_addr)?;
        if !client.allows(request.grant.grant_type()) {
            return Err(Error::GrantNotAllowed);
        }
        match &request.grant {
            GrantRequest::Password {
                username,
                password,
                scope,
            } => grants::password::exchange(
                self,
                conn,
                &client,
                username,
                password,
                scope.as_ref(),
                remote_addr,
            ),
            GrantRequest::ClientCredentials { scope } => {
                grants::client_credentials::exchange(self, &mut conn, &client, scope.as_ref())
            }
            GrantRequest::RefreshToken {
                refresh_token,
                scope,
            } => grants::refresh_token::exchange(
                self,
                &mut conn,
                &client,
                refresh_token,
                scope.as_ref(),
            ),
        }
    }

    /// Readiness (`/readyz`): the database answers within a second, its schema is current,
    /// and a policy is loaded. Each check's outcome, `Ok` or a short reason without details
    /// that could leak configuration.
    pub fn readiness(&self) -> Readiness {
        let database = self
            .store
            .conn_within(std::time::Duration::from_secs(1))
            .map_err(|_| "unreachable");
        let (database, migrations) = match database {
            Ok(mut conn) => {
                let migrations = match crate::store::migrations::pending(&mut conn) {
                    Ok(false) => Ok(()),
                    Ok(true) => Err("pending"),
                    Err(_) => Err("unknown"),
                };
                (Ok(()), migrations)
            }
            Err(e) => (Err(e), Err("unknown")),
        };
        // The policy sits in an ArcSwap that always holds one: loaded at start, swapped whole.
        let policy = Ok(());
        Readiness {
            database,
            migrations,
            policy,
        }
    }

    /// Client authentication (`client_auth`) whose failures count against the brute-force
    /// limits (`throttle`); a success costs nothing more.
    fn authenticate_client(
        &self,
        conn: &mut DbConnection,
        creds: &ClientCredentials,
        remote_addr: &str,
    ) -> Result<Client, Error> {
        match client_auth::authenticate(conn, creds) {
            Err(Error::ClientAuthenticationFailed { .. }) => {
                Err(self.client_failed(conn, creds, remote_addr))
            }
            other => other,
        }
    }

    /// Authenticates the caller of revocation or introspection. A bearer must hold an active
    /// access token whose ACL grants `required`.
    pub(crate) fn authorize(
        &self,
        conn: &mut DbConnection,
        caller: &Caller,
        required: &str,
        now: i64,
    ) -> Result<Authorized, Error> {
        match caller {
            Caller::Client(creds) => {
                let client = self.authenticate_client(conn, creds, "");
                if let Err(Error::TooManyFailures { .. }) = &client {
                    self.count(|m| m.login_lockouts.with_label_values(&["oauth2"]).inc());
                }
                client.map(Authorized::Client)
            }
            Caller::Bearer(token) => {
                let key = self
                    .access_token_key(token.expose())
                    .ok_or(Error::InvalidBearerToken)?;
                let record = tokens::find(conn, &key)?
                    .filter(|t| t.is_active(now))
                    .ok_or(Error::InvalidBearerToken)?;
                if let Some(user_id) = &record.user_id {
                    if !users::find_by_id(conn, user_id)?.is_some_and(|u| u.enabled) {
                        return Err(Error::InvalidBearerToken);
                    }
                }
                let ctx = AclContext {
                    auth_id: record.user_id.as_deref(),
                    session_id: Some(&record.session_id),
                };
                if is_allowed(&record.scopes, required, ctx) {
                    Ok(Authorized::Admin)
                } else {
                    Err(Error::InsufficientAccess(required.to_owned()))
                }
            }
        }
    }
}
