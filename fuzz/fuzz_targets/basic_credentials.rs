//! Credentials in the `Authorization` header: OAuth2 client authentication by HTTP Basic, the
//! id and secret form-urlencoded before base64 (RFC 6749 §2.3.1), or a bearer token (RFC 6750
//! §2.1); the Wazo login's Basic `login:password` (UTF-8, else Latin-1, no percent-decoding);
//! and the choice between Basic and body credentials (RFC 6749 §2.3).
//!
//! Input: read three ways. As a header value; as `id:secret` credentials, encoded the ways a
//! client may encode them and checked to come back unchanged; and as a form body holding
//! `client_id`/`client_secret` next to the header's credentials.
#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::test::TestRequest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tessera::fuzzing::{
    Authorization, Params, client_credentials, login_password, parse_authorization,
};
use tessera::oauth::{AuthScheme, ClientCredentials, Error};

mod request;
use request::with_request;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        header_value(text);
        client_round_trip(text);
    }
    wazo_round_trip(data);
    wazo_header(data);
    body_and_header(data);
});

fn basic(value: &str) -> Option<(String, String)> {
    match parse_authorization(value) {
        Ok(Authorization::Basic { id, secret }) => Some((id, secret.expose().to_owned())),
        _ => None,
    }
}

/// Any value: a result of the documented kinds, and Basic credentials that encode back.
fn header_value(text: &str) {
    match parse_authorization(text) {
        Ok(Authorization::Basic { id, secret }) => {
            assert!(!id.is_empty(), "an empty client id accepted");
            let encoded = format!(
                "{}:{}",
                utf8_percent_encode(&id, NON_ALPHANUMERIC),
                utf8_percent_encode(secret.expose(), NON_ALPHANUMERIC)
            );
            assert_eq!(
                basic(&format!("Basic {}", STANDARD.encode(encoded))),
                Some((id, secret.expose().to_owned()))
            );
        }
        Ok(Authorization::Bearer(token)) => {
            let token = token.expose();
            assert!(
                !token.is_empty() && !token.contains(' '),
                "bearer {token:?}"
            );
            assert!(text.contains(token));
        }
        Ok(Authorization::None) => panic!("a header value parsed as no header"),
        Err(Error::ClientAuthenticationFailed {
            scheme: AuthScheme::Basic,
        })
        | Err(Error::InvalidBearerToken) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// `id:secret` (split on the first colon) comes back unchanged however a client encodes it.
fn client_round_trip(text: &str) {
    let Some((id, secret)) = text.split_once(':') else {
        return;
    };
    let expected = (!id.is_empty()).then(|| (id.to_owned(), secret.to_owned()));
    let form = format!(
        "{}:{}",
        utf8_percent_encode(id, NON_ALPHANUMERIC),
        utf8_percent_encode(secret, NON_ALPHANUMERIC)
    );
    for value in [
        format!("Basic {}", STANDARD.encode(&form)),
        format!("basic {}", STANDARD_NO_PAD.encode(&form)),
        format!("BASIC  {}", STANDARD.encode(&form)),
        // WSO2's seed request: a comma and more after the credentials.
        format!(
            "Basic {}, Content-Type: application/json",
            STANDARD.encode(&form)
        ),
    ] {
        assert_eq!(basic(&value), expected, "{value}");
    }
    // Clients that skip the form-encoding (most do) are read the same when nothing in the
    // credentials needs it.
    if !text.contains(['%', '+']) {
        assert_eq!(basic(&format!("Basic {}", STANDARD.encode(text))), expected);
    }
}

/// `login_password` of a request whose `Authorization` is `value`; `None` when `value` cannot
/// be a header value at all.
fn wazo_login(value: &[u8]) -> Option<Option<(String, String)>> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let request = TestRequest::post().insert_header((AUTHORIZATION, value));
    let got = Rc::new(RefCell::new(None));
    let slot = Rc::clone(&got);
    with_request(request, None, move |req, _| async move {
        *slot.borrow_mut() = Some(
            login_password(&req).map(|(login, password)| (login, password.expose().to_owned())),
        );
    });
    got.take()
}

/// wazo-auth: any bytes as `login:password`, UTF-8 else Latin-1, both parts non-empty.
fn wazo_round_trip(data: &[u8]) {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text.to_owned(),
        Err(_) => data.iter().map(|b| char::from(*b)).collect(),
    };
    let expected = text
        .split_once(':')
        .filter(|(login, password)| !login.is_empty() && !password.is_empty())
        .map(|(login, password)| (login.to_owned(), password.to_owned()));
    for value in [
        format!("Basic {}", STANDARD.encode(data)),
        format!(" bAsIc {} ", STANDARD_NO_PAD.encode(data)),
    ] {
        let got = wazo_login(value.as_bytes()).expect("base64 is a valid header value");
        assert_eq!(got, expected, "{value}");
    }
}

/// Any header value: no panic, and credentials only when both parts are there.
fn wazo_header(data: &[u8]) {
    if let Some(Some((login, password))) = wazo_login(data) {
        assert!(!login.is_empty() && !login.contains(':'));
        assert!(!password.is_empty());
    }
}

/// RFC 6749 §2.3: Basic or the body, never both; a body `client_id` must agree with Basic.
fn body_and_header(data: &[u8]) {
    let Ok(params) = Params::from_form(data) else {
        return;
    };
    let body_id = params.get("client_id").map(str::to_owned);
    let body_secret = params.get("client_secret").map(str::to_owned);
    let headers: [Option<&str>; 4] = [
        None,
        Some("Basic Y2xpZW50OnNlY3JldA=="), // client:secret
        Some("Basic YSUzQWI6cw=="),         // a%3Ab:s → id "a:b"
        Some("Bearer abc"),
    ];
    for header in headers {
        let auth = match header {
            Some(h) => parse_authorization(h).expect("a valid test header"),
            None => Authorization::None,
        };
        let basic_id = match &auth {
            Authorization::Basic { id, .. } => Some(id.clone()),
            _ => None,
        };
        let bearer = matches!(auth, Authorization::Bearer(_));
        let result = client_credentials(auth, &params);
        match (&basic_id, &result) {
            _ if bearer => assert!(matches!(
                result,
                Err(Error::ClientAuthenticationFailed { .. })
            )),
            (Some(_), _) if body_secret.is_some() => {
                assert!(matches!(result, Err(Error::MultipleClientAuthentication)))
            }
            (Some(id), _) if body_id.as_ref().is_some_and(|b| b != id) => {
                assert!(matches!(result, Err(Error::MalformedRequest(_))))
            }
            (Some(id), Ok(ClientCredentials::Basic { id: got, .. })) => assert_eq!(got, id),
            (None, Ok(ClientCredentials::Post { id, secret })) => {
                assert_eq!(Some(id), body_id.as_ref());
                assert_eq!(Some(secret.expose()), body_secret.as_deref());
            }
            (None, Ok(ClientCredentials::Public { id })) => {
                assert_eq!(Some(id), body_id.as_ref());
                assert!(body_secret.is_none());
            }
            (None, Ok(ClientCredentials::Absent)) => {
                assert!(body_id.is_none() && body_secret.is_none())
            }
            (None, Err(Error::MissingParameter("client_id"))) => {
                assert!(body_id.is_none() && body_secret.is_some())
            }
            (basic_id, result) => panic!("Basic {basic_id:?}, body {params:?}: {result:?}"),
        }
    }
}
