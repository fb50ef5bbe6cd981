//! Reading request bodies with a size and a time limit, and choosing the parser from the
//! content type.
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

use crate::http::params::Params;
use crate::oauth::Error;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Invalid(Error),
}

impl From<Error> for BodyError {
    fn from(e: Error) -> Self {
        BodyError::Invalid(e)
    }
}

/// How long a body may take to arrive, from the moment it is first awaited. actix-web bounds
/// the time to receive a request's head, not its body: without this, a client that announces a
/// body and stalls (or trickles it) holds its connection and the request for ever.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads at most `limit` bytes; a larger body (announced or actual) is `TooLarge`, and a body
/// that has not fully arrived within [`BODY_TIMEOUT`] is malformed.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    tokio::time::timeout(BODY_TIMEOUT, collect(payload, limit))
        .await
        .unwrap_or(Err(BodyError::Invalid(Error::MalformedRequest(
            "the request body did not arrive in time",
        ))))
}

/// The body's chunks, up to `limit` bytes in all.
async fn collect(mut payload: web::Payload, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| Error::MalformedRequest("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Whether the request declares a JSON body.
pub fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.to_ascii_lowercase().ends_with("+json")
        })
}

/// Parses the body as JSON when declared so, else as a form.
pub fn params(req: &HttpRequest, body: &[u8]) -> Result<Params, Error> {
    if is_json(req) {
        Params::from_json(body)
    } else {
        Params::from_form(body)
    }
}
