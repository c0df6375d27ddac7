//! The authentication flow as plain code over small traits, so unit tests can replay scripted
//! prompts and answers (and a scripted or real push backend) without loading PAM.
//!
//! Prompt semantics: with the code inside a prompt (sshd), the person reads the code, types it on
//! the device, then presses Enter; an empty answer means "I have answered, check now", and the
//! module then waits for the outcome until the deadline (so pressing Enter early is harmless).
//! Typing `c` or `cancel`, or an aborted conversation (Ctrl-C, a closed connection), cancels the
//! challenge. On every path that leaves a challenge open, it is cancelled on the server.

use std::time::{Duration, Instant};

use pushauth_client::{ClientError, Context, ErrorCode, Outcome, StartOptions};

use crate::approval::rules::ApprovalMode;
use crate::backup::{self, AnswerKind};
use crate::config::{read_pinned_file, Config};
use crate::context::build_context;
use crate::policy::{push_required_by_gid, NoDevicePolicy, UnreachablePolicy};
use crate::prompt::{
    code_is_valid, device_names, info_text, parse_answer, prompt_text, use_prompt,
    with_backup_hint, PromptAnswer,
};
use crate::record::{quote, Record};
use crate::start_failed::start_failed;
use crate::system::LookupFailed;

pub use crate::backend::PushBackend;
pub use crate::entry::{log_misplaced, run, Args, Stack};
pub use crate::interfaces::{ConvFailed, Conversation, Level, Log, PamCode, PamEnv};

/// How much shorter than sshd's `LoginGraceTime` the module's deadline must be: the key
/// exchange and the first factor happen within the grace time too.
pub const GRACE_MARGIN: Duration = Duration::from_secs(5);

/// The longest stretch the wait runs without checking for a pending interrupt. A little over
/// the client's 0.5 s poll margin plus one second, so each slice holds one whole-second
/// long-poll (an answer then arrives at once); 1.5 s left the client under a second, which it
/// polls every 200 ms, and every approval waited up to 200 ms for the module.
pub const WAIT_SLICE: Duration = Duration::from_millis(1550);

/// Cancels the challenge when dropped unless it ended: covers every early return (and unwinding).
struct CancelGuard<'a, B: PushBackend> {
    backend: &'a B,
    login: &'a B::Login,
    armed: bool,
    deadline: Instant,
}

impl<B: PushBackend> Drop for CancelGuard<'_, B> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.backend.cancel(self.login, self.deadline);
        }
    }
}

/// The flow: who must approve ([`crate::approval::rules`]), then the person's own push
/// ([`authenticate_self`]) and/or an approver's ([`crate::approval::run`]), within one deadline.
#[allow(clippy::too_many_arguments)]
pub fn authenticate<B: PushBackend>(
    config: &Config,
    backend: &B,
    user: &str,
    pam: &dyn PamEnv,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
    debug: bool,
    started: Instant,
) -> PamCode {
    let facts = pam.facts();
    let service = facts.service.clone().unwrap_or_default();
    let timeout = effective_timeout(config, &service, pam, log);
    let deadline = started + timeout;
    // One name for the push, the pinned keys and the approvers (issue 9 item 10).
    let mapped = match config.user_map.apply(user) {
        Ok(mapped) => mapped,
        Err(e) => {
            log.log(
                Level::Notice,
                &format!(
                    "pam_push: user={} service={} outcome=bad_user_name detail={}",
                    quote(user),
                    quote(&service),
                    quote(&e)
                ),
            );
            return PamCode::UserUnknown;
        }
    };
    let names = Names {
        account: user,
        user: &mapped,
    };
    let policy = &config.approval;
    if policy.rules.is_empty() && policy.mode == ApprovalMode::SelfOnly {
        return authenticate_self(
            config, backend, names, pam, conv, log, debug, timeout, deadline,
        );
    }
    // The requester's groups narrow the rules; unreadable groups are `None` (see `decide`).
    // Under su (and sudo's targetpw) the PAM user is the account switched to: the person
    // asking is PAM_RUSER, and their groups are the ones a rule means.
    let ruser = pam.ruser().filter(|r| !r.is_empty());
    let person = ruser.as_deref().unwrap_or(user);
    let groups = pam.user_groups(person).ok().flatten();
    let command = crate::context::sudo_args(&facts).and_then(|sudo| sudo.command());
    let (mode, approvers) =
        policy.decide(&service, groups.as_deref(), command.as_deref(), &|name| {
            pam.group_id(name)
        });
    if mode.includes_self() {
        let code = authenticate_self(
            config, backend, names, pam, conv, log, debug, timeout, deadline,
        );
        // Outside `groups` no push of one's own is asked; an approver's still is.
        if mode == ApprovalMode::SelfOnly || !matches!(code, PamCode::Success | PamCode::Ignore) {
            return code;
        }
    }
    let request = crate::approval::Request {
        account: user,
        user: &mapped,
        ruser: ruser.as_deref(),
        facts: &facts,
        approvers,
        deadline,
    };
    crate::approval::run(config, backend, &request, pam, conv, log)
}

