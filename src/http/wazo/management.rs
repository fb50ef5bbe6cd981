//! The `X-Auth-Token` endpoints (wazo-contract §1.6, §1.7): refresh-token listing and
//! deletion, session listing and deletion. The required ACL is built from the route values
//! (every `.` becomes `_`); failures use format B.
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::clock::Timestamp;
use crate::http::AppState;
use crate::oauth::management::{RefreshTokenQuery, Target};
use crate::oauth::validation::Principal;
use crate::oauth::{Error, Service};
use crate::store::refresh_tokens::{Filter, Order};
use crate::store::{Listing, Page};

use super::error::{ApiContext, ApiError};
use super::wire::{Py, utc_iso_offset};
use super::{acl_segment, canonical, canonical_token, param, query};

/// The token of the request (`X-Auth-Token`, else `Authorization: Bearer`) as given.
fn presented_token(req: &HttpRequest) -> String {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    if let Some(token) = header("X-Auth-Token").filter(|t| !t.is_empty()) {
        return token;
    }
    header(AUTHORIZATION.as_str())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Authenticates the request for `required`, then runs `f` with the principal, on the
/// blocking pool; renders format B on failure.
async fn guarded<T, F>(
    req: &HttpRequest,
    state: &AppState,
    required: String,
    f: F,
) -> Result<T, HttpResponse>
where
    F: FnOnce(&Service, &Principal) -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let at = state.service.now_precise();
    let raw = presented_token(req);
    let tenant = req
        .headers()
        .get("Wazo-Tenant")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let ctx = ApiContext {
        token: raw.clone(),
        required: required.clone(),
        tenant: tenant.clone(),
    };
    let Some(token) = canonical_token(&raw) else {
        return Err(ApiError::Domain(Error::InvalidBearerToken).render(&ctx, at));
    };
    state
        .run(move |s| {
            let principal = s.authenticate(&token, &required, tenant.as_deref())?;
            f(s, &principal)
        })
        .await
        .map_err(|e| ApiError::Domain(e).render(&ctx, at))
}

fn bad_param(field: &str, message: &str) -> ApiError {
    ApiError::InvalidListParam(Py::field_error(field, Py::str(message)))
}

/// marshmallow's `Boolean` (wazo-auth-client sends `True`/`False`).
fn boolean(field: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "on" | "y" | "yes" => Ok(true),
        "false" | "f" | "0" | "off" | "n" | "no" => Ok(false),
        _ => Err(bad_param(field, "Not a valid boolean.")),
    }
}

fn non_negative(field: &str, value: &str) -> Result<i64, ApiError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| bad_param(field, "Not a valid integer."))?;
    if n < 0 {
        return Err(bad_param(field, "Must be greater than or equal to 0."));
    }
    Ok(n)
}

/// `direction`, `limit`, `offset`.
fn page(params: &[(String, String)]) -> Result<Page, ApiError> {
    let descending = match param(params, "direction") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(bad_param("direction", "Must be one of: asc, desc.")),
    };
    Ok(Page {
        descending,
        limit: param(params, "limit")
            .map(|v| non_negative("limit", v))
            .transpose()?,
        offset: param(params, "offset")
            .map(|v| non_negative("offset", v))
            .transpose()?
            .unwrap_or(0),
    })
}

fn recurse(params: &[(String, String)]) -> Result<bool, ApiError> {
    param(params, "recurse")
        .map(|v| boolean("recurse", v))
        .transpose()
        .map(|r| r.unwrap_or(false))
}

fn refresh_token_query(
    params: &[(String, String)],
    target: Target,
) -> Result<RefreshTokenQuery, ApiError> {
    let order = match param(params, "order") {
        None | Some("created_at") => Order::CreatedAt,
        Some("client_id") => Order::ClientId,
        Some("mobile") => Order::Mobile,
        Some(_) => {
            return Err(bad_param(
                "order",
                "Must be one of: created_at, client_id, mobile.",
            ));
        }
    };
    let created_at = param(params, "created_at")
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp())
                .map_err(|_| bad_param("created_at", "Not a valid datetime."))
        })
        .transpose()?;
    let filter = Filter {
        client_id: param(params, "client_id").map(str::to_owned),
        created_at,
        mobile: param(params, "mobile")
            .map(|v| boolean("mobile", v))
            .transpose()?,
        search: param(params, "search")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    Ok(RefreshTokenQuery {
        target,
        filter,
        order,
        page: page(params)?,
    })
}

fn listing_json<T>(listing: Listing<T>, item: impl Fn(T) -> Value) -> Value {
    json!({
        "total": listing.total,
        "filtered": listing.filtered,
        "items": listing.items.into_iter().map(item).collect::<Vec<_>>(),
    })
}

/// A bad list parameter, rendered before authentication like marshmallow would after it;
/// the token is checked first so an anonymous caller learns nothing.
async fn list_param_error(
    req: &HttpRequest,
    state: &AppState,
    required: String,
    error: ApiError,
) -> HttpResponse {
    let at: Timestamp = state.service.now_precise();
    match guarded(req, state, required.clone(), |_, _| Ok(())).await {
        Err(response) => response,
        Ok(()) => error.render(
            &ApiContext {
                token: String::new(),
                required,
                tenant: None,
            },
            at,
        ),
    }
}

fn resolve_user(principal: &Principal, user: &str) -> Result<String, Error> {
    if user == "me" {
        principal
            .user_id
            .clone()
            .ok_or_else(|| Error::UnknownUser("me".to_owned()))
    } else {
        Ok(user.to_owned())
    }
}

