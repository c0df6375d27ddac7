//! Starting, waiting for and cancelling a challenge.

use std::cmp::min;
use std::thread::sleep;
use std::time::{Duration, Instant};

use pushauth_proto::wire::{ChallengeCreated, ChallengeStatus, CreateChallenge, DeviceList};
use pushauth_proto::{b64, context_digest, random, ChallengeState, Context, DevicePublicKey};
use serde::Serialize;

use crate::http::{path_segment, Failure, Http};
use crate::pinned::load_pinned;
use crate::settings::check_server;
use crate::verify;
use crate::{ClientConfig, ClientError, DeviceInfo};

/// Longest single long-poll; below the server's 30 s cap so the server, not a timeout, answers.
const MAX_POLL_SECS: u64 = 25;
/// Time the server gets beyond the `wait` it was asked for before a long poll counts as lost.
const POLL_MARGIN: Duration = Duration::from_millis(500);
/// Bound on calls that do not long-poll, when the caller gives no deadline of its own.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Shortest code a server may send for number matching, and longest (DESIGN.md: 2 to 8 digits).
const CODE_DIGITS: std::ops::RangeInclusive<usize> = 2..=8;
/// Retry pacing for transient failures while waiting.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The time a cancel gets even when its deadline has passed (a login that timed out still
/// withdraws its push from the device).
pub const MIN_CANCEL_TIME: Duration = Duration::from_millis(1000);
/// Least spacing between two polls, so a server that ignores `wait` cannot make us spin.
const MIN_POLL_SPACING: Duration = Duration::from_millis(50);

/// What the caller of [`Client::long_poll`] made of an answer.
pub(crate) enum Polled {
    /// The wait is over.
    Decided(Outcome),
    /// Still open; `acknowledged` of the challenges waited on were acknowledged by a device.
    Open {
        /// How many of them were acknowledged.
        acknowledged: usize,
    },
}

/// The pause before asking again after an open answer to a poll that asked to wait
/// `wait_secs` and took `took`:
/// - none when the answer showed progress (`progressed`: more challenges acknowledged than any
///   answer before). A long-poll returns when its challenge is acknowledged, and the device's
///   answer usually follows within milliseconds: pausing then delayed every login from the
///   phone app, which acknowledges before it answers, by up to [`MIN_POLL_SPACING`] (session
///   23's bench: answer → return p50 49 ms, and 12 relying parties could not pass 240 logins
///   a second). Acknowledgements only grow, so a server can make the client skip the pause
///   at most once per challenge in one wait (pam_push waits in slices, each a wait of its
///   own);
/// - 200 ms with under a second left (`wait_secs` 0: poll a few more times rather than
///   overshoot);
/// - else what is left of [`MIN_POLL_SPACING`], so that a server that ignores `wait` cannot
///   make the client spin.
fn pause_after_open(progressed: bool, wait_secs: u64, took: Duration) -> Duration {
    if progressed {
        Duration::ZERO
    } else if wait_secs == 0 {
        Duration::from_millis(200)
    } else {
        MIN_POLL_SPACING.saturating_sub(took)
    }
}

/// How to start a challenge.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Device ids to target; all of the user's devices when `None`.
    pub devices: Option<Vec<String>>,
    /// Number matching: the server makes a code the login screen shows and the person types.
    pub number_matching: bool,
    /// Challenge lifetime; the server's default when `None`.
    pub ttl: Option<Duration>,
    /// Issue 12: ask pushauthd to let the login in without a push when a device approved the
    /// same login within this many seconds (1 to 3600); `None` always pushes. A grace answer
    /// comes back as [`PendingLogin::grace`], which the caller must check against its own
    /// record before it lets anyone in.
    pub grace_secs: Option<u64>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            devices: None,
            number_matching: true,
            ttl: None,
            grace_secs: None,
        }
    }
}

