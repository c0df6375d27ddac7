//! Serving: bind, route, sweep, stop. [`RunningSidecar`] runs it on its own thread and runtime
//! (tests, benchmarks); `main` runs [`serve`] directly.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use thiserror::Error;
use tokio::sync::watch;

use crate::app::{AppState, SharedState};
use crate::config::Settings;

/// How often ended logins and old enrollments are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Why the sidecar could not start or stopped serving.
#[derive(Debug, Error)]
pub enum SidecarError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `listen`.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// `[tls]`: the certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The relying-party client cannot be built from the settings.
    #[error("{0}")]
    Client(#[from] pushauth_client::ClientError),
    /// Serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Blocking threads the runtime needs: one waiter per held login, plus room for requests.
pub fn blocking_threads(settings: &Settings) -> usize {
    settings.max_pending + 64
}

/// Binds and serves until `stop` turns true. Must run inside a tokio runtime whose blocking
/// pool has at least [`blocking_threads`] threads.
pub async fn serve(settings: Settings, stop: watch::Receiver<bool>) -> Result<(), SidecarError> {
    let prepared = prepare(settings).await?;
    run(prepared, stop).await
}

/// The bound listener, its TLS config (if any) and the shared state.
struct Prepared {
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    state: SharedState,
}

async fn prepare(settings: Settings) -> Result<Prepared, SidecarError> {
    let addr = settings.listen;
    let tls = settings.tls.as_ref().map(crate::tls::load).transpose()?;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| SidecarError::Bind { addr, source })?;
    listener.set_nonblocking(true)?;
    let state = AppState::new(settings)?;
    Ok(Prepared {
        listener,
        tls,
        state,
    })
}

/// How long in-flight requests get to finish once the sidecar stops.
const GRACE: Duration = Duration::from_secs(2);

async fn run(prepared: Prepared, mut stop: watch::Receiver<bool>) -> Result<(), SidecarError> {
    let Prepared {
        listener,
        tls,
        state,
    } = prepared;
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                state.logins.sweep(state.login_ttl);
                state.enrollments.sweep();
                state.backup_codes.sweep();
            }
        })
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        public_key = %state.signer.public_key().to_b64(),
        ciba = state.ciba.is_some(),
        tls = tls.is_some(),
        realms = ?state.realms.names().collect::<Vec<_>>(),
        "pushauth-idp-sidecar serving"
    );
    let app = crate::api::router(state).into_make_service();
    let handle = Handle::new();
    let stopper = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            handle.graceful_shutdown(Some(GRACE));
        })
    };
    let result = match tls {
        Some(tls) => {
            let mut server = axum_server::from_tcp_rustls(listener, tls)
                .map(FirstBytes)
                .handle(handle);
            head_timeout(server.http_builder());
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map(FirstBytes)
                .handle(handle);
            head_timeout(server.http_builder());
            server.serve(app).await
        }
    };
    sweeper.abort();
    stopper.abort();
    result.map_err(SidecarError::Io)
}

/// How long a request head may take to arrive: from the connection's start, and on a
/// kept-alive connection from the end of the previous response (so it bounds idle
/// connections too).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's header-read timeout ([`HEAD_TIMEOUT`]), which needs a timer axum-server does not
/// set: without it a client that never sends (or never finishes) a request head holds its
/// connection for ever.
fn head_timeout(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
}

/// An acceptor that hands a connection on (to the TLS handshake or to hyper) only once its
/// first bytes arrive, within [`HEAD_TIMEOUT`]: hyper's header-read timeout starts with the
/// first byte, so a connection that never sends one would otherwise stay open for ever.
#[derive(Debug, Clone)]
struct FirstBytes<A>(A);

type AcceptFuture<St, Sv> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<(St, Sv)>> + Send>>;

impl<A, S> axum_server::accept::Accept<tokio::net::TcpStream, S> for FirstBytes<A>
where
    A: axum_server::accept::Accept<tokio::net::TcpStream, S> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = AcceptFuture<A::Stream, A::Service>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(HEAD_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => inner.accept(stream, service).await,
                Ok(Err(e)) => Err(e),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request within the head timeout",
                )),
            }
        })
    }
}

/// A sidecar on its own thread and runtime.
#[derive(Debug)]
pub struct RunningSidecar {
    addr: SocketAddr,
    tls: bool,
    public_key: String,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningSidecar {
    /// Binds (port 0 allowed) and serves; returns once listening.
    pub fn start(settings: Settings) -> Result<RunningSidecar, SidecarError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(blocking_threads(&settings))
            .thread_name("pushauth-sidecar")
            .enable_all()
            .build()?;
        let public_key = settings.signing_key.public_key().to_b64();
        let prepared = runtime.block_on(prepare(settings))?;
        let addr = prepared.listener.local_addr()?;
        let tls = prepared.tls.is_some();
        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("pushauth-sidecar-main".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(run(prepared, stop_rx)) {
                    tracing::error!(error = %e, "sidecar failed");
                }
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        Ok(RunningSidecar {
            addr,
            tls,
            public_key,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` or `https://` (with `[tls]`) and the bound address.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The result-token public key (base64url).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Stops serving and waits for the serving thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningSidecar {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
