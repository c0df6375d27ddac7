//! Pending logins held in memory, keyed by challenge id.
//!
//! `pushauth_client::Client::wait` needs the `PendingLogin` (its rp_nonce and context digest
//! verify the device's signature), so each started login keeps it here, and one blocking waiter
//! per login long-polls pushauthd and publishes the outcome on a watch channel. State calls only
//! read that channel: they cost no round trip to pushauthd, and an answer reaches them as soon as
//! pushauthd's long-poll wakes. The map is bounded; ended and overdue entries are swept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pushauth_client::{Client, Context, Outcome, PendingLogin, StartOptions};
use tokio::sync::watch;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
pub use crate::wire::DeviceView;
use crate::wire::LoginOutcome;

/// How long an ended login stays readable, so a shim that was between two polls still gets it.
pub const ENDED_RETENTION: Duration = Duration::from_secs(120);
/// Slack after the challenge's own expiry before the waiter gives up on pushauthd.
const WAIT_SLACK: Duration = Duration::from_secs(5);

/// Where a login stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginState {
    /// No answer yet.
    Pending,
    /// Decided, expired or cancelled. `outcome` is never `pending` or `error`.
    Ended {
        /// How it ended.
        outcome: LoginOutcome,
        /// The device that answered, if one did.
        device_id: Option<String>,
        /// The approving device's name (approvals only).
        device_name: Option<String>,
    },
    /// The wait failed (pushauthd unreachable until the deadline, or an answer that did not
    /// verify): the login fails closed.
    Failed {
        /// Why, for the log.
        message: String,
    },
}

impl LoginState {
    /// Whether no answer has come yet.
    pub fn is_pending(&self) -> bool {
        matches!(self, LoginState::Pending)
    }

    /// The outcome for the wire and the result token.
    pub fn outcome(&self) -> LoginOutcome {
        match self {
            LoginState::Pending => LoginOutcome::Pending,
            LoginState::Ended { outcome, .. } => *outcome,
            LoginState::Failed { .. } => LoginOutcome::Error,
        }
    }

    fn from_outcome(outcome: Outcome) -> LoginState {
        let ended = |outcome, device_id: Option<String>| LoginState::Ended {
            outcome,
            device_id,
            device_name: None,
        };
        match outcome {
            Outcome::Approved {
                device_id,
                device_name,
            } => LoginState::Ended {
                outcome: LoginOutcome::Approved,
                device_id: Some(device_id),
                device_name: Some(device_name),
            },
            Outcome::Denied { device_id } => ended(LoginOutcome::Denied, Some(device_id)),
            Outcome::Reported { device_id } => ended(LoginOutcome::Reported, Some(device_id)),
            Outcome::CodeMismatch { device_id } => {
                ended(LoginOutcome::CodeMismatch, Some(device_id))
            }
            Outcome::Expired | Outcome::TimedOut => ended(LoginOutcome::Expired, None),
            Outcome::Cancelled => ended(LoginOutcome::Cancelled, None),
        }
    }
}

/// What a challenge the sidecar started is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A login step (the shim reads it through `/v1/logins`).
    Login,
    /// "Add a new device to your account?", asked of the user's existing devices before an
    /// enrollment link is requested; never readable as a login.
    AddDevice,
    /// "Issue a new set of backup codes?", asked of the user's devices before pushauthd is asked
    /// for the set; never readable as a login.
    IssueBackupCodes,
}

/// One started login.
#[derive(Debug)]
pub struct Login {
    /// The challenge id (also the login's id on the shim API).
    pub id: String,
    /// What the challenge is for.
    pub purpose: Purpose,
    /// The pushauthd user (mapped from the realm and IdP user name).
    pub user: String,
    /// The shim's nonce, echoed in the result token.
    pub nonce: String,
    /// The code to show (number matching), `None` without.
    pub code: Option<String>,
    /// The devices the push went to.
    pub devices: Vec<DeviceView>,
    /// When the challenge expires (RFC 3339).
    pub expires_at: String,
    pending: PendingLogin,
    created: Instant,
    state: watch::Sender<LoginState>,
    ended_at: Mutex<Option<Instant>>,
}

