//! The OAuth2 dialect: RFC 6749 token endpoint, RFC 7009 revocation, RFC 7662 introspection and
//! RFC 8414 metadata, with WSO2's behaviour where the RFCs leave room.
pub mod error;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod revoke;
pub mod token;

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};

/// A response builder with the no-store headers every OAuth2 answer carries (RFC 6749 §5.1).
pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"));
    builder
}

pub fn ok() -> actix_web::HttpResponseBuilder {
    no_store(HttpResponse::Ok())
}
