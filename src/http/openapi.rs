//! `GET /openapi.yaml`: the OpenAPI 3.1 description of both dialects (`docs/openapi.yaml`),
//! compiled into the binary so the served document always matches the running server's routes.
use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;

/// The document, byte for byte as `docs/openapi.yaml`.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.yaml");

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(DOCUMENT)
}
