//! `tessera backup FILE`: an online, consistent copy of the SQLite database, taken while the
//! server runs. SQLite's `VACUUM INTO` (3.27 and later) writes one read snapshot, WAL included,
//! without blocking writers, into a staging file (mode 0600) beside FILE; the copy is synced and
//! must pass `PRAGMA integrity_check` before it takes FILE's name, which it never replaces
//! without `--force`. The server secret and the JWT signing key are not in the database: the
//! command names their files, to be backed up once and kept apart. PostgreSQL: `pg_dump`.
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::config::Settings;
use crate::store::connection::PoolOptions;
use crate::store::{Backend, DbConnection, Store};

use super::{CliError, CliResult, JsonOutput, print_json};

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// A file the backup does not hold.
#[derive(Serialize)]
struct KeyFile {
    /// `server_secret` or `jwt_signing_key`.
    name: &'static str,
    path: String,
    exists: bool,
}

/// What `backup --json` prints.
#[derive(Serialize)]
struct BackupView {
    file: String,
    bytes: u64,
    integrity_check: &'static str,
    /// Not in the backup: copy them once, kept apart from the database backups.
    not_included: Vec<KeyFile>,
}

pub fn run(settings: &Settings, file: &Path, force: bool, output: JsonOutput) -> CliResult {
    let database = match Backend::from_url(&settings.database.url) {
        Ok(Backend::Sqlite { path }) => path,
        Ok(Backend::Postgres { .. }) => {
            return Err(CliError::Usage(
                "tessera backup copies SQLite databases only; back up PostgreSQL with pg_dump \
                 (docs/operations.md, Backups and restore)"
                    .into(),
            ));
        }
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    if !database.is_file() {
        return Err(CliError::Failed(format!(
            "no database at {}",
            database.display()
        )));
    }
    let Some(target) = file.to_str() else {
        return Err(CliError::Usage(format!(
            "{}: the backup path must be UTF-8",
            file.display()
        )));
    };
    if target.is_empty() || file.is_dir() {
        return Err(CliError::Usage(format!("{target}: not a file name")));
    }
    if file.exists() {
        if same_file(file, &database) {
            return Err(CliError::Usage(format!("{target} is the database itself")));
        }
        if !force {
            return Err(exists(target));
        }
    }
    let staging = staging_path(file)?;
    let result = copy_and_check(settings, &database, &staging)
        .and_then(|()| move_into_place(&staging, file, force));
    if result.is_err() {
        let _ = fs::remove_file(&staging);
    }
    result?;
    let bytes = fs::metadata(file).map_err(|e| e.to_string())?.len();
    report(settings, file, bytes, output)
}

/// `.<name>.<uuid>.tmp` in FILE's directory, created empty with mode 0600 (`VACUUM INTO`
/// accepts an empty file and keeps its mode).
fn staging_path(file: &Path) -> Result<PathBuf, CliError> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::Usage(format!("{}: not a file name", file.display())))?;
    let staging = file.with_file_name(format!(".{name}.{}.tmp", Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(&staging).map_err(|e| {
        CliError::Failed(format!(
            "cannot write in the directory of {}: {e}",
            file.display()
        ))
    })?;
    Ok(staging)
}

/// `VACUUM INTO` the staging file, sync it, and check its integrity.
fn copy_and_check(settings: &Settings, database: &Path, staging: &Path) -> CliResult {
    let url = settings.database.url.clone();
    let store = Store::open(
        &url,
        &PoolOptions {
            size: 1,
            timeout: Duration::from_secs(settings.database.pool_timeout),
            busy_timeout_ms: settings.database.busy_timeout_ms,
        },
    )?;
    let mut conn = store.conn()?;
    let DbConnection::Sqlite(sqlite) = &mut *conn else {
        return Err(CliError::Usage("not a SQLite database".into()));
    };
    let into = staging
        .to_str()
        .ok_or_else(|| CliError::Usage(format!("{}: not UTF-8", staging.display())))?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(into)
        .execute(sqlite)
        .map_err(|e| {
            CliError::Failed(format!(
                "cannot copy {} to {}: {e}",
                database.display(),
                staging.display()
            ))
        })?;
    drop(conn);
    // SQLite does not sync what VACUUM INTO writes.
    fs::File::open(staging)
        .and_then(|f| f.sync_all())
        .map_err(|e| CliError::Failed(format!("cannot sync {}: {e}", staging.display())))?;
    let mut copy = SqliteConnection::establish(into)
        .map_err(|e| CliError::Failed(format!("cannot open the copy {into}: {e}")))?;
    copy.batch_execute("PRAGMA query_only = ON")
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let rows: Vec<IntegrityRow> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut copy)
        .map_err(|e| CliError::Failed(format!("integrity_check of the copy: {e}")))?;
    let verdict: Vec<String> = rows.into_iter().map(|r| r.integrity_check).collect();
    if verdict != ["ok"] {
        return Err(CliError::Failed(format!(
            "the copy failed its integrity check: {}",
            verdict.join("; ")
        )));
    }
    Ok(())
}

/// Gives the checked copy FILE's name: a hard link never replaces an existing file; `--force`
/// renames over it.
fn move_into_place(staging: &Path, file: &Path, force: bool) -> CliResult {
    let target = file.display().to_string();
    if force {
        fs::rename(staging, file)
            .map_err(|e| CliError::Failed(format!("cannot write {target}: {e}")))?;
    } else {
        match fs::hard_link(staging, file) {
            Ok(()) => {
                let _ = fs::remove_file(staging);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(exists(&target)),
            // A file system without hard links: the file was absent a moment ago.
            Err(_) if !file.exists() => fs::rename(staging, file)
                .map_err(|e| CliError::Failed(format!("cannot write {target}: {e}")))?,
            Err(e) => return Err(CliError::Failed(format!("cannot write {target}: {e}"))),
        }
    }
    // Make the new name durable too (best effort: not every system syncs directories).
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn exists(target: &str) -> CliError {
    CliError::Failed(format!(
        "{target} already exists; choose a new file or add --force to replace it"
    ))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Prints where the copy is, its size and check, and the key files it does not hold.
fn report(settings: &Settings, file: &Path, bytes: u64, output: JsonOutput) -> CliResult {
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let keys = [
        ("server_secret", "server secret", settings.secret_path()),
        (
            "jwt_signing_key",
            "JWT signing key",
            settings.jwt_key_path(),
        ),
    ];
    if output.json {
        return print_json(&BackupView {
            file: absolute(file),
            bytes,
            integrity_check: "ok",
            not_included: keys
                .iter()
                .map(|(name, _, path)| KeyFile {
                    name,
                    path: absolute(path),
                    exists: path.exists(),
                })
                .collect(),
        });
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "backup written to {} ({bytes} bytes); integrity_check: ok",
        absolute(file)
    );
    let _ = writeln!(
        out,
        "not in the backup: copy these files too, once, and keep them apart from it:"
    );
    for (_, label, path) in &keys {
        let absent = if path.exists() {
            ""
        } else {
            " (absent: not created yet)"
        };
        let _ = writeln!(out, "  {label}: {}{absent}", absolute(path));
    }
    Ok(())
}
