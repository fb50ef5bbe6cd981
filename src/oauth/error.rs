//! What went wrong in a use case, in domain terms. Each dialect maps every variant to its wire
//! format with an exhaustive match (`http/oauth2/error.rs`).
use crate::oauth::AuthScheme;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required parameter is absent (RFC 6749 §5.2 `invalid_request`).
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// A parameter appears more than once (RFC 6749 §3.2).
    #[error("repeated parameter")]
    RepeatedParameter,
    /// The request cannot be parsed; the text is a fixed, safe description.
    #[error("malformed request: {0}")]
    MalformedRequest(&'static str),
    /// A secret or token was sent in the query string (RFC 6749 §2.3.1).
    #[error("sensitive data in the URL")]
    SensitiveDataInUrl,
    /// The client used more than one authentication method (RFC 6749 §2.3).
    #[error("more than one client authentication method")]
    MultipleClientAuthentication,
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// The client could not be authenticated; `scheme` is how it tried.
    #[error("client authentication failed")]
    ClientAuthenticationFailed { scheme: AuthScheme },
    /// The client is not registered for this grant type.
    #[error("client not authorized for this grant type")]
    GrantNotAllowed,
    /// Wrong username or password, unknown or disabled user.
    #[error("invalid resource owner credentials")]
    InvalidUserCredentials,
    #[error("refresh token unusable: {0:?}")]
    InvalidRefreshToken(RefreshTokenProblem),
    /// The requested scope exceeds what the client, the user or the original grant allows.
    #[error("invalid scope")]
    InvalidScope,
    /// A client tried to revoke a token issued to another client (RFC 7009 §2.1).
    #[error("token issued to another client")]
    TokenOfAnotherClient,
    /// A bearer token presented to authorize the call is unknown, expired or revoked.
    #[error("invalid bearer token")]
    InvalidBearerToken,
    /// A valid bearer token lacks the ACL entry the operation needs.
    #[error("missing access {0}")]
    InsufficientAccess(String),
    /// Too many recent failures for this login, source address or client id (`[security]`):
    /// refused without checking the credentials. The next attempt may be checked in
    /// `retry_after` seconds.
    #[error("too many failed attempts; retry after {retry_after} s")]
    TooManyFailures {
        credential: Credential,
        retry_after: i64,
    },
    /// A user already holds the most live sessions allowed (wazo-auth 429).
    #[error("session limit reached for user {0}")]
    SessionLimitReached(String),
    /// The token to validate is unknown, expired or revoked (wazo-auth 404 `No such token`).
    #[error("no such token")]
    NoSuchToken,
    /// The token to validate lacks the ACL entry asked for (`?scope=`).
    #[error("token lacks {0}")]
    ScopeDenied(String),
    /// The token's user may not act in this tenant (`?tenant=`).
    #[error("token not valid for tenant {0}")]
    TenantDenied(String),
    /// The `Wazo-Tenant` header names a tenant outside the caller's.
    #[error("unauthorized tenant {0}")]
    UnauthorizedTenant(String),
    /// No such user, or not visible from the caller's tenant.
    #[error("no such user {0}")]
    UnknownUser(String),
    /// The user holds no refresh token for this client id.
    #[error("no refresh token for client id {0}")]
    UnknownClientRefreshToken(String),
    /// A concurrent request wrote the same unique row first; retrying will succeed.
    #[error("concurrent update")]
    Conflict,
    /// The database is unreachable or the pool is exhausted: try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A fault on our side (a query failed, a row is corrupt).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The credentials a brute-force limit refused to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A user's password (OAuth2 `invalid_grant`).
    Password,
    /// A client's secret, presented with this scheme (OAuth2 `invalid_client`).
    ClientSecret(AuthScheme),
}

/// Why a refresh token was refused (all are `invalid_grant` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenProblem {
    Unknown,
    Expired,
    Revoked,
    /// Already used under rotation (or lost a concurrent refresh), reuse detection off.
    Consumed,
    /// Already used under rotation and presented again outside the grace: its family was
    /// revoked.
    Reused,
    /// Issued to another client (RFC 6749 §10.4).
    OtherClient,
    /// Its user was disabled or deleted.
    UserDisabled,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) | StoreError::Connect(m) => Error::Unavailable(m),
            StoreError::Conflict => Error::Conflict,
            other => Error::Internal(other.to_string()),
        }
    }
}