impl Login {
    /// Where the login stands now.
    pub fn state(&self) -> LoginState {
        self.state.borrow().clone()
    }

    /// A receiver that sees the login end.
    pub fn subscribe(&self) -> watch::Receiver<LoginState> {
        self.state.subscribe()
    }

    /// Moves a pending login to `next`; an ended login stays as it is. Returns whether it moved.
    fn finish(&self, next: LoginState) -> bool {
        let moved = self.state.send_if_modified(|state| {
            if state.is_pending() {
                *state = next;
                true
            } else {
                false
            }
        });
        if moved {
            *lock(&self.ended_at) = Some(Instant::now());
        }
        moved
    }
}

/// What a shim asks for when it starts a login.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// What the challenge is for.
    pub purpose: Purpose,
    /// The pushauthd user.
    pub user: String,
    /// The shim's login session (a digest of it): a new login for the same session and user
    /// cancels the previous one that is still pending, so reloading or re-entering the push
    /// step never leaves two open challenges on the device.
    pub session: Option<String>,
    /// The start must be done by then; a challenge created later is cancelled again.
    pub deadline: Instant,
    /// The shim's nonce (a random one where there is no shim: CIBA, approvals).
    pub nonce: String,
    /// What the person approves, as shown on the device.
    pub context: Context,
    /// Whether the person must type a code on the device.
    pub number_matching: bool,
    /// The challenge's lifetime.
    pub ttl: Duration,
}

/// The registry.
#[derive(Debug)]
pub struct Logins {
    client: Arc<Client>,
    map: Mutex<HashMap<String, Arc<Login>>>,
    /// (session, user) → the id of the latest login started for it.
    sessions: Mutex<HashMap<(String, String), String>>,
    max: usize,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Logins {
    /// An empty registry holding at most `max` logins.
    pub fn new(client: Arc<Client>, max: usize, metrics: Arc<Metrics>) -> Self {
        Logins {
            client,
            map: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            max,
            metrics,
        }
    }

    /// The relying-party client (for the device list).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Logins held (pending or recently ended).
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The login with this id, if held.
    pub fn get(&self, id: &str) -> Option<Arc<Login>> {
        lock(&self.map).get(id).cloned()
    }

    /// Starts a challenge (blocking: call it on the blocking pool) and its waiter.
    pub fn start(
        &self,
        runtime: &tokio::runtime::Handle,
        req: StartRequest,
    ) -> Result<Arc<Login>, ApiError> {
        if self.len() >= self.max {
            return Err(ApiError::new(
                ErrorCode::TooManyPending,
                format!(
                    "the sidecar already holds {} logins; try again shortly",
                    self.max
                ),
            ));
        }
        let session_key = req.session.clone().map(|s| (s, req.user.clone()));
        // Re-entering the push step: end the earlier challenge of this session first.
        if let Some(key) = &session_key {
            let previous = lock(&self.sessions).get(key).cloned();
            if let Some(previous) = previous.and_then(|id| self.get(&id)) {
                self.cancel_superseded(&previous);
            }
        }
        let opts = StartOptions {
            devices: None,
            number_matching: req.number_matching,
            ttl: Some(req.ttl),
            grace_secs: None,
        };
        let pending = self
            .client
            .start(&req.user, &req.context, &opts)
            .map_err(|e| {
                Metrics::inc(&self.metrics.login_start_failures);
                ApiError::from(e)
            })?;
        if Instant::now() > req.deadline {
            // The shim has been told this start timed out: no push may stay open for it.
            Metrics::inc(&self.metrics.login_start_failures);
            let _ = self.client.cancel(&pending);
            tracing::warn!(challenge = %pending.id, "pushauthd answered after the call deadline; challenge cancelled");
            return Err(ApiError::upstream_timeout());
        }
        Metrics::inc(&self.metrics.logins_started);
        let (state, _) = watch::channel(LoginState::Pending);
        let login = Arc::new(Login {
            id: pending.id.clone(),
            purpose: req.purpose,
            user: req.user,
            nonce: req.nonce,
            code: pending.code.clone(),
            devices: pending
                .devices
                .iter()
                .map(|d| DeviceView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                })
                .collect(),
            expires_at: pending.expires_at.clone(),
            pending,
            created: Instant::now(),
            state,
            ended_at: Mutex::new(None),
        });
        lock(&self.map).insert(login.id.clone(), login.clone());
        if let Some(key) = session_key {
            // Two starts of one session at once: the one recorded first is superseded too.
            let raced = lock(&self.sessions).insert(key, login.id.clone());
            if let Some(raced) = raced
                .filter(|id| *id != login.id)
                .and_then(|id| self.get(&id))
            {
                self.cancel_superseded(&raced);
            }
        }
        tracing::info!(challenge = %login.id, user = %login.user, purpose = ?login.purpose, devices = login.devices.len(), "login started");
        let client = self.client.clone();
        let waiter = login.clone();
        let metrics = self.metrics.clone();
        let deadline = Instant::now() + req.ttl + WAIT_SLACK;
        runtime.spawn_blocking(move || {
            let next = match client.wait(&waiter.pending, deadline) {
                Ok(outcome) => LoginState::from_outcome(outcome),
                Err(e) => {
                    tracing::warn!(challenge = %waiter.id, error = %e, "waiting for the device failed; the login fails closed");
                    LoginState::Failed {
                        message: e.to_string(),
                    }
                }
            };
            let outcome = next.outcome();
            if waiter.finish(next) {
                metrics.outcome(outcome);
                tracing::info!(challenge = %waiter.id, user = %waiter.user, outcome = outcome.as_str(), "login ended");
            }
        });
        Ok(login)
    }

