//! The signing key's file: PKCS#8 PEM, mode 0600, created when first needed. A new key is
//! written to a staging file and hard-linked into place, so instances starting together on a
//! shared directory never see a half-written file and never overwrite each other's key.
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;

use super::JwtSigner;
use crate::crypto::CryptoError;

/// Reads the key at `path`, or generates one and stores it there (mode 0600, parent
/// directories created) if there is no file. The boolean says whether the key was created. A
/// file that exists but is not a usable key is an error, never replaced.
pub fn load_or_create(path: &Path) -> Result<(JwtSigner, bool), CryptoError> {
    load_or_create_with(path, JwtSigner::generate)
}

pub(super) fn load_or_create_with(
    path: &Path,
    generate: impl FnOnce() -> Result<JwtSigner, CryptoError>,
) -> Result<(JwtSigner, bool), CryptoError> {
    if let Some(signer) = read_key(path)? {
        return Ok((signer, false));
    }
    let signer = generate()?;
    let io_error = |what: &str, e: io::Error| {
        CryptoError(format!(
            "cannot {what} the JWT signing key {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| io_error("create the directory of", e))?;
    }
    match publish(path, signer.to_pem().expose()) {
        Ok(()) => Ok((signer, true)),
        // Another instance sharing the directory won the race: use its key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_key(path)? {
            Some(theirs) => Ok((theirs, false)),
            None => Err(io_error("write", e)),
        },
        Err(e) => Err(io_error("write", e)),
    }
}

fn read_key(path: &Path) -> Result<Option<JwtSigner>, CryptoError> {
    let pem = match fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CryptoError(format!(
                "cannot read the JWT signing key {}: {e}",
                path.display()
            )));
        }
    };
    #[cfg(unix)]
    if let Ok(meta) = fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "the JWT signing key {} is readable by others; chmod 600 it",
                path.display()
            );
        }
    }
    JwtSigner::from_pem(&pem).map(Some).map_err(|e| {
        CryptoError(format!(
            "the JWT signing key {} is unusable: {}",
            path.display(),
            e.0
        ))
    })
}

/// Creates `path` holding `pem`, unless it exists (then `AlreadyExists`). The PEM is written to
/// a private file beside it first, then hard-linked into place (`link(2)` never replaces a
/// file), so an instance racing on a shared directory reads either nothing or a whole key.
fn publish(path: &Path, pem: &str) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    write_new(&staging, pem)?;
    let linked = fs::hard_link(&staging, path);
    // The key now lives under `path` (same inode) or nowhere; the staging name goes either way.
    let _ = fs::remove_file(&staging);
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            // A filesystem without hard links: create the file in place, still never replacing.
            log::debug!(
                "hard link to {} failed ({e}); writing in place",
                path.display()
            );
            write_new(path, pem)
        }
        other => other,
    }
}

/// Writes a new owner-only file; fails with `AlreadyExists` if there is one. A partly written
/// file is removed.
fn write_new(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let written = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}
