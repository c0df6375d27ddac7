//! The authentication flow as plain code over small traits, so unit tests can replay scripted
//! prompts and answers (and a scripted or real push backend) without loading PAM.
//!
//! Prompt semantics: with the code inside a prompt (sshd), the person reads the code, types it on
//! the device, then presses Enter; an empty answer means "I have answered, check now", and the
//! module then waits for the outcome until the deadline (so pressing Enter early is harmless).
//! Typing `c` or `cancel`, or an aborted conversation (Ctrl-C, a closed connection), cancels the
//! challenge. On every path that leaves a challenge open, it is cancelled on the server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pushauth_client::{
    BackupCodeVerified, ClientError, Context, ErrorCode, GraceGrant, Outcome, PendingLogin,
    StartOptions,
};
use zeroize::Zeroizing;

use crate::backup::{self, AnswerKind};
use crate::config::{read_pinned_file, Config, Ownership, DEFAULT_CONFIG_PATH};
use crate::context::{build_context, LoginFacts};
use crate::policy::{push_required_by_gid, GroupId, NoDevicePolicy, UnreachablePolicy, UserGroup};
use crate::prompt::{
    code_is_valid, device_names, info_text, parse_answer, prompt_text, use_prompt,
    with_backup_hint, PromptAnswer,
};
use crate::system::LookupFailed;

/// How much shorter than sshd's `LoginGraceTime` the module's deadline must be: the key
/// exchange and the first factor happen within the grace time too.
pub const GRACE_MARGIN: Duration = Duration::from_secs(5);

/// The PAM result the flow decides; `lib.rs` maps it to the C value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamCode {
    /// `PAM_SUCCESS`: the push was approved.
    Success,
    /// `PAM_AUTH_ERR`: denied, expired, failed verification, or failed closed.
    AuthErr,
    /// `PAM_IGNORE`: this user is not asked (group rules, or the `ignore` policy).
    Ignore,
    /// `PAM_AUTHINFO_UNAVAIL`: pushauthd could not be reached and the policy says so.
    AuthinfoUnavail,
    /// `PAM_SERVICE_ERR`: the module's own set-up is broken (config, arguments).
    ServiceErr,
    /// `PAM_USER_UNKNOWN`: PAM gave no user name.
    UserUnknown,
}

/// The conversation failed (the person pressed Ctrl-C, the connection closed, no conv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvFailed;

/// The application's conversation function.
pub trait Conversation {
    /// Shows `text` as a prompt with echo on and returns what was typed.
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed>;
    /// Shows an informational message.
    fn info(&mut self, text: &str) -> Result<(), ConvFailed>;
    /// Shows an error message.
    fn error(&mut self, text: &str) -> Result<(), ConvFailed>;
}

/// What the module reads from PAM and the host.
pub trait PamEnv {
    /// Service, hosts, tty, `SSH_AUTH_INFO_0`, argv.
    fn facts(&self) -> LoginFacts;
    /// The user's local groups (primary included), each with its name where it resolves;
    /// `Ok(None)` for an unknown user; `Err` when the user database failed.
    fn user_groups(&self, user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed>;
    /// The gid of a group named in a literal `groups` pattern.
    fn group_id(&self, name: &str) -> GroupId;
    /// sshd's `LoginGraceTime` from `/etc/ssh/sshd_config` (and its includes), when the host
    /// program is sshd; `None` when unknown or unlimited.
    fn login_grace_time(&self) -> Option<Duration> {
        None
    }
    /// Whether the person asked to stop: a SIGINT, SIGQUIT, SIGHUP or SIGTERM is pending for the
    /// process (sudo blocks SIGINT and SIGQUIT while PAM runs, so Ctrl-C waits there until the
    /// module returns). Checked between slices of the wait; no handler is installed and no
    /// thread started.
    fn interrupted(&self) -> bool {
        false
    }
}

/// The longest stretch the wait runs without checking for a pending interrupt. A little over
/// the client's 0.5 s poll margin plus one second, so each slice holds one whole-second
/// long-poll (an answer then arrives at once); 1.5 s left the client under a second, which it
/// polls every 200 ms, and every approval waited up to 200 ms for the module.
pub const WAIT_SLICE: Duration = Duration::from_millis(1550);

/// Syslog priority of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `LOG_ERR`.
    Error,
    /// `LOG_WARNING`.
    Warning,
    /// `LOG_NOTICE`.
    Notice,
    /// `LOG_INFO`.
    Info,
    /// `LOG_DEBUG` (only with the `debug` argument).
    Debug,
}

