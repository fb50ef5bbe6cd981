//! The Wazo login (wazo-auth `POST /token`, wazo-contract §1.3 and §2): a user logs in with a
//! password, optionally `offline` for a client id, or with a refresh token and its client id.
//!
//! - One refresh token per (user, client id): a second non-mobile offline login hands back the
//!   same value, derived from the server secret (`issuance::wazo_refresh_value`).
//! - A mobile offline login purges the user's other mobile refresh tokens, and the one for the
//!   same client id, with every session issued from them; the count is reported.
//! - A refresh mints an access token in a new session; it returns a refresh token only when the
//!   Wazo policy rotates them.
//! - Users of purpose `user` or `external_api` hold at most `max_user_concurrent_sessions`
//!   live sessions.
//! - A password login is first admitted by the brute-force limits (`oauth::throttle`): per
//!   login and per `remote_addr`. A refresh-token login is not concerned.
use crate::clock::Timestamp;
use crate::crypto::password::verify_password;
use crate::crypto::token::{digest, digest_matches};
use crate::domain::{Metadata, Secret, User};
use crate::oauth::issuance::{self, Grantee, Origin, WAZO};
use crate::oauth::{Error, RefreshTokenProblem as Problem, Service, rotation};
use crate::policy::{Dialect, Policy};
use crate::store::refresh_tokens::RefreshTokenRecord;
use crate::store::{DbConnection, PooledConnection, refresh_tokens, sessions, tokens, users};

/// How the user proves who they are.
#[derive(Debug)]
pub enum LoginCredentials {
    Password { login: String, password: Secret },
    RefreshToken { token: Secret, client_id: String },
    None,
}

/// A parsed Wazo login.
#[derive(Debug)]
pub struct LoginRequest {
    pub credentials: LoginCredentials,
    /// Lifetime in seconds; `None` = the Wazo policy's `access_token_ttl`.
    pub expiration: Option<i64>,
    /// `access_type: offline` with this client id: return a refresh token.
    pub offline_client_id: Option<String>,
    pub mobile: bool,
    pub user_agent: String,
    pub remote_addr: String,
}

/// Everything a Wazo token answer shows (wazo-auth `Token.to_dict`).
#[derive(Debug, Clone)]
pub struct TokenView {
    pub token: Secret,
    pub auth_id: String,
    pub xivo_uuid: Option<String>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub acl: Vec<String>,
    pub metadata: Metadata,
    pub session_uuid: String,
    pub remote_addr: String,
    pub user_agent: String,
}

impl TokenView {
    /// `metadata.pbx_user_uuid`, shown at the top level as `xivo_user_uuid`.
    pub fn pbx_user_uuid(&self) -> Option<&str> {
        self.metadata.get("pbx_user_uuid").and_then(|v| v.as_str())
    }
}

/// A successful login.
#[derive(Debug)]
pub struct Login {
    pub token: TokenView,
    /// Only for offline logins (and refreshes when the Wazo policy rotates).
    pub refresh_token: Option<Secret>,
    /// Sessions revoked by a mobile offline login (`Wazo-Sessions-Revoked`).
    pub sessions_revoked: usize,
    /// What was minted, for metrics: a new refresh token (not an offline login's existing
    /// one), or nothing at all (a retry answered again).
    pub refresh_token_minted: bool,
    pub replayed: bool,
}

/// Who logs in, once the credentials are checked.
enum Resolved {
    Password(User),
    Refresh(User, Box<RefreshTokenRecord>),
    /// A refresh token that rotation already consumed.
    Replayed(Box<RefreshTokenRecord>),
}

impl Service {
    pub fn login(&self, request: LoginRequest) -> Result<Login, Error> {
        let refresh = matches!(request.credentials, LoginCredentials::RefreshToken { .. });
        let result = self.login_uncounted(request);
        self.count(|m| match &result {
            Ok(login) => {
                let issued = |kind| m.tokens_issued.with_label_values(&["wazo", kind]);
                if login.replayed {
                    m.refresh_retries.with_label_values(&["wazo"]).inc();
                } else {
                    issued("access").inc();
                    if login.refresh_token_minted {
                        issued("refresh").inc();
                    }
                }
                if refresh {
                    m.tokens_refreshed.with_label_values(&["wazo"]).inc();
                }
                if login.sessions_revoked > 0 {
                    m.tokens_revoked
                        .with_label_values(&["access"])
                        .inc_by(login.sessions_revoked as u64);
                }
            }
            Err(Error::InvalidUserCredentials) => {
                m.login_failures.with_label_values(&["wazo"]).inc();
            }
            Err(Error::TooManyFailures { .. }) => {
                m.login_lockouts.with_label_values(&["wazo"]).inc();
            }
            Err(_) => {}
        });
        result
    }