/// A challenge this client started, with what it needs to verify the answer.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// The challenge id (base64url).
    pub id: String,
    /// The pushauthd user the challenge is for.
    pub user: String,
    /// The code to show the person (number matching), `None` when off.
    pub code: Option<String>,
    /// The devices the challenge was sent to, with names and keys.
    pub devices: Vec<DeviceInfo>,
    /// When the challenge expires on the server (RFC 3339 UTC text).
    pub expires_at: String,
    /// Issue 12: the grace window pushauthd says let this login in (already approved, no
    /// push, nothing to wait for). Unverified: the server's claim alone.
    pub grace: Option<crate::GraceGrant>,
    pub(crate) rp_nonce: [u8; 32],
    pub(crate) context_digest: [u8; 32],
    /// Index of the server that holds the challenge.
    pub(crate) server: usize,
    /// The user's pinned keys as read at start, `None` without pinning.
    pub(crate) pinned: Option<Vec<DevicePublicKey>>,
}

/// How a login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A device approved with the right code, and its signature verified.
    Approved {
        /// The device that answered.
        device_id: String,
        /// Its name, as enrolled.
        device_name: String,
    },
    /// A device denied.
    Denied {
        /// The device that answered.
        device_id: String,
    },
    /// A device said "this was not me".
    Reported {
        /// The device that answered.
        device_id: String,
    },
    /// A device approved with the wrong code.
    CodeMismatch {
        /// The device that answered.
        device_id: String,
    },
    /// The challenge expired on the server.
    Expired,
    /// The challenge was cancelled.
    Cancelled,
    /// Our deadline passed while the challenge was still open.
    TimedOut,
}

