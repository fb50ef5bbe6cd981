//! Hot reload of the token policy (DESIGN.md §6): on SIGHUP, and when the contents of the
//! configuration file change, the same layers as at start-up (defaults, the same file, the same
//! environment) are read again and validated whole. If they are valid, the new policy replaces
//! the old one at once for requests that start from then on; a request in flight keeps the
//! `Policy` it copied when it started. An invalid or unreadable file is rejected, the reason is
//! logged, and the old policy stays. Only the policy is reloaded: other sections apply at
//! start-up, and a change to them is logged as needing a restart (by section, never by value:
//! `[database] url` may hold a password).
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Interval, MissedTickBehavior};

use crate::config::{ConfigError, Settings};
use crate::oauth::Service;
use crate::policy::{Dialect, Policies, PolicySettings};

/// Where the settings come from: the layers re-read by a reload.
#[derive(Clone)]
pub struct ConfigSource {
    /// `--config FILE` / `TESSERA_CONFIG`; `None` = defaults and environment only.
    pub file: Option<PathBuf>,
    /// The environment the process started with (it cannot change while the process runs).
    pub env: Vec<(String, String)>,
}

impl ConfigSource {
    /// The file given on the command line and this process's environment (variables whose name
    /// or value is not UTF-8 are not configuration and are left out).
    pub fn from_process(file: Option<PathBuf>) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self { file, env }
    }

    /// Loads and validates the settings as start-up does.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        Settings::load_with_env(self.file.as_deref(), self.env.iter().cloned())
    }

    /// A digest of the file's contents (or why it cannot be read); `None` without a file.
    fn fingerprint(&self) -> Option<Fingerprint> {
        let file = self.file.as_ref()?;
        Some(match std::fs::read(file) {
            Ok(bytes) => Fingerprint::Contents(Sha256::digest(&bytes).into()),
            Err(e) => Fingerprint::Unreadable(e.kind()),
        })
    }
}

/// The environment's values may be secrets (`TESSERA_DATABASE__URL`): only names are shown.
impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSource")
            .field("file", &self.file)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What the configuration file held when last looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Contents([u8; 32]),
    Unreadable(std::io::ErrorKind),
}

/// What made the server reload, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    FileChange,
    /// The watcher's first look, catching a change made while the server was starting.
    Start,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FileChange => "configuration file changed",
            Trigger::Start => "start-up check",
        })
    }
}

/// Why a reload was rejected (the policy in force stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration cannot be read or is invalid; the message names the key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service refused the new policy (e.g. JWT access tokens without a usable key).
    #[error("the new policy cannot be applied: {0}")]
    Apply(String),
}

/// A reload that was accepted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Whether the policy in force was replaced.
    pub policy_changed: bool,
    /// Each effective value that changed, e.g. `oauth2 rotate_refresh_tokens: true -> false`.
    pub changes: Vec<String>,
    /// Sections that differ from the running ones but apply only at start-up.
    pub restart_needed: Vec<&'static str>,
}

/// Reloads the policy of one service from one source, remembering the settings in force.
pub struct Reloader {
    service: Arc<Service>,
    source: ConfigSource,
    running: Settings,
}

impl Reloader {
    /// `running` are the settings the service was started with.
    pub fn new(service: Arc<Service>, source: ConfigSource, running: Settings) -> Self {
        Self {
            service,
            source,
            running,
        }
    }

    /// Re-reads and validates every layer; if valid, swaps in the new policy. On an error the
    /// policy in force is untouched. Blocking (reads the file): call it off the executor.
    pub fn reload(&mut self) -> Result<Reloaded, ReloadError> {
        let new = self.source.load()?;
        let restart_needed = restart_needed(&self.running, &new);
        let Settings { policy, .. } = new;
        let policy_changed = policy != self.running.policy;
        let changes = policy_changes(&self.running.policy, &policy);
        if policy_changed {
            self.service
                .set_policies(Policies::from(&policy))
                .map_err(ReloadError::Apply)?;
            self.running.policy = policy;
        }
        Ok(Reloaded {
            policy_changed,
            changes,
            restart_needed,
        })
    }
}

/// The sections other than `[policy]` whose values differ. The destructuring is exhaustive, so
/// a new section must be added here (reloadable or not).
fn restart_needed(running: &Settings, new: &Settings) -> Vec<&'static str> {
    let Settings {
        server,
        database,
        policy: _,
        wazo,
        jwt,
        security,
        log,
    } = new;
    // The tables have no PartialEq; their derived Debug is structural. Compared, never printed.
    let differs = |a: &dyn fmt::Debug, b: &dyn fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut sections = Vec::new();
    if differs(&running.server, server) {
        sections.push("[server]");
    }
    if differs(&running.database, database) {
        sections.push("[database]");
    }
    if differs(&running.wazo, wazo) {
        sections.push("[wazo]");
    }
    if differs(&running.jwt, jwt) {
        sections.push("[jwt]");
    }
    if differs(&running.security, security) {
        sections.push("[security]");
    }
    if differs(&running.log, log) {
        sections.push("[log]");
    }
    sections
}

