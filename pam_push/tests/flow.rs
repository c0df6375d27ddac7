//! The authentication flow with a scripted conversation: against a scripted backend (every
//! outcome and policy) and against a real pushauthd with a simulated device.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use pam_push::authenticate::{
    authenticate, run, ConvFailed, Conversation, Level, Log, PamCode, PamEnv, PushBackend,
};
use pam_push::config::{Config, Ownership};
use pam_push::context::LoginFacts;
use pam_push::policy::{GroupId, UserGroup};
use pam_push::system::LookupFailed;
use pushauth_client::{ClientError, Context, ErrorCode, Outcome, StartOptions};
use zeroize::Zeroizing;

// ---------------------------------------------------------------- fakes

/// What the person does at a prompt.
enum Reply {
    Text(&'static str),
    Abort,
    /// Runs a closure with the prompt text (e.g. answer on the device), then presses Enter.
    Act(Box<dyn FnOnce(&str)>),
}

#[derive(Default)]
struct FakeConv {
    replies: VecDeque<Reply>,
    prompts: Vec<String>,
    infos: Vec<String>,
    errors: Vec<String>,
    fail_info: bool,
}

impl Conversation for FakeConv {
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        self.prompts.push(text.to_owned());
        match self.replies.pop_front() {
            Some(Reply::Text(t)) => Ok(Zeroizing::new(t.to_owned())),
            Some(Reply::Act(f)) => {
                f(text);
                Ok(Zeroizing::new(String::new()))
            }
            Some(Reply::Abort) | None => Err(ConvFailed),
        }
    }
    fn info(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.infos.push(text.to_owned());
        if self.fail_info {
            Err(ConvFailed)
        } else {
            Ok(())
        }
    }
    fn error(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.errors.push(text.to_owned());
        Ok(())
    }
}

struct FakeEnv {
    service: &'static str,
    groups: Option<Vec<String>>,
    /// When set, the group lookup answers this instead of `groups`.
    raw_groups: Option<Result<Option<Vec<UserGroup>>, LookupFailed>>,
    grace: Option<Duration>,
    interrupted: bool,
}

/// A fake gid for a group name (stable, distinct per name).
fn gid_of(name: &str) -> u32 {
    name.bytes().fold(1000u32, |h, b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    })
}

impl PamEnv for FakeEnv {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: Some(self.service.into()),
            host: Some("web01".into()),
            rhost: Some("192.0.2.7".into()),
            tty: Some("ssh".into()),
            ssh_auth_info: None,
            argv: Some(vec!["sudo".into(), "id".into()]),
        }
    }
    fn user_groups(&self, _user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed> {
        if let Some(raw) = &self.raw_groups {
            return raw.clone();
        }
        Ok(self.groups.as_ref().map(|names| {
            names
                .iter()
                .map(|n| UserGroup {
                    gid: gid_of(n),
                    name: Some(n.clone()),
                })
                .collect()
        }))
    }
    fn group_id(&self, name: &str) -> GroupId {
        GroupId::Found(gid_of(name))
    }
    fn login_grace_time(&self) -> Option<Duration> {
        self.grace
    }
    fn interrupted(&self) -> bool {
        self.interrupted
    }
}

fn env(service: &'static str) -> FakeEnv {
    FakeEnv {
        service,
        groups: Some(vec!["users".into()]),
        raw_groups: None,
        grace: None,
        interrupted: false,
    }
}

fn env_groups(service: &'static str, groups: Option<Vec<String>>) -> FakeEnv {
    FakeEnv {
        groups,
        ..env(service)
    }
}

#[derive(Default)]
struct MemLog(Vec<(Level, String)>);

impl Log for MemLog {
    fn log(&mut self, level: Level, line: &str) {
        self.0.push((level, line.to_owned()));
    }
}

impl MemLog {
    fn outcome_lines(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(l, _)| *l != Level::Debug)
            .map(|(_, s)| s.as_str())
            .collect()
    }
    fn one(&self) -> &str {
        let lines = self.outcome_lines();
        assert_eq!(lines.len(), 1, "one line per outcome: {lines:?}");
        lines[0]
    }
}

struct FakeLogin {
    id: String,
    code: Option<String>,
    names: Vec<String>,
}

/// What `start` was called with: user, context, number matching, ttl.
type StartCall = (String, Context, bool, Option<Duration>);

#[derive(Default)]
struct Scripted {
    start: RefCell<Option<Result<FakeLogin, ClientError>>>,
    wait: RefCell<Option<Result<Outcome, ClientError>>>,
    started_with: RefCell<Option<StartCall>>,
    waits: Cell<u32>,
    cancels: Cell<u32>,
}

impl Scripted {
    fn login(outcome: Result<Outcome, ClientError>) -> Scripted {
        let s = Scripted::default();
        *s.start.borrow_mut() = Some(Ok(FakeLogin {
            id: "chal-1".into(),
            code: Some("048213".into()),
            names: vec!["Pixel 7".into()],
        }));
        *s.wait.borrow_mut() = Some(outcome);
        s
    }
    fn failing(error: ClientError) -> Scripted {
        let s = Scripted::default();
        *s.start.borrow_mut() = Some(Err(error));
        s
    }
}

