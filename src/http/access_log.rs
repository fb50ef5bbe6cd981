//! The access log: one `info` record per request under the target `tessera::access`, with a
//! request id (also returned as `X-Request-Id`), the method, the route *pattern* (never the raw
//! path, which may hold a token), the status, the latency, and who the request acted for when a
//! handler recorded it ([`AccessSubject`]). Never a token, secret, password, `Authorization`
//! header or query string.
//!
//! Also the JSON log format (`[log] format = "json"`): every log record, access or not, as one
//! JSON object per line, the access fields as keys of their own.
use std::fmt;
use std::future::{Future, Ready, ready};
use std::io::Write as _;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage as _, HttpRequest, web};
use log::kv::{self, VisitSource, VisitValue};
use serde_json::{Map, Value};

use crate::clock::Stopwatch;
use crate::http::routes::RoutePattern;
use crate::http::{AppState, client_addr};
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::login::{LoginCredentials, LoginRequest};
use crate::oauth::service::GrantRequest;

/// The log target of access records.
pub const TARGET: &str = "tessera::access";

/// The request and response header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest request id taken from a client.
const MAX_REQUEST_ID: usize = 64;

/// The longest client id or user name written to an access record.
const MAX_SUBJECT: usize = 128;

/// Who a request acted for, as far as its handler knows: handlers insert it with
/// [`AccessSubject::record`]. Identifiers only, never a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSubject {
    pub client_id: Option<String>,
    pub user: Option<String>,
}

impl AccessSubject {
    /// Adds what is given to what the request already recorded (a later value wins). A value
    /// longer than 128 characters is cut.
    pub fn record(req: &HttpRequest, client_id: Option<&str>, user: Option<&str>) {
        let cut = |s: &str| s.chars().take(MAX_SUBJECT).collect::<String>();
        let mut extensions = req.extensions_mut();
        match extensions.get_mut::<AccessSubject>() {
            Some(subject) => {
                if let Some(c) = client_id {
                    subject.client_id = Some(cut(c));
                }
                if let Some(u) = user {
                    subject.user = Some(cut(u));
                }
            }
            None => {
                extensions.insert(AccessSubject {
                    client_id: client_id.map(cut),
                    user: user.map(cut),
                });
            }
        }
    }
}

/// The client a token request names, authenticated or not (yet): an identifier, not a secret.
pub fn client_of(credentials: &ClientCredentials) -> Option<&str> {
    match credentials {
        ClientCredentials::Basic { id, .. }
        | ClientCredentials::Post { id, .. }
        | ClientCredentials::Public { id } => Some(id),
        ClientCredentials::Absent => None,
    }
}

/// The login of a password grant. Record it only once the grant succeeded: people type their
/// password into the login field.
pub fn login_of(grant: &GrantRequest) -> Option<String> {
    match grant {
        GrantRequest::Password { username, .. } => Some(username.clone()),
        GrantRequest::ClientCredentials { .. } | GrantRequest::RefreshToken { .. } => None,
    }
}

/// The client id of a Wazo login: its refresh token's, or its offline access's.
pub fn wazo_client_of(request: &LoginRequest) -> Option<&str> {
    match &request.credentials {
        LoginCredentials::RefreshToken { client_id, .. } => Some(client_id),
        LoginCredentials::Password { .. } | LoginCredentials::None => {
            request.offline_client_id.as_deref()
        }
    }
}

/// The middleware: `App::new().wrap(AccessLog)`, outermost so that it times everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLog;

impl<S, B> Transform<S, ServiceRequest> for AccessLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = AccessLogService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AccessLogService { service }))
    }
}

