//! The one transport rule set for every pushauth HTTP client (the relying-party client here, the
//! device CLI in `pushauth-device`): TLS trust is the webpki roots plus an optional extra PEM CA
//! file, never an "insecure" mode; answers are read up to [`MAX_BODY_BYTES`] and no further.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use pushauth_files::{FileError, Owner, ReadPolicy};
pub use pushauth_proto::MAX_BODY_BYTES;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use thiserror::Error;

/// Why the TLS trust could not be set up. The message names the CA file.
#[derive(Debug, Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The CA file.
        path: std::path::PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The CA file is not valid PEM, holds an unusable certificate, or holds none.
    #[error("CA file {path} {problem}")]
    BadCaFile {
        /// The CA file.
        path: std::path::PathBuf,
        /// What is wrong, as a sentence tail ("holds no PEM certificate").
        problem: String,
    },
    /// The CA file is refused by the shared file rule ([`pushauth_files`]): not a regular
    /// file, writable by group or others (who could then choose the servers trusted), or
    /// larger than [`MAX_CA_FILE_BYTES`].
    #[error("CA file: {0}")]
    Refused(pushauth_files::FileError),
    /// rustls refused the protocol versions (should not happen with its defaults).
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

/// Largest CA file read, in bytes (16 MiB: a full system bundle is a few hundred KiB).
pub const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Whether a ureq transport failure holds a rustls error anywhere in its source chain: the TLS
/// handshake failed, or an alert ended the connection after it.
#[must_use]
pub fn is_tls_failure(transport: &ureq::Transport) -> bool {
    has_tls_error_where(transport, |_| true)
}

/// Whether a ureq transport failure is rustls refusing the server's certificate because no
/// trusted CA signed it (`CertificateError::UnknownIssuer`): the usual sign of a private CA
/// that the client was not given (`ca_file`, `--ca-file`).
#[must_use]
pub fn is_unknown_ca(transport: &ureq::Transport) -> bool {
    has_tls_error_where(transport, |e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        )
    })
}

/// Whether the error's source chain holds a rustls error (an alert after the handshake) for
/// which `which` holds.
fn has_tls_error_where(
    transport: &ureq::Transport,
    which: impl Fn(&rustls::Error) -> bool,
) -> bool {
    let mut source = std::error::Error::source(transport);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return which(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return which(tls);
            }
        }
        source = err.source();
    }
    false
}

/// A rustls client configuration trusting the webpki roots plus every certificate in `ca_file`
/// (a PEM bundle with at least one certificate). ring provider, rustls' safe default protocol
/// versions, no client certificate.
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    // The shared file rule, checked on the opened file: whoever can write the CA file decides
    // which servers are trusted, so it must not be writable by group or others (any owner).
    let policy = ReadPolicy::config(Owner::Any).max_bytes(MAX_CA_FILE_BYTES);
    let contents = pushauth_files::read(ca_file, &policy).map_err(|e| match e {
        FileError::NotFound { path } => TlsSetupError::Read {
            path,
            source: std::io::ErrorKind::NotFound.into(),
        },
        FileError::Read { path, source } => TlsSetupError::Read { path, source },
        other => TlsSetupError::Refused(other),
    })?;
    let pem = contents.bytes();
    let bad = |problem: String| TlsSetupError::BadCaFile {
        path: ca_file.to_owned(),
        problem,
    };
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| bad(format!("is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("holds an unusable certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad("holds no PEM certificate".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why a body could not be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The answer is (or says it is) larger than [`MAX_BODY_BYTES`].
    #[error("answer larger than {MAX_BODY_BYTES} bytes refused")]
    TooLarge,
    /// The connection failed while reading.
    #[error("reading the answer: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a ureq response body, refusing more than [`MAX_BODY_BYTES`]: a declared
/// `Content-Length` over the bound is refused before reading, and at most one byte more than
/// the bound is ever read.
pub fn read_limited(response: ureq::Response) -> Result<Vec<u8>, ReadError> {
    if let Some(len) = response
        .header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        if len > MAX_BODY_BYTES as u64 {
            return Err(ReadError::TooLarge);
        }
    }
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn bad_ca_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = tls_config(&missing).unwrap_err();
        assert!(matches!(err, TlsSetupError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "not a certificate\n").unwrap();
        let err = tls_config(&empty).unwrap_err();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
    }
}