impl PushBackend for Scripted {
    type Login = FakeLogin;
    fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
        _deadline: Instant,
    ) -> Result<FakeLogin, ClientError> {
        *self.started_with.borrow_mut() =
            Some((user.into(), context.clone(), opts.number_matching, opts.ttl));
        self.start.borrow_mut().take().expect("start scripted once")
    }
    fn challenge_id(login: &FakeLogin) -> &str {
        &login.id
    }
    fn code(login: &FakeLogin) -> Option<&str> {
        login.code.as_deref()
    }
    fn device_names(login: &FakeLogin) -> Vec<String> {
        login.names.clone()
    }
    fn wait(&self, _login: &FakeLogin, _deadline: Instant) -> Result<Outcome, ClientError> {
        self.waits.set(self.waits.get() + 1);
        self.wait.borrow_mut().take().expect("wait scripted once")
    }
    fn cancel(&self, _login: &FakeLogin, _deadline: Instant) -> Result<(), ClientError> {
        self.cancels.set(self.cancels.get() + 1);
        Ok(())
    }
}

fn me() -> Ownership {
    Ownership {
        uid: pushauth_testkit::euid(),
    }
}

fn config(extra: &str) -> Config {
    Config::parse(
        Path::new("/test/pam_push.conf"),
        &format!("server = \"http://127.0.0.1:1\"\napi_key = \"k\"\n{extra}"),
        me(),
    )
    .unwrap()
}

fn approved() -> Outcome {
    Outcome::Approved {
        device_id: "dev-1".into(),
        device_name: "Pixel 7".into(),
    }
}

struct Run {
    code: PamCode,
    conv: FakeConv,
    log: MemLog,
}