/// Where log lines go (syslog `authpriv` in the module).
pub trait Log {
    /// Writes one line at `level`; callers escape what came from outside before it gets here.
    fn log(&mut self, level: Level, line: &str);
}

/// The push server as the flow needs it. Implemented by `pushauth_client::Client`; tests may
/// script it.
pub trait PushBackend {
    /// A started login: its challenge and what the relying party needs to wait for it.
    type Login;
    /// Starts a challenge; gives up at `deadline` (connect, TLS and failover included).
    fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
        deadline: Instant,
    ) -> Result<Self::Login, ClientError>;
    /// The challenge id, for log lines.
    fn challenge_id(login: &Self::Login) -> &str;
    /// The code the person types on the device; `None` without number matching.
    fn code(login: &Self::Login) -> Option<&str>;
    /// Names of the devices the push went to, to show the person.
    fn device_names(login: &Self::Login) -> Vec<String>;
    /// Waits for the outcome, verified against the device's key (and pins); gives up at
    /// `deadline`.
    fn wait(&self, login: &Self::Login, deadline: Instant) -> Result<Outcome, ClientError>;
    /// Cancels the challenge; gives up at `deadline` (the client allows a short attempt even
    /// when it has passed).
    fn cancel(&self, login: &Self::Login, deadline: Instant) -> Result<(), ClientError>;
    /// Uses a backup code typed instead of the push (issue 12); gives up at `deadline`. A
    /// backend that takes none refuses.
    fn verify_backup_code(
        &self,
        user: &str,
        code: &str,
        context: &Context,
        deadline: Instant,
    ) -> Result<BackupCodeVerified, ClientError> {
        let _ = (user, code, context, deadline);
        Err(ClientError::Config(
            "this backend takes no backup codes".into(),
        ))
    }
    /// Offline values for an approved `login` (issue 12); a backend without them refuses.
    fn offline_values(
        &self,
        _login: &Self::Login,
        _have: &std::collections::BTreeMap<String, u64>,
        _deadline: Instant,
    ) -> Result<pushauth_proto::offline::OfflineResponse, ClientError> {
        Err(ClientError::Config(
            "no offline codes from this backend".into(),
        ))
    }
    /// Reports an offline code used here (issue 12); the server's counter after it.
    fn report_offline_used(
        &self,
        _user: &str,
        _report: &pushauth_proto::offline::OfflineUsedRequest,
        _deadline: Instant,
    ) -> Result<u64, ClientError> {
        Err(ClientError::Config(
            "no offline codes from this backend".into(),
        ))
    }
    /// The grace window the server says let this login in without a push (issue 12), still
    /// to be checked against the host's own record ([`crate::grace`]).
    fn grace(_login: &Self::Login) -> Option<&GraceGrant> {
        None
    }
}

