//! The HTTP transport: one ureq agent (rustls, optional private CA and proxy), bounded bodies,
//! and failures sorted into "no answer" (worth another server or another try) and "an answer".

use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pushauth_proto::wire::{ErrorBody, ErrorCode};
use pushauth_proto::MAX_BODY_BYTES;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::{ClientConfig, ClientError};

/// Socket read timeout outside long polls; long polls set their own per-request timeout.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per server. One `Client` serves many threads at once (the IdP sidecar,
/// a busy relying party); ureq's default of one would make nearly every call open a new
/// connection (and, with TLS, a new handshake).
const IDLE_CONNECTIONS_PER_SERVER: usize = 64;

/// How a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No HTTP answer: connection refused or reset, DNS, TLS, timeout.
    Transport(String),
    /// A non-2xx answer.
    Status {
        status: u16,
        code: Option<ErrorCode>,
        message: String,
    },
    /// A 2xx answer whose body is too large or not the expected JSON.
    Body(String),
}

impl Failure {
    /// Whether trying again (or another server) may succeed: no answer, or the server (or a
    /// gateway in front of it) failed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status { status, .. } => *status >= 500,
            Failure::Body(_) => false,
        }
    }

    /// Whether no server was reached at all, or only a gateway that could not reach it: the
    /// only failures on which a new challenge is sent to the next server.
    pub(crate) fn is_unreached(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status { status, .. } => matches!(status, 502..=504),
            Failure::Body(_) => false,
        }
    }

    /// The error the caller sees.
    pub(crate) fn into_error(self) -> ClientError {
        match self {
            Failure::Transport(msg) => ClientError::Unreachable(msg),
            Failure::Body(msg) => ClientError::BadAnswer(msg),
            Failure::Status {
                status,
                code,
                message,
            } => match (status, code) {
                (401, _) => ClientError::Unauthorized,
                (_, Some(ErrorCode::UnknownUser)) => ClientError::UnknownUser,
                (_, Some(ErrorCode::NoDevice)) => ClientError::NoDevice,
                (429, code) => ClientError::RateLimited {
                    code: match code {
                        Some(
                            c @ (ErrorCode::TooManyOpenChallenges
                            | ErrorCode::RateLimited
                            | ErrorCode::UserLocked),
                        ) => c,
                        _ => ErrorCode::RateLimited,
                    },
                    message,
                },
                (500.., _) => ClientError::Unreachable(format!("server error {status}: {message}")),
                (status, code) => ClientError::Rejected {
                    status,
                    code,
                    message,
                },
            },
        }
    }
}

/// The relying party's HTTP agent with its credentials.
pub(crate) struct Http {
    agent: ureq::Agent,
    /// `Bearer <key>`, kept zeroized.
    authorization: Zeroizing<String>,
}

