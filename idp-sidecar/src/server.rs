//! Serving: bind, route, sweep, stop. [`RunningSidecar`] runs it on its own thread and runtime
//! (tests, benchmarks); `main` runs [`serve`] directly.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;

use crate::app::{AppState, SharedState};
use crate::config::Settings;

/// How often ended logins and old enrollments are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum SidecarError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Client(#[from] pushauth_client::ClientError),
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
    let (listener, state) = prepare(settings).await?;
    run(listener, state, stop).await
}

async fn prepare(
    settings: Settings,
) -> Result<(tokio::net::TcpListener, SharedState), SidecarError> {
    let addr = settings.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SidecarError::Bind { addr, source })?;
    let state = AppState::new(settings)?;
    Ok((listener, state))
}

async fn run(
    listener: tokio::net::TcpListener,
    state: SharedState,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SidecarError> {
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                state.logins.sweep(state.login_ttl);
                state.enrollments.sweep();
            }
        })
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        public_key = %state.signer.public_key().to_b64(),
        ciba = state.ciba.is_some(),
        admin = state.enrollments.admin().is_ok(),
        "pushauth-idp-sidecar serving"
    );
    let app = crate::api::router(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    sweeper.abort();
    result.map_err(SidecarError::Io)
}

/// A sidecar on its own thread and runtime.
#[derive(Debug)]
pub struct RunningSidecar {
    addr: SocketAddr,
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
        let (listener, state) = runtime.block_on(prepare(settings))?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("pushauth-sidecar-main".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(run(listener, state, stop_rx)) {
                    tracing::error!(error = %e, "sidecar failed");
                }
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        Ok(RunningSidecar {
            addr,
            public_key,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The result-token public key (base64url).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

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
