//! What the HTTP handlers share: configuration, the store's job threads, waiters, metrics,
//! the webhook and the bounds, with the bookkeeping that follows a change (wake waiters, count
//! outcomes, notify the webhook).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::bounds::{SignatureFailures, SizeBound};
use crate::config::{ServerConfig, WebhookConfig};
use crate::hashing::Hashing;
use crate::jobs::StoreJobs;
use crate::metrics::Metrics;
use crate::service;
use crate::store::{ChallengeRecord, Expired, PushSubscriptionRecord, SharedStore, Store};
use crate::waiters::Waiters;
use crate::webhook;
use crate::webpush::{PushJob, WebPush};

/// Everything handlers share.
pub struct AppState {
    /// The resolved settings.
    pub config: ServerConfig,
    /// Base URL for enrollment links.
    pub base_url: String,
    /// The store itself; requests reach it through [`AppState::run`] on the job threads.
    pub store: SharedStore,
    /// The threads that run store operations.
    pub jobs: StoreJobs,
    /// Long-polls waiting on challenges and devices.
    pub waiters: Waiters,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Where to announce new challenges, if configured.
    pub webhook: Option<Arc<WebhookConfig>>,
    /// Turns true when the server stops, so long-polls end at once.
    pub shutdown: watch::Receiver<bool>,
    /// Failed device signatures, aggregated per device and address for the audit log.
    pub signature_failures: Arc<SignatureFailures>,
    /// `[retention] max_db_mb`.
    pub size_bound: Arc<SizeBound>,
    /// Web Push: the VAPID key, the allow-list and the sender.
    pub web_push: Arc<WebPush>,
    /// Argon2id work (backup codes and offline values), bounded and off the runtime.
    pub hashing: Hashing,
    /// Seals the devices' offline-code secrets at rest (issue 12).
    pub offline_key: crate::offline::OfflineKey,
    /// Held by the one `GET /healthz` store job queued at a time, with when a probe last saw a
    /// commit come back ([`crate::api::ops::healthz`]).
    pub health_probe: Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The state as handlers hold it.
pub type SharedState = Arc<AppState>;

impl MayHaveCommitted for service::Error {
    fn may_have_committed(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Internal(_))
    }
}

/// Whether a change job's result may hide a committed change it does not carry: a server
/// failure of the job, or of the service inside it (a COMMIT whose answer was lost, a row
/// read back after the commit that does not decode). Its challenge's waiters must then read
/// it again: with no other replica listening, no NOTIFY covers such a change.
fn unsure_of_change<T, E: MayHaveCommitted>(
    value: &Result<service::challenges::Outcome<T>, E>,
) -> bool {
    match value {
        Err(e) => e.may_have_committed(),
        Ok(outcome) => {
            outcome.changed.is_none()
                && outcome
                    .result
                    .as_ref()
                    .is_err_and(MayHaveCommitted::may_have_committed)
        }
    }
}

/// An error that may hide a committed change: the server failed (a COMMIT whose answer was
/// lost, a row read back that does not decode), as opposed to a refusal of the request.
pub trait MayHaveCommitted {
    /// Whether a change may have been committed although this error was returned.
    fn may_have_committed(&self) -> bool;
}

impl AppState {
    /// Runs `f` as one job on a store thread (authentication, checks and store operations of
    /// one request together: one thread hand-off per request) and returns its result once its
    /// writes are committed.
    ///
    /// # Errors
    /// `f`'s own; a [`service::Error::Store`] that is unavailable (`store_unavailable`) when
    /// the store could not be reached or too many jobs wait; else [`service::Error::Internal`]
    /// (converted to `E`) when the job could not run or its group could not commit.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<service::Error> + Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, E> + Send + 'static,
    {
        self.finish(self.jobs.run(f)).await
    }

