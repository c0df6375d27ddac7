//! The Web Push sender: a bounded queue of new challenges and a fixed pool of threads that push
//! each to its target devices' subscriptions.
//!
//! Why this shape: a slow or dead push service must never delay a challenge or pile up threads.
//! [`Sender::enqueue`] never blocks (a full queue drops the push and counts it); the pool never
//! grows; every request has one overall timeout and follows no redirect. The origin is checked
//! against the allow-list again before each request, since the config may have changed since
//! the subscription was registered. Logs name the push service's origin only: the endpoint's
//! path is a capability for pushing to the device.
//!
//! A subscription whose push could not be delivered in time (no connection, a timeout) is left
//! alone for [`BACKOFF_MS`]: otherwise one dead endpoint would cost a sender a whole timeout on
//! every push to it, and everyone else's pushes would wait in the queue behind it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use pushauth_proto::b64;
use web_push_native::{p256, Auth};

use super::vapid::VapidKey;
use crate::clock::{self, Millis};
use crate::config::AllowList;
use crate::metrics::PushMetrics;
use crate::store::{PushSubscriptionRecord, SharedStore};

/// How long a VAPID JWT is valid (RFC 8292 §2: at most 24 hours).
pub const JWT_LIFETIME_SECS: i64 = 12 * 3600;

/// How long a subscription whose push failed to connect or timed out gets no pushes, in
/// milliseconds (counted `deferred`; the device still finds its challenges over its API).
pub const BACKOFF_MS: Millis = 60_000;

/// Subscriptions (device id and endpoint) in backoff, until when.
type Backoff = Mutex<HashMap<(String, String), Millis>>;

/// What the sender needs to know, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Signs the VAPID JWT.
    pub key: Arc<VapidKey>,
    /// Where pushes may go.
    pub allow: AllowList,
    /// The VAPID `sub` claim.
    pub subject: String,
    /// Sender threads.
    pub threads: usize,
    /// Queue capacity, in challenges.
    pub queue: usize,
    /// Time allowed for one push request, in milliseconds.
    pub timeout_ms: u64,
}

/// One new challenge to push.
#[derive(Debug, Clone)]
pub struct PushJob {
    /// The challenge id: the only thing the payload holds.
    pub challenge_id: String,
    /// Its user (for the `Topic`).
    pub user: String,
    /// The Web Push subscriptions of the devices it targets, read when it was created.
    pub subscriptions: Vec<PushSubscriptionRecord>,
    /// When it expires (the push's `TTL` is what is left).
    pub expires_at: Millis,
}

/// The sender's sizes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderStats {
    /// Sender threads (fixed at start).
    pub threads: usize,
    /// Challenges waiting in the queue.
    pub queued: usize,
    /// Threads busy with a challenge.
    pub busy: usize,
}

/// The queue and its threads; dropping it closes the queue, and the threads end after their
/// current push.
#[derive(Debug)]
pub struct Sender {
    queue: SyncSender<PushJob>,
    threads: Vec<JoinHandle<()>>,
    queued: Arc<AtomicUsize>,
    busy: Arc<AtomicUsize>,
    metrics: PushMetrics,
}

struct Worker {
    settings: Settings,
    store: SharedStore,
    metrics: PushMetrics,
    agent: ureq::Agent,
    backoff: Arc<Backoff>,
}

impl Sender {
    /// Starts `settings.threads` sender threads.
    ///
    /// # Errors
    /// A thread could not start.
    pub fn start(
        settings: Settings,
        store: SharedStore,
        metrics: PushMetrics,
    ) -> std::io::Result<Sender> {
        let (queue, jobs) = mpsc::sync_channel::<PushJob>(settings.queue.max(1));
        let jobs = Arc::new(Mutex::new(jobs));
        let queued = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
            .redirects(0)
            .build();
        let backoff = Arc::new(Backoff::default());
        let mut threads = Vec::with_capacity(settings.threads);
        for i in 0..settings.threads.max(1) {
            let worker = Worker {
                settings: settings.clone(),
                store: Arc::clone(&store),
                metrics: metrics.clone(),
                agent: agent.clone(),
                backoff: Arc::clone(&backoff),
            };
            let (jobs, queued, busy) = (Arc::clone(&jobs), Arc::clone(&queued), Arc::clone(&busy));
            threads.push(
                thread::Builder::new()
                    .name(format!("pushauthd-push-{i}"))
                    .spawn(move || worker.run(&jobs, &queued, &busy))?,
            );
        }
        Ok(Sender {
            queue,
            threads,
            queued,
            busy,
            metrics,
        })
    }

    /// Queues a challenge's pushes; never blocks. A full queue drops them (counted `dropped`).
    pub fn enqueue(&self, job: PushJob) {
        // No device of the challenge can be pushed to: no job, no thread woken.
        if job.subscriptions.is_empty() {
            return;
        }
        // Counted before the send, so a worker's decrement never runs ahead of it.
        let depth = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        match self.queue.try_send(job) {
            Ok(()) => self.metrics.set_queued(depth),
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                self.metrics.count("dropped");
                tracing::warn!(challenge = %job.challenge_id, "web push: queue full, push dropped");
            }
        }
    }

    /// Threads, queue depth and busy threads now.
    pub fn stats(&self) -> SenderStats {
        SenderStats {
            threads: self.threads.len(),
            queued: self.queued.load(Ordering::SeqCst),
            busy: self.busy.load(Ordering::SeqCst),
        }
    }
}

