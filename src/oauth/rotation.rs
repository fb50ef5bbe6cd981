//! What happens when a refresh token that rotation already consumed comes back (DESIGN.md §6).
//!
//! - **Exact retry**: inside `reuse_grace` seconds and `reuse_grace_max` uses, replaying the
//!   immediately previous token (its successor is still the family's live token) answers the
//!   same tokens again. The refresh that consumed it sealed its answer under a key derived from
//!   the token itself (`crypto::seal`), so only a holder of that token can open it.
//! - **Reuse**: anything else revokes the whole family, refresh and access tokens, in its own
//!   committed transaction (the refresh's transaction is rolled back), and logs a security event
//!   naming the family and the client, never a token.
use serde::{Deserialize, Serialize};

use crate::crypto::seal;
use crate::domain::Secret;
use crate::oauth::{Error, Service};
use crate::policy::Policy;
use crate::store::refresh_tokens::RefreshTokenRecord;
use crate::store::{DbConnection, refresh_tokens, tokens};

/// The token values of a refresh answer, as sealed for a retry.
#[derive(Serialize, Deserialize)]
pub struct RetryAnswer {
    pub access_token: String,
    pub refresh_token: String,
}

impl std::fmt::Debug for RetryAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryAnswer(<redacted>)")
    }
}

/// Seals the answer of the refresh that consumed `parent`, if the policy allows retries.
pub fn keep_for_retry(
    conn: &mut DbConnection,
    policy: &Policy,
    parent: &RefreshTokenRecord,
    presented: &Secret,
    access_token: &Secret,
    refresh_token: &Secret,
) -> Result<(), Error> {
    if let Some(sealed) = seal_for_retry(policy, parent, presented, access_token, refresh_token)? {
        refresh_tokens::set_retry_answer(conn, &parent.id, &sealed)?;
    }
    Ok(())
}

/// The answer of the refresh that consumes `parent`, sealed for an exact retry, or `None` when
/// the policy allows no retry.
pub fn seal_for_retry(
    policy: &Policy,
    parent: &RefreshTokenRecord,
    presented: &Secret,
    access_token: &Secret,
    refresh_token: &Secret,
) -> Result<Option<String>, Error> {
    if policy.reuse_grace == 0 || policy.reuse_grace_max == 0 {
        return Ok(None);
    }
    let answer = RetryAnswer {
        access_token: access_token.expose().to_owned(),
        refresh_token: refresh_token.expose().to_owned(),
    };
    let plaintext = serde_json::to_vec(&answer).map_err(|e| Error::Internal(e.to_string()))?;
    seal::seal(presented.expose(), &parent.id, &plaintext)
        .map(Some)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// The answer a replay of the consumed `record` gets again, or `None` if the replay is reuse:
/// outside the grace window, past `reuse_grace_max` retries, an older generation (its
/// successor was itself rotated or revoked), or no sealed answer.
pub fn retry(
    conn: &mut DbConnection,
    policy: &Policy,
    record: &RefreshTokenRecord,
    presented: &Secret,
    now: i64,
) -> Result<Option<RetryAnswer>, Error> {
    let (Some(consumed_at), Some(sealed)) = (record.consumed_at, &record.retry_answer) else {
        return Ok(None);
    };
    if !policy.within_grace(consumed_at, now) {
        return Ok(None);
    }
    match refresh_tokens::find_child(conn, record)? {
        Some(child) if child.consumed_at.is_none() && child.revoked_at.is_none() => {}
        _ => return Ok(None),
    }
    if !refresh_tokens::claim_retry(conn, &record.id, policy.reuse_grace_max)? {
        return Ok(None);
    }
    Ok(seal::open(presented.expose(), &record.id, sealed)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Revokes every refresh and access token of a reused family, in its own transaction, and
/// logs the security event.
pub fn revoke_reused_family(
    service: &Service,
    conn: &mut DbConnection,
    record: &RefreshTokenRecord,
    detection: bool,
) -> Result<(), Error> {
    if !detection {
        log::info!(
            "consumed refresh token of family {} (client {}) presented again; \
             reuse detection is off for this client",
            record.family_id,
            record.client_id
        );
        return Ok(());
    }
    let now = service.now();
    let dialect = if record.dialect == crate::oauth::issuance::WAZO {
        "wazo"
    } else {
        "oauth2"
    };
    let (refresh, access) = service.store().write(conn, |conn| {
        let refresh = refresh_tokens::revoke_family(conn, &record.family_id, now)?;
        let access = tokens::revoke_family(conn, &record.family_id, now)?;
        Ok::<_, Error>((refresh, access))
    })?;
    service.count(|m| {
        m.refresh_reuse.with_label_values(&[dialect]).inc();
        let revoked = |kind| m.tokens_revoked.with_label_values(&[kind]);
        revoked("refresh").inc_by(refresh as u64);
        revoked("access").inc_by(access as u64);
    });
    log::warn!(
        target: "tessera::security",
        "refresh token reuse detected: family {} of client {} (user {}, generation {}) revoked: \
         {refresh} refresh and {access} access tokens",
        record.family_id,
        record.client_id,
        record.user_id.as_deref().unwrap_or("-"),
        record.generation,
    );
    Ok(())
}
