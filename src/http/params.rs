//! Strict parsing of request parameters, shared by every endpoint: form bodies
//! (`application/x-www-form-urlencoded`, RFC 6749 Appendix B), flat JSON objects (WSO2 accepts
//! JSON token requests), and query strings. Repeated parameters, non-UTF-8 bytes and values of
//! the wrong shape are errors; empty values count as absent (RFC 6749 §3.2).
use std::collections::HashMap;

use percent_encoding::percent_decode;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::oauth::Error;

/// Most parameters accepted in one request.
pub const MAX_PARAMS: usize = 64;

/// Parameter names that must never travel in a URL (RFC 6749 §2.3.1, WSO2's check).
const SENSITIVE: [&str; 8] = [
    "client_secret",
    "password",
    "refresh_token",
    "token",
    "access_token",
    "code",
    "code_verifier",
    "client_assertion",
];

/// Request parameters by name, each present once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// The value of `name`; an empty value is the same as none.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn insert(&mut self, name: String, value: String) -> Result<(), Error> {
        if self.0.len() >= MAX_PARAMS {
            return Err(Error::MalformedRequest("too many parameters"));
        }
        if self.0.insert(name, value).is_some() {
            return Err(Error::RepeatedParameter);
        }
        Ok(())
    }

    /// Parses a form body strictly.
    pub fn from_form(body: &[u8]) -> Result<Self, Error> {
        let mut params = Params::default();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode_component(parts.next().unwrap_or_default())?;
            let value = decode_component(parts.next().unwrap_or_default())?;
            params.insert(name, value)?;
        }
        Ok(params)
    }

    /// Parses a JSON object whose values are strings (or null, meaning absent).
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let params = de
            .deserialize_map(ParamsVisitor)
            .map_err(|_| Error::MalformedRequest("the body must be a JSON object of strings"))?;
        de.end()
            .map_err(|_| Error::MalformedRequest("trailing data after the JSON object"))?;
        params
    }
}

/// Decodes one form component: `+` is a space, `%XX` a byte, and the result must be UTF-8.
pub fn decode_component(raw: &[u8]) -> Result<String, Error> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| Error::MalformedRequest("parameters must be UTF-8"))
}

/// Refuses secrets and tokens in the query string (WSO2: "sensitive data in the URL").
pub fn reject_sensitive_query(query: &str) -> Result<(), Error> {
    for pair in query.split('&') {
        let name = pair.split('=').next().unwrap_or_default();
        let name = decode_component(name.as_bytes()).unwrap_or_default();
        if SENSITIVE.contains(&name.as_str()) {
            return Err(Error::SensitiveDataInUrl);
        }
    }
    Ok(())
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Result<Params, Error>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut params = Params::default();
        while let Some((name, value)) = map.next_entry::<String, Option<String>>()? {
            let Some(value) = value else { continue };
            if let Err(e) = params.insert(name, value) {
                // Read the rest of the object, so that the error is the repeat (or the count),
                // not serde_json's complaint about an object left unfinished. As values, not
                // `IgnoredAny`: skipping does not check that strings are UTF-8, and the body
                // must still be JSON.
                while map.next_entry::<String, serde_json::Value>()?.is_some() {}
                return Ok(Err(e));
            }
        }
        Ok(Ok(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() -> Result<(), Error> {
        let p = Params::from_form(b"grant_type=password&username=a+b%40c&scope=&x")?;
        assert_eq!(p.get("username"), Some("a b@c"));
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("x"), None);
        Ok(())
    }

    #[test]
    fn forms_refuse_repeats_and_bad_utf8() {
        assert!(matches!(
            Params::from_form(b"a=1&a=2"),
            Err(Error::RepeatedParameter)
        ));
        assert!(matches!(
            Params::from_form(b"a=%ff"),
            Err(Error::MalformedRequest(_))
        ));
        assert!(matches!(
            Params::from_form(b"a=\xff"),
            Err(Error::MalformedRequest(_))
        ));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert!(Params::from_form(many.join("&").as_bytes()).is_err());
    }

    #[test]
    fn json_objects_of_strings_only() -> Result<(), Error> {
        let p = Params::from_json(br#"{"grant_type":"password","scope":null}"#)?;
        assert_eq!(p.get("grant_type"), Some("password"));
        assert_eq!(p.get("scope"), None);
        for bad in [
            &br#"[1]"#[..],
            br#"{"a":1}"#,
            br#"{"a":{"b":"c"}}"#,
            b"{",
            br#"{"a":"b"} x"#,
        ] {
            assert!(matches!(
                Params::from_json(bad),
                Err(Error::MalformedRequest(_))
            ));
        }
        assert!(matches!(
            Params::from_json(br#"{"a":"1","a":"2"}"#),
            Err(Error::RepeatedParameter)
        ));
        Ok(())
    }

    #[test]
    fn a_repeat_anywhere_in_a_json_object_is_a_repeat() -> Result<(), Error> {
        // Found by the json_body fuzz target: a repeat followed by more entries was reported
        // as a malformed body, serde_json complaining about the object left unfinished.
        for body in [
            &br#"{"a":"1","a":"2","b":"3"}"#[..],
            br#"{"a":"1","a":"2","b":{"c":[1, null]}}"#,
            br#"{"a":"1","b":null,"a":"2","c":"3"}"#,
        ] {
            assert!(
                matches!(Params::from_json(body), Err(Error::RepeatedParameter)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // The rest must still be JSON (UTF-8 included), and nothing may follow the object.
        for body in [
            &br#"{"a":"1","a":"2","b":"#[..],
            br#"{"a":"1","a":"2"} x"#,
            b"{\"a\":\"1\",\"a\":\"2\",\"b\":{\"\xff\":1}}",
        ] {
            assert!(matches!(
                Params::from_json(body),
                Err(Error::MalformedRequest(_))
            ));
        }
        // A null is an absent value, not a first occurrence.
        let p = Params::from_json(br#"{"a":null,"a":"2","b":"3"}"#)?;
        assert_eq!(p.get("a"), Some("2"));
        Ok(())
    }

    #[test]
    fn secrets_in_the_query_are_refused() {
        assert!(reject_sensitive_query("client_secret=x").is_err());
        assert!(reject_sensitive_query("a=1&refresh%5Ftoken=x").is_err());
        assert!(reject_sensitive_query("scope=a&client_id=b").is_ok());
        assert!(reject_sensitive_query("").is_ok());
    }
}
