//! The refresh token grant (RFC 6749 §6). One write transaction: look the token up by digest,
//! check client binding (§10.4), state and the policy's deadlines (expiry, idle timeout, family
//! max age), then either consume it and mint a successor (rotation on) or record its use
//! (rotation off), and mint an access token. The consuming update is conditional, so of several
//! concurrent refreshes exactly one wins; the others are replays of a consumed token, which are
//! exact retries or reuse (`oauth::rotation`).
use crate::crypto::token::digest;
use crate::domain::{Client, Metadata, ScopeSet, Secret};
use crate::oauth::grants::IssuedTokens;
use crate::oauth::issuance::{self, Grantee, OAUTH2, Origin};
use crate::oauth::rotation::{self, RetryAnswer};
use crate::oauth::{Error, RefreshTokenProblem as Problem, Service, scope};
use crate::policy::{Dialect, Policy};
use crate::store::refresh_tokens::RefreshTokenRecord;
use crate::store::sessions::SessionRecord;
use crate::store::{DbConnection, refresh_tokens, sessions, tokens, users};

/// How the write transaction ended.
enum Outcome {
    Issued(IssuedTokens),
    /// A consumed token was replayed outside the grace rules: revoke its family.
    Reused(Box<RefreshTokenRecord>),
}

pub fn exchange(
    service: &Service,
    conn: &mut DbConnection,
    client: &Client,
    presented: &Secret,
    requested: Option<&ScopeSet>,
) -> Result<IssuedTokens, Error> {
    let now = service.now();
    let policy = service.policy_for_client(Dialect::OAuth2, Some(&client.id));
    let hash = digest(presented.expose());
    let format = service.access_format(&policy)?;
    let invalid = |p| Error::InvalidRefreshToken(p);

    // Everything that only reads or computes happens before the write transaction, on this
    // request's own connection: SQLite has one writer, and its lock is held for the writes
    // alone. The consuming update is conditional, so a token consumed or revoked meanwhile is
    // caught there.
    let current = refresh_tokens::find_by_hash(conn, &hash)?
        .filter(|t| t.dialect == OAUTH2)
        .ok_or(invalid(Problem::Unknown))?;
    if current.client_id != client.id {
        return Err(invalid(Problem::OtherClient));
    }
    if current.revoked_at.is_some() {
        return Err(invalid(Problem::Revoked));
    }
    let outcome = if current.consumed_at.is_some() {
        service.store().write(conn, |conn| {
            let current =
                refresh_tokens::find_by_hash(conn, &hash)?.ok_or(invalid(Problem::Unknown))?;
            replay(service, conn, &policy, current, presented, now)
        })?
    } else {
        if !policy.refresh_usable(current.times(), now) {
            return Err(invalid(Problem::Expired));
        }
        let metadata = match &current.user_id {
            Some(user_id) => match users::find_by_id(conn, user_id)? {
                Some(user) if user.enabled => {
                    issuance::user_metadata(&user, service.wazo().xivo_uuid.as_deref())
                }
                _ => return Err(invalid(Problem::UserDisabled)),
            },
            None => Metadata::new(),
        };
        let original = ScopeSet::from_list(current.scopes.iter().cloned());
        let scopes = scope::narrow(requested, &original)?;
        let successor = policy
            .rotate_refresh_tokens
            .then(|| issuance::successor(now, &policy, service.secret(), &current));
        let new_session = current
            .session_id
            .is_none()
            .then(|| issuance::session_record(now, Some(&client.id), None, Origin::default()));
        let session_id = match (&current.session_id, &new_session) {
            (Some(id), _) | (None, Some(SessionRecord { id, .. })) => id.as_str(),
            (None, None) => "",
        };
        let to = Grantee {
            client_id: &client.id,
            user_id: current.user_id.as_deref(),
            session_id,
            family_id: Some(&current.family_id),
            metadata: &metadata,
        };
        let (access_row, access) =
            issuance::prepare_access_token(now, &policy, format, to, &scopes);
        let sealed = match &successor {
            Some((_, next)) => {
                rotation::seal_for_retry(&policy, &current, presented, &access.token, next)?
            }
            None => None,
        };
        service.store().write(conn, |conn| {
            match &successor {
                Some((row, _)) => {
                    if !refresh_tokens::consume(conn, &current.id, now, sealed.as_deref())? {
                        // Consumed (or revoked) since it was read: a replay now, or refused.
                        let current = refresh_tokens::find_by_hash(conn, &hash)?
                            .ok_or(invalid(Problem::Unknown))?;
                        if current.consumed_at.is_none() || current.revoked_at.is_some() {
                            return Err(invalid(Problem::Revoked));
                        }
                        return replay(service, conn, &policy, current, presented, now);
                    }
                    refresh_tokens::insert(conn, row)?;
                }
                None => {
                    if !refresh_tokens::touch(conn, &current.id, now)? {
                        return Err(invalid(Problem::Revoked));
                    }
                }
            }
            if let Some(session) = &new_session {
                sessions::insert(conn, session)?;
            }
            tokens::insert(conn, &access_row)?;
            Ok(Outcome::Issued(IssuedTokens {
                access_token: access.token.clone(),
                expires_in: access.expires_at - now,
                refresh_token: Some(match &successor {
                    Some((_, next)) => next.clone(),
                    None => presented.clone(),
                }),
                scope: scopes.clone(),
                refresh_token_minted: successor.is_some(),
                replayed: false,
            }))
        })?
    };
    match outcome {
        Outcome::Issued(tokens) => Ok(tokens),
        Outcome::Reused(record) => {
            rotation::revoke_reused_family(service, conn, &record, policy.reuse_detection)?;
            Err(Error::InvalidRefreshToken(if policy.reuse_detection {
                Problem::Reused
            } else {
                Problem::Consumed
            }))
        }
    }
}

/// A consumed token presented again: the sealed answer inside the grace rules, else reuse.
fn replay(
    service: &Service,
    conn: &mut DbConnection,
    policy: &Policy,
    record: RefreshTokenRecord,
    presented: &Secret,
    now: i64,
) -> Result<Outcome, Error> {
    let Some(answer) = rotation::retry(conn, policy, &record, presented, now)? else {
        return Ok(Outcome::Reused(Box::new(record)));
    };
    let RetryAnswer {
        access_token,
        refresh_token,
    } = answer;
    // The access token of the first answer, unless it was revoked or expired since.
    let key = service
        .access_token_key(&access_token)
        .ok_or(Error::InvalidRefreshToken(Problem::Revoked))?;
    let access = tokens::find(conn, &key)?
        .filter(|t| t.is_active(now))
        .ok_or(Error::InvalidRefreshToken(Problem::Revoked))?;
    Ok(Outcome::Issued(IssuedTokens {
        access_token: Secret::new(access_token),
        expires_in: access.expires_at - now,
        refresh_token: Some(Secret::new(refresh_token)),
        scope: ScopeSet::from_list(access.scopes),
        refresh_token_minted: false,
        replayed: true,
    }))
}