impl PushBackend for pushauth_client::Client {
    type Login = PendingLogin;
    fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
        deadline: Instant,
    ) -> Result<PendingLogin, ClientError> {
        pushauth_client::Client::start_until(self, user, context, opts, deadline)
    }
    fn challenge_id(login: &PendingLogin) -> &str {
        &login.id
    }
    fn code(login: &PendingLogin) -> Option<&str> {
        login.code.as_deref()
    }
    fn device_names(login: &PendingLogin) -> Vec<String> {
        login.devices.iter().map(|d| d.name.clone()).collect()
    }
    fn wait(&self, login: &PendingLogin, deadline: Instant) -> Result<Outcome, ClientError> {
        pushauth_client::Client::wait(self, login, deadline)
    }
    fn cancel(&self, login: &PendingLogin, deadline: Instant) -> Result<(), ClientError> {
        pushauth_client::Client::cancel_until(self, login, deadline)
    }
    fn verify_backup_code(
        &self,
        user: &str,
        code: &str,
        context: &Context,
        deadline: Instant,
    ) -> Result<BackupCodeVerified, ClientError> {
        self.verify_backup_code_until(user, code, context, deadline)
    }
    fn offline_values(
        &self,
        login: &PendingLogin,
        have: &std::collections::BTreeMap<String, u64>,
        deadline: Instant,
    ) -> Result<pushauth_proto::offline::OfflineResponse, ClientError> {
        self.offline_values_until(login, have, deadline)
    }
    fn report_offline_used(
        &self,
        user: &str,
        report: &pushauth_proto::offline::OfflineUsedRequest,
        deadline: Instant,
    ) -> Result<u64, ClientError> {
        self.report_offline_used_until(user, report, deadline)
    }
    fn grace(login: &PendingLogin) -> Option<&GraceGrant> {
        login.grace.as_ref()
    }
}

/// A PAM stack other than `auth`, where the module does nothing useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The `account` stack.
    Account,
    /// The `password` stack.
    Password,
    /// The `session` stack.
    Session,
}

impl Stack {
    /// The stack's name as a PAM line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Account => "account",
            Stack::Password => "password",
            Stack::Session => "session",
        }
    }
}

/// Logs that pam_push was put in a stack other than `auth` (a configuration mistake that
/// would otherwise pass in silence); the hook then fails closed.
pub fn log_misplaced(stack: Stack, user: Option<&str>, pam: &dyn PamEnv, log: &mut dyn Log) {
    let service = pam.facts().service.unwrap_or_default();
    log.log(
        Level::Error,
        &format!(
            "pam_push: user={} service={} outcome=misconfigured: pam_push is in the {} stack of \
             /etc/pam.d/{}; it only works as \"auth required pam_push.so\"; refusing",
            quote(user.unwrap_or("")),
            quote(&service),
            stack.name(),
            for_path(&service)
        ),
    );
}

/// A service name as a file name for a log line.
fn for_path(service: &str) -> String {
    let clean = quote(service);
    if clean == "-" {
        "<service>".into()
    } else {
        clean
    }
}

/// Module arguments: `conf=/path` and `debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Path of the config file (`conf=`; default `/etc/pam_push.conf`).
    pub conf: PathBuf,
    /// `debug`: log debug lines too.
    pub debug: bool,
}

impl Args {
    /// Parses the PAM line's arguments. An unknown argument is an error (fail closed), so a typo
    /// such as `conf /etc/x` cannot silently fall back to another file.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, String> {
        let mut out = Args {
            conf: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
        };
        for arg in args {
            if arg == "debug" {
                out.debug = true;
            } else if let Some(path) = arg.strip_prefix("conf=") {
                if !path.starts_with('/') {
                    return Err(format!("conf={path} must be an absolute path"));
                }
                out.conf = PathBuf::from(path);
            } else {
                return Err(format!(
                    "unknown module argument {arg:?} (expected conf=/path or debug)"
                ));
            }
        }
        Ok(out)
    }
}

/// One outcome line's fields: user, service, rhost, device, outcome, challenge id. No secrets.
struct Record<'a> {
    user: &'a str,
    service: String,
    rhost: String,
    device: String,
    challenge: String,
}

impl Record<'_> {
    fn line(&self, outcome: &str, detail: Option<&str>) -> String {
        let mut line = format!(
            "pam_push: user={} service={} rhost={} device={} outcome={outcome} challenge={}",
            quote(self.user),
            quote(&self.service),
            quote(&self.rhost),
            quote(&self.device),
            quote(&self.challenge),
        );
        if let Some(detail) = detail {
            line.push_str(" detail=");
            line.push_str(&quote(detail));
        }
        line
    }
}

