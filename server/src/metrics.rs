//! Prometheus metrics: challenges by outcome, open challenges, waiting long-polls, request
//! latency, open connections and connections refused by a cap, Web Push outcomes and queue.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapLabels {
    cap: &'static str,
}

/// The connection metrics the connection limiter updates.
#[derive(Clone, Debug)]
pub struct ConnMetrics {
    open: Gauge,
    refused: Family<CapLabels, Counter>,
}

impl ConnMetrics {
    /// One connection admitted (`true`) or closed (`false`).
    pub fn opened(&self, yes: bool) {
        if yes {
            self.open.inc();
        } else {
            self.open.dec();
        }
    }

    /// One connection refused by `cap` (`max_connections` or `max_connections_per_address`).
    pub fn refused(&self, cap: &'static str) {
        self.refused.get_or_create(&CapLabels { cap }).inc();
    }
}

/// The Web Push metrics the sender updates.
#[derive(Clone, Debug, Default)]
pub struct PushMetrics {
    outcomes: Family<OutcomeLabels, Counter>,
    queued: Gauge,
}

impl PushMetrics {
    /// One push (one subscription) ended as `outcome`: `sent` (2xx), `failed` (any other
    /// answer, a timeout, a refused origin), `gone` (404/410: subscription deleted),
    /// `deferred` (not sent: the subscription's last push got no answer, see
    /// [`crate::webpush::sender::BACKOFF_MS`]); or one challenge's pushes were `dropped`
    /// because the queue was full.
    pub fn count(&self, outcome: &'static str) {
        self.outcomes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// How many `outcome`s so far.
    pub fn get(&self, outcome: &'static str) -> u64 {
        self.outcomes
            .get_or_create(&OutcomeLabels { outcome })
            .get()
    }

    /// Challenges waiting in the queue now.
    pub fn set_queued(&self, depth: usize) {
        self.queued.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The metrics of the cross-replica wake-up listener ([`crate::wake`]).
#[derive(Clone, Debug, Default)]
pub struct WakeMetrics {
    /// Successful LISTEN connections after the first.
    pub reconnects: Counter,
    /// Notifications received.
    pub notifications: Counter,
    /// 1 while the listener is connected and listening.
    pub connected: Gauge,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    challenges: Family<OutcomeLabels, Counter>,
    open: Gauge,
    waiting: Gauge,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    connections: ConnMetrics,
    push: PushMetrics,
    wake: WakeMetrics,
    slow_hashes: Counter,
    unread_starts: Counter,
    jobs_ahead: Counter,
}

/// Counts one waiting long-poll while it lives.
#[derive(Debug)]
pub struct WaitingGuard {
    gauge: Gauge,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let challenges = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "pushauth_challenges",
            "Challenges by outcome (created, approved, denied, expired, cancelled)",
            challenges.clone(),
        );
        let open = Gauge::default();
        registry.register(
            "pushauth_open_challenges",
            "Challenges pending or acknowledged and not expired",
            open.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "pushauth_waiting_long_polls",
            "Long-poll requests currently waiting",
            waiting.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "pushauth_http_request_duration_seconds",
            "HTTP request latency by route (long-polls include their wait)",
            latency.clone(),
        );
        let connections = ConnMetrics {
            open: Gauge::default(),
            refused: Family::default(),
        };
        registry.register(
            "pushauth_connections_open",
            "Client connections open now",
            connections.open.clone(),
        );
        registry.register(
            "pushauth_connections_refused",
            "Connections closed unread because a cap was reached, by cap",
            connections.refused.clone(),
        );
        let push = PushMetrics::default();
        for outcome in ["sent", "failed", "dropped", "gone", "deferred"] {
            let _ = push.outcomes.get_or_create(&OutcomeLabels { outcome });
        }
        registry.register(
            "pushauth_web_push",
            "Web Push requests by outcome (sent, failed, gone: 404/410, subscription deleted), \
             pushes deferred because the subscription's last push got no answer, and \
             challenges whose pushes were dropped on a full queue",
            push.outcomes.clone(),
        );
        registry.register(
            "pushauth_web_push_queued",
            "Challenges waiting for the Web Push senders",
            push.queued.clone(),
        );
        let wake = WakeMetrics::default();
        registry.register(
            "pushauth_store_listener_reconnects",
            "Times the PostgreSQL LISTEN connection (cross-replica wake-ups) was made again",
            wake.reconnects.clone(),
        );
        registry.register(
            "pushauth_store_notifications",
            "Notifications received on the PostgreSQL LISTEN connection",
            wake.notifications.clone(),
        );
        registry.register(
            "pushauth_store_listener_connected",
            "1 while the PostgreSQL LISTEN connection is up (0 on SQLite)",
            wake.connected.clone(),
        );
        let slow_hashes = Counter::default();
        registry.register(
            "pushauth_slow_hash_jobs",
            "Argon2id jobs run by the one bounded hashing pool (backup codes, offline values)",
            slow_hashes.clone(),
        );
        let unread_starts = Counter::default();
        registry.register(
            "pushauth_long_polls_started_unread",
            "Relying parties' long-polls that started from the view of a challenge this replica \
             created, without a read (PostgreSQL; see README, High availability)",
            unread_starts.clone(),
        );
        let jobs_ahead = Counter::default();
        registry.register(
            "pushauth_store_jobs_queued_ahead",
            "Store jobs put in the lane ahead of new work (counted when the lane is chosen): a \
             device's change to a challenge a relying party waits on here or that was listed \
             to that device here, and a woken relying party's read (see README, High \
             availability)",
            jobs_ahead.clone(),
        );
        Metrics {
            jobs_ahead,
            unread_starts,
            slow_hashes,
            wake,
            push,
            registry,
            challenges,
            open,
            waiting,
            latency,
            connections,
        }
    }

    /// Counts a store job queued ahead of new work (`crate::jobs::Lane::Ahead`).
    pub fn queued_ahead(&self) {
        self.jobs_ahead.inc();
    }

    /// Counts a long-poll that started without a read (`crate::created`).
    pub fn started_unread(&self) {
        self.unread_starts.inc();
    }

    /// The handles the connection limiter updates.
    pub fn connections(&self) -> ConnMetrics {
        self.connections.clone()
    }

    /// The handles the wake-up listener updates.
    pub fn wake(&self) -> WakeMetrics {
        self.wake.clone()
    }

    /// The counter the hashing pool ([`crate::hashing::Hashing`]) adds its jobs to.
    pub fn slow_hashes(&self) -> Counter {
        self.slow_hashes.clone()
    }

    /// The handles the Web Push sender updates.
    pub fn push(&self) -> PushMetrics {
        self.push.clone()
    }

    /// Counts a challenge reaching `outcome` (or being created).
    pub fn challenge(&self, outcome: &'static str) {
        self.challenges
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a long-poll as waiting until the guard drops.
    pub fn waiting(&self) -> WaitingGuard {
        self.waiting.inc();
        WaitingGuard {
            gauge: self.waiting.clone(),
        }
    }

    /// Records one request's latency (seconds) by method, route and status.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .observe(seconds);
    }

    /// Prometheus text, with the open-challenge gauge set from the store's count.
    pub fn render(&self, open_challenges: u64) -> String {
        self.open
            .set(i64::try_from(open_challenges).unwrap_or(i64::MAX));
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Shared handle.
pub type SharedMetrics = Arc<Metrics>;
