//! The *issuer*: mints sessions, access tokens and refresh tokens, and writes only their
//! SHA-256 digests. Called inside the use case's write transaction.
//!
//! Token shapes follow the dialect (DESIGN.md §4): OAuth2 tokens are 256 random bits
//! (base64url); Wazo access tokens are UUIDv4 strings; Wazo refresh tokens are UUIDv4 strings
//! derived from the server secret, the user, the client id and the row's random id, so a second
//! offline login can hand the same value back although only its digest is stored.
use serde_json::Value;
use uuid::Uuid;

use crate::crypto::derive::ServerSecret;
use crate::crypto::jwt::{AccessClaims, JwtSigner};
use crate::crypto::token::{digest, new_token};
use crate::domain::{Metadata, ScopeSet, Secret, User};
use crate::oauth::Error;
use crate::policy::{Dialect, Policy};
use crate::store::refresh_tokens::RefreshTokenRecord;
use crate::store::sessions::SessionRecord;
use crate::store::tokens::AccessTokenRecord;
use crate::store::{DbConnection, refresh_tokens, sessions, tokens};

/// The dialect recorded on OAuth2 tokens.
pub const OAUTH2: &str = "oauth2";
/// The dialect recorded on Wazo tokens.
pub const WAZO: &str = "wazo";

/// Purpose string bound into derived Wazo refresh tokens.
const WAZO_REFRESH_PURPOSE: &str = "tessera/wazo-refresh-token/v1";

/// An access token just minted.
#[derive(Debug)]
pub struct MintedAccessToken {
    pub token: Secret,
    pub expires_at: i64,
}

/// What a new session records about where it comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub mobile: bool,
    pub user_agent: &'a str,
    pub remote_addr: &'a str,
}

/// A new row id for a session or a refresh token: a UUIDv7, time-ordered, so that the rows
/// and the indexes keyed by these ids (primary keys, `family_id`, `session_id`) grow at their
/// end instead of dirtying a random page per insert (docs/performance.md). Never a token:
/// token values stay fully random.
fn row_id() -> String {
    Uuid::now_v7().to_string()
}

/// Opens a session for a new grant; returns its id.
pub fn new_session(
    conn: &mut DbConnection,
    now: i64,
    client_id: &str,
    user: Option<&User>,
) -> Result<String, Error> {
    open_session(conn, now, Some(client_id), user, Origin::default())
}

/// Opens a session with its origin (Wazo logins record mobile, user agent and address).
pub fn open_session(
    conn: &mut DbConnection,
    now: i64,
    client_id: Option<&str>,
    user: Option<&User>,
    origin: Origin<'_>,
) -> Result<String, Error> {
    let session = session_record(now, client_id, user, origin);
    sessions::insert(conn, &session)?;
    Ok(session.id)
}

/// A new session's row, not written yet.
pub fn session_record(
    now: i64,
    client_id: Option<&str>,
    user: Option<&User>,
    origin: Origin<'_>,
) -> SessionRecord {
    SessionRecord {
        id: row_id(),
        user_id: user.map(|u| u.id.clone()),
        client_id: client_id.map(str::to_owned),
        tenant_uuid: user.map(|u| u.tenant_uuid.clone()),
        mobile: origin.mobile,
        user_agent: origin.user_agent.to_owned(),
        remote_addr: origin.remote_addr.to_owned(),
        created_at: now,
    }
}

/// What wazo-auth's metadata plugins say about a user (`default_user`, `default_internal`,
/// `default_external_api`): `pbx_user_uuid` only for purpose `user`.
pub fn user_metadata(user: &User, xivo_uuid: Option<&str>) -> Metadata {
    let text = |s: &str| Value::String(s.to_owned());
    let mut m = Metadata::new();
    m.insert("uuid".into(), text(&user.id));
    m.insert("tenant_uuid".into(), text(&user.tenant_uuid));
    m.insert("auth_id".into(), text(&user.id));
    m.insert(
        "pbx_user_uuid".into(),
        if user.purpose == "user" {
            text(&user.id)
        } else {
            Value::Null
        },
    );
    m.insert("xivo_uuid".into(), xivo_uuid.map_or(Value::Null, text));
    m.insert("purpose".into(), text(&user.purpose));
    m
}

