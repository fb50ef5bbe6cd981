//! The resource owner password credentials grant (RFC 6749 §4.3). RFC 9700 §2.4 discourages
//! it, so a client must be registered for it. The brute-force limits (`oauth::throttle`, RFC
//! 6749 §4.3.2) admit the attempt before the user is looked up; argon2 runs without a database
//! connection held.
use crate::crypto::password::verify_password;
use crate::domain::{Client, GrantType, ScopeSet, Secret};
use crate::oauth::grants::IssuedTokens;
use crate::oauth::issuance::{self, Grantee};
use crate::oauth::{Error, Service, scope};
use crate::policy::Dialect;
use crate::store::{PooledConnection, users};

/// Runs the grant for `client`, authenticated on `conn`, for a request from `remote_addr`.
pub fn exchange(
    service: &Service,
    conn: PooledConnection,
    client: &Client,
    username: &str,
    password: &Secret,
    requested: Option<&ScopeSet>,
    remote_addr: &str,
) -> Result<IssuedTokens, Error> {
    let now = service.now();
    let (admission, mut conn) = service.admit_password(conn, username, remote_addr, now)?;
    let user = users::find_by_login(&mut conn, username)?;
    drop(conn);
    // Always one argon2 verification, known user or not, enabled or not.
    let verified = verify_password(
        user.as_ref().and_then(|u| u.password_hash.as_deref()),
        password.expose(),
    );
    let user = match user {
        Some(user) if verified && user.enabled => {
            service.password_verified(admission);
            user
        }
        _ => {
            service.password_rejected(admission);
            return Err(Error::InvalidUserCredentials);
        }
    };
    let scopes = scope::grant(requested, client, Some(&user))?;
    let policy = service.policy_for_client(Dialect::OAuth2, Some(&client.id));
    let format = service.access_format(&policy)?;
    let mut conn = service.store().conn()?;
    service.store().write(&mut conn, |conn| {
        let session_id = issuance::new_session(conn, now, &client.id, Some(&user))?;
        let metadata = issuance::user_metadata(&user, service.wazo().xivo_uuid.as_deref());
        let mut to = Grantee {
            client_id: &client.id,
            user_id: Some(&user.id),
            session_id: &session_id,
            family_id: None,
            metadata: &metadata,
        };
        // WSO2: a refresh token only when the client may use the refresh_token grant.
        let refresh = if client.allows(GrantType::RefreshToken) {
            Some(issuance::start_refresh_family(
                conn, now, &policy, to, &scopes,
            )?)
        } else {
            None
        };
        to.family_id = refresh.as_ref().map(|(_, family)| family.as_str());
        let access = issuance::access_token(conn, now, &policy, format, to, &scopes)?;
        Ok(IssuedTokens {
            access_token: access.token,
            expires_in: access.expires_at - now,
            refresh_token_minted: refresh.is_some(),
            refresh_token: refresh.map(|(token, _)| token),
            scope: scopes,
            replayed: false,
        })
    })
}
