//! ACL matching as wazo-auth does it (xivo `AccessCheck`, wazo-contract §1.9), shared by Wazo
//! ACLs and OAuth2 scopes:
//! - entries are dot-separated; `*` matches one segment (any run without `.` or `#`, possibly
//!   empty); `#` matches anything, dots included;
//! - a segment `me` also matches the caller's `auth_id`, `my_session` its session id, and
//!   `edit` also matches `update`;
//! - entries starting with `!` deny and win over any allowing entry;
//! - an empty required string never matches.

/// Who is asking, for `me` and `my_session`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AclContext<'a> {
    pub auth_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

/// Longest required access string considered; longer ones are refused outright.
pub const MAX_LEN: usize = 1024;

/// Whether `acl` grants `required`.
pub fn is_allowed<S: AsRef<str>>(acl: &[S], required: &str, ctx: AclContext<'_>) -> bool {
    if required.is_empty() || required.len() > MAX_LEN {
        return false;
    }
    let (deny, allow): (Vec<&str>, Vec<&str>) = acl
        .iter()
        .map(AsRef::as_ref)
        .partition(|e| e.starts_with('!'));
    if deny
        .iter()
        .any(|e| matches(e.trim_start_matches('!'), required, ctx))
    {
        return false;
    }
    allow.iter().any(|e| matches(e, required, ctx))
}

#[derive(Debug)]
enum Token {
    Char(u8),
    /// `*`: any run of bytes other than `.` and `#`.
    Star,
    /// `#`: any run of bytes.
    Hash,
    /// A whole segment that may be any of these literals.
    OneOf(Vec<String>),
}

fn compile(pattern: &str, ctx: AclContext<'_>) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    for (i, segment) in pattern.split('.').enumerate() {
        if i > 0 {
            tokens.push(Token::Char(b'.'));
        }
        let alternatives = match segment {
            "me" => ctx.auth_id.map(|id| vec!["me".to_owned(), id.to_owned()]),
            "my_session" => ctx
                .session_id
                .map(|id| vec!["my_session".to_owned(), id.to_owned()]),
            "edit" => Some(vec!["edit".to_owned(), "update".to_owned()]),
            _ => None,
        };
        if let Some(alternatives) = alternatives {
            tokens.push(Token::OneOf(alternatives));
            continue;
        }
        tokens.extend(segment.bytes().map(|b| match b {
            b'*' => Token::Star,
            b'#' => Token::Hash,
            other => Token::Char(other),
        }));
    }
    tokens
}

/// Whether one (positive) pattern matches the whole of `input`.
fn matches(pattern: &str, input: &str, ctx: AclContext<'_>) -> bool {
    let tokens = compile(pattern, ctx);
    let input = input.as_bytes();
    // reachable[j]: the tokens consumed so far can match input[..j].
    let mut reachable = vec![false; input.len() + 1];
    if let Some(first) = reachable.first_mut() {
        *first = true;
    }
    for token in &tokens {
        let mut next = vec![false; input.len() + 1];
        match token {
            // Linear passes: a run extends from any reachable position.
            Token::Star | Token::Hash => {
                let mut open = false;
                for (j, flag) in next.iter_mut().enumerate() {
                    let before = j.checked_sub(1).and_then(|k| input.get(k));
                    let continues = match (token, before) {
                        (Token::Star, Some(b)) => *b != b'.' && *b != b'#',
                        _ => true,
                    };
                    open = reachable.get(j).copied().unwrap_or(false) || (open && continues);
                    *flag = open;
                }
            }
            Token::Char(c) => {
                for (start, _) in reachable.iter().enumerate().filter(|(_, r)| **r) {
                    if input.get(start) == Some(c) {
                        mark(&mut next, start + 1);
                    }
                }
            }
            Token::OneOf(options) => {
                for (start, _) in reachable.iter().enumerate().filter(|(_, r)| **r) {
                    let rest = input.get(start..).unwrap_or_default();
                    for option in options {
                        if rest.starts_with(option.as_bytes()) {
                            mark(&mut next, start + option.len());
                        }
                    }
                }
            }
        }
        reachable = next;
    }
    reachable.last().copied().unwrap_or(false)
}

