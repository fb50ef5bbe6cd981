//! `[server.tls]`: the PEM files into a rustls configuration, errors naming the file.
use std::path::Path;
use std::sync::Arc;

use super::StartError;
use crate::config::TlsSettings;

/// The rustls configuration of `[server.tls]`, or `None` for plain HTTP. TLS 1.3 and 1.2 only
/// (RFC 9325 §3.1.1, the OWASP TLS cheat sheet), with the ring provider's default cipher
/// suites: AEAD only (AES-GCM, ChaCha20-Poly1305) over ECDHE, so every connection has forward
/// secrecy and no CBC or static-RSA key exchange is offered (RFC 9325 §4.1, §4.2).
pub fn tls_config(tls: &TlsSettings) -> Result<Option<rustls::ServerConfig>, StartError> {
    use rustls::crypto::CryptoProvider;
    use rustls::sign::CertifiedKey;

    if !tls.enabled() {
        return Ok(None);
    }
    let (cert_path, key_path) = (tls.cert_file.display(), tls.key_file.display());
    let cert_err = |reason: String| StartError::Tls {
        what: "certificate",
        path: cert_path.to_string(),
        reason,
    };
    let key_err = |reason: String| StartError::Tls {
        what: "private key",
        path: key_path.to_string(),
        reason,
    };
    let chain = read_certificates(&tls.cert_file).map_err(cert_err)?;
    let key = read_private_key(&tls.key_file).map_err(key_err)?;
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    // Checked one by one, so that the error names the file at fault.
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| key_err(e.to_string()))?;
    match CertifiedKey::new(chain.clone(), signing_key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(cert_err(format!(
                "its public key does not match the private key {key_path}"
            )));
        }
        Err(e) => return Err(cert_err(e.to_string())),
    }
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| StartError::Other(format!("TLS configuration: {e}")))?;
    log::info!("TLS 1.2 and 1.3 with the certificate {cert_path}");
    Ok(Some(config))
}

/// The PEM certificates of `path`, in order (the server's first).
fn read_certificates(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate found (expected PEM \"BEGIN CERTIFICATE\" blocks)".into());
    }
    Ok(chain)
}

/// The first PEM private key of `path` (PKCS#8, PKCS#1 or SEC1). Its contents never appear
/// in an error.
fn read_private_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::{self, PemObject};

    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            "no private key found (expected a PEM \"PRIVATE KEY\" block)".to_owned()
        }
        e => format!("bad PEM: {e}"),
    })
}