    /// [`AppState::run`] ahead of the normal jobs ([`crate::jobs::Lane::Ahead`]): for work
    /// that finishes a login under way (an authenticated relying party's wait, woken, reading
    /// the answer or checking its key again), so that when the store is the bottleneck a
    /// login that was answered returns before new ones start.
    ///
    /// # Errors
    /// As [`AppState::run`].
    pub async fn run_ahead<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<service::Error> + Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, E> + Send + 'static,
    {
        self.metrics.queued_ahead();
        self.finish(self.jobs.run_ahead(f)).await
    }

    /// [`AppState::run`] for a job that may change challenge `id` (an answer, an
    /// acknowledgement, a cancel), whose value is the challenge's
    /// [`service::challenges::Outcome`] (or a refusal). It runs ahead
    /// ([`AppState::run_ahead`]) only while a relying party's wait on this replica awaits that
    /// challenge's answer, or, for a device's request (`device`: the device it claims to be
    /// from), for the first few while the challenge is open and was listed to that device here
    /// ([`crate::shown`]): these requests are checked inside their job, and a challenge's id
    /// is known only to its relying party and its devices, so a forged request cannot go
    /// ahead. The change reaches the local waiters whatever happens to the caller:
    /// - the caller [`settle`](AppState::settle)s the outcome; should the caller be gone once
    ///   it is committed, the job thread announces the change instead
    ///   ([`crate::jobs::StoreJobs::run_or_else`]);
    /// - after a server failure ([`MayHaveCommitted`]: a COMMIT whose answer was lost), the
    ///   job's or the outcome's own, the waiters on `id` read it again, whether the caller is
    ///   there or not (with no other replica listening, no NOTIFY covers such a change). A
    ///   refusal never does, so no request makes them read at will.
    ///
    /// # Errors
    /// As [`AppState::run`].
    pub async fn run_announced<T, E, F>(
        self: &Arc<Self>,
        id: &str,
        device: Option<&str>,
        f: F,
    ) -> Result<service::challenges::Outcome<T>, E>
    where
        T: Send + 'static,
        E: From<service::Error> + MayHaveCommitted + Send + 'static,
        F: FnOnce(&dyn Store) -> Result<service::challenges::Outcome<T>, E> + Send + 'static,
    {
        let state = Arc::clone(self);
        let gone_id = id.to_owned();
        let lane = lane_for_change(&self.waiters, id, device, crate::clock::now_ms());
        if lane == crate::jobs::Lane::Ahead {
            self.metrics.queued_ahead();
        }
        let job = self.jobs.submit(lane, f, move |value| {
            if let Ok(outcome) = &value {
                if let Some(c) = &outcome.changed {
                    state.changed(c);
                }
            }
            if unsure_of_change(&value) {
                state.waiters.challenge_read_again(&gone_id);
            }
        });
        let value = self.finish(job).await;
        // The caller settles a change it was told of; one it was not told of, only a read can.
        if unsure_of_change(&value) {
            self.waiters.challenge_read_again(id);
        }
        value
    }

    /// [`AppState::run`], and should the caller be gone once the job's writes are committed,
    /// `left` gets the job's value on the job thread
    /// ([`crate::jobs::StoreJobs::run_or_else`]): what a change must announce even so.
    ///
    /// # Errors
    /// As [`AppState::run`].
    pub async fn run_or_else<T, E, F, L>(&self, f: F, left: L) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<service::Error> + Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, E> + Send + 'static,
        L: FnOnce(Result<T, E>) + Send + 'static,
    {
        self.finish(self.jobs.run_or_else(f, left)).await
    }

    /// A job's result as [`AppState::run`] gives it.
    async fn finish<T, E>(
        &self,
        job: impl std::future::Future<Output = Result<Result<T, E>, crate::jobs::JobError>>,
    ) -> Result<T, E>
    where
        E: From<service::Error>,
    {
        match job.await {
            Ok(result) => result,
            Err(crate::jobs::JobError::Unavailable) => {
                Err(service::Error::Store(crate::store::StoreError::db(
                    crate::store::DbErrorKind::Unavailable,
                    "the store is unreachable or too busy",
                ))
                .into())
            }
            Err(crate::jobs::JobError::Stopped) => {
                Err(service::Error::Internal("store job failed".into()).into())
            }
        }
    }

