//! Token validation by value, as wazo-auth does it (wazo-contract §1.4, §1.5) and as every
//! `X-Auth-Token` endpoint needs it. Any token works here, whatever dialect issued it: one
//! indexed lookup by digest (joined with the token's session) answers.
//!
//! Order of checks: unknown, expired or revoked → `NoSuchToken`; then the required ACL
//! (`ScopeDenied`); then the tenant (`TenantDenied`).
use crate::clock::Timestamp;
use crate::domain::Secret;
use crate::oauth::acl::{AclContext, is_allowed};
use crate::oauth::issuance::WAZO;
use crate::oauth::login::TokenView;
use crate::oauth::{Error, Service};
use crate::store::sessions::SessionRecord;
use crate::store::tokens::AccessTokenRecord;
use crate::store::{DbConnection, sessions, tenants, tokens};

/// The holder of an access token presented to a protected endpoint.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Option<String>,
    pub session_id: String,
    /// The token holder's own tenant.
    pub tenant_uuid: Option<String>,
    /// The tenant the request acts in: the `Wazo-Tenant` header, else the holder's own.
    pub scoped_tenant: Option<String>,
    acl: Vec<String>,
}

impl Principal {
    /// Whether the token's ACL grants `required`.
    pub fn may(&self, required: &str) -> bool {
        is_allowed(&self.acl, required, self.acl_context())
    }

    fn acl_context(&self) -> AclContext<'_> {
        AclContext {
            auth_id: self.user_id.as_deref(),
            session_id: Some(&self.session_id),
        }
    }
}

/// The tenant a token speaks for: its user's, from the session or the metadata.
fn tenant_of(token: &AccessTokenRecord, session: &SessionRecord) -> Option<String> {
    session.tenant_uuid.clone().or_else(|| {
        token
            .metadata
            .get("tenant_uuid")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    })
}

impl Service {
    /// The live token and its session, or `NoSuchToken`.
    fn live_token(
        &self,
        conn: &mut DbConnection,
        token: &Secret,
        now: i64,
    ) -> Result<(AccessTokenRecord, SessionRecord), Error> {
        let key = self
            .access_token_key(token.expose())
            .ok_or(Error::NoSuchToken)?;
        tokens::find_with_session(conn, &key)?
            .filter(|(t, _)| t.is_active(now))
            .ok_or(Error::NoSuchToken)
    }

    fn check_tenant(
        &self,
        conn: &mut DbConnection,
        token: &AccessTokenRecord,
        session: &SessionRecord,
        tenant: &str,
    ) -> Result<(), Error> {
        let allowed = match tenant_of(token, session) {
            Some(own) => tenants::is_within(conn, tenant, &own)?,
            None => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::TenantDenied(tenant.to_owned()))
        }
    }

    /// `GET|HEAD /token/{token}?scope=&tenant=`.
    pub fn validate(
        &self,
        token: &Secret,
        scope: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<TokenView, Error> {
        let now = self.now();
        let mut conn = self.store().conn()?;
        let (record, session) = self.live_token(&mut conn, token, now)?;
        if let Some(required) = scope {
            let ctx = AclContext {
                auth_id: record.user_id.as_deref(),
                session_id: Some(&record.session_id),
            };
            if !is_allowed(&record.scopes, required, ctx) {
                return Err(Error::ScopeDenied(required.to_owned()));
            }
        }
        if let Some(tenant) = tenant {
            self.check_tenant(&mut conn, &record, &session, tenant)?;
        }
        Ok(TokenView {
            token: token.clone(),
            auth_id: record
                .user_id
                .clone()
                .or_else(|| record.client_id.clone())
                .unwrap_or_default(),
            xivo_uuid: self.wazo().xivo_uuid.clone(),
            issued_at: Timestamp::from_secs(record.issued_at),
            expires_at: Timestamp::from_secs(record.expires_at),
            acl: record.scopes,
            metadata: record.metadata,
            session_uuid: session.id,
            remote_addr: session.remote_addr,
            user_agent: session.user_agent,
        })
    }

    /// `POST /token/{token}/scopes/check`: each scope with whether the token grants it.
    pub fn check_scopes(
        &self,
        token: &Secret,
        scopes: &[String],
        tenant: Option<&str>,
    ) -> Result<Vec<(String, bool)>, Error> {
        let now = self.now();
        let mut conn = self.store().conn()?;
        let (record, session) = self.live_token(&mut conn, token, now)?;
        if let Some(tenant) = tenant {
            self.check_tenant(&mut conn, &record, &session, tenant)?;
        }
        let ctx = AclContext {
            auth_id: record.user_id.as_deref(),
            session_id: Some(&record.session_id),
        };
        let mut answer: Vec<(String, bool)> = scopes
            .iter()
            .map(|s| (s.clone(), is_allowed(&record.scopes, s, ctx)))
            .collect();
        answer.sort();
        answer.dedup();
        Ok(answer)
    }

    /// `DELETE /token/{token}`: a Wazo token goes with its session; a token of another dialect
    /// is revoked. Unknown tokens are fine.
    pub fn delete_token(&self, token: &Secret) -> Result<(), Error> {
        let now = self.now();
        let Some(hash) = self.access_token_key(token.expose()) else {
            return Ok(());
        };
        let mut conn = self.store().conn()?;
        let deleted = self
            .store()
            .write(&mut conn, |conn| match tokens::find(conn, &hash)? {
                Some(record) if record.is_active(now) => {
                    if record.dialect == WAZO {
                        sessions::delete_by_id(conn, &record.session_id)?;
                    } else {
                        tokens::revoke(conn, &hash, now)?;
                    }
                    Ok::<_, Error>(1)
                }
                Some(record) if record.dialect == WAZO => {
                    sessions::delete_by_id(conn, &record.session_id)?;
                    Ok(0)
                }
                _ => Ok(0),
            })?;
        self.count(|m| {
            m.tokens_revoked
                .with_label_values(&["access"])
                .inc_by(deleted)
        });
        Ok(())
    }

    /// Authenticates the `X-Auth-Token` of a protected endpoint: the token must be live
    /// (`InvalidBearerToken`), grant `required` (`InsufficientAccess`), and the `Wazo-Tenant`
    /// header, if any, must name the holder's tenant or one below it (`UnauthorizedTenant`).
    pub fn authenticate(
        &self,
        token: &Secret,
        required: &str,
        wazo_tenant: Option<&str>,
    ) -> Result<Principal, Error> {
        let now = self.now();
        let mut conn = self.store().conn()?;
        let (record, session) = self
            .live_token(&mut conn, token, now)
            .map_err(|e| match e {
                Error::NoSuchToken => Error::InvalidBearerToken,
                other => other,
            })?;
        let own = tenant_of(&record, &session);
        let mut principal = Principal {
            user_id: record.user_id,
            session_id: record.session_id,
            tenant_uuid: own.clone(),
            scoped_tenant: own.clone(),
            acl: record.scopes,
        };
        if !principal.may(required) {
            return Err(Error::InsufficientAccess(required.to_owned()));
        }
        if let Some(tenant) = wazo_tenant {
            let allowed = match &own {
                Some(own) => tenants::is_within(&mut conn, tenant, own)?,
                None => false,
            };
            if !allowed {
                return Err(Error::UnauthorizedTenant(tenant.to_owned()));
            }
            principal.scoped_tenant = Some(tenant.to_owned());
        }
        Ok(principal)
    }
}