/// The effective values that differ, per dialect, and per client whose own table changed
/// (clients without a table of their own follow their dialect).
fn policy_changes(old: &PolicySettings, new: &PolicySettings) -> Vec<String> {
    let (old_p, new_p) = (Policies::from(old), Policies::from(new));
    let mut scopes: Vec<(String, Dialect, Option<&str>)> = vec![
        ("oauth2".into(), Dialect::OAuth2, None),
        ("wazo".into(), Dialect::Wazo, None),
    ];
    let ids = old.clients.keys().chain(new.clients.keys());
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if seen.insert(id) && old.clients.get(id) != new.clients.get(id) {
            scopes.push((
                format!("client \"{id}\" (oauth2)"),
                Dialect::OAuth2,
                Some(id),
            ));
            scopes.push((format!("client \"{id}\" (wazo)"), Dialect::Wazo, Some(id)));
        }
    }
    let mut changes = Vec::new();
    for (name, dialect, client) in scopes {
        let before = old_p.explain(dialect, client);
        for (key, value, _) in new_p.explain(dialect, client) {
            let was = before.iter().find(|(k, _, _)| *k == key).map(|(_, v, _)| v);
            if was != Some(&value) {
                let was = was.map_or("(unset)", String::as_str);
                changes.push(format!("{name} {key}: {was} -> {value}"));
            }
        }
    }
    changes
}

/// Logs a reload's outcome; `quiet` skips the line for a reload that changed nothing.
pub fn log_outcome(trigger: Trigger, outcome: &Result<Reloaded, ReloadError>, quiet: bool) {
    match outcome {
        Ok(r) => {
            if r.policy_changed && r.changes.is_empty() {
                log::info!("policy reloaded ({trigger}): no effective value changed");
            } else if r.policy_changed {
                log::info!("policy reloaded ({trigger}): {}", r.changes.join("; "));
            } else if !quiet {
                log::info!("policy reloaded ({trigger}): unchanged");
            }
            if !r.restart_needed.is_empty() {
                log::warn!(
                    "configuration reload ({trigger}): changes to {} need a restart; \
                     only [policy] is reloaded",
                    r.restart_needed.join(", ")
                );
            }
        }
        Err(e) => log::error!("policy reload rejected: {e}; the previous policy stays in force"),
    }
}

/// The watcher's state: the reloader and what the file held at the last reload.
struct Watch {
    reloader: Reloader,
    /// The file as of the last reload (by any trigger).
    applied: Option<Fingerprint>,
    /// A change seen once, applied if the next check sees the same contents: a file caught
    /// half-written is never applied.
    pending: Option<Fingerprint>,
}

impl Watch {
    fn new(reloader: Reloader) -> Self {
        Self {
            reloader,
            applied: None,
            pending: None,
        }
    }

    /// A reload on request (SIGHUP, start).
    fn reload_now(&mut self) -> Result<Reloaded, ReloadError> {
        self.applied = self.reloader.source.fingerprint();
        self.pending = None;
        self.reloader.reload()
    }

    /// A periodic check: reloads once a change has read the same twice in a row.
    fn check(&mut self) -> Option<Result<Reloaded, ReloadError>> {
        let now = self.reloader.source.fingerprint()?;
        if self.applied.as_ref() == Some(&now) {
            self.pending = None;
            return None;
        }
        if self.pending.as_ref() != Some(&now) {
            self.pending = Some(now);
            return None;
        }
        Some(self.reload_now())
    }
}