    /// Announces a service [`service::challenges::Outcome`]'s change, and returns its answer.
    ///
    /// # Errors
    /// The outcome's refusal.
    pub fn settle<T>(&self, outcome: service::challenges::Outcome<T>) -> service::Result<T> {
        if let Some(c) = &outcome.changed {
            self.changed(c);
        }
        outcome.result
    }

    /// Bookkeeping for challenges the store just expired.
    pub fn expired(&self, list: &[Expired]) {
        for e in list {
            self.metrics.challenge("expired");
            self.waiters.challenge_changed(&e.id, &e.devices);
        }
    }

    /// Bookkeeping for a challenge that just changed state.
    pub fn changed(&self, challenge: &ChallengeRecord) {
        if challenge.state.is_terminal() {
            self.metrics.challenge(challenge.state.as_str());
        }
        self.waiters.challenge_updated(challenge);
    }

    /// Bookkeeping for a new challenge: counted, its devices' long-polls woken, the webhook
    /// told, a Web Push queued (never waited for).
    pub fn created(&self, challenge: &ChallengeRecord, subscriptions: Vec<PushSubscriptionRecord>) {
        self.metrics.challenge("created");
        self.waiters.devices_changed(&challenge.devices);
        if let Some(hook) = &self.webhook {
            webhook::notify(hook, &challenge.id, &challenge.user, &challenge.devices);
        }
        self.web_push.notify(PushJob {
            challenge_id: challenge.id.clone(),
            user: challenge.user.clone(),
            subscriptions,
            expires_at: challenge.expires_at,
        });
        tracing::debug!(challenge = %challenge.id, user = %challenge.user, "challenge created");
    }

    /// Tells a user's other devices about a new binding: their long-polls return, and the
    /// webhook (if configured) is told to wake them, so they fetch `GET /v1/device/notices`.
    pub fn announce_binding(&self, added: &crate::store::DeviceRecord, others: &[String]) {
        if others.is_empty() {
            return;
        }
        self.waiters.devices_changed(others);
        if let Some(hook) = &self.webhook {
            webhook::notify(hook, &format!("notice:{}", added.id), &added.user, others);
        }
    }

    /// Tells a user's devices (`devices`, from [`crate::service::notices::record`]) that a
    /// notice of `kind` was stored: their long-polls return and the webhook (if configured) is
    /// told to wake them, so they fetch `GET /v1/device/notices?kinds=all`.
    pub fn announce_notice(&self, user: &str, kind: &str, devices: &[String]) {
        if devices.is_empty() {
            return;
        }
        self.waiters.devices_changed(devices);
        if let Some(hook) = &self.webhook {
            webhook::notify(hook, &format!("notice:{kind}"), user, devices);
        }
    }

    /// Waits, counted as a waiting long-poll, until `news` arrives (`Some`), `wake` comes or
    /// the server stops (`None`).
    pub async fn wait_for<T>(&self, news: impl Future<Output = T>, wake: Instant) -> Option<T> {
        let _waiting = self.metrics.waiting();
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            news = news => Some(news),
            _ = tokio::time::sleep_until(wake) => None,
            _ = shutdown.changed() => None,
        }
    }

    /// True once the server is stopping.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// The lane of a job that may change challenge `id` ([`AppState::run_announced`]): ahead