/// A log value: `-` when empty, quoted when it holds spaces, never control, bidi or other
/// hidden characters (server messages end up here).
fn quote(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| {
            if c == '"' || pushauth_proto::text::is_hidden(c) {
                '?'
            } else {
                c
            }
        })
        .take(256)
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else if clean.contains(' ') || clean.contains('=') {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

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

/// Everything before the flow proper: arguments, config, client. Returns the PAM code.
pub fn run(
    args: &[&str],
    user: Option<&str>,
    owner: Ownership,
    pam: &dyn PamEnv,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> PamCode {
    let started = Instant::now();
    let service = pam.facts().service.unwrap_or_default();
    let args = match Args::parse(args.iter().copied()) {
        Ok(args) => args,
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "pam_push: service={} {e}; refusing authentication",
                    quote(&service)
                ),
            );
            return PamCode::ServiceErr;
        }
    };
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        log.log(
            Level::Error,
            &format!(
                "pam_push: service={} no user name; refusing authentication",
                quote(&service)
            ),
        );
        return PamCode::UserUnknown;
    };
    let config = match Config::load(&args.conf, owner) {
        Ok(config) => config,
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "pam_push: user={} service={} outcome=config_error: {e}; refusing authentication",
                    quote(user),
                    quote(&service)
                ),
            );
            let _ = conv
                .error("pushauth: this host's push configuration is broken; ask an administrator");
            return PamCode::ServiceErr;
        }
    };
    if args.debug {
        log.log(
            Level::Debug,
            &format!("pam_push: loaded {}: {config:?}", args.conf.display()),
        );
    }
    let client = match pushauth_client::Client::new(config.client_config()) {
        Ok(client) => client,
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "pam_push: user={} service={} outcome=config_error: {e}; refusing authentication",
                    quote(user),
                    quote(&service)
                ),
            );
            return PamCode::ServiceErr;
        }
    };
    authenticate(&config, &client, user, pam, conv, log, args.debug, started)
}

