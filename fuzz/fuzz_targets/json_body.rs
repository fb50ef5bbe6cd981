//! JSON bodies of the OAuth2 dialect (WSO2 accepts a flat JSON object of strings at the token,
//! revocation and introspection endpoints): `Params::from_json`, compared with serde_json's own
//! reading of the same bytes, and the choice between the JSON and the form parser by
//! `Content-Type`. (The Wazo dialect's JSON body is read by its handler: see the
//! `token_endpoints` target.)
//!
//! Input: the raw body.
#![no_main]

use actix_web::http::header::CONTENT_TYPE;
use actix_web::test::TestRequest;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use tessera::fuzzing::{MAX_PARAMS, Params, body_params, is_json};
use tessera::oauth::Error;

mod request;
use request::with_request;

/// Content types and whether the server must read the body as JSON.
const CONTENT_TYPES: [(Option<&str>, bool); 9] = [
    (Some("application/json"), true),
    (Some("Application/JSON; charset=utf-8"), true),
    (Some(" application/json ;x=y"), true),
    (Some("application/jwt-bearer+json"), true),
    (Some("application/x-www-form-urlencoded"), false),
    (Some("text/plain"), false),
    (Some("application/jsonp"), false),
    (Some(""), false),
    (None, false),
];

/// Every `name: value` of a JSON object in order, repeats included (serde_json's `Map`
/// keeps only the last): the reference the strict parser is checked against.
struct RawEntries;

impl<'de> Visitor<'de> for RawEntries {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

fn raw_entries(data: &[u8]) -> Option<Vec<(String, Value)>> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let entries = de.deserialize_map(RawEntries).ok()?;
    de.end().ok()?;
    Some(entries)
}

fuzz_target!(|data: &[u8]| {
    let parsed = Params::from_json(data);
    let reference = raw_entries(data);
    // What RFC 6749 §3.2 and the module doc ask: an object whose values are strings (or null,
    // meaning absent), no name given twice, at most MAX_PARAMS of them; the first problem in
    // the order of the document is the one reported.
    let expected: Result<Vec<(&str, &str)>, &str> = match &reference {
        None => Err("not a JSON object"),
        Some(entries) => {
            let mut given = Vec::new();
            let mut names = HashSet::new();
            let mut problem = None;
            for (name, value) in entries {
                let value = match value {
                    Value::Null => continue,
                    Value::String(value) => value,
                    _ => {
                        problem = Some("a value that is not a string");
                        break;
                    }
                };
                if given.len() >= MAX_PARAMS {
                    problem = Some("too many");
                    break;
                }
                if !names.insert(name.as_str()) {
                    problem = Some("repeated");
                    break;
                }
                given.push((name.as_str(), value.as_str()));
            }
            problem.map_or(Ok(given), Err)
        }
    };
    match (&parsed, expected) {
        (Ok(params), Ok(given)) => {
            for (name, value) in given {
                let value = Some(value).filter(|v| !v.is_empty());
                assert_eq!(params.get(name), value, "{name:?}");
            }
        }
        (Err(Error::RepeatedParameter), Err("repeated")) => {}
        (Err(Error::MalformedRequest(_)), Err(why)) if why != "repeated" => {}
        (parsed, expected) => panic!("parsed {parsed:?}, expected {expected:?}"),
    }
    // serde_json's own reading agrees on what is JSON at all.
    if serde_json::from_slice::<Value>(data).is_err() {
        assert!(parsed.is_err(), "invalid JSON accepted");
    }

    // The content type chooses the parser; the body is read the same either way.
    for (content_type, expect_json) in CONTENT_TYPES {
        let mut request = TestRequest::post();
        if let Some(content_type) = content_type {
            request = request.insert_header((CONTENT_TYPE, content_type));
        }
        let data = data.to_vec();
        with_request(request, None, move |req, _| async move {
            assert_eq!(is_json(&req), expect_json, "{content_type:?}");
            let expected = if expect_json {
                Params::from_json(&data)
            } else {
                Params::from_form(&data)
            };
            match (body_params(&req, &data), expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{content_type:?}"),
                // The errors say which parser ran (the JSON parser's say "JSON").
                (Err(got), Err(expected)) => {
                    assert_eq!(
                        format!("{got:?}"),
                        format!("{expected:?}"),
                        "{content_type:?}"
                    )
                }
                (got, expected) => panic!("{content_type:?}: {got:?}, expected {expected:?}"),
            }
        });
    }
});