    /// Waits up to `wait` for the login to end; returns its state then.
    pub async fn wait(&self, login: &Login, wait: Duration) -> LoginState {
        let mut rx = login.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|s| !s.is_pending())).await;
        login.state()
    }

    /// Cancels a pending login on pushauthd (blocking). The waiter then sees `cancelled`; the
    /// local state is set at once so the next state call needs no round trip.
    pub fn cancel(&self, login: &Login) -> Result<(), ApiError> {
        if !login.state().is_pending() {
            return Err(ApiError::new(
                ErrorCode::WrongState,
                "the login has already ended",
            ));
        }
        self.client.cancel(&login.pending)?;
        if login.finish(LoginState::Ended {
            outcome: LoginOutcome::Cancelled,
            device_id: None,
            device_name: None,
        }) {
            self.metrics.outcome(LoginOutcome::Cancelled);
        }
        tracing::info!(challenge = %login.id, user = %login.user, "login cancelled");
        Ok(())
    }

    /// Cancels the login of `session` for `user` that is still pending, if any (blocking): a
    /// backup code used instead of the push leaves no push open on the device.
    pub fn cancel_session(&self, session: &str, user: &str) {
        let id = lock(&self.sessions)
            .get(&(session.to_owned(), user.to_owned()))
            .cloned();
        if let Some(login) = id.and_then(|id| self.get(&id)) {
            self.cancel_superseded(&login);
        }
    }

    /// Cancels a login that a newer one of the same session replaces (blocking); one that has
    /// already ended stays as it is.
    fn cancel_superseded(&self, login: &Login) {
        if !login.state().is_pending() {
            return;
        }
        match self.cancel(login) {
            Ok(()) => {
                tracing::info!(challenge = %login.id, user = %login.user, "login superseded by a new one of the same session; cancelled")
            }
            Err(e) => {
                tracing::warn!(challenge = %login.id, error = %e.message, "could not cancel a superseded login")
            }
        }
    }

    /// Drops ended logins after [`ENDED_RETENTION`] and any login far past its lifetime.
    pub fn sweep(&self, max_age: Duration) {
        let now = Instant::now();
        let mut map = lock(&self.map);
        map.retain(|_, login| {
            let ended = *lock(&login.ended_at);
            let ended_long_ago = ended.is_some_and(|at| now.duration_since(at) > ENDED_RETENTION);
            let too_old = now.duration_since(login.created) > max_age + ENDED_RETENTION;
            !(ended_long_ago || too_old)
        });
        lock(&self.sessions).retain(|_, id| map.contains_key(id));
    }
}
