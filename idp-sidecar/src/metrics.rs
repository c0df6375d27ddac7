//! Prometheus counters and gauges, kept as atomics (the hot path is one relaxed add).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::LoginOutcome;

/// The sidecar's counters; each is exported as `pushauth_sidecar_<name>_total`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Push logins started.
    pub logins_started: AtomicU64,
    /// Push logins that could not be started.
    pub login_start_failures: AtomicU64,
    /// Login state requests.
    pub state_requests: AtomicU64,
    /// Device enrollments started.
    pub enrollments_started: AtomicU64,
    /// CIBA authentication channel requests.
    pub ciba_requests: AtomicU64,
    /// CIBA callbacks Keycloak did not accept.
    pub ciba_callbacks_failed: AtomicU64,
    /// HTTP requests served.
    pub http_requests: AtomicU64,
    /// HTTP requests answered 4xx.
    pub http_client_errors: AtomicU64,
    /// HTTP requests answered 5xx.
    pub http_server_errors: AtomicU64,
    /// Requests with a wrong or missing shared secret.
    pub unauthorized: AtomicU64,
    /// How logins ended, in the order of [`LoginOutcome::ENDED`].
    outcomes: [AtomicU64; 7],
}

impl Metrics {
    /// Counts one ended login (`pending` counts as `error`: it never ends a login).
    pub fn outcome(&self, outcome: LoginOutcome) {
        let index = LoginOutcome::ENDED
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(LoginOutcome::ENDED.len() - 1);
        self.outcomes[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self, logins_in_memory: usize, enrollments_in_memory: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            "pushauth_sidecar_logins_started_total",
            "Push logins started.",
            get(&self.logins_started),
        );
        counter(
            "pushauth_sidecar_login_start_failures_total",
            "Push logins that could not be started.",
            get(&self.login_start_failures),
        );
        counter(
            "pushauth_sidecar_state_requests_total",
            "Login state requests.",
            get(&self.state_requests),
        );
        counter(
            "pushauth_sidecar_enrollments_started_total",
            "Device enrollments started.",
            get(&self.enrollments_started),
        );
        counter(
            "pushauth_sidecar_ciba_requests_total",
            "CIBA authentication channel requests.",
            get(&self.ciba_requests),
        );
        counter(
            "pushauth_sidecar_ciba_callbacks_failed_total",
            "CIBA callbacks Keycloak did not accept.",
            get(&self.ciba_callbacks_failed),
        );
        counter(
            "pushauth_sidecar_http_requests_total",
            "HTTP requests served.",
            get(&self.http_requests),
        );
        counter(
            "pushauth_sidecar_http_client_errors_total",
            "HTTP requests answered 4xx.",
            get(&self.http_client_errors),
        );
        counter(
            "pushauth_sidecar_http_server_errors_total",
            "HTTP requests answered 5xx.",
            get(&self.http_server_errors),
        );
        counter(
            "pushauth_sidecar_unauthorized_total",
            "Requests with a wrong or missing shared secret.",
            get(&self.unauthorized),
        );
        let _ = writeln!(out, "# HELP pushauth_sidecar_login_outcomes_total How push logins ended.\n# TYPE pushauth_sidecar_login_outcomes_total counter");
        for (name, value) in LoginOutcome::ENDED.iter().zip(&self.outcomes) {
            let _ = writeln!(
                out,
                "pushauth_sidecar_login_outcomes_total{{outcome=\"{name}\"}} {}",
                get(value)
            );
        }
        let _ = writeln!(out, "# HELP pushauth_sidecar_logins_in_memory Logins held (pending or recently ended).\n# TYPE pushauth_sidecar_logins_in_memory gauge\npushauth_sidecar_logins_in_memory {logins_in_memory}");
        let _ = writeln!(out, "# HELP pushauth_sidecar_enrollments_in_memory Enrollments held.\n# TYPE pushauth_sidecar_enrollments_in_memory gauge\npushauth_sidecar_enrollments_in_memory {enrollments_in_memory}");
        out
    }
}