/// while a wait on this replica awaits that challenge's answer, or (a relying party waiting on
/// another replica) for the first few requests of `device` on a challenge listed to it here
/// that has not ended or expired at `now` (Unix milliseconds): [`crate::shown`].
fn lane_for_change(
    waiters: &Waiters,
    id: &str,
    device: Option<&str>,
    now: crate::clock::Millis,
) -> crate::jobs::Lane {
    let listed_here = || device.is_some_and(|d| waiters.shown_here().take_ahead(id, d, now));
    if waiters.challenge_awaits_record(id) || listed_here() {
        crate::jobs::Lane::Ahead
    } else {
        crate::jobs::Lane::Normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Lane;

    /// The lane of device d1's request on challenge `id` at `now`.
    fn lane(waiters: &Waiters, id: &str, now: crate::clock::Millis) -> Lane {
        lane_for_change(waiters, id, Some("d1"), now)
    }

    /// Session 17 review: an answer, acknowledgement or cancel goes ahead of new work only
    /// while a relying party's wait here awaits its challenge. A forged one (checked only in
    /// its job) names an id nobody waits on, and queues with everything else.
    #[test]
    fn only_a_change_someone_waits_for_here_goes_ahead() {
        let waiters = Waiters::default();
        assert_eq!(
            lane_for_change(&waiters, "AAAAAAAAAAAAAAAAAAAAAA", None, 1_000),
            Lane::Normal
        );
        let wait = waiters.watch_challenge("c1");
        assert_eq!(lane(&waiters, "c1", 1_000), Lane::Ahead);
        assert_eq!(lane(&waiters, "c2", 1_000), Lane::Normal);
        drop(wait);
        assert_eq!(lane(&waiters, "c1", 1_000), Lane::Normal);
    }

    /// Session 24 review: a server failure inside a change's outcome (an acknowledgement's
    /// statement committed, its answer lost) makes the waiters read again, as the job's own
    /// does; a refusal, a change the caller announces, or success never does.
    #[test]
    fn a_server_failure_inside_an_outcome_makes_the_waiters_read_again() {
        use crate::service::challenges::Outcome;
        use crate::store::{DbErrorKind, StoreError};
        let failed = || service::Error::Store(StoreError::db(DbErrorKind::Unavailable, "lost"));
        let inner = |result: service::Result<()>| -> Result<Outcome<()>, service::Error> {
            Ok(Outcome {
                changed: None,
                result,
            })
        };
        assert!(unsure_of_change(&inner(Err(failed()))));
        assert!(unsure_of_change(&inner(Err(service::Error::Internal(
            "x".into()
        )))));
        assert!(unsure_of_change::<(), _>(&Err(failed())));
        assert!(!unsure_of_change(&inner(Err(service::Error::Expired))));
        assert!(!unsure_of_change(&inner(Err(
            service::Error::ReplayedNonce
        ))));
        assert!(!unsure_of_change(&inner(Ok(()))));
        assert!(!unsure_of_change::<(), _>(&Err(service::Error::Forbidden(
            "no".into()
        ))));
    }

    /// Session 19: with several replicas, a device often answers on one where nobody waits:
    /// there its answer goes ahead while the challenge, listed to one of its devices on that
    /// replica, is open; an id never listed here still queues with everything else.
    #[test]
    fn a_change_to_a_challenge_listed_here_goes_ahead_a_few_times_until_it_ends() {
        let waiters = Waiters::default();
        waiters.shown_here().shown("c1", "d1", 2_000, 1_000);
        assert_eq!(lane(&waiters, "c1", 1_000), Lane::Ahead);
        assert_eq!(lane(&waiters, "c2", 1_000), Lane::Normal);
        assert_eq!(lane(&waiters, "c1", 2_000), Lane::Normal);
        // A wait here spends none of the listing's budget.
        waiters.shown_here().shown("c3", "d1", 5_000, 1_000);
        let wait = waiters.watch_challenge("c3");
        for _ in 0..10 {
            assert_eq!(lane(&waiters, "c3", 1_000), Lane::Ahead);
        }
        drop(wait);
        for _ in 0..crate::shown::AHEAD_PER_DEVICE {
            assert_eq!(lane(&waiters, "c3", 1_000), Lane::Ahead);
        }
        assert_eq!(lane(&waiters, "c3", 1_000), Lane::Normal);
        // Only the device it was listed to: not another, not a relying party's cancel.
        waiters.shown_here().shown("c5", "d1", 5_000, 1_000);
        assert_eq!(
            lane_for_change(&waiters, "c5", Some("d2"), 1_000),
            Lane::Normal
        );
        assert_eq!(lane_for_change(&waiters, "c5", None, 1_000), Lane::Normal);
        assert_eq!(lane(&waiters, "c5", 1_000), Lane::Ahead);
    }
}
