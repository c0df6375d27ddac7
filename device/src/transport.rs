//! HTTP for the device: a ureq agent, signed requests and bounded answers. TLS trust (webpki
//! roots plus an optional private CA) and the body bound are `pushauth_client::transport`'s, the
//! same rules as the relying-party client's.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushauth_client::transport::{self, tls_config, ReadError, MAX_BODY_BYTES};
use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::wire::ErrorBody;
use pushauth_proto::DeviceSigningKey;
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
        let config = tls_config(ca_file).map_err(|e| DeviceError::Profile(e.to_string()))?;
        builder = builder.tls_config(config);
    }
    Ok(builder.build())
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
        Err(ureq::Error::Transport(t)) => return Err(unreachable(&url, &t)),
    };
    let status = response.status();
    let bytes = transport::read_limited(response).map_err(|e| match e {
        ReadError::TooLarge => {
            DeviceError::BadAnswer(format!("{url}: answer larger than {MAX_BODY_BYTES} bytes"))
        }
        ReadError::Io(e) => DeviceError::Unreachable(format!("{url}: reading the answer: {e}")),
    })?;
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

/// A transport failure as the device reports it: the URL once (ureq's text starts with it when
/// it knows it), and, for a certificate from an unknown CA, what to do about it (the relying
/// party's client says the same for its `ca_file`).
fn unreachable(url: &str, t: &ureq::Transport) -> DeviceError {
    let text = match t.url() {
        Some(_) => t.to_string(),
        None => format!("{url}: {t}"),
    };
    if transport::is_unknown_ca(t) {
        return DeviceError::Unreachable(format!("{text}{UNKNOWN_CA_HINT}"));
    }
    DeviceError::Unreachable(text)
}

/// What a certificate from an unknown CA adds to the failure (a newcomer with a private CA got
/// only "cannot reach the pushauth server"; session 23).
const UNKNOWN_CA_HINT: &str = ". The server's certificate is not signed by a CA this device \
    trusts: if it comes from a private CA, give that CA's certificate (PEM) with \
    `pushauth-device enroll --ca-file CA.pem`, which keeps it in the device's profile";

/// At most `max` characters of `text`, with a visible mark saying how many more there were.
fn cut_visibly(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… [{} more characters not shown]", total - max)
}
