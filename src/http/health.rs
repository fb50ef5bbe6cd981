//! `GET /healthz`: the process is alive and serving HTTP. It touches nothing else, which also
//! makes it the HTTP baseline of the benchmarks (the cost of a request through this binary's
//! stack with no work behind it).
use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}
