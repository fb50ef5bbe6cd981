//! Settings: the shipped `conf/tessera.toml` (compiled in as the default layer), overlaid by
//! `--config FILE` / `TESSERA_CONFIG`, overlaid by `TESSERA_<SECTION>__<KEY>` variables.
//! Unknown keys and bad values are errors that name the key.
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::policy::PolicySettings;

/// The documented defaults, which are also the first configuration layer.
pub const DEFAULTS: &str = include_str!("../conf/tessera.toml");

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: key `{key}`: {reason}")]
    BadValue { key: String, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub policy: PolicySettings,
    pub wazo: WazoSettings,
    pub jwt: JwtSettings,
    pub security: SecuritySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub issuer: String,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub data_dir: PathBuf,
    /// The server secret (Wazo refresh-token derivation); empty = `<data_dir>/server.secret`.
    pub secret_file: PathBuf,
    /// Milliseconds between checks of the configuration file for a changed policy; 0 = off
    /// (SIGHUP still reloads).
    pub config_watch_ms: u64,
    /// Seconds requests in flight get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout: u64,
    /// Serve plain HTTP on a non-loopback `bind` (behind a TLS-terminating proxy); without it,
    /// such a bind without `[server.tls]` refuses to start.
    pub allow_insecure_http: bool,
    /// Peers whose `X-Forwarded-For` gives the client address: IP addresses or CIDR ranges.
    pub trusted_proxies: Vec<String>,
    pub tls: TlsSettings,
}

/// The `[server.tls]` table: HTTPS served by Tessera itself (rustls, TLS 1.2 and 1.3).
/// Both files empty = plain HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of the certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl TlsSettings {
    /// Whether TLS is configured (both files named; `validate` refuses one without the other).
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty() && !self.key_file.as_os_str().is_empty()
    }
}

/// The `[jwt]` table: JWT access tokens (`token_format = "jwt"`, RFC 9068).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// PKCS#8 PEM file of the RS256 signing key; empty = `<data_dir>/jwt-signing-key.pem`.
    pub key_file: PathBuf,
    /// The `aud` claim; empty = the issuer.
    pub audience: String,
}

/// The `[wazo]` table: what wazo-auth reads from its own configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WazoSettings {
    /// `xivo_uuid` reported in tokens; empty = the `XIVO_UUID` variable, else null.
    pub xivo_uuid: String,
    /// ACL entries every Wazo token gets before the user's own (`default_user_policy`).
    pub default_user_acl: Vec<String>,
    /// Live sessions a `user` or `external_api` user may hold (`max_user_concurrent_sessions`).
    pub max_user_concurrent_sessions: u32,
}

/// The `[security]` table: brute-force limits on the password paths and client
/// authentication, failures per sliding `window`; 0 disables a limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Failed password logins per login (OAuth2 password grant and Wazo login together).
    pub login_failures: u32,
    /// Failed password logins and client authentications per source address.
    pub address_failures: u32,
    /// Failed client authentications per client id.
    pub client_failures: u32,
    /// The sliding window, seconds.
    pub window: u64,
}

/// The longest `[security] window`: one day.
pub const MAX_FAILURE_WINDOW: u64 = 86_400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub pool_timeout: u64,
    pub busy_timeout_ms: u32,
    pub cleanup_interval: u64,
    pub cleanup_batch_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// How each log record is written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// env_logger's line: `[time LEVEL target] message`.
    Text,
    /// One JSON object per line: `ts`, `level`, `target`, `message`, and an access line's fields.
    Json,
}

