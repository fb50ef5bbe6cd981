//! Client authentication (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, or a
//! public client naming itself with `client_id` alone. Secrets are compared as SHA-256 digests
//! in constant time.
use crate::crypto::token::{digest, digest_matches};
use crate::domain::{Client, Secret};
use crate::oauth::Error;
use crate::store::{DbConnection, clients};

/// How a request presented its client, as parsed at the edge.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// `Authorization: Basic` with the form-urlencoded id and secret.
    Basic { id: String, secret: Secret },
    /// `client_id` and `client_secret` in the body.
    Post { id: String, secret: Secret },
    /// `client_id` alone: a public client.
    Public { id: String },
    /// Nothing identifies a client.
    Absent,
}

/// The scheme a failed authentication used; the HTTP layer answers `WWW-Authenticate` to Basic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    Basic,
    Body,
    None,
}

impl ClientCredentials {
    pub fn scheme(&self) -> AuthScheme {
        match self {
            ClientCredentials::Basic { .. } => AuthScheme::Basic,
            ClientCredentials::Post { .. } | ClientCredentials::Public { .. } => AuthScheme::Body,
            ClientCredentials::Absent => AuthScheme::None,
        }
    }
}

/// Authenticates the client. A confidential client must present its secret; a public client
/// may only name itself.
pub fn authenticate(conn: &mut DbConnection, creds: &ClientCredentials) -> Result<Client, Error> {
    let failed = Error::ClientAuthenticationFailed {
        scheme: creds.scheme(),
    };
    let (id, secret) = match creds {
        ClientCredentials::Basic { id, secret } | ClientCredentials::Post { id, secret } => {
            (id, Some(secret))
        }
        ClientCredentials::Public { id } => (id, None),
        ClientCredentials::Absent => return Err(failed),
    };
    let client = clients::find(conn, id)?;
    match (client, secret) {
        (Some(client), Some(secret)) => match &client.secret_hash {
            Some(expected) if digest_matches(expected, secret.expose()) => Ok(client),
            _ => Err(failed),
        },
        (Some(client), None) if client.is_public() => Ok(client),
        (None, Some(secret)) => {
            // Same work as for a known client, so timing does not reveal which ids exist.
            let _ = digest_matches(&digest(""), secret.expose());
            Err(failed)
        }
        _ => Err(failed),
    }
}