/// The flow: policy, context, challenge, what to show, wait, outcome.
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
    // The account that logs in, as PAM names it: its groups decide (below).
    let account = user;
    // One name for the push and the pinned keys (issue 9 item 10).
    let user = match config.user_map.apply(user) {
        Ok(user) => user,
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
    let user = user.as_str();
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

    let outcome = wait_in_slices(backend, &login, wait_until, pam);
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
enum Waited {
    /// A stop signal is pending (Ctrl-C in sudo).
    Interrupted,
    /// The backend failed.
    Failed(ClientError),
}

/// Waits until `deadline` in slices of at most [`WAIT_SLICE`], checking between slices whether
/// the person interrupted (issue 9 item 18). A slice that ran out (or failed transiently after
/// running out) continues with the next; an answer, a final error or an early `TimedOut` from
/// the backend ends the wait.
fn wait_in_slices<B: PushBackend>(
    backend: &B,
    login: &B::Login,
    deadline: Instant,
    pam: &dyn PamEnv,
) -> Result<Outcome, Waited> {
    loop {
        if pam.interrupted() {
            return Err(Waited::Interrupted);
        }
        let slice_end = deadline.min(Instant::now() + WAIT_SLICE);
        let result = backend.wait(login, slice_end);
        let slice_over = Instant::now() >= slice_end && slice_end < deadline;
        match result {
            Ok(Outcome::TimedOut) if slice_over => {}
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

/// A challenge could not be started: the named policies decide.
fn start_failed(
    config: &Config,
    error: ClientError,
    pinned: bool,
    record: &Record<'_>,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> PamCode {
    let detail = error.to_string();
    match error {
        // A server that was reached and failed, or a TLS failure: never "unreachable", whatever
        // the policy (issue 9 item 6).
        ClientError::ServerError(_) => {
            log.log(
                Level::Error,
                &record.line("server_error_denied", Some(&detail)),
            );
            let _ = conv.error("pushauth: the push server failed");
            PamCode::AuthinfoUnavail
        }
        ClientError::TlsFailure(_) => {
            log.log(
                Level::Error,
                &record.line("tls_failure_denied", Some(&detail)),
            );
            let _ = conv.error("pushauth: the push server's identity could not be verified");
            PamCode::AuthErr
        }
        ClientError::UnknownUser | ClientError::NoDevice if pinned => {
            let what = if matches!(error, ClientError::UnknownUser) {
                "unknown_user"
            } else {
                "no_device"
            };
            log.log(
                Level::Error,
                &record.line(
                    &format!("{what}_pinned_denied"),
                    Some("the user has pinned device keys, so the server must know a device"),
                ),
            );
            let _ = conv.error("pushauth: the push server does not know this user's device");
            PamCode::AuthErr
        }
        ClientError::Unreachable(_) => match config.server_unreachable {
            UnreachablePolicy::Secure => {
                log.log(
                    Level::Error,
                    &record.line("unreachable_denied", Some(&detail)),
                );
                let _ = conv.error("pushauth: the push server cannot be reached");
                PamCode::AuthinfoUnavail
            }
            UnreachablePolicy::Safe => {
                log.log(
                    Level::Warning,
                    &record.line("unreachable_allowed", Some(&detail)),
                );
                PamCode::Success
            }
            // Offline values are hashes the server sent: for a user whose device keys are
            // pinned they are the server's word alone, like a backup code.
            UnreachablePolicy::Offline if pinned && !config.pinned_offline_codes => {
                log.log(
                    Level::Warning,
                    &record.line(
                        "offline_pinned_denied",
                        Some("the user has pinned device keys; offline codes need pinned_offline_codes = true"),
                    ),
                );
                let _ = conv.error(
                    "pushauth: the push server cannot be reached, and offline codes are not accepted for accounts with pinned devices on this host; ask an administrator",
                );
                PamCode::AuthErr
            }
            UnreachablePolicy::Offline => crate::offline::login(
                config,
                record.user,
                conv,
                log,
                &|o, d| record.line(o, d),
                &detail,
            ),
        },
        ClientError::UnknownUser | ClientError::NoDevice => {
            let what = if matches!(error, ClientError::UnknownUser) {
                "unknown_user"
            } else {
                "no_device"
            };
            match config.no_device {
                NoDevicePolicy::Deny => {
                    log.log(Level::Notice, &record.line(&format!("{what}_denied"), None));
                    let _ = conv.error("pushauth: no enrolled device for this user");
                    PamCode::AuthErr
                }
                NoDevicePolicy::Ignore => {
                    log.log(Level::Info, &record.line(&format!("{what}_ignored"), None));
                    PamCode::Ignore
                }
                NoDevicePolicy::Allow => {
                    log.log(
                        Level::Warning,
                        &record.line(&format!("{what}_allowed"), None),
                    );
                    PamCode::Success
                }
            }
        }
        ClientError::RateLimited { code, .. } => {
            log.log(Level::Warning, &record.line("rate_limited", Some(&detail)));
            let _ = conv.error(if code == ErrorCode::UserLocked {
                "pushauth: pushes to this user are paused (a push was reported as not theirs, or \
                 too many wrong codes were typed on the device); ask an administrator"
            } else {
                "pushauth: too many login requests; try again later"
            });
            PamCode::AuthErr
        }
        ClientError::Unauthorized | ClientError::Config(_) => {
            log.log(Level::Error, &record.line("config_error", Some(&detail)));
            let _ = conv
                .error("pushauth: this host's push configuration is broken; ask an administrator");
            PamCode::ServiceErr
        }
        ClientError::Rejected {
            status: 400,
            ref message,
            ..
        } if message.contains("ttl_secs") => {
            log.log(
                Level::Error,
                &record.line(
                    "config_error",
                    Some(&format!(
                        "the server refuses the challenge lifetime ({message}); lower timeout \
                         in the config: {detail}"
                    )),
                ),
            );
            let _ = conv
                .error("pushauth: this host's push configuration is broken; ask an administrator");
            PamCode::ServiceErr
        }
        ClientError::Rejected { .. } | ClientError::BadAnswer(_) => {
            log.log(Level::Error, &record.line("error", Some(&detail)));
            let _ = conv.error("pushauth: the push request failed");
            PamCode::AuthErr
        }
    }
}
