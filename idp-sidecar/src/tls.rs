//! HTTPS for the shim API (`[tls]`): a PEM certificate chain and key in a rustls server config
//! (ring provider, TLS 1.2 and 1.3, HTTP/1.1), as pushauthd does.

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{check_private, TlsSettings};

/// Why the TLS acceptor cannot be built; the text names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// Builds the TLS acceptor configuration. The key file must be private to the sidecar's user.
pub fn load(settings: &TlsSettings) -> Result<RustlsConfig, TlsError> {
    let tls_err = TlsError;
    let certs = CertificateDer::pem_file_iter(&settings.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_err(format!(
                "cannot read certificates from {}: {e}",
                settings.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{} holds no PEM certificate",
            settings.cert.display()
        )));
    }
    check_private(&settings.key).map_err(|e| tls_err(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| {
        tls_err(format!(
            "cannot read a private key from {}: {e}",
            settings.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(format!("certificate and key do not fit: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(server)))
}