/// Reloads on SIGHUP, and on a change of the configuration file checked every `interval`
/// (zero = never). File reads and parsing run on the blocking pool, one reload at a time.
/// Must be called inside a Tokio runtime.
pub fn spawn_watcher(reloader: Reloader, interval: Duration) {
    // Registered now, so that SIGHUP no longer terminates the process once this returns.
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("cannot listen for SIGHUP ({e}); the policy reloads on file change only");
            None
        }
    };
    let Some(file) = reloader.source.file.clone() else {
        log::info!("no configuration file: SIGHUP has nothing to reload");
        tokio::spawn(async move {
            while next_hangup(&mut hangup).await {
                log::info!(
                    "SIGHUP: nothing to reload (started without --config; the environment \
                     of a running process cannot change)"
                );
            }
        });
        return;
    };
    let mut poll = (!interval.is_zero()).then(|| {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });
    match &poll {
        Some(_) => log::info!(
            "policy reloads on SIGHUP and on change of {} (checked every {} ms)",
            file.display(),
            interval.as_millis()
        ),
        None => log::info!("policy reloads on SIGHUP from {}", file.display()),
    }
    let watch = Arc::new(Mutex::new(Watch::new(reloader)));
    tokio::spawn(async move {
        // A change made while the server was starting is caught here.
        run_blocking(&watch, |w| {
            let outcome = w.reload_now();
            log_outcome(Trigger::Start, &outcome, true);
        })
        .await;
        loop {
            let signalled = tokio::select! {
                alive = next_hangup(&mut hangup) => {
                    if !alive {
                        hangup = None;
                        continue;
                    }
                    true
                }
                () = next_tick(&mut poll) => false,
            };
            run_blocking(&watch, move |w| {
                if signalled {
                    log_outcome(Trigger::Signal, &w.reload_now(), false);
                } else if let Some(outcome) = w.check() {
                    log_outcome(Trigger::FileChange, &outcome, false);
                }
            })
            .await;
        }
    });
}

/// Runs `f` on the watcher's state on the blocking pool.
async fn run_blocking(watch: &Arc<Mutex<Watch>>, f: impl FnOnce(&mut Watch) + Send + 'static) {
    let watch = Arc::clone(watch);
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = watch.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard);
    })
    .await;
    if let Err(e) = joined {
        log::error!("policy reload failed: {e}");
    }
}

