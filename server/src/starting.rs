//! Starting while PostgreSQL is unreachable (issue 13, attack review): the replica listens at
//! once and refuses every request with 503 `store_unavailable` (`/healthz`: not ready) while
//! it retries opening the store, then hands the same listener to the real server. The refusing
//! side runs its own accept loop, so that stopping it drops no accepted connection unanswered.
//!
//! Why not exit as before: a closed port is a refused connection, which a client classes as
//! "unreachable" and `server_unreachable = "safe"` lets in; a 503 is a refusal.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::api::ApiError;
use crate::config::ServerConfig;
use crate::conn::{ConnLimiter, LimitedAcceptor};
use crate::error::ServerError;
use crate::opening::Site;

/// The first wait before opening the store again; it doubles up to [`LAST_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between two attempts to open the store.
pub const LAST_RETRY: Duration = Duration::from_secs(5);

/// A server bound but without its store: what [`open_while_refusing`] needs.
pub(crate) struct Waiting {
    /// The bound listener (non-blocking), kept for the real server.
    pub listener: TcpListener,
    /// Its address.
    pub addr: SocketAddr,
    /// TLS, when configured (the fallback answers over it too).
    pub tls: Option<RustlsConfig>,
    /// The configuration.
    pub config: ServerConfig,
}

/// Refuses on a clone of `waiting`'s listener and retries opening the store (backoff
/// [`FIRST_RETRY`] to [`LAST_RETRY`]) until it opens (`Some`), `stop` turns true (`None`), or
/// opening fails for another reason than "unavailable" (the error: a database too new). Refused
/// credentials count as unavailable here, logged as an error at every attempt. The refusing
/// accept loop has ended when this returns, so the caller may serve on the listener straight
/// away; connections it accepted are still answered (503, then closed), never dropped unread.
///
/// # Errors
/// [`ServerError::Store`] for a failure that is not "unavailable"; [`ServerError::Io`] when
/// the listener cannot be cloned.
pub(crate) async fn open_while_refusing(
    waiting: &Waiting,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Site>, ServerError> {
    let listener = tokio::net::TcpListener::from_std(waiting.listener.try_clone()?)?;
    let limits = &waiting.config.limits;
    let limiter = ConnLimiter::new(limits, None);
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let (handed_over, handing_over) = watch::channel(false);
    let accepting = match waiting.tls.clone() {
        Some(tls) => {
            let tls = RustlsAcceptor::new(tls)
                .acceptor(DefaultAcceptor::new())
                .handshake_timeout(header_timeout);
            let acceptor = LimitedAcceptor::new(tls, limiter, header_timeout);
            tokio::spawn(refuse_on(listener, acceptor, header_timeout, handing_over))
        }
        None => {
            let acceptor = LimitedAcceptor::new(DefaultAcceptor::new(), limiter, header_timeout);
            tokio::spawn(refuse_on(listener, acceptor, header_timeout, handing_over))
        }
    };
    tracing::warn!(
        addr = %waiting.addr,
        "listening, answering 503 store_unavailable until the store opens"
    );
    let opened = retry(&waiting.config, stop).await;
    // The loop stops accepting at once; what it accepted is answered by its own tasks.
    let _ = handed_over.send(true);
    if let Err(e) = accepting.await {
        tracing::error!(error = %e, "the refusing accept loop failed");
    }
    opened
}

/// The refusing accept loop, until `handing_over` turns true. Why its own loop rather than
/// a server shut down gracefully: a graceful shutdown closes connections accepted but not
/// read from yet, and a client that connected in that instant got no answer at all.
async fn refuse_on<A>(
    listener: tokio::net::TcpListener,
    acceptor: A,
    header_timeout: Duration,
    mut handing_over: watch::Receiver<bool>,
) where
    A: Accept<TcpStream, (), Service = ()>,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Future: Send + 'static,
{
    loop {
        let stream = tokio::select! {
            biased;
            () = stopped(&mut handing_over) => return,
            // Cancel-safe: a connection is either accepted here or left for the real server.
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: no busy loop.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(refuse_connection(
            acceptor.accept(stream, ()),
            header_timeout,
        ));
    }
}

/// Serves one accepted connection with [`refuse`]: its request is answered and the
/// connection closed (`Connection: close`); one that sends nothing is closed by the
/// first-bytes and header timeouts, as on the real server.
async fn refuse_connection<S>(
    accepting: impl Future<Output = std::io::Result<(S, ())>>,
    header_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Over a connection limit, or a failed TLS handshake: closed, as the real server does.
    let Ok((stream, ())) = accepting.await else {
        return;
    };
    let mut builder = Builder::new(TokioExecutor::new());
    crate::conn::http_timeouts(&mut builder, header_timeout);
    let service = TowerToHyperService::new(Router::new().fallback(refuse));
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "a refused connection ended with an error");
    }
}

/// Every request: 503 `store_unavailable` (the API's error body), `GET /healthz` not ready.
/// Nothing is read, stored or held; the connection is closed after the answer so that no
/// client keeps one to the refusing server.
async fn refuse(method: Method, uri: Uri) -> Response {
    let mut response =
        if uri.path() == "/healthz" && (method == Method::GET || method == Method::HEAD) {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "store_unavailable"})),
            )
                .into_response()
        } else {
            ApiError::store_unavailable("the store is not open yet").into_response()
        };
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Opens the store until it opens, `stop` turns true, or it fails as not "unavailable".
async fn retry(
    config: &ServerConfig,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Site>, ServerError> {
    // Opening was tried once before the listener was bound.
    let mut delay = FIRST_RETRY;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(stop) => return Ok(None),
        }
        let config = config.clone();
        // Opening blocks (connect timeouts, migrations); a failed attempt drops its pool.
        let attempt = tokio::task::spawn_blocking(move || crate::opening::open(&config));
        let outcome = tokio::select! {
            outcome = attempt => outcome.map_err(std::io::Error::other)?,
            () = stopped(stop) => return Ok(None),
        };
        match outcome {
            Ok(site) => {
                tracing::info!("the store opened; serving");
                return Ok(Some(site));
            }
            // The driver's message names hosts and the failure, never the password.
            // Refused credentials are retried too (exiting would close the port, and a
            // fixed password or pg_hba.conf should bring the replica up), but said loudly.
            Err(e) if e.is_denied() => {
                delay = (delay * 2).min(LAST_RETRY);
                tracing::error!(
                    error = %e,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "the database refused pushauthd's credentials: {}",
                    crate::store::postgres::CREDENTIALS_ADVICE
                );
            }
            Err(e) if e.is_transient() => {
                delay = (delay * 2).min(LAST_RETRY);
                tracing::warn!(
                    error = %e,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "the store is still unavailable"
                );
            }
            Err(e) => return Err(e),
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