/// The relying-party client.
pub struct Client {
    servers: Vec<String>,
    http: Http,
    connect_timeout: Duration,
    authorized_devices_dir: Option<std::path::PathBuf>,
    /// See [`ClientConfig::pinned_backup_codes`].
    pub(crate) pinned_backup_codes: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the configuration and builds the HTTP agent (reads the CA file).
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        if cfg.servers.is_empty() {
            return Err(ClientError::Config(
                "no pushauth server is configured".into(),
            ));
        }
        let servers = cfg
            .servers
            .iter()
            .map(|server| check_server(server, cfg.allow_insecure_http))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let http = Http::new(&cfg)?;
        Ok(Client {
            servers,
            http,
            connect_timeout: cfg.connect_timeout,
            authorized_devices_dir: cfg.authorized_devices_dir,
            pinned_backup_codes: cfg.pinned_backup_codes,
        })
    }

    /// The user's enrolled devices (failover and time bounds as [`Client::start`]).
    pub fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, ClientError> {
        self.devices_until(user, Instant::now() + CALL_TIMEOUT)
    }

    /// [`Client::devices`] that gives up at `deadline` (connect, TLS and failover included).
    pub fn devices_until(
        &self,
        user: &str,
        deadline: Instant,
    ) -> Result<Vec<DeviceInfo>, ClientError> {
        let path = format!("/v1/users/{}/devices", path_segment(user));
        let (list, _): (DeviceList, _) =
            self.call_with_failover_until("GET", &path, None::<&()>, deadline)?;
        Ok(list.devices)
    }

    /// Starts a challenge for `user`, showing `context` on the device, within
    /// [`CALL_TIMEOUT`] (15 s) over every server tried.
    pub fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
    ) -> Result<PendingLogin, ClientError> {
        self.start_until(user, context, opts, Instant::now() + CALL_TIMEOUT)
    }

    /// Whether answers for `user` must carry a pinned device's signature: the client has an
    /// `authorized_devices` directory holding a file for the user.
    ///
    /// Errors: the pin file's ([`load_pinned`]): unreadable, wrong owner or mode, malformed.
    pub fn pins_keys_for(&self, user: &str) -> Result<bool, ClientError> {
        match &self.authorized_devices_dir {
            Some(dir) => Ok(load_pinned(dir, user)?.is_some()),
            None => Ok(false),
        }
    }

    /// [`Client::start`] that gives up at `deadline`: DNS aside (the system resolver's own
    /// limits), connecting, TLS, the request and failover to the next servers all fit before it.
    /// Each server gets at most an equal share of the time left (and, while other servers remain,
    /// at most `connect_timeout`), so a server that accepts connections and never answers
    /// cannot starve the ones after it.
    pub fn start_until(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
        deadline: Instant,
    ) -> Result<PendingLogin, ClientError> {
        // Read pins first: a user whose pin file is broken gets no push at all.
        let pinned = match &self.authorized_devices_dir {
            Some(dir) => load_pinned(dir, user)?,
            None => None,
        };
        let rp_nonce = random::rp_nonce()
            .map_err(|e| ClientError::Config(format!("cannot make a nonce: {e}")))?;
        let request = CreateChallenge {
            user: user.to_owned(),
            devices: opts.devices.clone(),
            context: context.clone(),
            code: opts.number_matching,
            ttl_secs: opts.ttl.map(|ttl| ttl.as_secs().max(1)),
            rp_nonce: b64::encode(rp_nonce),
            grace_secs: opts.grace_secs,
        };
        let (created, server): (ChallengeCreated, _) =
            self.call_with_failover_until("POST", "/v1/challenges", Some(&request), deadline)?;
        let graced = check_created(&created, user, opts)?;
        if graced {
            return Ok(PendingLogin {
                id: created.id,
                user: user.to_owned(),
                code: None,
                devices: Vec::new(),
                expires_at: created.expires_at,
                grace: created.grace,
                rp_nonce,
                context_digest: context_digest(context),
                server,
                pinned,
            });
        }
        let devices = created
            .devices
            .iter()
            .map(|id| {
                created
                    .device_info
                    .iter()
                    .find(|d| &d.id == id)
                    .cloned()
                    .ok_or_else(|| {
                        ClientError::BadAnswer(format!("no key was sent for device {id:?}"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PendingLogin {
            id: created.id,
            user: user.to_owned(),
            code: created.code,
            devices,
            expires_at: created.expires_at,
            grace: None,
            rp_nonce,
            context_digest: context_digest(context),
            server,
            pinned,
        })
    }

    /// Waits until the challenge is decided, expires or is cancelled, or until `deadline`.
    /// Network failures and server errors are retried until the deadline, so a server restart
    /// loses nothing.
    ///
    /// Replicas (issue 13): when the server that started the challenge gives no answer or says
    /// it cannot serve now (502–504, 503 `store_unavailable`), the next configured server is
    /// asked, in turn, since replicas over one database all know the challenge. Only the
    /// starting server's refusals end the wait: another server that does not know the
    /// challenge (a separate pushauthd, not a replica) or refuses the key only sends the wait
    /// on to the next server. Every answer is verified as before, whichever server gave it.
    pub fn wait(&self, login: &PendingLogin, deadline: Instant) -> Result<Outcome, ClientError> {
        self.server(login)?;
        self.long_poll(
            login.server,
            deadline,
            &|wait_secs| format!("/v1/challenges/{}?wait={wait_secs}", login.id),
            &mut |status: ChallengeStatus| {
                Ok(match verify::outcome(login, &status)? {
                    Some(outcome) => Polled::Decided(outcome),
                    None => Polled::Open {
                        acknowledged: usize::from(status.state == ChallengeState::Acknowledged),
                    },
                })
            },
        )
    }

    /// The long-poll loop of [`Client::wait`] and [`Client::wait_any`]: asks `path(wait_secs)`
    /// of server `home` until `decide` makes an outcome of an answer ([`Polled::Decided`]),
    /// `deadline` passes ([`Outcome::TimedOut`]) or the server says the challenge expired (410:
    /// [`Outcome::Expired`]). An answer that is still open is asked again at once when it shows
    /// progress ([`Polled::Open`]), else after [`MIN_POLL_SPACING`] ([`pause_after_open`]).
    /// Failover and retries as [`Client::wait`] describes.
    pub(crate) fn long_poll<R: serde::de::DeserializeOwned>(
        &self,
        home: usize,
        deadline: Instant,
        path: &dyn Fn(u64) -> String,
        decide: &mut dyn FnMut(R) -> Result<Polled, ClientError>,
    ) -> Result<Outcome, ClientError> {
        let mut current = home;
        let mut backoff = FIRST_BACKOFF;
        // The most challenges seen acknowledged in one answer so far.
        let mut acknowledged = 0;
        // What the caller hears at the deadline: the starting server's last failure, except
        // that "unreachable" (which a `safe` policy may let in on) is only said when no other
        // server was reached either (issue 9 item 6, as for a new request).
        let mut home_failure: Option<Failure> = None;
        let mut other_failure: Option<Failure> = None;
        loop {
            let started = Instant::now();
            if started >= deadline {
                let failure = match (home_failure, other_failure) {
                    (Some(Failure::Unreached(_)), Some(other))
                        if !matches!(other, Failure::Unreached(_)) =>
                    {
                        Some(other)
                    }
                    (Some(home), _) => Some(home),
                    (None, other) => other,
                };
                return match failure {
                    Some(failure) => Err(failure.into_error()),
                    None => Ok(Outcome::TimedOut),
                };
            }
            let remaining = deadline - started;
            // The server answers after `wait` seconds at the latest; the request itself never
            // outlives the deadline.
            let wait_secs = min(
                remaining.saturating_sub(POLL_MARGIN).as_secs(),
                MAX_POLL_SECS,
            );
            let base = self.servers.get(current).map_or("", String::as_str);
            let url = format!("{base}{}", path(wait_secs));
            let timeout = min(Duration::from_secs(wait_secs) + POLL_MARGIN * 2, remaining);
            let result: Result<R, Failure> = self.http.call("GET", &url, None::<&()>, timeout);
            match result {
                Ok(answer) => {
                    (home_failure, other_failure) = (None, None);
                    backoff = FIRST_BACKOFF;
                    let seen = match decide(answer)? {
                        Polled::Decided(outcome) => return Ok(outcome),
                        Polled::Open { acknowledged } => acknowledged,
                    };
                    let pause = pause_after_open(seen > acknowledged, wait_secs, started.elapsed());
                    acknowledged = acknowledged.max(seen);
                    sleep(min(
                        pause,
                        deadline.saturating_duration_since(Instant::now()),
                    ));
                }
                Err(Failure::Status {
                    status: 410,
                    code: Some(pushauth_proto::wire::ErrorCode::Expired),
                    ..
                }) => return Ok(Outcome::Expired),
                // A poll cut short by our own deadline is a timeout, not a failure.
                Err(Failure::NoAnswer(_)) if Instant::now() >= deadline => {
                    return Ok(Outcome::TimedOut)
                }
                Err(failure)
                    if failure.is_transient() || failure.may_ask_another() || current != home =>
                {
                    let asked = current;
                    if failure.may_ask_another() || current != home {
                        current = (current + 1) % self.servers.len().max(1);
                    }
                    if asked == home {
                        home_failure = Some(failure);
                    } else {
                        other_failure = Some(failure);
                    }
                    sleep(min(
                        backoff,
                        deadline.saturating_duration_since(Instant::now()),
                    ));
                    backoff = min(backoff * 2, MAX_BACKOFF);
                }
                Err(failure) => return Err(failure.into_error()),
            }
        }
    }

    /// Cancels the challenge (the login was abandoned). A challenge already decided, expired
    /// or cancelled stays as it is and the server answers 409 (`Rejected`).
    pub fn cancel(&self, login: &PendingLogin) -> Result<(), ClientError> {
        self.cancel_until(login, Instant::now() + CALL_TIMEOUT)
    }

    /// [`Client::cancel`] that gives up at `deadline` (connect and TLS included). A deadline
    /// already passed still gets one short attempt of [`MIN_CANCEL_TIME`].
    ///
    /// When the server that started the challenge gives no answer or cannot serve now
    /// (502–504, 503 `store_unavailable`), the other servers are asked in turn within what
    /// is left (replicas over one database, issue 13); only the starting server's failure is
    /// reported if none of them cancels it.
    pub fn cancel_until(&self, login: &PendingLogin, deadline: Instant) -> Result<(), ClientError> {
        self.server(login)?;
        let count = self.servers.len();
        let mut home_failure = None;
        for step in 0..count {
            let index = (login.server + step) % count;
            let base = self.servers.get(index).map_or("", String::as_str);
            let url = format!("{base}/v1/challenges/{}", login.id);
            let left = deadline.saturating_duration_since(Instant::now());
            // The starting server always gets its try, even past the deadline.
            let timeout = if step == 0 {
                left.max(MIN_CANCEL_TIME)
            } else if left.is_zero() {
                break;
            } else {
                left
            };
            let result: Result<ChallengeStatus, Failure> =
                self.http.call("DELETE", &url, None::<&()>, timeout);
            match result {
                Ok(_) => return Ok(()),
                Err(failure) if step == 0 && failure.may_ask_another() => {
                    home_failure = Some(failure);
                }
                Err(failure) if step == 0 => return Err(failure.into_error()),
                // Another server that cannot cancel it (not a replica, or down too).
                Err(_) => {}
            }
        }
        Err(home_failure.map_or_else(
            || ClientError::ServerError("no server cancelled the challenge".into()),
            Failure::into_error,
        ))
    }

    fn server(&self, login: &PendingLogin) -> Result<&str, ClientError> {
        self.servers
            .get(login.server)
            .map(String::as_str)
            .ok_or_else(|| ClientError::Config("this login was started by another client".into()))
    }

    /// [`Client::call_with_failover_until`] within [`CALL_TIMEOUT`] from now.
    pub(crate) fn call_with_failover<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(T, usize), ClientError> {
        self.call_with_failover_until(method, path, body, Instant::now() + CALL_TIMEOUT)
    }

    /// Sends a request to the first server that answers, before `deadline`; returns the answer
    /// and that server's index. Only "no usable answer" (see [`Failure::may_fail_over`]) moves
    /// on to the next server: an HTTP answer is final.
    ///
    /// Server `i` of `n` gets at most `(deadline - now) / (n - i)` (and at most
    /// `connect_timeout` while others remain). When every server failed, the error says the
    /// worst of what happened: a TLS failure, then a server error, and `Unreachable` only when
    /// no server was reached at all.
    pub(crate) fn call_with_failover_until<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
        deadline: Instant,
    ) -> Result<(T, usize), ClientError> {
        let mut failures: Vec<Failure> = Vec::new();
        let count = self.servers.len();
        for (index, base) in self.servers.iter().enumerate() {
            let url = format!("{base}{path}");
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                failures.push(Failure::NoAnswer(format!(
                    "{url}: not tried, the deadline had passed"
                )));
                break;
            }
            let left = u32::try_from(count - index).unwrap_or(u32::MAX).max(1);
            let mut budget = remaining / left;
            if left > 1 {
                budget = min(budget, self.connect_timeout);
            }
            match self.http.call(method, &url, body, budget) {
                Ok(answer) => return Ok((answer, index)),
                Err(failure) if failure.may_fail_over() => failures.push(failure),
                Err(failure) => return Err(failure.into_error()),
            }
        }
        Err(worst(failures))
    }
}

/// The error for a request that every server failed: TLS failure before server error before
/// unreachable, with every server's message.
fn worst(failures: Vec<Failure>) -> ClientError {
    let text = failures
        .iter()
        .map(Failure::message)
        .collect::<Vec<_>>()
        .join("; ");
    if failures.iter().any(|f| matches!(f, Failure::Tls(_))) {
        ClientError::TlsFailure(text)
    } else if failures.is_empty() || failures.iter().any(|f| !matches!(f, Failure::Unreached(_))) {
        ClientError::ServerError(text)
    } else {
        ClientError::Unreachable(text)
    }
}

/// Checks that the server created what was asked, and that ids are safe to put in a URL.
/// `true` for a grace answer ([`crate::grace`]), which has no devices or code to check.
fn check_created(
    created: &ChallengeCreated,
    user: &str,
    opts: &StartOptions,
) -> Result<bool, ClientError> {
    let bad = |msg: String| Err(ClientError::BadAnswer(msg));
    if pushauth_proto::names::check_id("challenge", &created.id).is_err() {
        return bad(format!("challenge id {:?} is not URL-safe", created.id));
    }
    if created.user != user {
        return bad(format!(
            "challenge created for {:?}, not {user:?}",
            created.user
        ));
    }
    if crate::grace::check_created(created, opts)? {
        return Ok(true);
    }
    if created.devices.is_empty() {
        return bad("challenge sent to no device".into());
    }
    if let Some(wanted) = &opts.devices {
        if let Some(extra) = created.devices.iter().find(|d| !wanted.contains(d)) {
            return bad(format!(
                "challenge sent to device {extra:?}, which was not asked for"
            ));
        }
    }
    if opts.number_matching != created.code.is_some() {
        return bad("number matching is not as requested".into());
    }
    // The code is shown to the person: only digits, so it cannot carry terminal escapes or
    // bidi controls (issue 9 item 14).
    if let Some(code) = &created.code {
        if !CODE_DIGITS.contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return bad(format!(
                "the code is not 2 to 8 ASCII digits: {}",
                pushauth_proto::text::for_terminal_cut(code, 16)
            ));
        }
    }
    Ok(false)
}
