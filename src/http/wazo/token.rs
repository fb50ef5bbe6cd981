//! `POST {wazo}/token` (wazo-auth `createToken`, wazo-contract §1.3): Basic `login:password`
//! or a refresh token with its client id, a JSON body read whatever the `Content-Type`.
use actix_web::http::header::{CACHE_CONTROL, HeaderMap, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::domain::Secret;
use crate::http::access_log::{self, AccessSubject};
use crate::http::{AppState, body, client_addr, credentials};
use crate::oauth::login::{LoginCredentials, LoginRequest};
use crate::policy::MAX_TTL;

use super::error::TokenError;
use super::wire::{self, Py};

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let at = state.service.now_precise();
    match create_inner(req, payload, &state).await {
        Ok(response) => response,
        Err(e) => e.render(at),
    }
}

async fn create_inner(
    req: HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, TokenError> {
    super::reject_sensitive_query(&req)?;
    let body = body::read(&req, payload, state.max_body_bytes).await?;
    respond(&req, &body, state).await
}

/// Answers a Wazo login whose body is already read (also used by `/token` for JSON bodies
/// without `grant_type`).
pub async fn respond(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<HttpResponse, TokenError> {
    let fields = parse_body(body)?;
    let request = login_request(
        req,
        fields,
        client_addr::remote_addr(req, &state.trusted_proxies),
    )?;
    AccessSubject::record(req, access_log::wazo_client_of(&request), None);
    let login = state.run(move |s| s.login(request)).await?;
    AccessSubject::record(req, None, Some(&login.token.auth_id));
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("Wazo-Sessions-Revoked", login.sessions_revoked.to_string()))
        .json(json!({
            "data": wire::token_data(&login.token, login.refresh_token.as_ref(), true)
        })))
}

/// `request.get_json(force=True)`: an empty or unparsable body is format C; `null` and `[]`
/// count as `{}`; an object of more than `MAX_PARAMS` members is refused.
fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, TokenError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| TokenError::NotUnderstood)?;
    match value {
        Value::Object(map) => {
            super::check_field_count(map.len())?;
            Ok(map)
        }
        Value::Null => Ok(serde_json::Map::new()),
        Value::Array(a) if a.is_empty() => Ok(serde_json::Map::new()),
        _ => Err(TokenError::Invalid(Py::field_error(
            "_schema",
            Py::str("Invalid input type."),
        ))),
    }
}

/// The body fields after marshmallow's field validation.
#[derive(Debug, Default)]
struct Fields {
    expiration: Option<i64>,
    offline: bool,
    client_id: Option<String>,
    refresh_token: Option<String>,
    tenant_id: Option<String>,
    domain_name: Option<String>,
    saml_session_id: Option<String>,
}

fn xivo_constraint(id: &str, constraint: Py, message: &str) -> Py {
    Py::Dict(vec![
        (Py::str("constraint_id"), Py::str(id)),
        (Py::str("constraint"), constraint),
        (Py::str("message"), Py::str(message)),
    ])
}

/// marshmallow's non-strict `Integer`: integers, floats (truncated) and numeric strings.
fn integer(value: &Value) -> Result<i64, &'static str> {
    match value {
        Value::Null => Err("Field may not be null."),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            })
            .ok_or("Not a valid integer."),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| "Not a valid integer."),
        _ => Err("Not a valid integer."),
    }
}

fn string(value: &Value) -> Result<String, &'static str> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Err("Field may not be null."),
        _ => Err("Not a valid string."),
    }
}

