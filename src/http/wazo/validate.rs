//! `GET | HEAD | DELETE {wazo}/token/{token}` and `POST {wazo}/token/{token}/scopes/check`
//! (wazo-contract §1.4, §1.5): no authentication, knowing the token is enough.
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::http::{AppState, body};
use crate::oauth::Error;

use super::error::TokenError;
use super::wire::{self, Py};
use super::{canonical_token, param, query};

/// `GET`: the token's data; `HEAD`: 204; both with `?scope=` and `?tenant=`.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let at = state.service.now_precise();
    let head = req.method() == actix_web::http::Method::HEAD;
    let params = query(&req);
    let scope = param(&params, "scope").map(str::to_owned);
    let tenant = param(&params, "tenant").map(str::to_owned);
    let result = match canonical_token(&path.into_inner()) {
        None => Err(TokenError::Domain(Error::NoSuchToken)),
        Some(token) => state
            .run(move |s| s.validate(&token, scope.as_deref(), tenant.as_deref()))
            .await
            .map_err(TokenError::from),
    };
    match (result, head) {
        (Ok(_), true) => HttpResponse::NoContent().finish(),
        (Ok(view), false) => {
            HttpResponse::Ok().json(json!({ "data": wire::token_data(&view, None, false) }))
        }
        (Err(e), true) => e.render_head(),
        (Err(e), false) => e.render(at),
    }
}

/// `DELETE`: 200 `{"data": {"message": "success"}}`, known token or not.
pub async fn delete(path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let at = state.service.now_precise();
    let result = match canonical_token(&path.into_inner()) {
        None => Ok(()),
        Some(token) => state.run(move |s| s.delete_token(&token)).await,
    };
    match result {
        Ok(()) => HttpResponse::Ok().json(json!({ "data": { "message": "success" } })),
        Err(e) => TokenError::from(e).render(at),
    }
}

/// `POST …/scopes/check` with `{"scopes": [...], "tenant_uuid": ...}`.
pub async fn check_scopes(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let at = state.service.now_precise();
    match check_scopes_inner(req, path.into_inner(), payload, &state).await {
        Ok(response) => response,
        Err(e) => e.render(at),
    }
}

async fn check_scopes_inner(
    req: HttpRequest,
    raw_token: String,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, TokenError> {
    super::reject_sensitive_query(&req)?;
    let bytes = body::read(&req, payload, state.max_body_bytes).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::NotUnderstood)?;
    let (scopes, tenant) = scope_check_body(&value)?;
    let token = canonical_token(&raw_token).ok_or(TokenError::Domain(Error::NoSuchToken))?;
    let answer = state
        .run(move |s| s.check_scopes(&token, &scopes, tenant.as_deref()))
        .await?;
    let scopes: Map<String, Value> = answer
        .into_iter()
        .map(|(scope, granted)| (scope, Value::Bool(granted)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "scopes": scopes })))
}

/// `ScopeCheckRequest`: `scopes` (required list of strings) and an optional `tenant_uuid`.
fn scope_check_body(value: &Value) -> Result<(Vec<String>, Option<String>), TokenError> {
    let invalid = |field: &str, message: Py| TokenError::Invalid(Py::field_error(field, message));
    let empty = Map::new();
    let map = match value {
        Value::Object(map) => {
            super::check_field_count(map.len())?;
            map
        }
        Value::Null => &empty,
        _ => return Err(invalid("_schema", Py::str("Invalid input type."))),
    };
    let scopes = match map.get("scopes") {
        None => {
            return Err(invalid(
                "scopes",
                Py::str("Missing data for required field."),
            ));
        }
        Some(Value::Array(items)) => {
            let mut scopes = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => scopes.push(s.clone()),
                    _ => {
                        return Err(TokenError::Invalid(Py::Dict(vec![(
                            Py::str("scopes"),
                            Py::Dict(vec![(
                                Py::Int(i64::try_from(i).unwrap_or(i64::MAX)),
                                Py::List(vec![Py::str("Not a valid string.")]),
                            )]),
                        )])));
                    }
                }
            }
            scopes
        }
        Some(_) => return Err(invalid("scopes", Py::str("Not a valid list."))),
    };
    let tenant = match map.get("tenant_uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("tenant_uuid", Py::str("Not a valid string."))),
    };
    Ok((scopes, tenant))
}
