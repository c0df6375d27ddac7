//! Starting, waiting for and cancelling a challenge.

use std::cmp::min;
use std::thread::sleep;
use std::time::{Duration, Instant};

use pushauth_proto::wire::{ChallengeCreated, ChallengeStatus, CreateChallenge, DeviceList};
use pushauth_proto::{b64, context_digest, random, Context, DevicePublicKey};
use serde::Serialize;

use crate::http::{path_segment, Failure, Http};
use crate::pinned::load_pinned;
use crate::verify;
use crate::{ClientConfig, ClientError, DeviceInfo};

/// Longest single long-poll; below the server's 30 s cap so the server, not a timeout, answers.
const MAX_POLL_SECS: u64 = 25;
/// Slack for one call beyond the time the server may legitimately take.
const CALL_SLACK: Duration = Duration::from_secs(5);
/// Bound on calls that do not long-poll.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Retry pacing for transient failures while waiting.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Least spacing between two polls, so a server that ignores `wait` cannot make us spin.
const MIN_POLL_SPACING: Duration = Duration::from_millis(50);

/// How to start a challenge.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Device ids to target; all of the user's devices when `None`.
    pub devices: Option<Vec<String>>,
    /// Number matching: the server makes a code the login screen shows and the person types.
    pub number_matching: bool,
    /// Challenge lifetime; the server's default when `None`.
    pub ttl: Option<Duration>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            devices: None,
            number_matching: true,
            ttl: None,
        }
    }
}

/// A challenge this client started, with what it needs to verify the answer.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub id: String,
    pub user: String,
    /// The code to show the person (number matching), `None` when off.
    pub code: Option<String>,
    /// The devices the challenge was sent to, with names and keys.
    pub devices: Vec<DeviceInfo>,
    pub expires_at: String,
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
        device_id: String,
        device_name: String,
    },
    /// A device denied.
    Denied { device_id: String },
    /// A device said "this was not me".
    Reported { device_id: String },
    /// A device approved with the wrong code.
    CodeMismatch { device_id: String },
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
    authorized_devices_dir: Option<std::path::PathBuf>,
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
        let mut servers = Vec::with_capacity(cfg.servers.len());
        for server in &cfg.servers {
            let base = server.trim().trim_end_matches('/');
            let rest = base
                .strip_prefix("https://")
                .or_else(|| base.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {
                    servers.push(base.to_owned())
                }
                _ => {
                    return Err(ClientError::Config(format!(
                        "server {server:?} is not an http:// or https:// base URL"
                    )))
                }
            }
        }
        let http = Http::new(&cfg)?;
        Ok(Client {
            servers,
            http,
            authorized_devices_dir: cfg.authorized_devices_dir,
        })
    }

    /// The user's enrolled devices.
    pub fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, ClientError> {
        let path = format!("/v1/users/{}/devices", path_segment(user));
        let (list, _): (DeviceList, _) = self.call_with_failover("GET", &path, None::<&()>)?;
        Ok(list.devices)
    }

    /// Starts a challenge for `user`, showing `context` on the device.
    pub fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
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
        };
        let (created, server): (ChallengeCreated, _) =
            self.call_with_failover("POST", "/v1/challenges", Some(&request))?;
        check_created(&created, user, opts)?;
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
            rp_nonce,
            context_digest: context_digest(context),
            server,
            pinned,
        })
    }

    /// Waits until the challenge is decided, expires or is cancelled, or until `deadline`.
    /// Network failures and server errors are retried until the deadline, so a server restart
    /// loses nothing.
    pub fn wait(&self, login: &PendingLogin, deadline: Instant) -> Result<Outcome, ClientError> {
        let base = self.server(login)?;
        let mut backoff = FIRST_BACKOFF;
        let mut last_failure: Option<String> = None;
        loop {
            let started = Instant::now();
            if started >= deadline {
                return match last_failure {
                    Some(failure) => Err(ClientError::Unreachable(failure)),
                    None => Ok(Outcome::TimedOut),
                };
            }
            let remaining = deadline - started;
            let wait_secs = min(remaining.as_secs(), MAX_POLL_SECS);
            let url = format!("{base}/v1/challenges/{}?wait={wait_secs}", login.id);
            let result: Result<ChallengeStatus, Failure> = self.http.call(
                "GET",
                &url,
                None::<&()>,
                Duration::from_secs(wait_secs) + CALL_SLACK,
            );
            match result {
                Ok(status) => {
                    last_failure = None;
                    backoff = FIRST_BACKOFF;
                    if let Some(outcome) = verify::outcome(login, &status)? {
                        return Ok(outcome);
                    }
                    let pause = if wait_secs == 0 {
                        // Under a second left: poll a few more times rather than overshoot.
                        Duration::from_millis(200)
                    } else {
                        MIN_POLL_SPACING.saturating_sub(started.elapsed())
                    };
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
                Err(failure) if failure.is_transient() => {
                    last_failure = Some(match failure {
                        Failure::Transport(msg) => msg,
                        Failure::Status {
                            status, message, ..
                        } => format!("server error {status}: {message}"),
                        Failure::Body(msg) => msg,
                    });
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
        let base = self.server(login)?;
        let url = format!("{base}/v1/challenges/{}", login.id);
        let _: ChallengeStatus = self
            .http
            .call("DELETE", &url, None::<&()>, CALL_TIMEOUT)
            .map_err(Failure::into_error)?;
        Ok(())
    }

    fn server(&self, login: &PendingLogin) -> Result<&str, ClientError> {
        self.servers
            .get(login.server)
            .map(String::as_str)
            .ok_or_else(|| ClientError::Config("this login was started by another client".into()))
    }

    /// Sends a request to the first server that answers; returns the answer and that server's
    /// index. Only "no answer" moves on to the next server: an HTTP answer is final.
    pub(crate) fn call_with_failover<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(T, usize), ClientError> {
        let mut failures = Vec::new();
        for (index, base) in self.servers.iter().enumerate() {
            let url = format!("{base}{path}");
            match self.http.call(method, &url, body, CALL_TIMEOUT) {
                Ok(answer) => return Ok((answer, index)),
                Err(failure) if failure.is_unreached() => {
                    failures.push(match failure {
                        Failure::Transport(msg) => msg,
                        Failure::Status { status, .. } => format!("{url}: gateway error {status}"),
                        Failure::Body(msg) => msg,
                    });
                }
                Err(failure) => return Err(failure.into_error()),
            }
        }
        Err(ClientError::Unreachable(failures.join("; ")))
    }
}

/// Checks that the server created what was asked, and that ids are safe to put in a URL.
fn check_created(
    created: &ChallengeCreated,
    user: &str,
    opts: &StartOptions,
) -> Result<(), ClientError> {
    let bad = |msg: String| Err(ClientError::BadAnswer(msg));
    if created.id.is_empty()
        || created.id.len() > 128
        || !created
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad(format!("challenge id {:?} is not URL-safe", created.id));
    }
    if created.user != user {
        return bad(format!(
            "challenge created for {:?}, not {user:?}",
            created.user
        ));
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
    // The code is shown to the person as what to type: only the two digits pushauthd makes,
    // never text of the server's choosing.
    if let Some(code) = &created.code {
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return bad("the code is not two digits".into());
        }
    }
    Ok(())
}
