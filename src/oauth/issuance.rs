//! The *issuer*: mints sessions, access tokens and refresh tokens, and writes only their
//! SHA-256 digests. Called inside the use case's write transaction.
use uuid::Uuid;

use crate::crypto::token::{digest, new_token};
use crate::domain::{ScopeSet, Secret, User};
use crate::oauth::Error;
use crate::policy::Policy;
use crate::store::refresh_tokens::RefreshTokenRecord;
use crate::store::sessions::SessionRecord;
use crate::store::tokens::AccessTokenRecord;
use crate::store::{DbConnection, refresh_tokens, sessions, tokens};

/// The dialect recorded on OAuth2 tokens.
pub const OAUTH2: &str = "oauth2";

/// An access token just minted.
#[derive(Debug)]
pub struct MintedAccessToken {
    pub token: Secret,
    pub expires_at: i64,
}

/// Opens a session for a new grant; returns its id.
pub fn new_session(
    conn: &mut DbConnection,
    now: i64,
    client_id: &str,
    user: Option<&User>,
) -> Result<String, Error> {
    let session = SessionRecord {
        id: Uuid::new_v4().to_string(),
        user_id: user.map(|u| u.id.clone()),
        client_id: Some(client_id.to_owned()),
        tenant_uuid: user.map(|u| u.tenant_uuid.clone()),
        mobile: false,
        user_agent: String::new(),
        remote_addr: String::new(),
        created_at: now,
    };
    sessions::insert(conn, &session)?;
    Ok(session.id)
}

/// What an access token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct Grantee<'a> {
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub session_id: &'a str,
    /// The refresh-token family the token descends from, if any.
    pub family_id: Option<&'a str>,
}

/// Mints an access token.
pub fn access_token(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    to: Grantee<'_>,
    scopes: &ScopeSet,
) -> Result<MintedAccessToken, Error> {
    let token = new_token();
    let expires_at = policy.access_token_expiry(now);
    tokens::insert(
        conn,
        &AccessTokenRecord {
            hash: digest(token.expose()),
            session_id: to.session_id.to_owned(),
            user_id: to.user_id.map(str::to_owned),
            client_id: Some(to.client_id.to_owned()),
            family_id: to.family_id.map(str::to_owned),
            dialect: OAUTH2.to_owned(),
            scopes: scopes.to_vec(),
            issued_at: now,
            expires_at,
            revoked_at: None,
        },
    )?;
    Ok(MintedAccessToken { token, expires_at })
}

/// Mints the first refresh token of a new family; returns it and its family id.
pub fn start_refresh_family(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    to: Grantee<'_>,
    scopes: &ScopeSet,
) -> Result<(Secret, String), Error> {
    let token = new_token();
    let id = Uuid::new_v4().to_string();
    let record = RefreshTokenRecord {
        hash: digest(token.expose()),
        family_id: id.clone(),
        id,
        parent_id: None,
        generation: 0,
        client_id: to.client_id.to_owned(),
        user_id: to.user_id.map(str::to_owned),
        session_id: Some(to.session_id.to_owned()),
        dialect: OAUTH2.to_owned(),
        scopes: scopes.to_vec(),
        issued_at: now,
        family_issued_at: now,
        expires_at: policy.refresh_token_expiry(now),
        last_used_at: None,
        consumed_at: None,
        revoked_at: None,
    };
    refresh_tokens::insert(conn, &record)?;
    Ok((token, record.family_id))
}

/// Mints the successor of a refresh token consumed by rotation: same family and scopes, next
/// generation, expiry as the policy says.
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    parent: &RefreshTokenRecord,
) -> Result<Secret, Error> {
    let token = new_token();
    let record = RefreshTokenRecord {
        id: Uuid::new_v4().to_string(),
        hash: digest(token.expose()),
        family_id: parent.family_id.clone(),
        parent_id: Some(parent.id.clone()),
        generation: parent.generation.saturating_add(1),
        client_id: parent.client_id.clone(),
        user_id: parent.user_id.clone(),
        session_id: parent.session_id.clone(),
        dialect: parent.dialect.clone(),
        scopes: parent.scopes.clone(),
        issued_at: now,
        family_issued_at: parent.family_issued_at,
        expires_at: policy.rotated_refresh_token_expiry(now, parent.expires_at),
        last_used_at: None,
        consumed_at: None,
        revoked_at: None,
    };
    refresh_tokens::insert(conn, &record)?;
    Ok(token)
}