impl Http {
    pub(crate) fn new(cfg: &ClientConfig) -> Result<Http, ClientError> {
        if cfg.api_key.is_empty() {
            return Err(ClientError::Config("the API key is empty".into()));
        }
        if cfg.api_key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ClientError::Config(
                "the API key holds spaces or control characters".into(),
            ));
        }
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(cfg.connect_timeout)
            .timeout_read(READ_TIMEOUT)
            .timeout_write(READ_TIMEOUT)
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_SERVER)
            .max_idle_connections(IDLE_CONNECTIONS_PER_SERVER * 4)
            // A redirect would carry the API key elsewhere; servers are configured by URL.
            .redirects(0)
            .user_agent(concat!("pushauth-client/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &cfg.ca_file {
            builder = builder.tls_config(tls_config(ca_file)?);
        }
        if let Some(proxy) = &cfg.proxy {
            let bad_proxy =
                || ClientError::Config("the proxy must be an http://host:port URL".into());
            if !proxy.starts_with("http://") {
                return Err(bad_proxy());
            }
            let proxy = ureq::Proxy::new(proxy).map_err(|_| bad_proxy())?;
            builder = builder.proxy(proxy);
        }
        Ok(Http {
            agent: builder.build(),
            authorization: Zeroizing::new(format!("Bearer {}", cfg.api_key.as_str())),
        })
    }

    /// Sends one request and decodes a JSON answer of at most 64 KiB. `timeout` bounds the
    /// whole exchange.
    pub(crate) fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        url: &str,
        body: Option<&impl Serialize>,
        timeout: Duration,
    ) -> Result<T, Failure> {
        let request = self
            .agent
            .request(method, url)
            .timeout(timeout)
            .set("Authorization", &self.authorization)
            .set("Accept", "application/json");
        let result = match body {
            Some(body) => {
                let json = serde_json::to_vec(body)
                    .map_err(|e| Failure::Body(format!("cannot encode the request: {e}")))?;
                request
                    .set("Content-Type", "application/json")
                    .send_bytes(&json)
            }
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => {
                return Err(Failure::Transport(transport.to_string()))
            }
        };
        let status = response.status();
        let bytes = read_limited(response).map_err(|e| match e {
            ReadError::TooLarge => Failure::Body(format!(
                "{url}: answer larger than {MAX_BODY_BYTES} bytes refused"
            )),
            ReadError::Io(e) => Failure::Transport(format!("{url}: reading the answer: {e}")),
        })?;
        if !(200..300).contains(&status) {
            return Err(status_failure(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Body(format!("{url}: malformed answer: {e}")))
    }
}

enum ReadError {
    TooLarge,
    Io(std::io::Error),
}

/// Reads a body, refusing more than [`MAX_BODY_BYTES`].
fn read_limited(response: ureq::Response) -> Result<Vec<u8>, ReadError> {
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
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Turns an error answer into a [`Failure`], reading `{"error","message"}` when it is there.
fn status_failure(status: u16, bytes: &[u8]) -> Failure {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Failure::Status {
            status,
            code: Some(body.error),
            message: body.message,
        },
        Err(_) => {
            // Not a pushauth error body (a proxy's page, an unknown code): keep a short, printable
            // excerpt for the logs.
            let text: String = String::from_utf8_lossy(bytes)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            Failure::Status {
                status,
                code: None,
                message: text,
            }
        }
    }
}

/// A rustls configuration trusting the webpki roots plus every certificate in `ca_file`.
pub(crate) fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let pem = fs::read(ca_file).map_err(|e| {
        ClientError::Config(format!("cannot read CA file {}: {e}", ca_file.display()))
    })?;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            ClientError::Config(format!(
                "CA file {} is not valid PEM: {e}",
                ca_file.display()
            ))
        })?;
        roots.add(cert).map_err(|e| {
            ClientError::Config(format!(
                "CA file {} holds an unusable certificate: {e}",
                ca_file.display()
            ))
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(ClientError::Config(format!(
            "CA file {} holds no PEM certificate",
            ca_file.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Config(format!("TLS setup failed: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Percent-encodes one URL path segment (a user name may hold `@`, `\` or spaces).
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("alice"), "alice");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("DOM\\u@x"), "DOM%5Cu%40x");
        assert_eq!(path_segment(".."), "..");
    }

    #[test]
    fn error_bodies_are_classified() {
        let f = status_failure(
            429,
            br#"{"error":"user_locked","message":"reported recently"}"#,
        );
        match f.into_error() {
            ClientError::RateLimited { code, message } => {
                assert_eq!(code, ErrorCode::UserLocked);
                assert_eq!(message, "reported recently");
            }
            other => panic!("unexpected {other:?}"),
        }
        let f = status_failure(404, br#"{"error":"unknown_user","message":"no"}"#);
        assert!(matches!(f.into_error(), ClientError::UnknownUser));
        let f = status_failure(502, b"<html>bad gateway</html>");
        assert!(f.is_unreached());
        assert!(matches!(f.into_error(), ClientError::Unreachable(_)));
        let f = status_failure(409, br#"{"error":"wrong_state","message":"decided"}"#);
        assert!(!f.is_transient());
        match f.into_error() {
            ClientError::Rejected { status, code, .. } => {
                assert_eq!(status, 409);
                assert_eq!(code, Some(ErrorCode::WrongState));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_ca_files_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(tls_config(&missing), Err(ClientError::Config(_))));
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(tls_config(&empty), Err(ClientError::Config(_))));
    }
}