/// What an access token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct Grantee<'a> {
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub session_id: &'a str,
    /// The refresh-token family the token descends from, if any.
    pub family_id: Option<&'a str>,
    pub metadata: &'a Metadata,
}

/// How access tokens are minted: opaque, or RFC 9068 JWTs.
#[derive(Debug, Clone, Copy)]
pub enum AccessFormat<'a> {
    Opaque,
    Jwt {
        signer: &'a JwtSigner,
        issuer: &'a str,
        audience: &'a str,
    },
}

/// The row key of a JWT access token: the digest of its `jti`, in a namespace no opaque token
/// can reach (a presented opaque token containing `:` is never looked up).
pub fn jwt_row_key(jti: &str) -> String {
    digest(&format!("jwt:{jti}"))
}

/// The row key of a presented access token: the digest of an opaque token, or of the `jti` of
/// a JWT that `jwt` signed. `None` = it cannot be one of ours (no lookup).
pub fn access_row_key(presented: &str, jwt: Option<&JwtSigner>) -> Option<String> {
    if presented.matches('.').count() == 2 {
        return jwt
            .and_then(|signer| signer.verify(presented))
            .map(|verified| jwt_row_key(&verified.jti));
    }
    // Opaque tokens are base64url or UUIDs; `jwt:` keys are out of their reach.
    (!presented.contains(':')).then(|| digest(presented))
}

/// Mints an OAuth2 access token with the policy's lifetime.
pub fn access_token(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    format: AccessFormat<'_>,
    to: Grantee<'_>,
    scopes: &ScopeSet,
) -> Result<MintedAccessToken, Error> {
    let (record, minted) = prepare_access_token(now, policy, format, to, scopes);
    tokens::insert(conn, &record)?;
    Ok(minted)
}

/// An OAuth2 access token with the policy's lifetime and its row, not written yet: minted
/// before the write transaction, so that signing and hashing stay out of the write lock.
pub fn prepare_access_token(
    now: i64,
    policy: &Policy,
    format: AccessFormat<'_>,
    to: Grantee<'_>,
    scopes: &ScopeSet,
) -> (AccessTokenRecord, MintedAccessToken) {
    access_token_row(
        now,
        Dialect::OAuth2,
        format,
        policy.access_token_expiry(now),
        to,
        &scopes.to_vec(),
    )
}

/// Mints an access token of `dialect` in `format` that expires at `expires_at`.
pub fn mint_access_token(
    conn: &mut DbConnection,
    now: i64,
    dialect: Dialect,
    format: AccessFormat<'_>,
    expires_at: i64,
    to: Grantee<'_>,
    scopes: &[String],
) -> Result<MintedAccessToken, Error> {
    let (record, minted) = access_token_row(now, dialect, format, expires_at, to, scopes);
    tokens::insert(conn, &record)?;
    Ok(minted)
}

/// An access token of `dialect` in `format` and the row that records it.
fn access_token_row(
    now: i64,
    dialect: Dialect,
    format: AccessFormat<'_>,
    expires_at: i64,
    to: Grantee<'_>,
    scopes: &[String],
) -> (AccessTokenRecord, MintedAccessToken) {
    let (token, hash) = match (format, dialect) {
        (
            AccessFormat::Jwt {
                signer,
                issuer,
                audience,
            },
            _,
        ) => {
            let jti = Uuid::new_v4().to_string();
            let token = signer.sign(&AccessClaims {
                iss: issuer,
                // RFC 9068 §2.2: the client itself when no resource owner is involved.
                sub: to.user_id.unwrap_or(to.client_id),
                aud: audience,
                client_id: to.client_id,
                scope: &scopes.join(" "),
                iat: now,
                exp: expires_at,
                jti: &jti,
            });
            (token, jwt_row_key(&jti))
        }
        (AccessFormat::Opaque, Dialect::OAuth2) => {
            let token = new_token();
            let hash = digest(token.expose());
            (token, hash)
        }
        (AccessFormat::Opaque, Dialect::Wazo) => {
            let token = Secret::new(Uuid::new_v4().to_string());
            let hash = digest(token.expose());
            (token, hash)
        }
    };
    let record = AccessTokenRecord {
        hash,
        session_id: to.session_id.to_owned(),
        user_id: to.user_id.map(str::to_owned),
        // A Wazo online login names no client.
        client_id: (!to.client_id.is_empty()).then(|| to.client_id.to_owned()),
        family_id: to.family_id.map(str::to_owned),
        dialect: dialect.as_str().to_owned(),
        scopes: scopes.to_vec(),
        issued_at: now,
        expires_at,
        revoked_at: None,
        metadata: to.metadata.clone(),
    };
    (record, MintedAccessToken { token, expires_at })
}