impl Settings {
    /// Loads the layers: defaults, then `file` (if any), then `TESSERA_*__*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        // Only SECTION__KEY variables are configuration; TESSERA_CONFIG and others are not.
        let overrides: config::Map<String, String> = env
            .iter()
            .cloned()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix("TESSERA_")?;
                rest.contains("__").then(|| (rest.to_owned(), value))
            })
            .collect();
        builder = builder.add_source(
            config::Environment::default()
                .separator("__")
                .try_parsing(true)
                // TESSERA_WAZO__DEFAULT_USER_ACL="a.#,b.read" is a list.
                .list_separator(",")
                .with_list_parse_key("wazo.default_user_acl")
                .with_list_parse_key("server.trusted_proxies")
                .source(Some(overrides)),
        );
        let mut settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        // wazo-auth reads the platform uuid from XIVO_UUID.
        if settings.wazo.xivo_uuid.is_empty() {
            if let Some((_, v)) = env.iter().find(|(k, _)| k == "XIVO_UUID") {
                settings.wazo.xivo_uuid = v.clone();
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let addr = self.bind_addr()?;
        self.validate_transport(addr)?;
        let issuer = &self.server.issuer;
        if !issuer.is_empty() && !issuer.starts_with("https://") && !issuer.starts_with("http://") {
            return Err(bad("server.issuer", "must be an http:// or https:// URL"));
        }
        if self.server.issuer.contains(['?', '#']) {
            return Err(bad(
                "server.issuer",
                "must have no query or fragment (RFC 8414 §2)",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return Err(bad(
                "server.max_body_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        crate::store::Backend::from_url(&self.database.url)
            .map_err(|e| bad("database.url", &e.to_string()))?;
        if self.database.pool_size > 1024 {
            return Err(bad("database.pool_size", "must be at most 1024"));
        }
        if self.database.pool_timeout == 0 {
            return Err(bad("database.pool_timeout", "must be at least 1 second"));
        }
        if self.database.cleanup_batch_size == 0 {
            return Err(bad("database.cleanup_batch_size", "must be at least 1"));
        }
        self.policy
            .validate()
            .map_err(|(key, reason)| bad(key, reason))?;
        if self.wazo.max_user_concurrent_sessions == 0 {
            return Err(bad(
                "wazo.max_user_concurrent_sessions",
                "must be at least 1",
            ));
        }
        if self.wazo.default_user_acl.iter().any(|e| e.is_empty()) {
            return Err(bad("wazo.default_user_acl", "entries must not be empty"));
        }
        if !(1..=MAX_FAILURE_WINDOW).contains(&self.security.window) {
            return Err(bad(
                "security.window",
                "must be between 1 and 86400 seconds",
            ));
        }
        if self.log_filter().is_none() {
            return Err(bad(
                "log.level",
                "must be one of error, warn, info, debug, trace",
            ));
        }
        Ok(())
    }

    /// TLS files come in pairs; trusted proxies parse; plain HTTP only on loopback unless the
    /// operator says a TLS-terminating proxy is in front.
    pub fn validate_transport(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        let tls = &self.server.tls;
        match (
            tls.cert_file.as_os_str().is_empty(),
            tls.key_file.as_os_str().is_empty(),
        ) {
            (false, true) => {
                return Err(bad(
                    "server.tls.key_file",
                    "must be set when server.tls.cert_file is",
                ));
            }
            (true, false) => {
                return Err(bad(
                    "server.tls.cert_file",
                    "must be set when server.tls.key_file is",
                ));
            }
            _ => {}
        }
        self.trusted_proxies()?;
        if !tls.enabled() && !self.server.allow_insecure_http && !is_loopback(addr.ip()) {
            return Err(bad(
                "server.bind",
                &format!(
                    "{addr} is not a loopback address, and plain HTTP there would carry \
                     passwords and tokens in clear: set [server.tls] cert_file and key_file, \
                     or, behind a TLS-terminating proxy, set [server] allow_insecure_http = true"
                ),
            ));
        }
        Ok(())
    }

    /// The parsed `[server] trusted_proxies`: an address is a one-address range. Empty entries
    /// are skipped, so that `TESSERA_SERVER__TRUSTED_PROXIES=` clears the list.
    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| {
                parse_proxy(entry).ok_or_else(|| {
                    bad(
                        "server.trusted_proxies",
                        &format!("`{entry}` is not an IP address or CIDR range (e.g. 10.0.0.0/8)"),
                    )
                })
            })
            .collect()
    }

    /// The socket address to listen on.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            bad(
                "server.bind",
                "must be an IP address and port, e.g. 127.0.0.1:9497",
            )
        })
    }

    /// The issuer identifier (RFC 8414 §2), without a trailing slash.
    pub fn issuer(&self) -> String {
        if self.server.issuer.is_empty() {
            let scheme = if self.server.tls.enabled() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", self.server.bind)
        } else {
            self.server.issuer.trim_end_matches('/').to_owned()
        }
    }

    /// Where the server secret lives.
    pub fn secret_path(&self) -> PathBuf {
        if self.server.secret_file.as_os_str().is_empty() {
            self.server.data_dir.join("server.secret")
        } else {
            self.server.secret_file.clone()
        }
    }

    /// The JWT signing key file.
    pub fn jwt_key_path(&self) -> PathBuf {
        if self.jwt.key_file.as_os_str().is_empty() {
            self.server.data_dir.join("jwt-signing-key.pem")
        } else {
            self.jwt.key_file.clone()
        }
    }

    /// The `aud` of JWT access tokens.
    pub fn jwt_audience(&self) -> String {
        if self.jwt.audience.is_empty() {
            self.issuer()
        } else {
            self.jwt.audience.clone()
        }
    }

    /// The platform uuid reported in Wazo tokens, if configured.
    pub fn xivo_uuid(&self) -> Option<String> {
        (!self.wazo.xivo_uuid.is_empty()).then(|| self.wazo.xivo_uuid.clone())
    }

    pub fn log_filter(&self) -> Option<log::LevelFilter> {
        match self.log.level.as_str() {
            "error" => Some(log::LevelFilter::Error),
            "warn" => Some(log::LevelFilter::Warn),
            "info" => Some(log::LevelFilter::Info),
            "debug" => Some(log::LevelFilter::Debug),
            "trace" => Some(log::LevelFilter::Trace),
            _ => None,
        }
    }
}

