//! Wazo ACL matching (`oauth::acl::is_allowed`, xivo `AccessCheck`, wazo-contract §1.9),
//! checked against an independent matcher: each entry compiled to a regular expression the
//! way wazo-auth does it (`*` → `[^.#]*`, `#` → `.*`, a `me` segment → `(me|<auth_id>)`, a
//! `my_session` segment → `(my_session|<session id>)`, `edit` → `(edit|update)`), `!` entries
//! denying first. Plus the algebra the module doc implies: an entry allows itself, `#` allows
//! anything, entry order does not matter, a deny entry only ever takes away.
//!
//! Input (UTF-8), one item per line: the required access, the caller's `auth_id` (empty line:
//! none), its session id (empty line: none), then the ACL entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use tessera::fuzzing::{AclContext, MAX_ACL_REQUIRED_LEN, is_allowed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let required = lines.next().unwrap_or_default();
    let auth_id = lines.next().filter(|s| !s.is_empty());
    let session_id = lines.next().filter(|s| !s.is_empty());
    let acl: Vec<&str> = lines.collect();
    let ctx = AclContext {
        auth_id,
        session_id,
    };
    let valid = !required.is_empty() && required.len() <= MAX_ACL_REQUIRED_LEN;

    let allowed = is_allowed(&acl, required, ctx);
    if let Some(expected) = reference(&acl, required, ctx) {
        assert_eq!(allowed, expected, "{acl:?} vs {required:?} ({ctx:?})");
    }

    // Order does not matter.
    let reversed: Vec<&str> = acl.iter().rev().copied().collect();
    assert_eq!(is_allowed(&reversed, required, ctx), allowed, "order");
    // `#` allows any required access there can be; `!#` denies everything.
    let mut with_all = acl.clone();
    with_all.push("#");
    let denied = acl
        .iter()
        .any(|e| e.starts_with('!') && matches(e, required, ctx));
    assert_eq!(is_allowed(&with_all, required, ctx), valid && !denied, "#");
    with_all.push("!#");
    assert!(!is_allowed(&with_all, required, ctx), "!#");
    // The required access itself, as an entry, grants it unless something denies it.
    if !required.starts_with('!') {
        let mut with_itself = acl.clone();
        with_itself.push(required);
        assert_eq!(
            is_allowed(&with_itself, required, ctx),
            valid && !denied,
            "itself"
        );
    }

    for entry in &acl {
        if entry.starts_with('!') {
            // A deny entry never grants: dropping it cannot take anything away.
            let without: Vec<&str> = acl.iter().copied().filter(|e| e != entry).collect();
            assert!(
                !allowed || is_allowed(&without, required, ctx),
                "deny {entry:?}"
            );
            continue;
        }
        // An entry allows itself, wildcards and substitutions included.
        let self_valid = !entry.is_empty() && entry.len() <= MAX_ACL_REQUIRED_LEN;
        assert_eq!(
            is_allowed(&[entry], entry, ctx),
            self_valid,
            "{entry:?} itself"
        );
        // Its negation takes away what it grants.
        let grants = is_allowed(&[entry], required, ctx);
        let negated = format!("!{entry}");
        let mut with_deny = acl.clone();
        with_deny.push(&negated);
        if grants {
            assert!(
                !is_allowed(&with_deny, required, ctx),
                "!{entry:?} does not deny"
            );
        }
        // Without a context, `me` and `my_session` are literal segments.
        if !is_allowed(&[entry], required, AclContext::default()) {
            continue;
        }
        assert!(grants, "{entry:?}: a context can only add matches");
    }
});

/// Whether one entry (its `!` prefixes removed) matches, per the reference.
fn matches(entry: &str, required: &str, ctx: AclContext<'_>) -> bool {
    compile(entry.trim_start_matches('!'), ctx).is_some_and(|re| re.is_match(required))
}

/// The reference verdict, or `None` when a pattern is too large for the regex engine.
fn reference(acl: &[&str], required: &str, ctx: AclContext<'_>) -> Option<bool> {
    if required.is_empty() || required.len() > MAX_ACL_REQUIRED_LEN {
        return Some(false);
    }
    let mut allow = false;
    for entry in acl {
        let re = compile(entry.trim_start_matches('!'), ctx)?;
        if re.is_match(required) {
            if entry.starts_with('!') {
                return Some(false);
            }
            allow = true;
        }
    }
    Some(allow)
}

fn compile(pattern: &str, ctx: AclContext<'_>) -> Option<Regex> {
    let mut re = String::from("^(?s:");
    for (i, segment) in pattern.split('.').enumerate() {
        if i > 0 {
            re.push_str(r"\.");
        }
        let alternatives = match segment {
            "me" => ctx.auth_id.map(|id| ["me", id]),
            "my_session" => ctx.session_id.map(|id| ["my_session", id]),
            "edit" => Some(["edit", "update"]),
            _ => None,
        };
        if let Some([a, b]) = alternatives {
            re.push_str(&format!("(?:{}|{})", regex::escape(a), regex::escape(b)));
            continue;
        }
        for c in segment.chars() {
            match c {
                '*' => re.push_str("[^.#]*"),
                '#' => re.push_str(".*"),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
    }
    re.push_str(")$");
    Regex::new(&re).ok()
}
