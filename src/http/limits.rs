//! Limits on the request head, applied before routing (docs/security.md "Request limits").

/// Longest request target (path and query) accepted; a longer one is 414. It holds a
/// `/token/{token}` path with the longest token Tessera reads (8 KiB) and its query.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;
/// Largest header field (name and value) accepted: a bearer token of 8 KiB fits twice.
pub const MAX_HEADER_FIELD_BYTES: usize = 16 * 1024;
/// Largest total of all header fields (names and values).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields: actix-http's own HTTP/1 limit, applied to HTTP/2 as well.
pub const MAX_HEADER_FIELDS: usize = 96;

/// Why a request head is refused, if it is: 414 for the target, 431 for the header fields
/// (RFC 9110 §15.5.15, RFC 6585 §5). Under these sit actix-http's HTTP/1 limits (a 128 KiB
/// head and 96 fields, else 431; a 64 KiB target, else 400), which answer before this runs.
pub(crate) fn head_refusal(
    head: &actix_web::dev::RequestHead,
) -> Option<actix_web::http::StatusCode> {
    use actix_web::http::StatusCode;
    let target = head.uri.path().len() + head.uri.query().map_or(0, |q| q.len() + 1);
    if target > MAX_TARGET_BYTES {
        return Some(StatusCode::URI_TOO_LONG);
    }
    let (mut fields, mut total) = (0_usize, 0_usize);
    for (name, value) in head.headers() {
        let size = name.as_str().len() + value.len();
        fields += 1;
        total += size;
        if size > MAX_HEADER_FIELD_BYTES || total > MAX_HEADER_BYTES || fields > MAX_HEADER_FIELDS {
            return Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
    }
    None
}