/// The account that logs in as PAM names it (its groups decide) and its pushauth name after
/// `user_map` (the push, the pinned keys).
#[derive(Clone, Copy)]
struct Names<'a> {
    account: &'a str,
    user: &'a str,
}

/// The person's own push: policy, context, challenge, what to show, wait, outcome.
#[allow(clippy::too_many_arguments)]
fn authenticate_self<B: PushBackend>(
    config: &Config,
    backend: &B,
    names: Names<'_>,
    pam: &dyn PamEnv,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
    debug: bool,
    timeout: Duration,
    deadline: Instant,
) -> PamCode {
    let facts = pam.facts();
    let service = facts.service.clone().unwrap_or_default();
    let Names { account, user } = names;
    let mut record = Record {
        user,
        service,
        rhost: facts.rhost.clone().unwrap_or_default(),
        device: String::new(),
        challenge: String::new(),
    };

    if !config.groups.is_empty() {
        // The groups of the account that logs in decide, and those of the mapped name too
        // when it is another account: `alice@corp` must not be judged by a local `alice`'s
        // groups. Either in scope means a push.
        let mut names = vec![account];
        if user != account {
            names.push(user);
        }
        let mut known = false;
        let mut required = false;
        for name in names {
            match pam.user_groups(name) {
                Ok(None) => {}
                // Groups that cannot be read never take anyone out of scope (issue 9 item 5).
                Err(LookupFailed::Error) => {
                    known = true;
                    required = true;
                    log.log(
                        Level::Warning,
                        &record.line(
                            "groups_unreadable",
                            Some("the user's groups cannot be read; push required"),
                        ),
                    );
                }
                Ok(Some(groups)) => {
                    known = true;
                    if push_required_by_gid(&config.groups, &groups, &|name| pam.group_id(name)) {
                        required = true;
                    }
                }
            }
        }
        if !known {
            log.log(Level::Notice, &record.line("unknown_local_user", None));
            return PamCode::UserUnknown;
        }
        if !required {
            log.log(
                Level::Info,
                &record.line("not_required", Some("user outside groups")),
            );
            return PamCode::Ignore;
        }
    }

    // Pinned keys: checked like the config (owner, mode) and parsed before anything is sent.
    // A user who has a pinned-key file is one for whom the server's "no device" is a lie or an
    // attack, never a reason to let in (issue 9 item 7).
    let mut pinned = false;
    if let Some(dir) = &config.authorized_devices {
        let pins = read_pinned_file(dir, user, config.owner).and_then(|text| {
            text.map(|text| {
                pushauth_client::pinned::parse_authorized_devices(&text).map_err(|message| {
                    crate::config::ConfigError::Invalid {
                        path: dir.join(user),
                        message,
                    }
                })
            })
            .transpose()
        });
        match pins {
            Ok(found) => pinned = found.is_some(),
            Err(e) => {
                log.log(
                    Level::Error,
                    &record.line("config_error", Some(&e.to_string())),
                );
                let _ = conv.error(
                    "pushauth: this host's push configuration is broken; ask an administrator",
                );
                return PamCode::ServiceErr;
            }
        }
    }

    let context = build_context(&facts);
    if debug {
        log.log(Level::Debug, &format!("pam_push: context {context:?}"));
    }
    let opts = StartOptions {
        devices: None,
        number_matching: config.number_matching,
        ttl: Some(challenge_ttl(timeout)),
        grace_secs: crate::grace::ask(config, &record.service, &context),
    };
    let login = match backend.start(user, &context, &opts, deadline) {
        Ok(login) => login,
        Err(e) => {
            // Issue 12: no push can be sent, but a backup code still can be used.
            let no_push = match &e {
                ClientError::NoDevice if config.no_device == NoDevicePolicy::Deny => {
                    Some(backup::NoPush::NoDevice)
                }
                ClientError::RateLimited {
                    code: ErrorCode::UserLocked,
                    ..
                } => Some(backup::NoPush::Locked),
                _ => None,
            };
            if let Some(why) = no_push.filter(|_| use_prompt(config.prompt, &record.service)) {
                let verify = |u: &str, c: &str, x: &Context, d: Instant| {
                    backend.verify_backup_code(u, c, x, d)
                };
                let used = backup::instead_of_push(
                    why, config, pinned, &verify, user, &context, deadline, conv,
                );
                if let Some(used) = used {
                    log.log(
                        used.level,
                        &record.line(used.outcome, used.detail.as_deref()),
                    );
                    return used.code;
                }
            }
            return start_failed(config, e, pinned, &record, conv, log);
        }
    };
    record.challenge = B::challenge_id(&login).to_owned();
    if let Some(grant) = B::grace(&login) {
        let line = |outcome: &str, detail: Option<&str>| record.line(outcome, detail);
        return crate::grace::finish(config, user, &context, grant, &line, conv, log);
    }
    let names = B::device_names(&login);
    record.device = names.join(",");
    let mut guard = CancelGuard {
        backend,
        login: &login,
        armed: true,
        deadline,
    };
    // The code is shown to the person: digits only, or the login is refused (issue 9 item 14).
    if let Some(code) = B::code(&login) {
        if !code_is_valid(code) {
            drop(guard);
            log.log(
                Level::Error,
                &record.line(
                    "untrustworthy_answer",
                    Some("the server's code is not 2 to 8 ASCII digits"),
                ),
            );
            let _ = conv.error("pushauth: the push request failed");
            return PamCode::AuthErr;
        }
    }
    let shown = device_names(&names);
    let code = B::code(&login);
    let timeout_secs = timeout.as_secs();

    let mut wait_until = deadline;
    if use_prompt(config.prompt, &record.service) {
        let mut text = prompt_text(&shown, code);
        if backup::offered(config, pinned) {
            text = with_backup_hint(&text);
        }
        match conv.prompt(&text) {
            Ok(answer) => {
                // Issue 12: a backup code instead of Enter; the push is cancelled first.
                let kind = backup::answer_kind(config, pinned, &answer);
                if kind != AnswerKind::NotACode {
                    drop(guard);
                    let verify = |u: &str, c: &str, x: &Context, d: Instant| {
                        backend.verify_backup_code(u, c, x, d)
                    };
                    let used = backup::answer(kind, &verify, user, &context, deadline, conv, true);
                    log.log(
                        used.level,
                        &record.line(used.outcome, used.detail.as_deref()),
                    );
                    return used.code;
                }
                if parse_answer(&answer) == PromptAnswer::Cancel {
                    drop(guard);
                    log.log(Level::Notice, &record.line("cancelled_by_user", None));
                    let _ = conv.error("pushauth: login cancelled");
                    return PamCode::AuthErr;
                }
                // Enter after the deadline still gets one short look: an approval given in
                // time must not be lost to a slow Enter.
                wait_until = deadline.max(Instant::now() + Duration::from_secs(1));
            }
            Err(ConvFailed) => {
                drop(guard);
                log.log(Level::Notice, &record.line("conversation_aborted", None));
                return PamCode::AuthErr;
            }
        }
    } else if conv.info(&info_text(&shown, code, timeout_secs)).is_err() {
        drop(guard);
        log.log(Level::Notice, &record.line("conversation_aborted", None));
        return PamCode::AuthErr;
    }

    let outcome = wait_in_slices(
        wait_until,
        pam,
        &mut |end| backend.wait(&login, end),
        &|o| matches!(o, Outcome::TimedOut),
    );
    let (code, outcome_name, level, message, detail): (
        PamCode,
        &str,
        Level,
        Option<&str>,
        Option<String>,
    ) = match &outcome {
        Ok(Outcome::Approved { device_name, .. }) => {
            record.device = device_name.clone();
            (PamCode::Success, "approved", Level::Info, None, None)
        }
        Ok(Outcome::Denied { .. }) => (
            PamCode::AuthErr,
            "denied",
            Level::Notice,
            Some("pushauth: the login was denied on the device"),
            None,
        ),
        Ok(Outcome::Reported { .. }) => (
            PamCode::AuthErr,
            "reported",
            Level::Warning,
            Some("pushauth: the login was reported as not yours on the device"),
            None,
        ),
        Ok(Outcome::CodeMismatch { .. }) => (
            PamCode::AuthErr,
            "code_mismatch",
            Level::Warning,
            Some("pushauth: the code typed on the device did not match"),
            None,
        ),
        Ok(Outcome::Expired) => (
            PamCode::AuthErr,
            "expired",
            Level::Notice,
            Some("pushauth: the request expired"),
            None,
        ),
        Ok(Outcome::Cancelled) => (
            PamCode::AuthErr,
            "cancelled",
            Level::Notice,
            Some("pushauth: the request was cancelled"),
            None,
        ),
        Ok(Outcome::TimedOut) => (
            PamCode::AuthErr,
            "timed_out",
            Level::Notice,
            Some("pushauth: no answer in time"),
            None,
        ),
        Err(Waited::Interrupted) => (
            PamCode::AuthErr,
            "interrupted",
            Level::Notice,
            Some("pushauth: login cancelled"),
            None,
        ),
        Err(Waited::Failed(ClientError::BadAnswer(msg))) => (
            PamCode::AuthErr,
            "untrustworthy_answer",
            Level::Error,
            Some("pushauth: the answer could not be verified"),
            Some(msg.clone()),
        ),
        // Once a challenge exists, losing the server never lets anyone in: the `safe`
        // policy only covers a server that cannot be reached to start one.
        Err(Waited::Failed(e @ (ClientError::Unreachable(_) | ClientError::ServerError(_)))) => (
            PamCode::AuthinfoUnavail,
            "unreachable",
            Level::Error,
            Some("pushauth: the push server cannot be reached"),
            Some(e.to_string()),
        ),
        Err(Waited::Failed(e @ ClientError::TlsFailure(_))) => (
            PamCode::AuthErr,
            "tls_failure",
            Level::Error,
            Some("pushauth: the push server's identity could not be verified"),
            Some(e.to_string()),
        ),
        Err(Waited::Failed(e)) => (
            PamCode::AuthErr,
            "error",
            Level::Error,
            Some("pushauth: the push request failed"),
            Some(e.to_string()),
        ),
    };
    // Terminal outcomes need no cancel; a timeout or an error leaves the challenge open.
    guard.armed = matches!(outcome, Ok(Outcome::TimedOut) | Err(_));
    drop(guard);
    log.log(level, &record.line(outcome_name, detail.as_deref()));
    if let Some(message) = message {
        let _ = conv.error(message);
    }
    // Issue 12: after an approval (and only then), refresh this host's offline codes.
    if code == PamCode::Success
        && config.server_unreachable == UnreachablePolicy::Offline
        && (!pinned || config.pinned_offline_codes)
    {
        crate::offline::refill(config, backend, &login, user, deadline, log, &|o, d| {
            record.line(o, d)
        });
    }
    if code == PamCode::Success && opts.grace_secs.is_some() {
        let line = |outcome: &str, detail: Option<&str>| record.line(outcome, detail);
        crate::grace::approved(config, user, &context, &record.challenge, &line, log);
    }
    code
}

