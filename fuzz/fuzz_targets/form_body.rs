//! Form bodies (`application/x-www-form-urlencoded`, RFC 6749 Appendix B, §3.2): the strict
//! parser `Params::from_form`, one component's decoding, the refusal of secrets in the query
//! string (§2.3.1), and the size-limited body reader with honest and lying `Content-Length`.
//!
//! Input: the raw body (also read as a query string when it is UTF-8).
#![no_main]

use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::test::TestRequest;
use actix_web::web::Bytes;
use futures_util::Stream;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tessera::fuzzing::{
    BodyError, MAX_PARAMS, Params, decode_component, read_body, reject_sensitive_query,
};
use tessera::oauth::Error;

mod request;
use request::with_request;

fuzz_target!(|data: &[u8]| {
    form(data);
    if let Ok(text) = std::str::from_utf8(data) {
        query(text);
    }
    size_limits(data);
});

/// Percent-encodes every byte but ASCII letters and digits: a component any form parser reads
/// back as `s`.
fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn form(data: &[u8]) {
    let parsed = Params::from_form(data);
    // The pairs as the grammar reads them: `&`-separated, empty pairs skipped, split on the
    // first `=`.
    let pairs: Vec<&[u8]> = data
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .collect();
    let decoded: Vec<Result<(String, String), Error>> = pairs
        .iter()
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode_component(parts.next().unwrap_or_default())?;
            let value = decode_component(parts.next().unwrap_or_default())?;
            Ok((name, value))
        })
        .collect();

    for component in data.split(|b| *b == b'&' || *b == b'=') {
        if let Ok(text) = decode_component(component) {
            // Decoding is undone by encoding.
            let again = decode_component(encode(&text).as_bytes());
            assert_eq!(again.ok().as_deref(), Some(text.as_str()));
        }
        // Bytes without `%` and `+` decode to themselves.
        if !component.contains(&b'%') && !component.contains(&b'+') {
            assert_eq!(
                decode_component(component).ok().as_deref(),
                std::str::from_utf8(component).ok()
            );
        }
    }

    match parsed {
        Ok(params) => {
            assert!(pairs.len() <= MAX_PARAMS, "more than MAX_PARAMS accepted");
            let mut names = std::collections::HashSet::new();
            let mut canonical = Vec::new();
            for pair in &decoded {
                let Ok((name, value)) = pair else {
                    panic!("a pair that does not decode was accepted: {pair:?}");
                };
                assert!(names.insert(name.clone()), "repeated {name:?} accepted");
                // Empty values are absent (RFC 6749 §3.2); others are kept exactly.
                let expected = Some(value.as_str()).filter(|v| !v.is_empty());
                assert_eq!(params.get(name), expected, "value of {name:?}");
                canonical.push(format!("{}={}", encode(name), encode(value)));
            }
            // The parsed parameters, written back as a canonical form, parse to the same.
            let reparsed = Params::from_form(canonical.join("&").as_bytes());
            assert_eq!(reparsed.ok(), Some(params.clone()));
            // Empty pairs (`&&`) mean nothing.
            let mut padded = b"&&".to_vec();
            padded.extend_from_slice(data);
            padded.extend_from_slice(b"&");
            assert_eq!(Params::from_form(&padded).ok(), Some(params));
        }
        Err(Error::RepeatedParameter) => {
            let names: Vec<&str> = decoded
                .iter()
                .filter_map(|p| p.as_ref().ok())
                .map(|(n, _)| n.as_str())
                .collect();
            let distinct: std::collections::HashSet<&str> = names.iter().copied().collect();
            assert!(
                distinct.len() < names.len(),
                "RepeatedParameter without a repeat"
            );
        }
        Err(Error::MalformedRequest(_)) => {
            assert!(
                decoded.iter().any(Result::is_err) || pairs.len() > MAX_PARAMS,
                "MalformedRequest for a well-formed body of {} pairs",
                pairs.len()
            );
        }
        Err(other) => panic!("unexpected error from the form parser: {other:?}"),
    }
}

fn query(text: &str) {
    let verdict = reject_sensitive_query(text);
    assert!(matches!(verdict, Ok(()) | Err(Error::SensitiveDataInUrl)));
    // A secret anywhere, however spelled, is refused whatever comes before it.
    for secret in ["client_secret=x", "refresh%5Ftoken=x", "password", "code=1"] {
        assert!(reject_sensitive_query(&format!("{text}&{secret}")).is_err());
    }
    // A harmless parameter changes nothing.
    assert_eq!(
        reject_sensitive_query(&format!("{text}&scope=a")).is_ok(),
        verdict.is_ok()
    );
}

/// A request body as a stream of chunks, as the server receives it.
type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

fn size_limits(data: &[u8]) {
    let len = data.len();
    let limits = [0, len.saturating_sub(1), len, len + 1, 1 << 20];
    // No header (chunked), the true length, a length that overstates, one that understates.
    let announced = [None, Some(len), Some(len + 1), Some(len.saturating_sub(1))];
    // One chunk, and chunks of 1 + len % 7 bytes (the limit is checked as they arrive).
    let chunk_sizes = [len.max(1), 1 + len % 7];
    for limit in limits {
        for header in announced {
            for size in chunk_sizes {
                let mut request = TestRequest::post();
                if let Some(n) = header {
                    request = request.insert_header((CONTENT_LENGTH, n.to_string()));
                }
                let chunks: Vec<Result<Bytes, PayloadError>> = data
                    .chunks(size)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                let chunks: Chunks = Box::pin(futures_util::stream::iter(chunks));
                let data = data.to_vec();
                with_request(
                    request,
                    Some(Payload::from(chunks)),
                    move |req, payload| async move {
                        let too_large = len > limit || header.is_some_and(|n| n > limit);
                        match read_body(&req, payload, limit).await {
                            Ok(body) => {
                                assert!(!too_large, "{len} bytes read under a limit of {limit}");
                                assert_eq!(&body[..], &data[..]);
                            }
                            Err(BodyError::TooLarge) => {
                                assert!(too_large, "{len} bytes refused under a limit of {limit}")
                            }
                            Err(BodyError::Invalid(e)) => {
                                panic!("reading a test payload failed: {e:?}")
                            }
                        }
                    },
                );
            }
        }
    }
}
