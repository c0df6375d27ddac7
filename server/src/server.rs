//! Running the server: [`serve`] for the binary, [`RunningServer`] for tests and embedding
//! (its own thread and runtime, usable from plain `#[test]` functions).

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use tokio::sync::watch;

use crate::api;
use crate::bounds::{SignatureFailures, SizeBound};
use crate::clock;
use crate::config::ServerConfig;
use crate::conn::{ConnLimiter, LimitedAcceptor};
use crate::error::ServerError;
use crate::jobs::{StoreJobs, STORE_THREADS};
use crate::metrics::Metrics;
use crate::offline::OfflineKey;
use crate::service;
use crate::starting::Waiting;
use crate::state::{AppState, SharedState};
use crate::store::sqlite::MAX_IDLE_READERS;
use crate::store::{SharedStore, Store, StoreResult};
use crate::tls;
use crate::waiters::Waiters;
use crate::webpush::{VapidKey, WebPush};

// Every store thread keeps its reader: closing one drops its page cache.
const _: () = assert!(MAX_IDLE_READERS >= STORE_THREADS);

/// Everything bound and opened, ready to serve.
struct Prepared {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<RustlsConfig>,
    store: SharedStore,
    /// How many operations the store serves at once ([`crate::store::open::Opened`]).
    store_concurrent: Option<usize>,
    /// What the store shares with the listener ([`crate::store::open::Opened`]).
    listener_parts: Option<crate::store::postgres::ListenerParts>,
    config: ServerConfig,
    vapid: VapidKey,
    offline_key: OfflineKey,
}

/// What [`prepare`] made: a server ready to run, or one bound whose PostgreSQL store could
/// not be reached yet ([`crate::starting`]).
enum Starting {
    Ready(Box<Prepared>),
    Waiting(Box<Waiting>),
}

impl Starting {
    fn addr(&self) -> SocketAddr {
        match self {
            Starting::Ready(prepared) => prepared.addr,
            Starting::Waiting(waiting) => waiting.addr,
        }
    }
}

fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    let listener = TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn prepare(config: ServerConfig) -> Result<Starting, ServerError> {
    let tls = config.tls.as_ref().map(tls::load).transpose()?;
    // The data directory holds the keys (VAPID, offline) whatever the store, and on
    // PostgreSQL the timelines it saw (`pg-timelines`, kept only while the directory exists);
    // SQLite's store makes it when the database lives there, otherwise it is made here, 0700.
    if !matches!(config.store, crate::config::StoreConfig::DataDir) {
        pushauth_files::create_private_dir(&config.data_dir, &pushauth_files::Owner::Any).map_err(
            |e| crate::store::StoreError::DataDir {
                path: config.data_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            },
        )?;
    }
    let site = match crate::opening::open(&config) {
        Ok(site) => site,
        // A closed port reads as "unreachable" to clients, which `safe` lets in: listen and
        // refuse until the database answers (SQLite's "unavailable" is a local fault: exit).
        Err(e)
            if e.is_transient()
                && matches!(config.store, crate::config::StoreConfig::Postgres(_)) =>
        {
            tracing::warn!(error = %e, "cannot open the store; answering 503 until it opens");
            let listener = bind(&config)?;
            let addr = listener.local_addr()?;
            return Ok(Starting::Waiting(Box::new(Waiting {
                listener,
                addr,
                tls,
                config,
            })));
        }
        Err(e) => return Err(e),
    };
    complete(config, tls, site, None).map(|p| Starting::Ready(Box::new(p)))
}

/// The rest of [`prepare`] once the site is open: the listener unless one is bound already.
fn complete(
    config: ServerConfig,
    tls: Option<RustlsConfig>,
    site: crate::opening::Site,
    listener: Option<TcpListener>,
) -> Result<Prepared, ServerError> {
    let crate::opening::Site {
        opened,
        vapid,
        offline_key,
    } = site;
    let store_concurrent = opened.concurrent;
    let listener_parts = opened.listener_parts;
    let store = opened.store;
    let listener = match listener {
        Some(listener) => listener,
        None => bind(&config)?,
    };
    let addr = listener.local_addr()?;
    Ok(Prepared {
        listener,
        addr,
        tls,
        store,
        store_concurrent,
        listener_parts,
        config,
        vapid,
        offline_key,
    })
}