    fn login_uncounted(&self, request: LoginRequest) -> Result<Login, Error> {
        // A refresh keeps the connection of its reads for its write, and announces the write
        // meanwhile (the open SQLite group commit waits for it). A password login does
        // neither: no connection is held, and no batch waits, while argon2 runs.
        let mut held = None;
        let mut intent = None;
        let resolved = match &request.credentials {
            LoginCredentials::Password { login, password } => {
                let (admission, user) = {
                    let conn = self.store().conn()?;
                    let (admission, mut conn) =
                        self.admit_password(conn, login, &request.remote_addr, self.now())?;
                    (admission, users::find_by_login_or_email(&mut conn, login)?)
                };
                // Always one argon2 verification, whoever the user is.
                let verified = verify_password(
                    user.as_ref().and_then(|u| u.password_hash.as_deref()),
                    password.expose(),
                );
                match user {
                    Some(user) if verified && user.enabled => {
                        self.password_verified(admission);
                        Resolved::Password(user)
                    }
                    _ => {
                        self.password_rejected(admission);
                        return Err(Error::InvalidUserCredentials);
                    }
                }
            }
            LoginCredentials::RefreshToken { token, client_id } => {
                let mut conn = self.store().conn()?;
                intent = self.store().intend_write();
                let resolved = self.resolve_refresh(&mut conn, token, client_id)?;
                held = Some(conn);
                resolved
            }
            LoginCredentials::None => return Err(Error::InvalidUserCredentials),
        };
        // A concurrent offline login may insert the same (user, client id) first, or a
        // concurrent refresh may consume the same rotating refresh token: the loser resolves
        // its credentials again once (a refresh token is then a replay) and retries.
        let resolved = match resolved {
            Resolved::Replayed(record) => {
                drop((held, intent));
                return self.replay(*record, &request);
            }
            other => other,
        };
        match self.issue(&request, &resolved, held) {
            Err(Error::Conflict) => match &request.credentials {
                LoginCredentials::RefreshToken { token, client_id } => {
                    let again = {
                        let mut conn = self.store().conn()?;
                        self.resolve_refresh(&mut conn, token, client_id)?
                    };
                    match again {
                        Resolved::Replayed(record) => self.replay(*record, &request),
                        again => self.issue(&request, &again, None),
                    }
                }
                _ => self.issue(&request, &resolved, None),
            },
            other => other,
        }
    }

    /// A rotated-out Wazo refresh token presented again: the same answer within the grace
    /// rules, else its family is revoked (`oauth::rotation`).
    fn replay(&self, record: RefreshTokenRecord, request: &LoginRequest) -> Result<Login, Error> {
        let LoginCredentials::RefreshToken { token, .. } = &request.credentials else {
            return Err(Error::InvalidUserCredentials);
        };
        let now = self.now();
        let policy = self.policy_for_client(Dialect::Wazo, Some(&record.client_id));
        let mut conn = self.store().conn()?;
        let answer = self.store().write(&mut conn, |conn| {
            let answer = rotation::retry(conn, &policy, &record, token, now)?;
            if let Some(answer) = &answer {
                // Not counted (rolled back) if its access token was revoked since.
                let live = match self.access_token_key(&answer.access_token) {
                    Some(key) => tokens::find(conn, &key)?.is_some_and(|t| t.is_active(now)),
                    None => false,
                };
                if !live {
                    return Err(Error::InvalidRefreshToken(Problem::Revoked));
                }
            }
            Ok(answer)
        })?;
        let Some(answer) = answer else {
            rotation::revoke_reused_family(self, &mut conn, &record, policy.reuse_detection)?;
            return Err(Error::InvalidRefreshToken(if policy.reuse_detection {
                Problem::Reused
            } else {
                Problem::Consumed
            }));
        };
        // validate() takes a connection of its own.
        drop(conn);
        let view = self
            .validate(&Secret::new(answer.access_token), None, None)
            .map_err(|e| match e {
                Error::NoSuchToken => Error::InvalidRefreshToken(Problem::Revoked),
                other => other,
            })?;
        Ok(Login {
            token: view,
            refresh_token: Some(Secret::new(answer.refresh_token)),
            sessions_revoked: 0,
            refresh_token_minted: false,
            replayed: true,
        })
    }