fn mark(flags: &mut [bool], at: usize) {
    if let Some(flag) = flags.get_mut(at) {
        *flag = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: AclContext<'static> = AclContext {
        auth_id: Some("1234-uuid"),
        session_id: Some("sess-1"),
    };

    #[test]
    fn the_contract_table_holds() {
        // (acl, required, expected)
        let table: &[(&[&str], &str, bool)] = &[
            (&["calld.#"], "calld", false),
            (&["calld.#"], "calld.calls.read", true),
            (&["calld.#"], "calld.", true),
            (&["dird.*.read"], "dird.x.read", true),
            (&["dird.*.read"], "dird.x.y.read", false),
            (&["dird.*.read"], "dird..read", true),
            (&["confd.users.me.read"], "confd.users.1234-uuid.read", true),
            (&["confd.users.me.read"], "confd.users.me.read", true),
            (&["confd.users.me.read"], "confd.users.other.read", false),
            (
                &["auth.sessions.my_session.delete"],
                "auth.sessions.sess-1.delete",
                true,
            ),
            (&["confd.users.edit"], "confd.users.update", true),
            (&["#"], "anything.at.all", true),
            (&["#", "!auth.tokens.revoke"], "auth.tokens.revoke", false),
            (&["#", "!auth.#"], "auth.tokens.read", false),
            (&["#", "!auth.#"], "confd.users.read", true),
            (&["a.b"], "a.b", true),
            (&["a.b"], "a.bc", false),
            (&["a.b"], "", false),
            (&[], "a", false),
            (&["PRODUCTION"], "PRODUCTION", true),
            (&["a*"], "abc", true),
            (&["a*"], "ab.c", false),
            // `*` is one segment, possibly empty, never across a dot or a `#`.
            (&["dird.*"], "dird.", true),
            (&["dird.*"], "dird", false),
            (&["dird.*"], "dird.a#b", false),
            (&["*.read"], "confd.read", true),
            (&["*.read"], "confd.users.read", false),
            (&["confd.*.*.read"], "confd.users.42.read", true),
            // `#` spans dots, anywhere in the entry.
            (&["#.read"], "confd.users.read", true),
            (&["#.read"], "confd.users.write", false),
            (&["confd.#.read"], "confd.users.42.read", true),
            (&["confd.#.read"], "confd.read", false),
            (&["#"], "", false),
            // `me` at any position, `my_session`, `edit`.
            (
                &["auth.users.me.tokens.#"],
                "auth.users.1234-uuid.tokens.read",
                true,
            ),
            (
                &["auth.users.me.tokens.#"],
                "auth.users.me.tokens.read",
                true,
            ),
            (
                &["auth.users.me.tokens.#"],
                "auth.users.5678-uuid.tokens.read",
                false,
            ),
            (&["me.x"], "1234-uuid.x", true),
            (&["confd.users.me"], "confd.users.1234-uuid", true),
            (&["confd.users.meme"], "confd.users.1234-uuid", false),
            (
                &["auth.sessions.my_session.delete"],
                "auth.sessions.sess-2.delete",
                false,
            ),
            (
                &["auth.sessions.my_session.delete"],
                "auth.sessions.my_session.delete",
                true,
            ),
            (&["confd.users.edit"], "confd.users.edit", true),
            (&["confd.users.edit"], "confd.users.delete", false),
            (&["confd.users.update"], "confd.users.edit", false),
            // Negation wins wherever it sits, and only for what it matches.
            (&["!auth.tokens.revoke", "#"], "auth.tokens.revoke", false),
            (&["!auth.tokens.revoke", "#"], "auth.tokens.read", true),
            (
                &["!confd.users.me.#", "confd.#"],
                "confd.users.1234-uuid.read",
                false,
            ),
            (
                &["!confd.users.me.#", "confd.#"],
                "confd.users.5678-uuid.read",
                true,
            ),
            (&["!#"], "anything", false),
            (&["!a.b"], "a.b", false),
            // Literal characters are literal: regex metacharacters mean nothing.
            (&["a.b"], "aXb", false),
            (&["a+b"], "a+b", true),
            (&["a(b)"], "a(b)", true),
            (&["a.[bc]"], "a.b", false),
            // Case matters.
            (&["confd.Users.read"], "confd.users.read", false),
            // Several entries: any positive one suffices.
            (&["a.b", "c.d"], "c.d", true),
            (&["a.b", "c.d"], "e.f", false),
        ];
        assert!(table.len() >= 30);
        for (acl, required, expected) in table {
            assert_eq!(
                is_allowed(acl, required, ME),
                *expected,
                "{acl:?} vs {required}"
            );
        }
    }

    #[test]
    fn me_without_an_auth_id_is_literal() {
        let none = AclContext::default();
        assert!(is_allowed(&["x.me"], "x.me", none));
        assert!(!is_allowed(&["x.me"], "x.1234-uuid", none));
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let acl = ["#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.x"];
        let required = "a.".repeat(400);
        assert!(!is_allowed(&acl, &required, ME));
    }
}