/// `127.0.0.0/8` and `::1` (also as an IPv4-mapped address): reachable from this host only.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// An IP address or a CIDR range, surrounding whitespace ignored.
fn parse_proxy(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .or_else(|_| entry.parse::<IpNet>().map(|net| net.trunc()))
        .ok()
}

fn bad(key: impl Into<String>, reason: &str) -> ConfigError {
    ConfigError::BadValue {
        key: key.into(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let path = dir.path().join("t.toml");
        std::fs::write(&path, toml).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Settings::load_with_env(Some(&path), env)
    }

    #[test]
    fn the_shipped_file_is_a_valid_configuration() -> Result<(), ConfigError> {
        let s = Settings::load_with_env(None, Vec::new())?;
        assert_eq!(s.server.bind, "127.0.0.1:9497");
        assert_eq!(s.database.url, "sqlite://data/tessera.db");
        assert_eq!(s.policy.access_token_ttl, 3600);
        assert!(s.policy.rotate_refresh_tokens);
        Ok(())
    }

    #[test]
    fn a_file_overlays_and_the_environment_overrides_it() -> Result<(), ConfigError> {
        let s = load(
            "[policy]\nrefresh_token_ttl = 10\nrotate_refresh_tokens = false\n",
            &[
                ("TESSERA_POLICY__REFRESH_TOKEN_TTL", "20"),
                ("TESSERA_CONFIG", "ignored"),
            ],
        )?;
        assert_eq!(s.policy.refresh_token_ttl, 20);
        assert!(!s.policy.rotate_refresh_tokens);
        assert_eq!(s.policy.access_token_ttl, 3600);
        Ok(())
    }

    #[test]
    fn wazo_settings_come_from_the_environment_too() -> Result<(), ConfigError> {
        let s = load(
            "",
            &[
                (
                    "TESSERA_WAZO__DEFAULT_USER_ACL",
                    "auth.users.me.#,confd.read",
                ),
                ("XIVO_UUID", "from-env"),
                ("TESSERA_POLICY__WAZO__ACCESS_TOKEN_TTL", "60"),
            ],
        )?;
        assert_eq!(s.wazo.default_user_acl, ["auth.users.me.#", "confd.read"]);
        assert_eq!(s.xivo_uuid().as_deref(), Some("from-env"));
        assert_eq!(s.policy.wazo.access_token_ttl, Some(60));
        let s = load(
            "[wazo]\nxivo_uuid = \"from-file\"\n",
            &[("XIVO_UUID", "from-env")],
        )?;
        assert_eq!(s.xivo_uuid().as_deref(), Some("from-file"));
        Ok(())
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = load("[policy]\nrotate_refresh_token = true\n", &[]).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("rotate_refresh_token"), "{msg}");

        let err = load("", &[("TESSERA_SERVER__PORTT", "1")]).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("portt"), "{msg}");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_key() {
        for (toml, key) in [
            ("[server]\nbind = \"nowhere\"\n", "server.bind"),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            (
                "[policy]\naccess_token_ttl = 0\n",
                "policy.access_token_ttl",
            ),
            ("[log]\nlevel = \"loud\"\n", "log.level"),
            ("[security]\nwindow = 0\n", "security.window"),
            ("[security]\nlogin_failures = -1\n", "login_failures"),
        ] {
            let msg = load(toml, &[])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(key), "{toml} -> {msg}");
        }
        let msg = load("[policy]\nrefresh_token_ttl = -1\n", &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("refresh_token_ttl"), "{msg}");
    }

    fn error_of(toml: &str, env: &[(&str, &str)]) -> String {
        load(toml, env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn plain_http_off_loopback_is_refused_naming_the_address_and_the_ways_out() {
        for bind in [
            "0.0.0.0:9497",
            "192.0.2.10:443",
            "[::]:9497",
            "[2001:db8::1]:80",
        ] {
            let msg = error_of(&format!("[server]\nbind = \"{bind}\"\n"), &[]);
            assert!(msg.contains("server.bind"), "{msg}");
            assert!(msg.contains(bind), "{msg}");
            assert!(msg.contains("[server.tls]"), "{msg}");
            assert!(msg.contains("allow_insecure_http = true"), "{msg}");
        }
    }

    #[test]
    fn plain_http_is_accepted_on_loopback_behind_a_proxy_or_with_tls() -> Result<(), ConfigError> {
        for bind in [
            "127.0.0.1:9497",
            "127.1.2.3:0",
            "[::1]:9497",
            "[::ffff:127.0.0.1]:1",
        ] {
            load(&format!("[server]\nbind = \"{bind}\"\n"), &[])?;
        }
        let s = load(
            "[server]\nbind = \"0.0.0.0:9497\"\nallow_insecure_http = true\n",
            &[],
        )?;
        assert!(!s.server.tls.enabled());
        let s = load(
            "[server]\nbind = \"0.0.0.0:443\"\n[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
            &[],
        )?;
        assert!(s.server.tls.enabled());
        let s = load(
            "",
            &[
                ("TESSERA_SERVER__BIND", "0.0.0.0:443"),
                ("TESSERA_SERVER__TLS__CERT_FILE", "c.pem"),
                ("TESSERA_SERVER__TLS__KEY_FILE", "k.pem"),
            ],
        )?;
        assert_eq!(s.server.tls.key_file, PathBuf::from("k.pem"));
        Ok(())
    }

    #[test]
    fn a_tls_file_without_its_pair_is_an_error_naming_the_missing_key() {
        let msg = error_of("[server.tls]\ncert_file = \"c.pem\"\n", &[]);
        assert!(msg.contains("server.tls.key_file"), "{msg}");
        let msg = error_of("[server.tls]\nkey_file = \"k.pem\"\n", &[]);
        assert!(msg.contains("server.tls.cert_file"), "{msg}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() -> Result<(), ConfigError> {
        let s = load(
            "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.1.2.3/8\", \"::1\", \"fd00::/8\"]\n",
            &[],
        )?;
        let nets: Vec<String> = s
            .trusted_proxies()?
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"]);
        let s = load(
            "",
            &[(
                "TESSERA_SERVER__TRUSTED_PROXIES",
                "127.0.0.1,192.168.0.0/16",
            )],
        )?;
        assert_eq!(s.trusted_proxies()?.len(), 2);
        assert!(
            Settings::load_with_env(None, Vec::new())?
                .trusted_proxies()?
                .is_empty()
        );
        let s = load(
            "[server]\ntrusted_proxies = [\"10.0.0.1\"]\n",
            &[("TESSERA_SERVER__TRUSTED_PROXIES", "")],
        )?;
        assert!(s.trusted_proxies()?.is_empty());
        for bad in ["nginx", "10.0.0.0/33", "1.2.3.4:80", "::1/129"] {
            let msg = error_of(&format!("[server]\ntrusted_proxies = [\"{bad}\"]\n"), &[]);
            assert!(msg.contains("server.trusted_proxies"), "{bad}: {msg}");
            assert!(msg.contains(&format!("`{bad}`")), "{bad}: {msg}");
        }
        Ok(())
    }
}