/// How one push request ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sent,
    Gone(u16),
    Failed(String),
    /// No answer in time or no connection: the subscription goes into backoff.
    Unreachable(String),
}

impl Worker {
    fn run(self, jobs: &Mutex<Receiver<PushJob>>, queued: &AtomicUsize, busy: &AtomicUsize) {
        loop {
            let job = {
                let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
                jobs.recv()
            };
            let Ok(job) = job else {
                return;
            };
            let depth = queued.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
            self.metrics.set_queued(depth);
            busy.fetch_add(1, Ordering::SeqCst);
            self.push_challenge(&job);
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn push_challenge(&self, job: &PushJob) {
        for sub in &job.subscriptions {
            self.push_one(job, sub);
        }
    }

    fn push_one(&self, job: &PushJob, sub: &PushSubscriptionRecord) {
        let now = clock::now_ms();
        let left_ms = job.expires_at.saturating_sub(now);
        if left_ms <= 0 {
            tracing::debug!(challenge = %job.challenge_id, "web push: challenge expired before its push");
            return;
        }
        // Checked again: the config may have changed since the subscription was registered.
        let origin = match self.settings.allow.check(&sub.endpoint) {
            Ok((_, origin)) => origin,
            Err(e) => {
                self.metrics.count("failed");
                tracing::warn!(device = %sub.device_id, error = %e, "web push: not sent");
                return;
            }
        };
        let key = (sub.device_id.clone(), sub.endpoint.clone());
        {
            let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            // Ended backoffs are dropped here, so the map never outgrows the subscriptions.
            backoff.retain(|_, until| *until > now);
            if backoff.contains_key(&key) {
                self.metrics.count("deferred");
                tracing::debug!(challenge = %job.challenge_id, device = %sub.device_id, %origin, "web push deferred: the last push to this subscription got no answer");
                return;
            }
        }
        let ttl_secs = (left_ms + 999) / 1000;
        let outcome = match self.request(job, sub, &origin, now, ttl_secs) {
            Ok(outcome) => outcome,
            Err(why) => Outcome::Failed(why),
        };
        match outcome {
            Outcome::Sent => {
                self.metrics.count("sent");
                tracing::debug!(challenge = %job.challenge_id, device = %sub.device_id, %origin, "web push sent");
            }
            Outcome::Gone(status) => {
                let detail = format!("push service {origin} answered {status}: subscription gone");
                let deleted = self.store.delete_push_subscription(
                    &sub.device_id,
                    Some(&sub.endpoint),
                    &detail,
                    now,
                );
                if let Err(e) = deleted {
                    tracing::warn!(device = %sub.device_id, error = %e, "web push: cannot delete a gone subscription");
                }
                // Counted once deleted, so whoever sees the count sees the deletion.
                self.metrics.count("gone");
                tracing::info!(device = %sub.device_id, %origin, status, "web push: subscription gone, deleted");
            }
            Outcome::Failed(why) => {
                self.metrics.count("failed");
                tracing::warn!(challenge = %job.challenge_id, device = %sub.device_id, %origin, %why, "web push failed");
            }
            Outcome::Unreachable(why) => {
                let until = clock::now_ms().saturating_add(BACKOFF_MS);
                self.backoff
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, until);
                self.metrics.count("failed");
                tracing::warn!(challenge = %job.challenge_id, device = %sub.device_id, %origin, %why, "web push failed; no pushes to this subscription for a minute");
            }
        }
    }

    /// Encrypts and POSTs one push. `Err` for what fails before the request is made.
    fn request(
        &self,
        job: &PushJob,
        sub: &PushSubscriptionRecord,
        origin: &str,
        now: Millis,
        ttl_secs: i64,
    ) -> Result<Outcome, String> {
        let point = b64::decode(&sub.p256dh, "p256dh").map_err(|e| e.to_string())?;
        let ua_public = p256::PublicKey::from_sec1_bytes(&point)
            .map_err(|_| "stored p256dh is not a P-256 point".to_owned())?;
        let secret = b64::decode_array::<16>(&sub.auth, "auth").map_err(|e| e.to_string())?;
        let auth = Auth::clone_from_slice(&secret);
        let payload = serde_json::json!({ "challenge_id": job.challenge_id }).to_string();
        let body = web_push_native::encrypt(payload.into_bytes(), &ua_public, &auth)
            .map_err(|e| format!("cannot encrypt: {e}"))?;
        let exp = now.div_euclid(1000) + JWT_LIFETIME_SECS;
        let authorization = self
            .settings
            .key
            .authorization(origin, exp, &self.settings.subject);
        let result = self
            .agent
            .post(&sub.endpoint)
            .set("TTL", &ttl_secs.to_string())
            .set("Urgency", "high")
            .set("Topic", &self.settings.key.topic(&job.user))
            .set("Content-Encoding", "aes128gcm")
            .set("Content-Type", "application/octet-stream")
            .set("Authorization", &authorization)
            .send_bytes(&body);
        Ok(match result {
            Ok(response) if (200..300).contains(&response.status()) => Outcome::Sent,
            // Redirects are never followed (the allow-list names where pushes may go).
            Ok(response) => Outcome::Failed(format!("answered {}", response.status())),
            Err(ureq::Error::Status(status @ (404 | 410), _)) => Outcome::Gone(status),
            Err(ureq::Error::Status(status, _)) => Outcome::Failed(format!("answered {status}")),
            // The transport error's text names the URL; its kind does not.
            Err(ureq::Error::Transport(t)) => Outcome::Unreachable(format!("{:?}", t.kind())),
        })
    }
}
