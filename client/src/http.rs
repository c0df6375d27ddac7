//! The HTTP transport: one ureq agent (rustls, optional private CA and proxy), bounded bodies,
//! and failures sorted into "no answer" (worth another server or another try) and "an answer".

use std::time::Duration;

use pushauth_proto::wire::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::settings::{api_key_is_printable_ascii, check_proxy};
use crate::transport::{read_limited, tls_config, ReadError, MAX_BODY_BYTES};
use crate::{ClientConfig, ClientError};

/// Socket read timeout outside long polls; every request also carries its own deadline.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per server. One `Client` serves many threads at once (the IdP sidecar,
/// a busy relying party); ureq's default of one would make nearly every call open a new
/// connection (and, with TLS, a new handshake).
const IDLE_CONNECTIONS_PER_SERVER: usize = 64;

/// How a request failed. The classes matter for security (issue 9 item 6): only
/// [`Failure::Unreached`] proves nothing about the server and may be tolerated by a "let in
/// when the server is down" policy; everything else is a refusal.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No server was reached: connection refused, connect timeout, DNS failure.
    Unreached(String),
    /// A server was connected but gave no usable HTTP answer: read timeout, connection reset
    /// or closed mid-exchange, a malformed status line or headers, a proxy that could not connect.
    NoAnswer(String),
    /// The TLS handshake failed: an untrusted or expired certificate, a wrong name, a protocol
    /// error. Possibly an attack, never an outage.
    Tls(String),
    /// The request could not be built (a bad header value, URL or proxy): this host's
    /// configuration is broken.
    Request(String),
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
    /// Whether trying again later on the same server may succeed (while waiting for a
    /// challenge): no answer, or the server (or a gateway in front of it) failed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Failure::Unreached(_) | Failure::NoAnswer(_) => true,
            Failure::Status { status, .. } => *status >= 500,
            Failure::Tls(_) | Failure::Request(_) | Failure::Body(_) => false,
        }
    }

    /// Whether the next server may be tried for a new request: this one gave no usable answer
    /// (not reached, no answer, TLS failure), only a gateway answered that it could not reach
    /// it (502–504), or the server said it cannot reach its database (503
    /// `store_unavailable`: nothing was done; another replica may reach the new primary,
    /// issue 13). The next server must still approve, so failing over never lets anyone in
    /// by itself; what the caller is told at the end is decided by [`Failure::into_error`] over
    /// every server tried.
    pub(crate) fn may_fail_over(&self) -> bool {
        match self {
            Failure::Unreached(_) | Failure::NoAnswer(_) | Failure::Tls(_) => true,
            Failure::Status { status, .. } => matches!(status, 502..=504),
            Failure::Request(_) | Failure::Body(_) => false,
        }
    }

    /// Whether another server may answer a long-poll for a challenge this one started: it
    /// gave no answer, a gateway or the server said it cannot serve now (502–504, including
    /// 503 `store_unavailable`). A TLS failure is not: it may be an attack on this path, and
    /// ends the wait as it always did.
    pub(crate) fn may_ask_another(&self) -> bool {
        match self {
            Failure::Unreached(_) | Failure::NoAnswer(_) => true,
            Failure::Status { status, .. } => matches!(status, 502..=504),
            Failure::Tls(_) | Failure::Request(_) | Failure::Body(_) => false,
        }
    }

    /// The failure's message for logs (never holds the API key).
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Unreached(m)
            | Failure::NoAnswer(m)
            | Failure::Tls(m)
            | Failure::Request(m)
            | Failure::Body(m) => m.clone(),
            Failure::Status {
                status, message, ..
            } => format!("server error {status}: {message}"),
        }
    }

    /// The error the caller sees.
    pub(crate) fn into_error(self) -> ClientError {
        match self {
            Failure::Unreached(msg) => ClientError::Unreachable(msg),
            Failure::NoAnswer(msg) => ClientError::ServerError(msg),
            Failure::Tls(msg) => ClientError::TlsFailure(msg),
            Failure::Request(msg) => ClientError::Config(msg),
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
                (500.., _) => ClientError::ServerError(format!("server error {status}: {message}")),
                (status, code) => ClientError::Rejected {
                    status,
                    code,
                    message,
                },
            },
        }
    }
}