/// Opens the store first when [`prepare`] could not, then serves until `stop` turns true.
async fn run_starting(
    starting: Starting,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let prepared = match starting {
        Starting::Ready(prepared) => *prepared,
        Starting::Waiting(waiting) => {
            let waiting = *waiting;
            let Some(site) = crate::starting::open_while_refusing(&waiting, &mut stop).await?
            else {
                return Ok(());
            };
            complete(waiting.config, waiting.tls, site, Some(waiting.listener))?
        }
    };
    run(prepared, stop).await
}

/// Serves until `stop` turns true.
async fn run(prepared: Prepared, mut stop: watch::Receiver<bool>) -> Result<(), ServerError> {
    let Prepared {
        listener,
        addr,
        tls,
        store,
        store_concurrent,
        listener_parts,
        config,
        vapid,
        offline_key,
    } = prepared;
    // SQLite: one thread, groups share a commit. PostgreSQL: a thread per pooled connection,
    // a job at a time; the store itself combines the challenge creations its threads
    // make at the same time into shared round trips (`store/postgres/combine.rs`). Its group
    // commit (`PgStore::with_group_commit`) measured slower under load: it serialises every
    // write.
    let jobs = match store_concurrent {
        None => StoreJobs::start(Arc::clone(&store), STORE_THREADS)?,
        Some(threads) => StoreJobs::start_grouping(Arc::clone(&store), threads, 1)?,
    };
    let size_bound = Arc::new(SizeBound::new(config.retention.max_db_bytes()));
    let metrics = Metrics::new();
    let base_url = config.base_url(addr);
    let web_push = WebPush::start(
        vapid,
        &config,
        &base_url,
        Arc::clone(&store),
        metrics.push(),
    )?;
    let hashing = crate::hashing::Hashing::default().counting_on(metrics.slow_hashes());
    let state: SharedState = Arc::new(AppState {
        base_url,
        web_push: Arc::new(web_push),
        webhook: config.webhook.clone().map(Arc::new),
        config,
        store,
        jobs,
        waiters: Waiters::default(),
        metrics,
        shutdown: stop.clone(),
        // Refusal rows respect the size bound too.
        signature_failures: Arc::new(SignatureFailures::with_bound(Arc::clone(&size_bound))),
        size_bound,
        hashing,
        offline_key,
        health_probe: Arc::default(),
    });
    let sweeper = tokio::spawn(sweep_loop(state.clone()));
    // Replicas over PostgreSQL wake each other's long-polls (issue 13).
    let wake_listener = match &state.config.store {
        crate::config::StoreConfig::Postgres(settings) => Some(tokio::spawn(crate::wake::listen(
            (**settings).clone(),
            state.waiters.clone(),
            state.metrics.wake(),
            listener_parts.unwrap_or_default(),
            state.shutdown.clone(),
        ))),
        _ => None,
    };
    let handle = Handle::new();
    let stopper = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            handle.graceful_shutdown(Some(crate::conn::GRACE));
        })
    };
    let service = api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let limits = &state.config.limits;
    let limiter = ConnLimiter::new(limits, Some(state.metrics.connections()));
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        max_connections = limits.max_connections,
        max_connections_per_address = limits.max_connections_per_address,
        "pushauthd listening"
    );
    crate::web::log_release(state.config.web.app_dir.as_deref());
    // Every connection passes the limiter before anything is read from it (and before a TLS
    // handshake, which is bounded by the header timeout too); see `conn`.
    let result = match tls {
        Some(tls) => {
            let tls = RustlsAcceptor::new(tls)
                .acceptor(DefaultAcceptor::new())
                .handshake_timeout(header_timeout);
            let mut server = axum_server::from_tcp(listener)
                .acceptor(LimitedAcceptor::new(tls, limiter, header_timeout))
                .handle(handle);
            crate::conn::http_timeouts(server.http_builder(), header_timeout);
            server.serve(service).await
        }
        None => {
            let plain = DefaultAcceptor::new();
            let mut server = axum_server::from_tcp(listener)
                .acceptor(LimitedAcceptor::new(plain, limiter, header_timeout))
                .handle(handle);
            crate::conn::http_timeouts(server.http_builder(), header_timeout);
            server.serve(service).await
        }
    };
    sweeper.abort();
    stopper.abort();
    if let Some(wake_listener) = wake_listener {
        wake_listener.abort();
    }
    tracing::info!("pushauthd stopped");
    result.map_err(ServerError::from)
}