/// Field validation, in the schema's field order; all field errors are reported together.
fn validate_fields(map: &serde_json::Map<String, Value>) -> Result<Fields, TokenError> {
    let mut errors: Vec<(Py, Py)> = Vec::new();
    let mut fail = |field: &str, message: Py| {
        errors.push((Py::str(field), Py::List(vec![message])));
    };
    let mut fields = Fields::default();
    if let Some(v) = map.get("backend") {
        if let Err(m) = string(v) {
            fail("backend", Py::str(m));
        }
    }
    if let Some(v) = map.get("expiration") {
        match integer(v) {
            Ok(n) if (1..=i64::try_from(MAX_TTL).unwrap_or(i64::MAX)).contains(&n) => {
                fields.expiration = Some(n);
            }
            Ok(_) => fail(
                "expiration",
                xivo_constraint(
                    "range",
                    Py::Dict(vec![
                        (Py::str("min"), Py::Int(1)),
                        (
                            Py::str("max"),
                            Py::Int(i64::try_from(MAX_TTL).unwrap_or(i64::MAX)),
                        ),
                    ]),
                    "Must be greater than or equal to 1 and less than or equal to 315360000.",
                ),
            ),
            Err(m) => fail("expiration", Py::str(m)),
        }
    }
    if let Some(v) = map.get("access_type") {
        match string(v).as_deref() {
            Ok("offline") => fields.offline = true,
            Ok("online") => {}
            Ok(_) => fail(
                "access_type",
                xivo_constraint(
                    "enum",
                    Py::Dict(vec![(
                        Py::str("choices"),
                        Py::List(vec![Py::str("online"), Py::str("offline")]),
                    )]),
                    "Must be one of: online, offline.",
                ),
            ),
            Err(m) => fail("access_type", Py::str(m)),
        }
    }
    let bounded = |v: &Value| -> Result<String, Py> {
        let s = string(v).map_err(Py::str)?;
        if (1..=1024).contains(&s.chars().count()) {
            Ok(s)
        } else {
            Err(xivo_constraint(
                "length",
                Py::Dict(vec![
                    (Py::str("min"), Py::Int(1)),
                    (Py::str("max"), Py::Int(1024)),
                ]),
                "Length must be between 1 and 1024.",
            ))
        }
    };
    if let Some(v) = map.get("client_id") {
        match bounded(v) {
            Ok(s) => fields.client_id = Some(s),
            Err(m) => fail("client_id", m),
        }
    }
    if let Some(v) = map.get("refresh_token") {
        match string(v) {
            Ok(s) => fields.refresh_token = Some(s),
            Err(m) => fail("refresh_token", Py::str(m)),
        }
    }
    for (name, slot) in [
        ("tenant_id", &mut fields.tenant_id),
        ("domain_name", &mut fields.domain_name),
    ] {
        if let Some(v) = map.get(name) {
            match string(v) {
                Ok(s) => *slot = Some(s),
                Err(m) => fail(name, Py::str(m)),
            }
        }
    }
    if let Some(v) = map.get("saml_session_id") {
        match bounded(v) {
            Ok(s) => fields.saml_session_id = Some(s),
            Err(m) => fail("saml_session_id", m),
        }
    }
    if !errors.is_empty() {
        return Err(TokenError::Invalid(Py::Dict(errors)));
    }
    // The schema validators, which run only once the fields are valid. Like marshmallow, every
    // one of them runs and their messages are collected under `_schema`, in the order
    // marshmallow calls them (by method name); values are tested for truthiness, as Python
    // does, so an empty string counts as absent.
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let mut schema: Vec<Py> = Vec::new();
    // check_access_type_usage
    if fields.offline {
        if given(&fields.refresh_token) {
            schema.push(Py::str(
                "cannot use the \"access_type\" \"offline\" with a refresh token",
            ));
        } else if !given(&fields.client_id) {
            schema.push(Py::str(
                "\"client_id\" must be specified when using \"access_type\" is \"offline\"",
            ));
        }
    }
    // check_backend_type_for_tenant_id_and_domain_name
    if given(&fields.tenant_id) && given(&fields.domain_name) {
        schema.push(Py::str(
            "\"tenant_id\" and \"domain_name\" must be mutually exclusive",
        ));
    }
    // check_refresh_token_usage
    if given(&fields.refresh_token) && !given(&fields.client_id) {
        schema.push(Py::str(
            "\"client_id\" must be specified when using a \"refresh_token\"",
        ));
    }
    // check_saml_sesssion_id_or_credentials
    if given(&fields.saml_session_id) && given(&fields.refresh_token) {
        schema.push(Py::str(
            "Cannot use a \"saml_session_id\" and a \"refresh_token\" at the same time",
        ));
    }
    if !schema.is_empty() {
        return Err(TokenError::Invalid(Py::Dict(vec![(
            Py::str("_schema"),
            Py::List(schema),
        )])));
    }
    Ok(fields)
}

fn login_request(
    req: &HttpRequest,
    map: serde_json::Map<String, Value>,
    remote_addr: String,
) -> Result<LoginRequest, TokenError> {
    let fields = validate_fields(&map)?;
    let headers = req.headers();
    // A refresh token with its client id wins over Basic credentials.
    let credentials = match (&fields.refresh_token, &fields.client_id) {
        (Some(token), Some(client_id)) => LoginCredentials::RefreshToken {
            token: Secret::new(token.as_str()),
            client_id: client_id.clone(),
        },
        _ => match credentials::login_password(req) {
            Some((login, password)) => LoginCredentials::Password { login, password },
            None => LoginCredentials::None,
        },
    };
    Ok(LoginRequest {
        credentials,
        expiration: fields.expiration,
        offline_client_id: if fields.offline {
            fields.client_id
        } else {
            None
        },
        mobile: header(headers, "Wazo-Session-Type")
            .is_some_and(|v| v.eq_ignore_ascii_case("mobile")),
        user_agent: header(headers, USER_AGENT.as_str()).unwrap_or_default(),
        remote_addr,
    })
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
