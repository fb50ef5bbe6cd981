//! `HttpRequest`s for the parsers that read one (`body::read`, `body::params`,
//! `credentials::login_password`), made by one in-process actix app that hands each request
//! to the check of the current input. `TestRequest::to_http_request` would be simpler, but it
//! builds a new app state per request, and the request pool's reference back to that state
//! leaks it: LeakSanitizer reports it, and the fuzzer runs out of memory.
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::dev::{Payload, Service};
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, HttpRequest, HttpResponse, web};

type Boxed = Pin<Box<dyn Future<Output = ()>>>;
type Check = Box<dyn FnOnce(HttpRequest, web::Payload) -> Boxed>;
type Call = Box<dyn Fn(actix_http::Request) -> Boxed>;

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
    static APP: (tokio::runtime::Runtime, Call) = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let app = Rc::new(rt.block_on(init_service(
            App::new().default_service(web::to(handler)),
        )));
        let call: Call = Box::new(move |req| {
            let app = Rc::clone(&app);
            Box::pin(async move {
                app.call(req).await.expect("the check's answer");
            })
        });
        (rt, call)
    };
}

async fn handler(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let check = CHECK
        .with(|c| c.borrow_mut().take())
        .expect("one check per request");
    check(req, payload).await;
    HttpResponse::NoContent().finish()
}

/// Runs `check` on the request `request` describes; `body`, if any, replaces its payload.
pub fn with_request<F, Fut>(request: TestRequest, body: Option<Payload>, check: F)
where
    F: FnOnce(HttpRequest, web::Payload) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    CHECK.with(|c| *c.borrow_mut() = Some(Box::new(move |r, p| Box::pin(check(r, p)))));
    let mut request = request.to_request();
    if let Some(body) = body {
        request = request.replace_payload(body).0;
    }
    APP.with(|(rt, call)| rt.block_on(call(request)));
    assert!(
        CHECK.with(|c| c.borrow().is_none()),
        "the request reached its check"
    );
}