/// Why the wait ended without an outcome.
pub(crate) enum Waited {
    /// A stop signal is pending (Ctrl-C in sudo).
    Interrupted,
    /// The backend failed.
    Failed(ClientError),
}

/// Waits until `deadline` in slices of at most [`WAIT_SLICE`], checking between slices whether
/// the person interrupted (issue 9 item 18). `wait(slice_end)` waits for one slice; a slice that
/// ran out (`timed_out` says so of its result, or it failed transiently after running out)
/// continues with the next; an answer, a final error or an early timeout ends the wait.
pub(crate) fn wait_in_slices<T>(
    deadline: Instant,
    pam: &dyn PamEnv,
    wait: &mut dyn FnMut(Instant) -> Result<T, ClientError>,
    timed_out: &dyn Fn(&T) -> bool,
) -> Result<T, Waited> {
    loop {
        if pam.interrupted() {
            return Err(Waited::Interrupted);
        }
        let slice_end = deadline.min(Instant::now() + WAIT_SLICE);
        let result = wait(slice_end);
        let slice_over = Instant::now() >= slice_end && slice_end < deadline;
        match result {
            Ok(outcome) if slice_over && timed_out(&outcome) => {}
            Err(ClientError::Unreachable(_) | ClientError::ServerError(_)) if slice_over => {}
            Ok(outcome) => return Ok(outcome),
            Err(e) => return Err(Waited::Failed(e)),
        }
    }
}

