//! The client credentials grant (RFC 6749 §4.4): a token for the client itself, never a
//! refresh token (§4.4.3). Public clients cannot use it.
use crate::domain::Metadata;
use crate::domain::{Client, ScopeSet};
use crate::oauth::grants::IssuedTokens;
use crate::oauth::issuance::{self, Grantee};
use crate::oauth::{AuthScheme, Error, Service, scope};
use crate::policy::Dialect;
use crate::store::DbConnection;

pub fn exchange(
    service: &Service,
    conn: &mut DbConnection,
    client: &Client,
    requested: Option<&ScopeSet>,
) -> Result<IssuedTokens, Error> {
    if client.is_public() {
        return Err(Error::ClientAuthenticationFailed {
            scheme: AuthScheme::Body,
        });
    }
    let scopes = scope::grant(requested, client, None)?;
    let now = service.now();
    let policy = service.policy_for_client(Dialect::OAuth2, Some(&client.id));
    let format = service.access_format(&policy)?;
    service.store().write(conn, |conn| {
        let session_id = issuance::new_session(conn, now, &client.id, None)?;
        let to = Grantee {
            client_id: &client.id,
            user_id: None,
            session_id: &session_id,
            family_id: None,
            metadata: &Metadata::new(),
        };
        let access = issuance::access_token(conn, now, &policy, format, to, &scopes)?;
        Ok(IssuedTokens {
            access_token: access.token,
            expires_in: access.expires_at - now,
            refresh_token: None,
            scope: scopes,
            refresh_token_minted: false,
            replayed: false,
        })
    })
}