/// Mints the first refresh token of a new OAuth2 family; returns it and its family id.
pub fn start_refresh_family(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    to: Grantee<'_>,
    scopes: &ScopeSet,
) -> Result<(Secret, String), Error> {
    let token = new_token();
    let mut record = first_of_family(now, policy, Dialect::OAuth2, to.client_id, to.user_id);
    record.hash = digest(token.expose());
    record.session_id = Some(to.session_id.to_owned());
    record.scopes = scopes.to_vec();
    refresh_tokens::insert(conn, &record)?;
    Ok((token, record.family_id))
}

/// The first refresh token of a new family, without its digest yet.
fn first_of_family(
    now: i64,
    policy: &Policy,
    dialect: Dialect,
    client_id: &str,
    user_id: Option<&str>,
) -> RefreshTokenRecord {
    let id = row_id();
    RefreshTokenRecord {
        hash: String::new(),
        family_id: id.clone(),
        id,
        parent_id: None,
        generation: 0,
        client_id: client_id.to_owned(),
        user_id: user_id.map(str::to_owned),
        session_id: None,
        dialect: dialect.as_str().to_owned(),
        scopes: Vec::new(),
        issued_at: now,
        family_issued_at: now,
        expires_at: policy.refresh_token_expiry(now),
        last_used_at: None,
        consumed_at: None,
        revoked_at: None,
        mobile: false,
        metadata: Metadata::new(),
        retry_answer: None,
        retry_count: 0,
    }
}

/// The value of a Wazo refresh token: derived, never stored.
pub fn wazo_refresh_value(secret: &ServerSecret, record: &RefreshTokenRecord) -> Secret {
    secret.derive_uuid(
        WAZO_REFRESH_PURPOSE,
        &[
            record.user_id.as_deref().unwrap_or_default(),
            &record.client_id,
            &record.id,
        ],
    )
}

/// Mints the Wazo refresh token of a user for a client id (a new family). The caller has made
/// sure no live one exists; a concurrent login that wins the race makes this a `Conflict`.
pub fn start_wazo_refresh(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    secret: &ServerSecret,
    user: &User,
    client_id: &str,
    mobile: bool,
) -> Result<RefreshTokenRecord, Error> {
    let mut record = first_of_family(now, policy, Dialect::Wazo, client_id, Some(&user.id));
    record.mobile = mobile;
    record.hash = digest(wazo_refresh_value(secret, &record).expose());
    refresh_tokens::insert(conn, &record)?;
    Ok(record)
}

/// Mints the successor of a refresh token consumed by rotation: same family and scopes, next
/// generation, expiry as the policy says. A Wazo successor is derived like its parent.
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    now: i64,
    policy: &Policy,
    secret: &ServerSecret,
    parent: &RefreshTokenRecord,
) -> Result<Secret, Error> {
    let (record, token) = successor(now, policy, secret, parent);
    refresh_tokens::insert(conn, &record)?;
    Ok(token)
}

/// [`rotate_refresh_token`]'s token and row, not written yet.
pub fn successor(
    now: i64,
    policy: &Policy,
    secret: &ServerSecret,
    parent: &RefreshTokenRecord,
) -> (RefreshTokenRecord, Secret) {
    let mut record = RefreshTokenRecord {
        id: row_id(),
        hash: String::new(),
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
        expires_at: policy.rotated_refresh_token_expiry(
            now,
            parent.expires_at,
            parent.family_issued_at,
        ),
        last_used_at: None,
        consumed_at: None,
        revoked_at: None,
        mobile: parent.mobile,
        metadata: parent.metadata.clone(),
        retry_answer: None,
        retry_count: 0,
    };
    let token = if record.dialect == WAZO {
        wazo_refresh_value(secret, &record)
    } else {
        new_token()
    };
    record.hash = digest(token.expose());
    (record, token)
}