/// The challenge's lifetime: a little shorter than the module's deadline (the server rounds
/// expiry up to the second), so the server's `expired` verdict arrives before the module gives up
/// and the person is told "expired" rather than "no answer in time".
///
/// At most [`MAX_CHALLENGE_TTL_SECS`](crate::config::MAX_CHALLENGE_TTL_SECS), pushauthd's
/// default `max_ttl_secs`: a longer request would be refused and make every login fail.
pub fn challenge_ttl(timeout: Duration) -> Duration {
    timeout
        .saturating_sub(Duration::from_secs(2))
        .max(Duration::from_secs(1))
        .min(Duration::from_secs(crate::config::MAX_CHALLENGE_TTL_SECS))
}

/// The deadline for this login: `timeout`, but below sshd's `LoginGraceTime` (less
/// [`GRACE_MARGIN`]) under sshd, with a warning, since sshd would cut the login off first and
/// every login would fail (issue 9 item 8).
pub fn effective_timeout(
    config: &Config,
    service: &str,
    pam: &dyn PamEnv,
    log: &mut dyn Log,
) -> Duration {
    if !service.starts_with("sshd") {
        return config.timeout;
    }
    let Some(grace) = pam.login_grace_time() else {
        return config.timeout;
    };
    if config.timeout + GRACE_MARGIN <= grace {
        return config.timeout;
    }
    let clamped = grace
        .saturating_sub(GRACE_MARGIN)
        .max(Duration::from_secs(1));
    log.log(
        Level::Warning,
        &format!(
            "pam_push: service={} timeout = {} s is not below sshd's LoginGraceTime ({} s) by {} s; \
             using {} s (lower timeout in the config, or raise LoginGraceTime)",
            quote(service),
            config.timeout.as_secs(),
            grace.as_secs(),
            GRACE_MARGIN.as_secs(),
            clamped.as_secs()
        ),
    );
    clamped
}
