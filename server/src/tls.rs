//! HTTPS: loads a PEM certificate chain and key into a rustls server config (ring provider).

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use pushauth_files::{Owner, ReadPolicy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::error::ServerError;

/// Builds the TLS acceptor configuration from the configured files.
pub fn load(config: &TlsConfig) -> Result<RustlsConfig, ServerError> {
    let certs = CertificateDer::pem_file_iter(&config.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ServerError::Tls(format!(
                "cannot read certificates from {}: {e}",
                config.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no PEM certificate",
            config.cert.display()
        )));
    }
    // Read once through the shared secret rule (checked on the opened file, at most 64 KiB),
    // then parsed from memory: owned by the user pushauthd runs as, no permission bit for group
    // or others (issue 10 item 3: group-readable secrets are refused everywhere).
    let pem = pushauth_files::read(&config.key, &ReadPolicy::secret(Owner::current()))
        .map_err(|e| ServerError::Tls(format!("TLS key: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(pem.bytes()).map_err(|e| {
        ServerError::Tls(format!(
            "cannot read a private key from {}: {e}",
            config.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not fit: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(server)))
}