/// Most challenges expired (and nonces forgotten) by one sweep step.
const SWEEP_STEP: usize = 500;

/// Expires overdue challenges (for metrics, audit and waking waiters), forgets nonces whose
/// requests can no longer pass the timestamp check, and deletes what `[retention]` says is old.
async fn sweep_loop(state: SharedState) {
    let every = state.config.sweep_interval_secs;
    if every == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(every));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = clock::now_ms();
        until_done(
            &state,
            "sweep",
            move |s| s.sweep(now, SWEEP_STEP),
            |swept| {
                state.expired(&swept.expired);
                !swept.more
            },
        )
        .await;
        let counts = state.signature_failures.pending_counts(now);
        if !counts.is_empty() {
            let write = move |s: &dyn Store| {
                for (id, count) in &counts {
                    s.set_audit_count(*id, *count)?;
                }
                Ok::<_, service::Error>(())
            };
            if let Err(e) = state.run(write).await {
                tracing::warn!(error = ?e, "cannot record failure counts");
            }
        }
        let (challenges_before, audit_before) = state.config.retention.cutoffs(now);
        if challenges_before.is_none() && audit_before.is_none() {
            continue;
        }
        let prune = move |s: &dyn Store| s.prune(challenges_before, audit_before, SWEEP_STEP);
        until_done(&state, "retention pruning", prune, |pruned| {
            if pruned.challenges + pruned.audit_events > 0 {
                tracing::info!(
                    challenges = pruned.challenges,
                    audit_events = pruned.audit_events,
                    "retention: deleted old records"
                );
            }
            !pruned.more
        })
        .await;
    }
}

/// Runs a bounded store step until `done` says it finished (or it fails). Each step is its own
/// store job, so requests queued meanwhile run between steps.
async fn until_done<T, F>(state: &SharedState, what: &str, step: F, mut done: impl FnMut(T) -> bool)
where
    T: Send + 'static,
    F: Fn(&dyn Store) -> StoreResult<T> + Clone + Send + 'static,
{
    loop {
        let step = step.clone();
        match state
            .run::<_, service::Error, _>(move |s| Ok(step(s)?))
            .await
        {
            Ok(value) => {
                if done(value) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = ?e, "{what} failed");
                break;
            }
        }
    }
}

/// Runs the server until `shutdown` resolves (the binary passes Ctrl-C / SIGTERM). When a
/// PostgreSQL store cannot be reached at start, it listens anyway and answers 503
/// `store_unavailable` until the store opens ([`crate::starting`]).
///
/// # Errors
/// [`ServerError`] when it cannot start (a store failure other than "unavailable" included).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let starting = prepare(config)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_tx.send_replace(true);
        // Keep the sender alive so receivers do not see a closed channel as a stop signal twice.
        std::future::pending::<()>().await;
    });
    run_starting(starting, stop_rx).await
}

/// A server running on its own thread and tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    url: String,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Binds (port 0 allowed), opens or creates the store in `data_dir`, and serves on a tokio
    /// runtime in its own thread; returns once listening. A PostgreSQL store that cannot be
    /// reached yet is opened in the background meanwhile ([`crate::starting`]).
    pub fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let starting = prepare(config)?;
        let addr = starting.addr();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pushauthd")
            .enable_all()
            .build()?;
        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("pushauthd-main".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(run_starting(starting, stop_rx)) {
                    tracing::error!(error = %e, "pushauthd failed");
                }
                // Let blocking store calls finish so the database is closed on return.
                runtime.shutdown_timeout(Duration::from_secs(5));
            })?;
        Ok(RunningServer {
            addr,
            url: format!("{scheme}://{addr}"),
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops serving and closes the store; the same data dir and address can be used again.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("pushauthd thread panicked");
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
