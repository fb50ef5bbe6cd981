//! Scope sets (RFC 6749 §3.3): space-delimited, case-sensitive strings, order irrelevant.
use std::collections::BTreeSet;
use std::fmt;

/// Why a scope string is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope contains a character outside RFC 6749 §3.3 scope-token")]
    BadCharacter,
    #[error("too many scopes")]
    TooMany,
}

/// Most scopes accepted in one request; a guard against hostile input.
pub const MAX_SCOPES: usize = 64;

/// A set of scope tokens, kept sorted so that equal sets compare and render equally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses `scope = scope-token *( SP scope-token )`, where a scope-token is
    /// `1*( %x21 / %x23-5B / %x5D-7E )`. Runs of spaces are tolerated, as most servers do.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for (n, token) in raw.split(' ').filter(|t| !t.is_empty()).enumerate() {
            if n >= MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
            if !token.bytes().all(is_scope_char) {
                return Err(ScopeError::BadCharacter);
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn from_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Self(items.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_deduplicates() -> Result<(), ScopeError> {
        let s = ScopeSet::parse("write  read read")?;
        assert_eq!(s.to_string(), "read write");
        assert!(ScopeSet::parse("")?.is_empty());
        Ok(())
    }

    #[test]
    fn rejects_characters_outside_the_grammar() {
        for raw in ["a\"b", "a\\b", "é", "a\tb"] {
            assert_eq!(ScopeSet::parse(raw), Err(ScopeError::BadCharacter), "{raw}");
        }
    }

    #[test]
    fn subset_is_set_inclusion() -> Result<(), ScopeError> {
        let all = ScopeSet::parse("a b c")?;
        assert!(ScopeSet::parse("c a")?.is_subset(&all));
        assert!(!ScopeSet::parse("a d")?.is_subset(&all));
        Ok(())
    }
}
