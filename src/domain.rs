//! The vocabulary shared by every layer: scopes, secrets, clients and users. No I/O here.
pub mod client;
pub mod scope;
pub mod secret;
pub mod user;

pub use client::{Client, GrantType};
pub use scope::ScopeSet;
pub use secret::Secret;
pub use user::User;

/// Token metadata (wazo-auth's `metadata` object): JSON keys and values, kept as given.
pub type Metadata = serde_json::Map<String, serde_json::Value>;