fn refresh_token_item(item: crate::oauth::management::RefreshTokenItem) -> Value {
    json!({
        "client_id": item.client_id,
        "created_at": utc_iso_offset(Timestamp::from_secs(item.created_at)),
        "mobile": item.mobile,
        "user_uuid": item.user_uuid,
        "tenant_uuid": item.tenant_uuid,
        "metadata": item.metadata,
    })
}

fn session_item(s: crate::store::sessions::SessionRecord) -> Value {
    let user_uuid = s
        .user_id
        .filter(|id| uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == *id));
    json!({
        "uuid": s.id,
        "mobile": s.mobile,
        "tenant_uuid": s.tenant_uuid,
        "user_uuid": user_uuid,
    })
}

/// `GET {wazo}/tokens`: refresh tokens of the scoped tenant (`recurse` for sub-tenants).
pub async fn list_tokens(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let required = "auth.tokens.read".to_owned();
    let params = query(&req);
    let q = match recurse(&params)
        .and_then(|recurse| refresh_token_query(&params, Target::Tenant { recurse }))
    {
        Ok(q) => q,
        Err(e) => return list_param_error(&req, &state, required, e).await,
    };
    match guarded(&req, &state, required, move |s, p| {
        s.list_refresh_tokens(p, &q)
    })
    .await
    {
        Ok(listing) => HttpResponse::Ok().json(listing_json(listing, refresh_token_item)),
        Err(response) => response,
    }
}

/// `GET {wazo}/users/{uuid|me}/tokens`.
pub async fn list_user_tokens(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let user = canonical(&path.into_inner());
    let required = format!("auth.users.{}.tokens.read", acl_segment(&user));
    let params = query(&req);
    let q = match refresh_token_query(&params, Target::Tenant { recurse: true }) {
        Ok(q) => q,
        Err(e) => return list_param_error(&req, &state, required, e).await,
    };
    match guarded(&req, &state, required, move |s, p| {
        let target = Target::User(resolve_user(p, &user)?);
        s.list_refresh_tokens(p, &RefreshTokenQuery { target, ..q })
    })
    .await
    {
        Ok(listing) => HttpResponse::Ok().json(listing_json(listing, refresh_token_item)),
        Err(response) => response,
    }
}

/// `DELETE {wazo}/users/{uuid|me}/tokens/{client_id}`: 204, or 404 when there is none.
pub async fn delete_user_token(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (user, client_id) = path.into_inner();
    let user = canonical(&user);
    let required = format!(
        "auth.users.{}.tokens.{}.delete",
        acl_segment(&user),
        acl_segment(&client_id)
    );
    match guarded(&req, &state, required, move |s, p| {
        s.delete_refresh_token(p, &resolve_user(p, &user)?, &client_id)
    })
    .await
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(response) => response,
    }
}

/// `GET {wazo}/sessions`.
pub async fn list_sessions(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let required = "auth.sessions.read".to_owned();
    let params = query(&req);
    let parsed = session_params(&params).and_then(|page| Ok((page, recurse(&params)?)));
    let (page, recurse) = match parsed {
        Ok(v) => v,
        Err(e) => return list_param_error(&req, &state, required, e).await,
    };
    match guarded(&req, &state, required, move |s, p| {
        s.list_sessions(p, &Target::Tenant { recurse }, page)
    })
    .await
    {
        Ok(listing) => HttpResponse::Ok().json(listing_json(listing, session_item)),
        Err(response) => response,
    }
}

fn session_params(params: &[(String, String)]) -> Result<Page, ApiError> {
    match param(params, "order") {
        None | Some("mobile") => page(params),
        Some(_) => Err(bad_param("order", "Must be one of: mobile.")),
    }
}

/// `DELETE {wazo}/sessions/{uuid}`: 204 whether or not it existed.
pub async fn delete_session(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = canonical(&path.into_inner());
    let required = format!("auth.sessions.{}.delete", acl_segment(&session));
    match guarded(&req, &state, required, move |s, p| {
        s.delete_session(p, &Target::Tenant { recurse: true }, &session)
    })
    .await
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(response) => response,
    }
}

/// `GET {wazo}/users/{uuid}/sessions`.
pub async fn list_user_sessions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let user = canonical(&path.into_inner());
    let required = format!("auth.users.{}.sessions.read", acl_segment(&user));
    let params = query(&req);
    let page = match session_params(&params) {
        Ok(page) => page,
        Err(e) => return list_param_error(&req, &state, required, e).await,
    };
    match guarded(&req, &state, required, move |s, p| {
        s.list_sessions(p, &Target::User(resolve_user(p, &user)?), page)
    })
    .await
    {
        Ok(listing) => HttpResponse::Ok().json(listing_json(listing, session_item)),
        Err(response) => response,
    }
}

/// `DELETE {wazo}/users/{uuid}/sessions/{uuid}`: 204; only that user's session goes.
pub async fn delete_user_session(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (user, session) = path.into_inner();
    let user = canonical(&user);
    let session = canonical(&session);
    let required = format!(
        "auth.users.{}.sessions.{}.delete",
        acl_segment(&user),
        acl_segment(&session)
    );
    match guarded(&req, &state, required, move |s, p| {
        s.delete_session(p, &Target::User(resolve_user(p, &user)?), &session)
    })
    .await
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(response) => response,
    }
}
