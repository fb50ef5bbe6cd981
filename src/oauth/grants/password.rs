//! The resource owner password credentials grant (RFC 6749 §4.3). RFC 9700 §2.4 discourages
//! it, so a client must be registered for it. argon2 runs without a database connection held.
use crate::crypto::password::verify_password;
use crate::domain::{Client, GrantType, ScopeSet, Secret};
use crate::oauth::grants::IssuedTokens;
use crate::oauth::issuance::{self, Grantee};
use crate::oauth::{Error, Service, scope};
use crate::policy::Dialect;
use crate::store::{connection, users};

pub fn exchange(
    service: &Service,
    client: &Client,
    username: &str,
    password: &Secret,
    requested: Option<&ScopeSet>,
) -> Result<IssuedTokens, Error> {
    let user = {
        let mut conn = service.store().conn()?;
        users::find_by_login(&mut conn, username)?
    };
    // Always one argon2 verification, known user or not, enabled or not.
    let verified = verify_password(
        user.as_ref().and_then(|u| u.password_hash.as_deref()),
        password.expose(),
    );
    let user = match user {
        Some(user) if verified && user.enabled => user,
        _ => return Err(Error::InvalidUserCredentials),
    };
    let scopes = scope::grant(requested, client, Some(&user))?;
    let now = service.now();
    let policy = service.policy_for_client(Dialect::OAuth2, Some(&client.id));
    let format = service.access_format(&policy)?;
    let mut conn = service.store().conn()?;
    connection::write(&mut conn, |conn| {
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