pub struct AccessLogService<S> {
    service: S,
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for AccessLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let id = request_id(req.headers());
        // Formatting is skipped altogether when the line would be dropped.
        let watch = log::log_enabled!(target: TARGET, log::Level::Info).then(Stopwatch::start);
        // The request cannot be kept aside (a clone would stop the router from writing the
        // path's parameters into it): only the response knows it again.
        let call = self.service.call(req);
        Box::pin(async move {
            match call.await {
                Ok(mut res) => {
                    if let Some(watch) = watch {
                        write_line(res.request(), &id, res.status().as_u16(), watch);
                    }
                    res.headers_mut()
                        .insert(HeaderName::from_static(REQUEST_ID), id);
                    Ok(res)
                }
                // An error out of a middleware below, which none of ours returns (handlers'
                // errors, and CORS refusals, are responses by now): logged with the status
                // it will be answered with, but without a request to attach the header to.
                Err(e) => {
                    if let Some(watch) = watch {
                        log_record(&Line {
                            id: id.to_str().unwrap_or("-"),
                            method: "-",
                            route: "-",
                            status: e.as_response_error().status_code().as_u16(),
                            latency_ms: latency_ms(watch),
                            client_id: None,
                            user: None,
                            remote: None,
                        });
                    }
                    Err(e)
                }
            }
        })
    }
}

/// The client's `X-Request-Id` if well-formed (1 to 64 of `[A-Za-z0-9._-]`), else a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| is_valid_request_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id)
}

fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A per-process random prefix and a counter: unique without a system call per request.
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| rand::random::<u64>() & 0xffff_ffff_ffff);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{prefix:012x}-{n:08x}"))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// One access line's fields.
struct Line<'a> {
    id: &'a str,
    method: &'a str,
    route: &'a str,
    status: u16,
    latency_ms: f64,
    client_id: Option<&'a str>,
    user: Option<&'a str>,
    remote: Option<&'a str>,
}

fn latency_ms(watch: Stopwatch) -> f64 {
    (watch.elapsed_secs() * 1_000_000.0).round() / 1000.0
}

fn write_line(req: &HttpRequest, id: &HeaderValue, status: u16, watch: Stopwatch) {
    let latency_ms = latency_ms(watch);
    let route = match RoutePattern::of(req) {
        Some(route) => route.into_owned().pattern,
        None => redact_path(req.path()),
    };
    // The address the brute-force limits see: the peer, or the client a trusted proxy names.
    let remote = match req.app_data::<web::Data<AppState>>() {
        Some(state) => client_addr::remote_addr(req, &state.trusted_proxies),
        None => req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
    };
    let extensions = req.extensions();
    let subject = extensions.get::<AccessSubject>();
    log_record(&Line {
        id: id.to_str().unwrap_or("-"),
        method: req.method().as_str(),
        route: &route,
        status,
        latency_ms,
        client_id: subject.and_then(|s| s.client_id.as_deref()),
        user: subject.and_then(|s| s.user.as_deref()),
        remote: (!remote.is_empty()).then_some(remote.as_str()),
    });
}

fn log_record(line: &Line<'_>) {
    log::info!(
        target: TARGET,
        request_id = line.id,
        method = line.method,
        route = line.route,
        status = line.status,
        latency_ms = line.latency_ms,
        client_id = line.client_id,
        user = line.user,
        remote = line.remote;
        "{} \"{} {}\" {} {:.3}ms request_id={} client_id={} user={}",
        line.remote.unwrap_or("-"),
        line.method,
        line.route,
        line.status,
        line.latency_ms,
        line.id,
        Safe(line.client_id),
        Safe(line.user),
    );
}

/// A value a client chose, written as is when it is plain, quoted and escaped otherwise, so
/// that it cannot forge a line or a field.
struct Safe<'a>(Option<&'a str>);

impl fmt::Display for Safe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(s)
                if !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+' | ':')
                    }) =>
            {
                f.write_str(s)
            }
            Some(s) => write!(f, "{s:?}"),
        }
    }
}

/// The form of a path no route matched: a segment after `token` becomes `{token}`, and any
/// segment that is long (over 24 characters) or not plain (`[A-Za-z0-9._-]`) becomes `{…}`,
/// since it may be a credential sent to a wrong path. At most 16 segments are kept.
pub fn redact_path(path: &str) -> String {
    const MAX_SEGMENTS: usize = 16;
    const MAX_SEGMENT: usize = 24;
    let mut out = String::with_capacity(path.len().min(256));
    let mut after_token = false;
    for (i, segment) in path.split('/').enumerate() {
        if i > MAX_SEGMENTS {
            out.push_str("/…");
            break;
        }
        if i > 0 {
            out.push('/');
        }
        let plain = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if after_token && !segment.is_empty() {
            out.push_str("{token}");
        } else if plain && segment.len() <= MAX_SEGMENT {
            out.push_str(segment);
        } else {
            out.push_str("{…}");
        }
        after_token = segment == "token";
    }
    out
}