    fn resolve_refresh(
        &self,
        conn: &mut DbConnection,
        token: &Secret,
        client_id: &str,
    ) -> Result<Resolved, Error> {
        let now = self.now();
        let record = refresh_tokens::find_by_hash(conn, &digest(token.expose()))?
            .filter(|t| t.dialect == WAZO && t.client_id == client_id)
            .ok_or(Error::InvalidRefreshToken(Problem::Unknown))?;
        if record.revoked_at.is_some() {
            return Err(Error::InvalidRefreshToken(Problem::Revoked));
        }
        if record.consumed_at.is_some() {
            return Ok(Resolved::Replayed(Box::new(record)));
        }
        let policy = self.policy_for_client(Dialect::Wazo, Some(&record.client_id));
        if !policy.refresh_usable(record.times(), now) {
            return Err(Error::InvalidRefreshToken(Problem::Expired));
        }
        let user = match &record.user_id {
            Some(id) => users::find_by_id(conn, id)?,
            None => None,
        };
        match user {
            Some(user) if user.enabled => Ok(Resolved::Refresh(user, Box::new(record))),
            _ => Err(Error::InvalidRefreshToken(Problem::UserDisabled)),
        }
    }

    /// The write transaction of a login: session limit, refresh token, session, access token;
    /// on `conn` if the caller holds one.
    fn issue(
        &self,
        request: &LoginRequest,
        resolved: &Resolved,
        conn: Option<PooledConnection>,
    ) -> Result<Login, Error> {
        let now = self.now_precise();
        let now_s = now.secs();
        let client_id = match resolved {
            Resolved::Refresh(_, record) | Resolved::Replayed(record) => {
                Some(record.client_id.as_str())
            }
            Resolved::Password(_) => request.offline_client_id.as_deref(),
        };
        let policy = self.policy_for_client(Dialect::Wazo, client_id);
        let expiration = request.expiration.unwrap_or(policy.access_token_ttl);
        let expires_at = now_s.saturating_add(expiration);
        let options = self.wazo();
        let user = match resolved {
            Resolved::Password(user) | Resolved::Refresh(user, _) => user,
            Resolved::Replayed(_) => return Err(Error::InvalidRefreshToken(Problem::Consumed)),
        };
        let format = self.access_format(&policy)?;
        let mut conn = match conn {
            Some(conn) => conn,
            None => self.store().conn()?,
        };
        self.store().write(&mut conn, |conn| {
            if matches!(user.purpose.as_str(), "user" | "external_api")
                && sessions::count_live(conn, &user.id, now_s)?
                    >= options.max_user_concurrent_sessions
            {
                return Err(Error::SessionLimitReached(user.id.clone()));
            }
            let mut sessions_revoked = 0;
            let mut refresh_token_minted = false;
            let (family, refresh_token, persistent) = match resolved {
                Resolved::Refresh(_, record) => {
                    let next = if policy.rotate_refresh_tokens {
                        if !refresh_tokens::consume(conn, &record.id, now_s, None)? {
                            // Consumed by a concurrent refresh: resolved again as a replay.
                            return Err(Error::Conflict);
                        }
                        refresh_token_minted = true;
                        Some(issuance::rotate_refresh_token(
                            conn,
                            now_s,
                            &policy,
                            self.secret(),
                            record,
                        )?)
                    } else {
                        if !refresh_tokens::touch(conn, &record.id, now_s)? {
                            return Err(Error::InvalidRefreshToken(Problem::Revoked));
                        }
                        None
                    };
                    (
                        Some(record.family_id.clone()),
                        next,
                        record.metadata.clone(),
                    )
                }
                Resolved::Replayed(_) => return Err(Error::InvalidRefreshToken(Problem::Consumed)),
                Resolved::Password(user) => match &request.offline_client_id {
                    Some(client_id) => {
                        let (record, revoked, created) =
                            self.offline(conn, now_s, &policy, user, client_id, request.mobile)?;
                        sessions_revoked = revoked;
                        refresh_token_minted = created;
                        let value = issuance::wazo_refresh_value(self.secret(), &record);
                        (Some(record.family_id), Some(value), record.metadata)
                    }
                    None => (None, None, Metadata::new()),
                },
            };
            let origin = Origin {
                mobile: request.mobile,
                user_agent: &request.user_agent,
                remote_addr: &request.remote_addr,
            };
            let session_id = issuance::open_session(conn, now_s, client_id, Some(user), origin)?;
            // Persistent metadata first, fresh values over it.
            let mut metadata = persistent;
            metadata.extend(issuance::user_metadata(user, options.xivo_uuid.as_deref()));
            let acl: Vec<String> = options
                .default_user_acl
                .iter()
                .chain(user.acl.iter())
                .cloned()
                .collect();
            let to = Grantee {
                client_id: client_id.unwrap_or_default(),
                user_id: Some(&user.id),
                session_id: &session_id,
                family_id: family.as_deref(),
                metadata: &metadata,
            };
            let access = issuance::mint_access_token(
                conn,
                now_s,
                Dialect::Wazo,
                format,
                expires_at,
                to,
                &acl,
            )?;
            if let (
                Resolved::Refresh(_, record),
                LoginCredentials::RefreshToken { token, .. },
                Some(next),
            ) = (resolved, &request.credentials, &refresh_token)
            {
                rotation::keep_for_retry(conn, &policy, record, token, &access.token, next)?;
            }
            Ok(Login {
                token: TokenView {
                    token: access.token,
                    auth_id: user.id.clone(),
                    xivo_uuid: options.xivo_uuid.clone(),
                    issued_at: now,
                    expires_at: now.plus_secs(expiration),
                    acl,
                    metadata,
                    session_uuid: session_id,
                    remote_addr: request.remote_addr.clone(),
                    user_agent: request.user_agent.clone(),
                },
                refresh_token,
                sessions_revoked,
                refresh_token_minted,
                replayed: false,
            })
        })
    }

