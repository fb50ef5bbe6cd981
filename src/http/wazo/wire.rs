//! Wazo wire formats: the token object of `{"data": {...}}`, wazo-auth's time formats, list
//! answers, and Python `repr` for the reasons of 400 answers (wazo-auth prints marshmallow's
//! error dict with `str()`).
use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::clock::Timestamp;
use crate::domain::Secret;
use crate::oauth::login::TokenView;

fn naive_utc(at: Timestamp) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp_micros(at.micros())
        .unwrap_or_default()
        .naive_utc()
}

/// `datetime.fromtimestamp(t).isoformat()`: server local time, no offset; the fraction shows
/// when the time has one or when `fraction` asks for it (POST answers always carry it, so
/// parsers using `%f` never fail).
pub fn local_iso(at: Timestamp, fraction: bool) -> String {
    let local = Local.from_utc_datetime(&naive_utc(at)).naive_local();
    format_naive(local, fraction || at.micros().rem_euclid(1_000_000) != 0)
}

/// `utc_*_at`: `%Y-%m-%dT%H:%M:%S.%f`, always six digits, no zone.
pub fn utc_iso(at: Timestamp) -> String {
    format_naive(naive_utc(at), true)
}

/// A timestamptz as Python prints it: UTC with `+00:00`.
pub fn utc_iso_offset(at: Timestamp) -> String {
    let at_naive = naive_utc(at);
    format!(
        "{}+00:00",
        format_naive(at_naive, at.micros().rem_euclid(1_000_000) != 0)
    )
}

fn format_naive(t: NaiveDateTime, fraction: bool) -> String {
    if fraction {
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// The `data` object of a token answer. `fraction` is true for POST (times with microseconds)
/// and false for GET (whole seconds read back from storage).
pub fn token_data(view: &TokenView, refresh_token: Option<&Secret>, fraction: bool) -> Value {
    let mut data = Map::new();
    data.insert("token".into(), json!(view.token.expose()));
    data.insert("auth_id".into(), json!(view.auth_id));
    data.insert("xivo_user_uuid".into(), json!(view.pbx_user_uuid()));
    data.insert("xivo_uuid".into(), json!(view.xivo_uuid));
    data.insert(
        "issued_at".into(),
        json!(local_iso(view.issued_at, fraction)),
    );
    data.insert(
        "expires_at".into(),
        json!(local_iso(view.expires_at, fraction)),
    );
    data.insert("utc_issued_at".into(), json!(utc_iso(view.issued_at)));
    data.insert("utc_expires_at".into(), json!(utc_iso(view.expires_at)));
    data.insert("acl".into(), json!(view.acl));
    data.insert("metadata".into(), Value::Object(view.metadata.clone()));
    data.insert("session_uuid".into(), json!(view.session_uuid));
    data.insert("remote_addr".into(), json!(view.remote_addr));
    data.insert("user_agent".into(), json!(view.user_agent));
    if let Some(refresh) = refresh_token {
        data.insert("refresh_token".into(), json!(refresh.expose()));
    }
    Value::Object(data)
}

/// A value as Python's `repr` prints it: enough of Python for marshmallow error dicts.
#[derive(Debug, Clone)]
pub enum Py {
    Str(String),
    Int(i64),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    pub fn str(s: &str) -> Py {
        Py::Str(s.to_owned())
    }

    /// `{field: [message]}`.
    pub fn field_error(field: &str, message: Py) -> Py {
        Py::Dict(vec![(Py::str(field), Py::List(vec![message]))])
    }

    pub fn repr(&self) -> String {
        match self {
            Py::Str(s) => repr_str(s),
            Py::Int(i) => i.to_string(),
            Py::List(items) => format!(
                "[{}]",
                items.iter().map(Py::repr).collect::<Vec<_>>().join(", ")
            ),
            Py::Dict(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.repr(), v.repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The same value as JSON (for `message` objects of format B).
    pub fn to_json(&self) -> Value {
        match self {
            Py::Str(s) => json!(s),
            Py::Int(i) => json!(i),
            Py::List(items) => Value::Array(items.iter().map(Py::to_json).collect()),
            Py::Dict(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Py::Str(s) => s.clone(),
                            other => other.repr(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text holds a `'` and no `"`.
fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_matches_the_contract() {
        let range = Py::Dict(vec![
            (Py::str("constraint_id"), Py::str("range")),
            (
                Py::str("constraint"),
                Py::Dict(vec![
                    (Py::str("min"), Py::Int(1)),
                    (Py::str("max"), Py::Int(315_360_000)),
                ]),
            ),
            (
                Py::str("message"),
                Py::str("Must be greater than or equal to 1 and less than or equal to 315360000."),
            ),
        ]);
        assert_eq!(
            Py::field_error("expiration", range).repr(),
            "{'expiration': [{'constraint_id': 'range', 'constraint': {'min': 1, 'max': 315360000}, 'message': 'Must be greater than or equal to 1 and less than or equal to 315360000.'}]}"
        );
        assert_eq!(
            Py::field_error(
                "_schema",
                Py::str(
                    "\"client_id\" must be specified when using \"access_type\" is \"offline\""
                )
            )
            .repr(),
            "{'_schema': ['\"client_id\" must be specified when using \"access_type\" is \"offline\"']}"
        );
        assert_eq!(Py::str("it's").repr(), "\"it's\"");
        assert_eq!(Py::str("a'\"b\\\n").repr(), "'a\\'\"b\\\\\\n'");
    }

    #[test]
    fn utc_times_always_carry_six_digits_and_no_zone() {
        let at = Timestamp::from_secs(1_777_996_800);
        assert_eq!(utc_iso(at), "2026-05-05T16:00:00.000000");
        assert_eq!(
            utc_iso(Timestamp::from_micros(1_777_996_800_123_456)),
            "2026-05-05T16:00:00.123456"
        );
        assert_eq!(utc_iso_offset(at), "2026-05-05T16:00:00+00:00");
    }
}