fn go(cfg: &Config, backend: &Scripted, env: &FakeEnv, replies: Vec<Reply>) -> Run {
    let mut conv = FakeConv {
        replies: replies.into(),
        ..FakeConv::default()
    };
    let mut log = MemLog::default();
    let code = authenticate(
        cfg,
        backend,
        "alice",
        env,
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    Run { code, conv, log }
}

// ---------------------------------------------------------------- scripted backend

#[test]
fn sshd_shows_the_code_in_a_prompt_and_enter_waits_for_approval() {
    let backend = Scripted::login(Ok(approved()));
    let r = go(&config(""), &backend, &env("sshd"), vec![Reply::Text("")]);
    assert_eq!(r.code, PamCode::Success);
    assert_eq!(
        r.conv.prompts,
        vec![
            "Approve on Pixel 7: type 048 213 on your device, then press Enter (or type a \
             backup code; c to cancel): "
        ]
    );
    assert!(r.conv.infos.is_empty());
    assert_eq!(backend.waits.get(), 1, "Enter waits for the outcome");
    assert_eq!(backend.cancels.get(), 0);
    let line = r.log.one();
    for part in [
        "user=alice",
        "service=sshd",
        "rhost=192.0.2.7",
        "device=\"Pixel 7\"",
        "outcome=approved",
        "challenge=chal-1",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    assert!(
        !line.contains("048213") && !line.contains("048 213"),
        "no code in logs: {line}"
    );
    let (user, ctx, matching, ttl) = backend.started_with.borrow().clone().unwrap();
    assert_eq!(user, "alice");
    assert_eq!(ctx["service"], "sshd");
    assert_eq!(ctx["host"], "web01");
    assert_eq!(ctx["rhost"], "192.0.2.7");
    assert!(!ctx.contains_key("command"));
    assert!(matching);
    assert_eq!(
        ttl,
        Some(Duration::from_secs(58)),
        "a bit below the 60 s deadline"
    );
}

#[test]
fn typing_c_or_aborting_cancels_the_challenge() {
    for reply in [Reply::Text("c"), Reply::Text("cancel"), Reply::Abort] {
        let backend = Scripted::login(Ok(approved()));
        let r = go(&config(""), &backend, &env("sshd"), vec![reply]);
        assert_eq!(r.code, PamCode::AuthErr);
        assert_eq!(backend.waits.get(), 0, "no wait after a cancel");
        assert_eq!(backend.cancels.get(), 1, "the challenge is cancelled");
        let line = r.log.one();
        assert!(
            line.contains("outcome=cancelled_by_user")
                || line.contains("outcome=conversation_aborted"),
            "{line}"
        );
    }
}

#[test]
fn sudo_gets_a_message_and_no_prompt() {
    let backend = Scripted::login(Ok(Outcome::Denied {
        device_id: "dev-1".into(),
    }));
    let r = go(&config(""), &backend, &env("sudo"), vec![]);
    assert_eq!(r.code, PamCode::AuthErr);
    assert!(r.conv.prompts.is_empty());
    assert_eq!(r.conv.infos.len(), 1);
    assert!(
        r.conv.infos[0].contains("type 048 213"),
        "{:?}",
        r.conv.infos
    );
    assert!(r.conv.infos[0].contains("Pixel 7"));
    assert!(r.conv.errors[0].contains("denied"));
    assert_eq!(
        backend.cancels.get(),
        0,
        "a decided challenge needs no cancel"
    );
    assert!(r.log.one().contains("outcome=denied"));
    let (_, ctx, _, _) = backend.started_with.borrow().clone().unwrap();
    assert_eq!(ctx["command"], "id", "sudo's command is in the context");

    // prompt = always overrides.
    let backend = Scripted::login(Ok(approved()));
    let r = go(
        &config("prompt = \"always\"\n"),
        &backend,
        &env("sudo"),
        vec![Reply::Text("")],
    );
    assert_eq!(r.code, PamCode::Success);
    assert_eq!(r.conv.prompts.len(), 1);
    // prompt = never under sshd: a message.
    let backend = Scripted::login(Ok(approved()));
    let r = go(
        &config("prompt = \"never\"\n"),
        &backend,
        &env("sshd"),
        vec![],
    );
    assert_eq!(r.code, PamCode::Success);
    assert!(r.conv.prompts.is_empty());
    assert_eq!(r.conv.infos.len(), 1);
    // A conversation that cannot show the code cancels.
    let backend = Scripted::login(Ok(approved()));
    let mut conv = FakeConv {
        fail_info: true,
        ..FakeConv::default()
    };
    let mut log = MemLog::default();
    let code = authenticate(
        &config(""),
        &backend,
        "alice",
        &env("sudo"),
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    assert_eq!(code, PamCode::AuthErr);
    assert_eq!(backend.cancels.get(), 1);
}

#[test]
fn every_outcome_maps_to_its_pam_code() {
    let cases: Vec<(Result<Outcome, ClientError>, PamCode, &str, u32)> = vec![
        (Ok(approved()), PamCode::Success, "approved", 0),
        (
            Ok(Outcome::Denied {
                device_id: "d".into(),
            }),
            PamCode::AuthErr,
            "denied",
            0,
        ),
        (
            Ok(Outcome::Reported {
                device_id: "d".into(),
            }),
            PamCode::AuthErr,
            "reported",
            0,
        ),
        (
            Ok(Outcome::CodeMismatch {
                device_id: "d".into(),
            }),
            PamCode::AuthErr,
            "code_mismatch",
            0,
        ),
        (Ok(Outcome::Expired), PamCode::AuthErr, "expired", 0),
        (Ok(Outcome::Cancelled), PamCode::AuthErr, "cancelled", 0),
        (Ok(Outcome::TimedOut), PamCode::AuthErr, "timed_out", 1),
        (
            Err(ClientError::BadAnswer("device not pinned".into())),
            PamCode::AuthErr,
            "untrustworthy_answer",
            1,
        ),
        (
            Err(ClientError::Unreachable("gone".into())),
            PamCode::AuthinfoUnavail,
            "unreachable",
            1,
        ),
    ];
    for (outcome, code, name, cancels) in cases {
        // Even with the safe policy, a server lost during the wait never lets anyone in.
        let backend = Scripted::login(outcome);
        let r = go(
            &config("server_unreachable = \"safe\"\n"),
            &backend,
            &env("sshd"),
            vec![Reply::Text("")],
        );
        assert_eq!(r.code, code, "{name}");
        assert!(
            r.log.one().contains(&format!("outcome={name} ")),
            "{name}: {}",
            r.log.one()
        );
        assert_eq!(backend.cancels.get(), cancels, "{name}: cancels");
    }
}

#[test]
fn unreachable_server_follows_the_failure_policy() {
    let backend = Scripted::failing(ClientError::Unreachable("connection refused".into()));
    let r = go(&config(""), &backend, &env("sshd"), vec![]);
    assert_eq!(r.code, PamCode::AuthinfoUnavail);
    assert!(r.log.one().contains("outcome=unreachable_denied"));
    assert!(r.conv.prompts.is_empty());

    let backend = Scripted::failing(ClientError::Unreachable("connection refused".into()));
    let r = go(
        &config("server_unreachable = \"safe\"\n"),
        &backend,
        &env("sshd"),
        vec![],
    );
    assert_eq!(r.code, PamCode::Success);
    assert!(r.log.one().contains("outcome=unreachable_allowed"));
}

#[test]
fn unknown_user_and_no_device_follow_their_policy() {
    for (policy, code, suffix) in [
        ("deny", PamCode::AuthErr, "denied"),
        ("ignore", PamCode::Ignore, "ignored"),
        ("allow", PamCode::Success, "allowed"),
    ] {
        for (error, what) in [
            (ClientError::UnknownUser, "unknown_user"),
            (ClientError::NoDevice, "no_device"),
        ] {
            let backend = Scripted::failing(error);
            let r = go(
                &config(&format!("no_device = \"{policy}\"\n")),
                &backend,
                &env("sshd"),
                vec![],
            );
            assert_eq!(r.code, code, "{policy} {what}");
            assert!(r.log.one().contains(&format!("outcome={what}_{suffix}")));
        }
    }
    let backend = Scripted::failing(ClientError::RateLimited {
        code: ErrorCode::UserLocked,
        message: "locked".into(),
    });
    let r = go(&config(""), &backend, &env("sshd"), vec![]);
    assert_eq!(r.code, PamCode::AuthErr);
    assert!(r.conv.errors[0].contains("paused"), "{:?}", r.conv.errors);
    let backend = Scripted::failing(ClientError::Unauthorized);
    let r = go(&config(""), &backend, &env("sshd"), vec![]);
    assert_eq!(r.code, PamCode::ServiceErr);
    assert!(r.log.one().contains("outcome=config_error"));
}

#[test]
fn users_outside_groups_are_ignored() {
    let cfg = config("groups = [\"admins\", \"!contractors\"]\n");
    let backend = Scripted::login(Ok(approved()));
    let r = go(&cfg, &backend, &env("sshd"), vec![]);
    assert_eq!(r.code, PamCode::Ignore);
    assert!(backend.started_with.borrow().is_none(), "no push sent");
    assert!(r.log.one().contains("outcome=not_required"));

    let admin = env_groups("sshd", Some(vec!["admins".into()]));
    let backend = Scripted::login(Ok(approved()));
    assert_eq!(
        go(&cfg, &backend, &admin, vec![Reply::Text("")]).code,
        PamCode::Success
    );
    let excluded = env_groups("sshd", Some(vec!["admins".into(), "contractors".into()]));
    let backend = Scripted::login(Ok(approved()));
    assert_eq!(go(&cfg, &backend, &excluded, vec![]).code, PamCode::Ignore);
    let unknown = env_groups("sshd", None);
    let backend = Scripted::login(Ok(approved()));
    let r = go(&cfg, &backend, &unknown, vec![]);
    assert_eq!(r.code, PamCode::UserUnknown);
    assert!(backend.started_with.borrow().is_none());
}

#[test]
fn run_fails_closed_on_bad_arguments_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let env = env("sshd");
    let check = |args: &[&str], needle: &str| {
        let mut conv = FakeConv::default();
        let mut log = MemLog::default();
        let code = run(args, Some("alice"), me(), &env, &mut conv, &mut log);
        assert_eq!(code, PamCode::ServiceErr, "{args:?}");
        let line = log.one().to_owned();
        assert!(line.contains(needle), "{args:?}: {line}");
        assert!(line.contains("refusing"), "{line}");
    };
    let missing = format!("conf={}", dir.path().join("none.conf").display());
    check(&[&missing], "missing");
    check(&["conf=relative.conf"], "absolute");
    check(&["debgu"], "unknown module argument");
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "server = \n").unwrap();
    let bad_arg = format!("conf={}", bad.display());
    check(&[&bad_arg], "malformed");
    // World-writable.
    use std::os::unix::fs::PermissionsExt;
    let ww = dir.path().join("ww.conf");
    std::fs::write(
        &ww,
        "server = \"http://x\"\napi_key_file = \"/nonexistent\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o666)).unwrap();
    let ww_arg = format!("conf={}", ww.display());
    check(&[&ww_arg, "debug"], "writable");
    // No user.
    let mut conv = FakeConv::default();
    let mut log = MemLog::default();
    assert_eq!(
        run(&[], None, me(), &env, &mut conv, &mut log),
        PamCode::UserUnknown
    );
}

// ---------------------------------------------------------------- issue 9 (scripted)

/// A reached server's error (5xx) and a TLS failure deny even with `server_unreachable = safe`;
/// only true unreachability follows the policy.
#[test]
fn issue9_item6_server_errors_and_tls_failures_deny_with_safe() {
    let safe = config("server_unreachable = \"safe\"\n");
    for (error, code, outcome) in [
        (
            ClientError::ServerError("server error 500: boom".into()),
            PamCode::AuthinfoUnavail,
            "server_error_denied",
        ),
        (
            ClientError::TlsFailure("invalid peer certificate: UnknownIssuer".into()),
            PamCode::AuthErr,
            "tls_failure_denied",
        ),
        (
            ClientError::Config("cannot build the request".into()),
            PamCode::ServiceErr,
            "config_error",
        ),
        (
            ClientError::BadAnswer("malformed".into()),
            PamCode::AuthErr,
            "error",
        ),
    ] {
        let backend = Scripted::failing(error);
        let r = go(&safe, &backend, &env("sshd"), vec![]);
        assert_eq!(r.code, code, "{outcome}");
        assert_ne!(r.code, PamCode::Success, "{outcome}");
        assert!(
            r.log.one().contains(&format!("outcome={outcome}")),
            "{}",
            r.log.one()
        );
    }
    // During the wait as well.
    for error in [
        ClientError::ServerError("500".into()),
        ClientError::TlsFailure("bad cert".into()),
    ] {
        let backend = Scripted::login(Err(error));
        let r = go(&safe, &backend, &env("sshd"), vec![Reply::Text("")]);
        assert_ne!(r.code, PamCode::Success);
        assert_eq!(backend.cancels.get(), 1);
    }
    // Connection refused with safe: the documented "let in and log".
    let backend = Scripted::failing(ClientError::Unreachable("connection refused".into()));
    assert_eq!(
        go(&safe, &backend, &env("sshd"), vec![]).code,
        PamCode::Success
    );
}

fn pinned_config(extra: &str) -> (tempfile::TempDir, Config) {
    use std::os::unix::fs::PermissionsExt;
    let pins = tempfile::tempdir().unwrap();
    std::fs::set_permissions(pins.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = pushauth_proto::DeviceSigningKey::from_seed(&[5; 32]).public_key();
    std::fs::write(
        pins.path().join("alice"),
        format!("ed25519 {} phone\n", key.to_b64()),
    )
    .unwrap();
    let cfg = config(&format!(
        "authorized_devices = \"{}\"\n{extra}",
        pins.path().display()
    ));
    (pins, cfg)
}

/// A user with pinned keys: the server's "unknown user" / "no device" cannot let anyone in or
/// step aside, whatever `no_device` says (a man in the middle could answer it).
#[test]
fn issue9_item7_pinned_user_without_device_is_denied() {
    for policy in ["ignore", "allow", "deny"] {
        for error in [ClientError::UnknownUser, ClientError::NoDevice] {
            let (_pins, cfg) = pinned_config(&format!("no_device = \"{policy}\"\n"));
            let backend = Scripted::failing(error);
            let r = go(&cfg, &backend, &env("sshd"), vec![]);
            assert_eq!(r.code, PamCode::AuthErr, "{policy}");
            assert!(r.log.one().contains("_pinned_denied"), "{}", r.log.one());
        }
    }
    // Without a pinned-key file for the user, the policy applies as before.
    let (_pins, cfg) = pinned_config("no_device = \"ignore\"\n");
    let backend = Scripted::failing(ClientError::NoDevice);
    let mut conv = FakeConv::default();
    let mut log = MemLog::default();
    let code = authenticate(
        &cfg,
        &backend,
        "bob",
        &env("sshd"),
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    assert_eq!(code, PamCode::Ignore);
    // A pinned-key file others can write refuses the login before anything is sent.
    use std::os::unix::fs::PermissionsExt;
    let (pins, cfg) = pinned_config("");
    std::fs::set_permissions(
        pins.path().join("alice"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let backend = Scripted::login(Ok(approved()));
    let r = go(&cfg, &backend, &env("sshd"), vec![]);
    assert_eq!(r.code, PamCode::ServiceErr);
    assert!(backend.started_with.borrow().is_none(), "no push sent");
    assert!(r.log.one().contains("chmod go-w"), "{}", r.log.one());
}

/// timeout above sshd's LoginGraceTime is clamped with a warning; the challenge ttl never asks
/// more than pushauthd's default max_ttl_secs; a 400 for the ttl is a config error.
#[test]
fn issue9_item8_timeout_is_clamped_to_what_can_work() {
    let cfg = config("timeout = 300\n");
    let grace = FakeEnv {
        grace: Some(Duration::from_secs(60)),
        ..env("sshd")
    };
    let backend = Scripted::login(Ok(approved()));
    let r = go(&cfg, &backend, &grace, vec![Reply::Text("")]);
    assert_eq!(r.code, PamCode::Success);
    let (_, _, _, ttl) = backend.started_with.borrow().clone().unwrap();
    assert_eq!(ttl, Some(Duration::from_secs(53)), "60 - 5 margin - 2");
    let warning = r
        .log
        .0
        .iter()
        .find(|(l, _)| *l == Level::Warning)
        .map(|(_, t)| t.clone())
        .unwrap();
    assert!(warning.contains("LoginGraceTime (60 s)"), "{warning}");
    assert!(warning.contains("using 55 s"), "{warning}");
    // Not under sshd: no clamp for the grace time, but the ttl stays within 300 s.
    let cfg = config("timeout = 600\n");
    let backend = Scripted::login(Ok(approved()));
    go(&cfg, &backend, &grace_less("sudo"), vec![]);
    let (_, _, _, ttl) = backend.started_with.borrow().clone().unwrap();
    assert_eq!(ttl, Some(Duration::from_secs(300)));

    let backend = Scripted::failing(ClientError::Rejected {
        status: 400,
        code: Some(ErrorCode::MalformedRequest),
        message: "ttl_secs must be 1 to 120".into(),
    });
    let r = go(&config(""), &backend, &env("sshd"), vec![]);
    assert_eq!(r.code, PamCode::ServiceErr);
    let line = r.log.one();
    assert!(line.contains("outcome=config_error"), "{line}");
    assert!(line.contains("lower timeout"), "{line}");
}

fn grace_less(service: &'static str) -> FakeEnv {
    env(service)
}

/// One canonical user name for the push, the groups and the pinned keys.
#[test]
fn issue9_item10_user_map_applies_everywhere() {
    let (_pins, cfg) = pinned_config("user_map = \"strip_domain\"\nno_device = \"allow\"\n");
    for name in ["Alice", "alice@CORP", "CORP\\alice", "ALICE@corp.example"] {
        // The pinned-key file alice applies to every spelling: "no device" is denied.
        let backend = Scripted::failing(ClientError::NoDevice);
        let mut conv = FakeConv::default();
        let mut log = MemLog::default();
        let code = authenticate(
            &cfg,
            &backend,
            name,
            &env("sshd"),
            &mut conv,
            &mut log,
            false,
            Instant::now(),
        );
        assert_eq!(code, PamCode::AuthErr, "{name}");
        assert_eq!(
            backend.started_with.borrow().as_ref().unwrap().0,
            "alice",
            "{name}: the push goes to the canonical user"
        );
        assert!(log.one().contains("user=alice "), "{}", log.one());
    }
    // as_is (the default) keeps names apart, as before.
    let backend = Scripted::login(Ok(approved()));
    let mut conv = FakeConv {
        replies: vec![Reply::Text("")].into(),
        ..FakeConv::default()
    };
    let mut log = MemLog::default();
    authenticate(
        &config(""),
        &backend,
        "Alice",
        &env("sshd"),
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    assert_eq!(backend.started_with.borrow().as_ref().unwrap().0, "Alice");
    // A name with hidden characters is refused.
    let backend = Scripted::login(Ok(approved()));
    let mut log = MemLog::default();
    let code = authenticate(
        &cfg,
        &backend,
        "ali\u{202E}ce",
        &env("sshd"),
        &mut FakeConv::default(),
        &mut log,
        false,
        Instant::now(),
    );
    assert_eq!(code, PamCode::UserUnknown);
    assert!(backend.started_with.borrow().is_none());
}

/// Server-supplied text reaches the person escaped; a code that is not digits refuses.
#[test]
fn issue9_item14_hostile_device_names_and_codes() {
    let backend = Scripted::login(Ok(approved()));
    if let Some(Ok(login)) = backend.start.borrow_mut().as_mut() {
        login.names = vec!["Pixel\u{1b}[2J\u{202E}7".into()];
    }
    let r = go(&config(""), &backend, &env("sshd"), vec![Reply::Text("")]);
    assert_eq!(r.code, PamCode::Success);
    let prompt = &r.conv.prompts[0];
    assert!(prompt.contains("Pixel\\u{001B}[2J\\u{202E}7"), "{prompt:?}");
    assert!(
        !prompt.contains('\u{1b}') && !prompt.contains('\u{202E}'),
        "{prompt:?}"
    );

    // A server message lands in the log line only with its hidden characters replaced.
    let backend = Scripted::failing(ClientError::RateLimited {
        code: ErrorCode::RateLimited,
        message: "slow down\u{202E}\u{1b}[2J".into(),
    });
    let r = go(&config(""), &backend, &env("sshd"), vec![]);
    let line = r.log.one();
    assert!(
        !line.contains('\u{202E}') && !line.contains('\u{1b}'),
        "{line:?}"
    );
    assert!(line.contains("slow down??[2J"), "{line:?}");

    for bad in ["4\u{202E}2", "\u{1b}[2J", "4"] {
        let backend = Scripted::login(Ok(approved()));
        if let Some(Ok(login)) = backend.start.borrow_mut().as_mut() {
            login.code = Some(bad.into());
        }
        let r = go(&config(""), &backend, &env("sudo"), vec![]);
        assert_eq!(r.code, PamCode::AuthErr, "{bad:?}");
        assert!(
            r.conv.infos.is_empty() && r.conv.prompts.is_empty(),
            "{bad:?}: nothing shown"
        );
        assert_eq!(backend.waits.get(), 0);
        assert_eq!(backend.cancels.get(), 1, "the challenge is cancelled");
        assert!(r.log.one().contains("outcome=untrustworthy_answer"));
    }
}

/// A pending Ctrl-C (sudo blocks SIGINT while PAM runs) ends the wait and cancels the challenge,
/// in every prompt mode.
#[test]
fn issue9_item18_interrupt_ends_the_wait_and_cancels() {
    for (service, extra, replies) in [
        ("sudo", "", vec![]),
        ("sudo", "prompt = \"never\"\n", vec![]),
        ("sudo", "prompt = \"always\"\n", vec![Reply::Text("")]),
    ] {
        let backend = Scripted::login(Ok(approved()));
        let env = FakeEnv {
            interrupted: true,
            ..env(service)
        };
        let r = go(&config(extra), &backend, &env, replies);
        assert_eq!(r.code, PamCode::AuthErr, "{extra}");
        assert_eq!(backend.waits.get(), 0, "{extra}");
        assert_eq!(
            backend.cancels.get(),
            1,
            "{extra}: the challenge is cancelled"
        );
        assert!(
            r.log.one().contains("outcome=interrupted"),
            "{}",
            r.log.one()
        );
    }
}

/// Groups that cannot be read, or whose names do not resolve, never take a user out of scope.
#[test]
fn issue9_item5_unreadable_groups_mean_push_required() {
    let cfg = config("groups = [\"staff\"]\n");
    for raw in [
        Err(LookupFailed::Error),
        Ok(Some(vec![UserGroup {
            gid: gid_of("staff"),
            name: None,
        }])),
    ] {
        let backend = Scripted::login(Ok(approved()));
        let env = FakeEnv {
            raw_groups: Some(raw.clone()),
            ..env("sshd")
        };
        let r = go(&cfg, &backend, &env, vec![Reply::Text("")]);
        assert_eq!(r.code, PamCode::Success, "{raw:?}");
        assert!(
            backend.started_with.borrow().is_some(),
            "{raw:?}: the push was sent"
        );
    }
    // A glob against a group with no name: push required too.
    let cfg = config("groups = [\"st*\"]\n");
    let backend = Scripted::login(Ok(approved()));
    let env = FakeEnv {
        raw_groups: Some(Ok(Some(vec![UserGroup { gid: 7, name: None }]))),
        ..env("sshd")
    };
    go(&cfg, &backend, &env, vec![Reply::Text("")]);
    assert!(backend.started_with.borrow().is_some());
}

// ---------------------------------------------------------------- real server

mod real {
    use super::*;
    use pushauth_device::{Decision, DeviceClient};
    use pushauth_testkit::{hung_url, TestServer};
    use std::rc::Rc;

    /// The kit's server, with the relying-party key and devices these tests use.
    struct Server {
        server: TestServer,
    }

    impl Server {
        fn start() -> Server {
            Server {
                server: TestServer::start_with(|cfg| cfg.sweep_interval_secs = 1),
            }
        }

        fn api_key(&self) -> String {
            self.server.api_key()
        }

        fn device(&self, user: &str, name: &str) -> DeviceClient {
            self.server.enroll(user, name).client
        }

        fn config(&self, extra: &str) -> Config {
            Config::parse(
                Path::new("/test/pam_push.conf"),
                &format!(
                    "server = \"{}\"\napi_key = \"{}\"\ntimeout = 20\n{extra}",
                    self.server.url(),
                    self.api_key()
                ),
                me(),
            )
            .unwrap()
        }
    }

    /// The device answers the challenge named by the prompt, typing `code` (or the prompt's).
    fn answer_on(
        device: Rc<DeviceClient>,
        decision: Decision,
        code: Option<&'static str>,
    ) -> Reply {
        Reply::Act(Box::new(move |prompt: &str| {
            // As shown, grouped ("482 913"): the device sends it as typed, space and all,
            // and both pushauthd and the client's verification read it without the space.
            let shown = prompt
                .split("type ")
                .nth(1)
                .and_then(|rest| rest.split(" on your device").next())
                .unwrap()
                .to_owned();
            assert_eq!(shown.replace(' ', "").len(), 6, "{prompt}");
            let deadline = Instant::now() + Duration::from_secs(10);
            let challenge = loop {
                let list = device.pending(2).unwrap();
                if let Some(c) = list.into_iter().next() {
                    break c;
                }
                assert!(Instant::now() < deadline, "challenge never arrived");
            };
            assert_eq!(challenge.context["service"], "sshd");
            let typed = code.map(str::to_owned).unwrap_or(shown);
            device.respond(&challenge, decision, &typed).unwrap();
        }))
    }

    fn login(cfg: &Config, reply: Reply) -> Run {
        let client = pushauth_client::Client::new(cfg.client_config()).unwrap();
        let mut conv = FakeConv {
            replies: vec![reply].into(),
            ..FakeConv::default()
        };
        let mut log = MemLog::default();
        let code = authenticate(
            cfg,
            &client,
            "alice",
            &env("sshd"),
            &mut conv,
            &mut log,
            false,
            Instant::now(),
        );
        Run { code, conv, log }
    }

    /// The device answers with a wrong code of the right length (each shown digit moved by one).
    fn answer_wrong(device: Rc<DeviceClient>) -> Reply {
        Reply::Act(Box::new(move |prompt: &str| {
            let shown = prompt
                .split("type ")
                .nth(1)
                .and_then(|rest| rest.split(" on your device").next())
                .unwrap()
                .replace(' ', "");
            let wrong: String = shown
                .bytes()
                .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
                .collect();
            let challenge = device.pending(5).unwrap().into_iter().next().unwrap();
            device
                .respond(&challenge, Decision::Approve, &wrong)
                .unwrap();
        }))
    }

    /// Issue 11: ten wrong codes in a row over ten logins (a new challenge does not reset the
    /// count); the eleventh login gets no push and the person is told why.
    #[test]
    fn issue11_ten_wrong_codes_in_a_row_pause_pushes_and_the_person_is_told() {
        let server = Server::start();
        let device = Rc::new(server.device("alice", "Pixel 7"));
        let cfg = server.config("");
        for n in 0..10 {
            let r = login(&cfg, answer_wrong(device.clone()));
            assert_eq!(r.code, PamCode::AuthErr, "login {n}");
            assert!(
                r.log.one().contains("outcome=code_mismatch"),
                "{:?}",
                r.log.0
            );
        }
        let r = login(&cfg, Reply::Text(""));
        assert_eq!(r.code, PamCode::AuthErr);
        // No code is shown; the one prompt offers a backup code (issue 12), and Enter refuses.
        assert_eq!(r.conv.prompts.len(), 1, "{:?}", r.conv.prompts);
        assert!(
            r.conv.prompts[0].contains("pushes to this account are paused. Type a backup code"),
            "{:?}",
            r.conv.prompts
        );
        assert!(
            r.conv.errors[0].contains("too many wrong codes"),
            "{:?}",
            r.conv.errors
        );
        assert!(
            r.log.one().contains("outcome=rate_limited"),
            "{:?}",
            r.log.0
        );
        assert!(
            device.pending(0).unwrap().is_empty(),
            "no push reached the device"
        );
    }

    #[test]
    fn real_server_approve_wrong_code_and_cancel() {
        let server = Server::start();
        let device = Rc::new(server.device("alice", "Pixel 7"));
        let cfg = server.config("");

        let r = login(&cfg, answer_on(device.clone(), Decision::Approve, None));
        assert_eq!(r.code, PamCode::Success, "{:?}", r.log.0);
        assert!(r.conv.prompts[0].starts_with("Approve on Pixel 7: type "));
        assert!(r.log.one().contains("outcome=approved"));

        let r = login(
            &cfg,
            answer_on(device.clone(), Decision::Approve, Some("0000000")),
        );
        assert_eq!(r.code, PamCode::AuthErr);
        assert!(
            r.log.one().contains("outcome=code_mismatch"),
            "{:?}",
            r.log.0
        );

        let r = login(&cfg, answer_on(device.clone(), Decision::Deny, None));
        assert_eq!(r.code, PamCode::AuthErr);
        assert!(r.log.one().contains("outcome=denied"));

        // "c" cancels on the server: the device no longer sees it as open.
        let r = login(&cfg, Reply::Text("c"));
        assert_eq!(r.code, PamCode::AuthErr);
        let open: Vec<_> = device
            .pending(0)
            .unwrap()
            .into_iter()
            .filter(|c| !c.state.is_terminal())
            .collect();
        assert!(open.is_empty(), "cancelled challenge still open: {open:?}");
    }

    #[test]
    fn real_server_pinned_key_mismatch_and_unknown_user() {
        let server = Server::start();
        let device = Rc::new(server.device("alice", "Pixel 7"));
        let pins = tempfile::tempdir().unwrap();
        let other = pushauth_proto::DeviceSigningKey::from_seed(&[9; 32]).public_key();
        std::fs::write(
            pins.path().join("alice"),
            format!("ed25519 {} someone else\n", other.to_b64()),
        )
        .unwrap();
        let cfg = server.config(&format!(
            "authorized_devices = \"{}\"\n",
            pins.path().display()
        ));
        let r = login(&cfg, answer_on(device, Decision::Approve, None));
        assert_eq!(r.code, PamCode::AuthErr);
        let line = r.log.one();
        assert!(line.contains("outcome=untrustworthy_answer"), "{line}");
        assert!(line.contains("pinned"), "{line}");

        // A user the server does not know.
        let cfg = server.config("");
        let client = pushauth_client::Client::new(cfg.client_config()).unwrap();
        let mut conv = FakeConv::default();
        let mut log = MemLog::default();
        let code = authenticate(
            &cfg,
            &client,
            "nobody",
            &env("sshd"),
            &mut conv,
            &mut log,
            false,
            Instant::now(),
        );
        assert_eq!(code, PamCode::AuthErr);
        assert!(
            log.one().contains("outcome=unknown_user_denied"),
            "{:?}",
            log.0
        );
    }

    /// timeout = 3 against a server that accepts and never answers: the module returns within
    /// about 3 s (it took about 15 s whatever `timeout` said), and denies even with `safe`.
    #[test]
    fn issue9_item8_hung_server_is_a_hard_deadline() {
        let cfg = Config::parse(
            Path::new("/test/pam_push.conf"),
            &format!(
                "server = \"{}\"\napi_key = \"k\"\ntimeout = 3\nserver_unreachable = \"safe\"\n",
                hung_url()
            ),
            me(),
        )
        .unwrap();
        let started = Instant::now();
        let r = login(&cfg, Reply::Text(""));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(3500), "took {took:?}");
        assert_eq!(r.code, PamCode::AuthinfoUnavail, "{:?}", r.log.0);
        assert!(
            r.log.one().contains("outcome=server_error_denied"),
            "{}",
            r.log.one()
        );
    }

    /// servers = [hung, good], timeout = 10: the good server is reached in time (it took 15 s)
    /// and the login succeeds.
    #[test]
    fn issue9_item8_hung_first_server_fails_over_to_the_good_one() {
        let server = Server::start();
        let device = Rc::new(server.device("alice", "Pixel 7"));
        let cfg = Config::parse(
            Path::new("/test/pam_push.conf"),
            &format!(
                "servers = [\"{}\", \"{}\"]\napi_key = \"{}\"\ntimeout = 10\nconnect_timeout = 2\n",
                hung_url(),
                server.server.url(),
                server.api_key()
            ),
            me(),
        )
        .unwrap();
        let started = Instant::now();
        let r = login(&cfg, answer_on(device, Decision::Approve, None));
        let took = started.elapsed();
        assert_eq!(r.code, PamCode::Success, "{:?}", r.log.0);
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
}