    /// Whether the server secret still derives the value whose digest the row holds.
    fn derivable(&self, record: &RefreshTokenRecord) -> bool {
        let value = issuance::wazo_refresh_value(self.secret(), record);
        digest_matches(&record.hash, value.expose())
    }

    /// The refresh token of an offline login, and how many sessions a mobile login purged.
    fn offline(
        &self,
        conn: &mut DbConnection,
        now: i64,
        policy: &Policy,
        user: &User,
        client_id: &str,
        mobile: bool,
    ) -> Result<(RefreshTokenRecord, usize, bool), Error> {
        let existing = refresh_tokens::find_live_for(conn, WAZO, &user.id, client_id)?;
        let mut purge: Vec<String> = Vec::new();
        match existing {
            Some(record) if mobile => purge.push(record.family_id),
            Some(record)
                if policy.refresh_usable(record.times(), now) && self.derivable(&record) =>
            {
                return Ok((record, 0, false));
            }
            // Expired, or minted under another server secret (its value cannot be derived
            // again): make room for a new one; its sessions end on their own.
            Some(record) => {
                refresh_tokens::delete_families(conn, &[record.family_id])?;
            }
            None => {}
        }
        if mobile {
            // One mobile device per user: every other mobile refresh token goes too.
            purge.extend(
                refresh_tokens::live_mobile_of(conn, WAZO, &user.id)?
                    .into_iter()
                    .map(|r| r.family_id),
            );
        }
        purge.sort();
        purge.dedup();
        let mut revoked = 0;
        if !purge.is_empty() {
            revoked = sessions::delete_of_families(conn, &purge)?;
            refresh_tokens::delete_families(conn, &purge)?;
        }
        let record = issuance::start_wazo_refresh(
            conn,
            now,
            policy,
            self.secret(),
            user,
            client_id,
            mobile,
        )?;
        Ok((record, revoked, true))
    }
}
