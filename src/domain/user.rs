//! Users: the resource owners of the password grant and of Wazo logins.
use std::fmt;

/// A user account. `password_hash` is an argon2id PHC string; its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_confirmed: bool,
    pub password_hash: Option<String>,
    pub enabled: bool,
    /// ACL patterns (wazo-auth syntax), also the scopes the user may be granted.
    pub acl: Vec<String>,
    pub tenant_uuid: String,
    pub purpose: String,
    pub created_at: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("enabled", &self.enabled)
            .field("acl", &self.acl)
            .finish_non_exhaustive()
    }
}