/// `[log] format = "json"`: one JSON object per record, `ts`, `level`, `target`, `message`,
/// then the record's key-values (an access line's fields).
pub fn write_json(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let mut object = Map::new();
    object.insert(
        "ts".into(),
        Value::String(buf.timestamp_millis().to_string()),
    );
    object.insert("level".into(), Value::String(record.level().to_string()));
    object.insert("target".into(), Value::String(record.target().to_owned()));
    object.insert("message".into(), Value::String(record.args().to_string()));
    let mut fields = Fields(&mut object);
    // A key-value that cannot be read is left out rather than losing the record.
    let _ = record.key_values().visit(&mut fields);
    serde_json::to_writer(&mut *buf, &Value::Object(object))?;
    buf.write_all(b"\n")
}

/// Collects a record's key-values into the JSON object.
struct Fields<'a>(&'a mut Map<String, Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let mut json = Json(Value::Null);
        value.visit(&mut json)?;
        self.0.insert(key.as_str().to_owned(), json.0);
        Ok(())
    }
}

/// One key-value as JSON: numbers, booleans and null as such, anything else as a string.
struct Json(Value);

impl<'v> VisitValue<'v> for Json {
    fn visit_any(&mut self, value: kv::Value<'_>) -> Result<(), kv::Error> {
        self.0 = Value::String(value.to_string());
        Ok(())
    }

    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.0 = Value::Null;
        Ok(())
    }

    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.0 = Value::from(value);
        Ok(())
    }

    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.0 = Value::from(value);
        Ok(())
    }

    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        // NaN and infinities have no JSON form: null.
        self.0 = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        Ok(())
    }

    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.0 = Value::Bool(value);
        Ok(())
    }

    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.0 = Value::String(value.to_owned());
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failing test stops at the unwrap")]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    use super::{REQUEST_ID, Safe, redact_path, request_id};

    #[test]
    fn token_paths_are_redacted() {
        assert_eq!(redact_path("/0.1/token/abc-def"), "/0.1/token/{token}");
        assert_eq!(
            redact_path("/api/auth/0.1/token/abc/scopes/check"),
            "/api/auth/0.1/token/{token}/scopes/check"
        );
        assert_eq!(redact_path("/oauth2/token"), "/oauth2/token");
        assert_eq!(redact_path("/"), "/");
    }

    #[test]
    fn long_or_unusual_segments_of_unmatched_paths_are_redacted() {
        assert_eq!(
            redact_path("/0.1/tokens/0f8fad5b-d9cb-469f-a165-70867728950e/x"),
            "/0.1/tokens/{…}/x"
        );
        assert_eq!(redact_path("/a%20b/c"), "/{…}/c");
        let deep = "/a".repeat(40);
        assert_eq!(redact_path(&deep), format!("{}/…", "/a".repeat(16)));
    }

    fn headers(id: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(REQUEST_ID),
            HeaderValue::from_str(id).unwrap(),
        );
        map
    }

    #[test]
    fn a_well_formed_request_id_is_kept_and_any_other_replaced() {
        assert_eq!(request_id(&headers("abc-1.2_3")), "abc-1.2_3");
        let longest = "a".repeat(64);
        assert_eq!(request_id(&headers(&longest)), longest.as_str());
        for bad in ["a".repeat(65), "a b".into(), "a/b".into(), String::new()] {
            let id = request_id(&headers(&bad));
            assert_ne!(id, bad.as_str());
            assert!(super::is_valid_request_id(id.as_bytes()), "{id:?}");
        }
        let (a, b) = (request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_ne!(a, b);
        assert_eq!(a.len(), 21, "{a:?}");
    }

    #[test]
    fn client_chosen_values_cannot_forge_fields() {
        assert_eq!(Safe(Some("app-1")).to_string(), "app-1");
        assert_eq!(Safe(None).to_string(), "-");
        assert_eq!(Safe(Some("")).to_string(), "\"\"");
        assert_eq!(
            Safe(Some("x user=admin\nforged")).to_string(),
            "\"x user=admin\\nforged\""
        );
    }
}
