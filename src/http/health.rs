//! `GET /healthz`: the process is alive and serving HTTP. It touches nothing else, which also
//! makes it the HTTP baseline of the benchmarks (the cost of a request through this binary's
//! stack with no work behind it).
//!
//! `GET /metrics`: Prometheus metrics (`crate::metrics`).
//!
//! `GET /readyz`: the instance can serve tokens: the database answers, its schema is current,
//! a policy is loaded. 200 or 503, with each check's outcome, for load balancers.
use actix_web::http::header::{CACHE_CONTROL, ContentType, RETRY_AFTER};
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let service = std::sync::Arc::clone(&state.service);
    let Ok(readiness) = web::block(move || service.readiness()).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let show = |r: Result<(), &'static str>| r.err().unwrap_or("ok");
    let body = json!({
        "status": if readiness.is_ready() { "ready" } else { "unavailable" },
        "checks": {
            "database": show(readiness.database),
            "migrations": show(readiness.migrations),
            "policy": show(readiness.policy),
        },
    });
    let mut builder = if readiness.is_ready() {
        HttpResponse::Ok()
    } else {
        let mut b = HttpResponse::ServiceUnavailable();
        b.insert_header((RETRY_AFTER, "1"));
        b
    };
    builder
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `GET /metrics`: Prometheus text exposition (version 0.0.4).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let service = std::sync::Arc::clone(&state.service);
    // The pool's state is read under its lock: off the executor.
    let text = web::block(move || {
        service
            .metrics()
            .map(|m| m.render(service.store()))
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(text)
}