/// The next SIGHUP; `false` when signals can no longer arrive. Never resolves without a handler.
async fn next_hangup(hangup: &mut Option<Signal>) -> bool {
    match hangup {
        Some(s) => s.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// The next check of the file. Never resolves when checks are off.
async fn next_tick(poll: &mut Option<Interval>) {
    match poll {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failing test stops at the unwrap")]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::derive::ServerSecret;
    use crate::oauth::service::{JwtOptions, WazoOptions};
    use crate::store::Store;
    use crate::store::connection::PoolOptions;

    struct Fixture {
        dir: tempfile::TempDir,
        reloader: Reloader,
        service: Arc<Service>,
    }

    impl Fixture {
        fn new(toml: &str) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("tessera.toml");
            std::fs::write(&file, toml).unwrap();
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            let source = ConfigSource {
                file: Some(file),
                env: vec![("TESSERA_DATABASE__URL".into(), url.clone())],
            };
            let settings = source.load().unwrap();
            let store = Store::open(
                &url,
                &PoolOptions {
                    size: 1,
                    timeout: Duration::from_secs(1),
                    busy_timeout_ms: 100,
                },
            )
            .unwrap();
            let service = Arc::new(Service::new(
                store,
                Arc::new(ManualClock::starting_now()),
                Policies::from(&settings.policy),
                ServerSecret::generate(),
                WazoOptions {
                    xivo_uuid: None,
                    default_user_acl: Vec::new(),
                    max_user_concurrent_sessions: 1,
                },
                JwtOptions {
                    // Under a regular file: JWT access tokens cannot get a key.
                    key_file: dir.path().join("tessera.toml").join("jwt.pem"),
                    issuer: "http://test".into(),
                    audience: "http://test".into(),
                },
            ));
            let reloader = Reloader::new(Arc::clone(&service), source, settings);
            Fixture {
                dir,
                reloader,
                service,
            }
        }

        fn write(&self, toml: &str) {
            std::fs::write(self.dir.path().join("tessera.toml"), toml).unwrap();
        }

        fn rotates(&self) -> bool {
            self.service
                .policy_for(Dialect::OAuth2)
                .rotate_refresh_tokens
        }
    }

    #[test]
    fn a_valid_file_replaces_the_policy_and_names_what_changed() {
        let mut f = Fixture::new("[policy]\nrotate_refresh_tokens = true\n");
        f.write(
            "[policy]\nrotate_refresh_tokens = false\n\
             [policy.clients.\"phone\"]\naccess_token_ttl = 60\n",
        );
        let r = f.reloader.reload().unwrap();
        assert!(r.policy_changed);
        assert!(!f.rotates());
        assert_eq!(
            r.changes,
            [
                "oauth2 rotate_refresh_tokens: true -> false",
                "client \"phone\" (oauth2) access_token_ttl: 3600 -> 60",
                "client \"phone\" (oauth2) rotate_refresh_tokens: true -> false",
                "client \"phone\" (wazo) access_token_ttl: 7200 -> 60",
            ]
        );
        assert_eq!(
            f.service
                .policy_for_client(Dialect::Wazo, Some("phone"))
                .access_token_ttl,
            60
        );
        assert!(r.restart_needed.is_empty());

        let again = f.reloader.reload().unwrap();
        assert_eq!(again, Reloaded::default(), "the same file changes nothing");
    }

    #[test]
    fn an_invalid_file_keeps_the_policy_and_the_error_names_the_key() {
        let mut f = Fixture::new("[policy]\nrotate_refresh_tokens = false\n");
        f.write("[policy]\nrotate_refresh_tokens = true\naccess_token_ttl = 0\n");
        let err = f.reloader.reload().unwrap_err().to_string();
        assert!(err.contains("policy.access_token_ttl"), "{err}");
        assert!(!f.rotates());

        f.write("[policy]\nrotate_refresh_tokens = true\n[polcy]\n");
        let err = f.reloader.reload().unwrap_err().to_string();
        assert!(err.contains("polcy"), "{err}");
        f.write("[policy\nrotate_refresh_tokens = true\n");
        assert!(f.reloader.reload().is_err());
        std::fs::remove_file(f.dir.path().join("tessera.toml")).unwrap();
        let err = f.reloader.reload().unwrap_err();
        assert!(
            matches!(err, ReloadError::Config(ConfigError::Unreadable { .. })),
            "{err}"
        );
        assert!(!f.rotates());

        // A bad value in another section rejects the whole file, policy included.
        f.write("[policy]\nrotate_refresh_tokens = true\n[log]\nlevel = \"loud\"\n");
        assert!(f.reloader.reload().is_err());
        assert!(!f.rotates());
    }

    #[test]
    fn a_policy_the_service_refuses_is_rejected_and_the_old_one_stays() {
        let mut f = Fixture::new("[policy]\nrotate_refresh_tokens = false\n");
        f.write("[policy]\nrotate_refresh_tokens = true\ntoken_format = \"jwt\"\n");
        let err = f.reloader.reload().unwrap_err();
        assert!(matches!(err, ReloadError::Apply(_)), "{err}");
        assert!(!f.rotates());
        let policy = f.service.policy_for(Dialect::OAuth2);
        assert_eq!(policy.token_format, crate::policy::TokenFormat::Opaque);
        // Nothing of the refused policy was kept: the same file is refused again.
        assert!(f.reloader.reload().is_err());
    }

    #[test]
    fn other_sections_are_named_as_needing_a_restart_and_not_applied() {
        let mut f = Fixture::new("[database]\npool_size = 2\n");
        f.write(
            "[database]\npool_size = 3\n[log]\nlevel = \"debug\"\n\
             [policy]\naccess_token_ttl = 10\n",
        );
        let r = f.reloader.reload().unwrap();
        assert_eq!(r.restart_needed, ["[database]", "[log]"]);
        assert_eq!(r.changes, ["oauth2 access_token_ttl: 3600 -> 10"]);
        // Still not applied, so still reported.
        let r = f.reloader.reload().unwrap();
        assert_eq!(r.restart_needed, ["[database]", "[log]"]);
        assert!(!r.policy_changed);
    }

    #[test]
    fn a_change_is_applied_once_the_file_reads_the_same_twice() {
        let f = Fixture::new("[policy]\nrotate_refresh_tokens = true\n");
        let Fixture {
            dir,
            reloader,
            service,
        } = f;
        let mut watch = Watch::new(reloader);
        assert!(watch.reload_now().is_ok());
        assert!(watch.check().is_none(), "unchanged");
        let file = dir.path().join("tessera.toml");
        std::fs::write(&file, "[policy]\n").unwrap(); // caught half-written
        assert!(watch.check().is_none(), "first sight: pending");
        std::fs::write(&file, "[policy]\nrotate_refresh_tokens = false\n").unwrap();
        assert!(watch.check().is_none(), "changed again: pending again");
        assert!(service.policy_for(Dialect::OAuth2).rotate_refresh_tokens);
        let outcome = watch.check().map(Result::unwrap);
        assert!(outcome.is_some_and(|r| r.policy_changed));
        assert!(!service.policy_for(Dialect::OAuth2).rotate_refresh_tokens);
        assert!(watch.check().is_none(), "applied once");

        // An invalid file is rejected once, not at every check.
        std::fs::write(&file, "[policy]\naccess_token_ttl = 0\n").unwrap();
        assert!(watch.check().is_none());
        assert!(watch.check().is_some_and(|r| r.is_err()));
        assert!(watch.check().is_none());
        assert!(!service.policy_for(Dialect::OAuth2).rotate_refresh_tokens);
    }

    #[test]
    fn the_debug_form_of_a_source_hides_the_environment_values() {
        let source = ConfigSource {
            file: None,
            env: vec![(
                "TESSERA_DATABASE__URL".into(),
                "postgres://u:hunter2@db/t".into(),
            )],
        };
        let shown = format!("{source:?}");
        assert!(shown.contains("TESSERA_DATABASE__URL"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