/// Sorts a ureq transport error into a [`Failure`] class. ureq's own message is kept only where
/// it cannot hold a header value (a request-header error would quote `Authorization`).
fn transport_failure(url: &str, transport: &ureq::Transport) -> Failure {
    use ureq::ErrorKind as K;
    // ureq's text starts with the URL when it knows it (it said it twice).
    let text = || match transport.url() {
        Some(_) => transport.to_string(),
        None => format!("{url}: {transport}"),
    };
    let tls = || match crate::transport::is_unknown_ca(transport) {
        true => Failure::Tls(format!("{}{UNKNOWN_CA_HINT}", text())),
        false => Failure::Tls(text()),
    };
    match transport.kind() {
        K::Dns => Failure::Unreached(text()),
        K::ConnectionFailed if transport.message() == Some("tls connection init failed") => tls(),
        K::ConnectionFailed => Failure::Unreached(text()),
        K::InvalidUrl | K::UnknownScheme | K::InsecureRequestHttpsOnly | K::InvalidProxyUrl => {
            Failure::Request(text())
        }
        K::ProxyUnauthorized => {
            Failure::Request(format!("{url}: the proxy refused its credentials"))
        }
        // Request headers are checked before anything is sent; a response with too many header
        // fields says "in response".
        K::BadHeader
            if !transport
                .message()
                .is_some_and(|m| m.contains("in response")) =>
        {
            Failure::Request(format!(
                "{url}: cannot build the request (a header value is not valid HTTP)"
            ))
        }
        K::Io if crate::transport::is_tls_failure(transport) => tls(),
        _ => Failure::NoAnswer(text()),
    }
}

/// What a certificate from an unknown CA adds to the failure: what to do about it (a
/// newcomer with a private CA found `--ca-file` only in `--help`; session 22).
const UNKNOWN_CA_HINT: &str = ". The server's certificate is not signed by a CA this client \
    trusts: if it comes from a private CA, name that CA's certificate (PEM) with ca_file in \
    the client's configuration (--ca-file on the command line)";

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
        if !api_key_is_printable_ascii(&cfg.api_key) {
            return Err(ClientError::Config(
                "the API key holds characters other than printable ASCII (0x21-0x7E): \
                 a space, a byte-order mark, a no-break or zero-width space?"
                    .into(),
            ));
        }
        // No agent-wide connect timeout: ureq would apply it regardless of the request's own
        // deadline. Every request carries a timeout (the caller's share of its deadline), which
        // bounds connect, TLS, sending and reading together.
        let mut builder = ureq::AgentBuilder::new()
            .timeout_read(READ_TIMEOUT)
            .timeout_write(READ_TIMEOUT)
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_SERVER)
            .max_idle_connections(IDLE_CONNECTIONS_PER_SERVER * 4)
            // A redirect would carry the API key elsewhere; servers are configured by URL.
            .redirects(0)
            .user_agent(concat!("pushauth-client/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &cfg.ca_file {
            builder = builder
                .tls_config(tls_config(ca_file).map_err(|e| ClientError::Config(e.to_string()))?);
        }
        if let Some(proxy) = &cfg.proxy {
            let bad_proxy =
                || ClientError::Config("the proxy must be an http://host:port URL".into());
            check_proxy(proxy).map_err(|_| bad_proxy())?;
            let proxy = ureq::Proxy::new(proxy).map_err(|_| bad_proxy())?;
            builder = builder.proxy(proxy);
        }
        Ok(Http {
            agent: builder.build(),
            authorization: Zeroizing::new(format!("Bearer {}", cfg.api_key.as_str())),
        })
    }

    /// Sends one request and decodes a JSON answer of at most 64 KiB. `timeout` bounds the
    /// whole exchange (connect, TLS, request, answer). DNS resolution is the system resolver's
    /// and is bounded by its own settings (`/etc/resolv.conf` `timeout`/`attempts`).
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
                    .map_err(|e| Failure::Request(format!("cannot encode the request: {e}")))?;
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
                return Err(transport_failure(url, &transport))
            }
        };
        let status = response.status();
        let bytes = read_limited(response).map_err(|e| match e {
            ReadError::TooLarge => Failure::Body(format!(
                "{url}: answer larger than {MAX_BODY_BYTES} bytes refused"
            )),
            ReadError::Io(e) => Failure::NoAnswer(format!("{url}: reading the answer: {e}")),
        })?;
        if !(200..300).contains(&status) {
            return Err(status_failure(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Body(format!("{url}: malformed answer: {e}")))
    }
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
        assert!(f.may_fail_over());
        assert!(matches!(f.into_error(), ClientError::ServerError(_)));
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
        let mut cfg = ClientConfig::new(vec!["https://a".into()], "k");
        cfg.ca_file = Some(missing);
        assert!(matches!(Http::new(&cfg), Err(ClientError::Config(_))));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        cfg.ca_file = Some(empty);
        assert!(matches!(Http::new(&cfg), Err(ClientError::Config(_))));
    }
}
