//! The use cases, free of any HTTP dialect: token exchange (RFC 6749 §4.3, §4.4, §6),
//! revocation (RFC 7009) and introspection (RFC 7662), and the Wazo login, token validation and
//! refresh-token and session management (wazo-auth 0.1). Each runs synchronously on one pooled
//! connection, its writes in one transaction; the HTTP layer runs it in `web::block`.
pub mod acl;
pub mod client_auth;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod issuance;
pub mod login;
pub mod management;
pub mod revocation;
pub mod rotation;
pub mod scope;
pub mod service;
pub mod throttle;
pub mod validation;

pub use client_auth::{AuthScheme, ClientCredentials};
pub use error::{Credential, Error, RefreshTokenProblem};
pub use service::Service;
