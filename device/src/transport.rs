//! HTTP for the device: a ureq agent (rustls, optional private CA), signed requests and bounded
//! answers.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::wire::ErrorBody;
use pushauth_proto::{DeviceSigningKey, MAX_BODY_BYTES};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::de::DeserializeOwned;

use crate::DeviceError;

/// Time allowed to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on calls that do not long-poll; long polls add their wait to it.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds an agent trusting the webpki roots, plus the certificates in `ca_file` when given.
/// Share one agent among many [`crate::DeviceClient`]s to share its connection pool.
pub fn build_agent(ca_file: Option<&Path>) -> Result<ureq::Agent, DeviceError> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .redirects(0)
        .user_agent(concat!("pushauth-device/", env!("CARGO_PKG_VERSION")));
    if let Some(ca_file) = ca_file {
        builder = builder.tls_config(tls_config(ca_file)?);
    }
    Ok(builder.build())
}

fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, DeviceError> {
    let profile_err = |msg: String| DeviceError::Profile(msg);
    let pem = fs::read(ca_file)
        .map_err(|e| profile_err(format!("cannot read CA file {}: {e}", ca_file.display())))?;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            profile_err(format!(
                "CA file {} is not valid PEM: {e}",
                ca_file.display()
            ))
        })?;
        roots.add(cert).map_err(|e| {
            profile_err(format!(
                "CA file {} holds an unusable certificate: {e}",
                ca_file.display()
            ))
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(profile_err(format!(
            "CA file {} holds no PEM certificate",
            ca_file.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| profile_err(format!("TLS setup failed: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One request. `signer` signs it as a device (every call but enrollment). `path_and_query` is
/// appended to `origin` and is exactly what the signature covers.
pub(crate) fn send<T: DeserializeOwned>(
    agent: &ureq::Agent,
    origin: &str,
    path_and_query: &str,
    method: &str,
    body: Option<Vec<u8>>,
    signer: Option<(&DeviceSigningKey, &str)>,
    timeout: Duration,
) -> Result<T, DeviceError> {
    let url = format!("{origin}{path_and_query}");
    let mut request = agent
        .request(method, &url)
        .timeout(timeout)
        .set("Accept", "application/json");
    let body_bytes = body.unwrap_or_default();
    if let Some((key, device_id)) = signer {
        let auth = DeviceAuth::sign(
            key,
            device_id,
            method,
            path_and_query,
            &body_bytes,
            unix_now(),
        )
        .map_err(|e| DeviceError::Profile(format!("cannot sign the request: {e}")))?;
        request = request.set("Authorization", &auth.to_string());
    }
    let result = if method == "GET" {
        request.call()
    } else {
        request
            .set("Content-Type", "application/json")
            .send_bytes(&body_bytes)
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(t)) => return Err(DeviceError::Unreachable(t.to_string())),
    };
    let status = response.status();
    let bytes = read_limited(response, &url)?;
    if !(200..300).contains(&status) {
        return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => DeviceError::Server {
                status,
                code: Some(body.error),
                message: body.message,
            },
            Err(_) => DeviceError::Server {
                status,
                code: None,
                // Kept as sent (escaped where printed), cut visibly.
                message: cut_visibly(&String::from_utf8_lossy(&bytes), 200),
            },
        });
    }
    // An empty success body (204) reads as JSON null, for callers that ignore it.
    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| DeviceError::BadAnswer(format!("{url}: malformed answer: {e}")))
}

/// Reads a body, refusing more than [`MAX_BODY_BYTES`].
fn read_limited(response: ureq::Response, url: &str) -> Result<Vec<u8>, DeviceError> {
    let too_large =
        || DeviceError::BadAnswer(format!("{url}: answer larger than {MAX_BODY_BYTES} bytes"));
    if let Some(len) = response
        .header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        if len > MAX_BODY_BYTES as u64 {
            return Err(too_large());
        }
    }
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DeviceError::Unreachable(format!("{url}: reading the answer: {e}")))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// At most `max` characters of `text`, with a visible mark saying how many more there were.
fn cut_visibly(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… [{} more characters not shown]", total - max)
}
