//! Attacks on the issue 12 paths of the PAM host (reviewer r1): offline codes, backup codes at
//! the prompt and the grace window, each a scenario that must not let anyone in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use common::answer;
use pam_push::authenticate::{
    authenticate, ConvFailed, Conversation, Level, Log, PamCode, PamEnv, PushBackend,
};
use pam_push::config::{Config, Ownership};
use pam_push::context::LoginFacts;
use pam_push::offline::cache::{Cache, Locked};
use pam_push::policy::{GroupId, UserGroup};
use pam_push::state::StateDir;
use pam_push::system::LookupFailed;
use pushauth_client::{BackupCodeVerified, ClientError, Context, Outcome, StartOptions};
use pushauth_proto::offline::{OfflineResponse, OfflineValue};
use zeroize::Zeroizing;

#[derive(Default)]
struct Conv {
    replies: VecDeque<String>,
    prompts: Vec<String>,
    errors: Vec<String>,
}

impl Conversation for Conv {
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        self.prompts.push(text.to_owned());
        Ok(Zeroizing::new(self.replies.pop_front().unwrap_or_default()))
    }
    fn info(&mut self, _text: &str) -> Result<(), ConvFailed> {
        Ok(())
    }
    fn error(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.errors.push(text.to_owned());
        Ok(())
    }
}

#[derive(Default)]
struct Lines(Vec<String>);

impl Log for Lines {
    fn log(&mut self, _level: Level, line: &str) {
        self.0.push(line.to_owned());
    }
}

struct Env(&'static str);

impl PamEnv for Env {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: Some(self.0.into()),
            host: Some("web01".into()),
            rhost: Some("192.0.2.7".into()),
            tty: Some("ssh".into()),
            ssh_auth_info: None,
            argv: None,
        }
    }
    fn user_groups(&self, _user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed> {
        Ok(Some(Vec::new()))
    }
    fn group_id(&self, _name: &str) -> GroupId {
        GroupId::Found(1000)
    }
}

/// A push server as the attack needs it: `start` fails with `start_error` (none: a pending
/// login), and every backup-code check is counted.
#[derive(Default)]
struct Backend {
    unreachable: bool,
    backup_checks: Cell<u32>,
    asked_grace: RefCell<Vec<Option<u64>>>,
}

impl PushBackend for Backend {
    type Login = ();
    fn start(
        &self,
        _user: &str,
        _context: &Context,
        opts: &StartOptions,
        _deadline: Instant,
    ) -> Result<(), ClientError> {
        self.asked_grace.borrow_mut().push(opts.grace_secs);
        if self.unreachable {
            return Err(ClientError::Unreachable("connection refused".into()));
        }
        Ok(())
    }
    fn challenge_id(_login: &()) -> &str {
        "chal-1"
    }
    fn code(_login: &()) -> Option<&str> {
        Some("123456")
    }
    fn device_names(_login: &()) -> Vec<String> {
        vec!["phone".into()]
    }
    fn wait(&self, _login: &(), _deadline: Instant) -> Result<Outcome, ClientError> {
        Ok(Outcome::Expired)
    }
    fn cancel(&self, _login: &(), _deadline: Instant) -> Result<(), ClientError> {
        Ok(())
    }
    fn verify_backup_code(
        &self,
        user: &str,
        _code: &str,
        _context: &Context,
        _deadline: Instant,
    ) -> Result<BackupCodeVerified, ClientError> {
        self.backup_checks.set(self.backup_checks.get() + 1);
        Ok(BackupCodeVerified {
            user: user.to_owned(),
            replacement: "K7QM-3XHT-9RWD-PC4N".into(),
            remaining: 9,
        })
    }
}

fn me() -> Ownership {
    Ownership {
        uid: pushauth_testkit::euid(),
    }
}

fn config(dir: &Path, extra: &str) -> Config {
    Config::parse(
        Path::new("/test/pam_push.conf"),
        &format!(
            "server = \"http://127.0.0.1:1\"\napi_key = \"k\"\nstate_dir = \"{}\"\n{extra}",
            dir.join("state").display()
        ),
        me(),
    )
    .unwrap()
}

fn login(
    cfg: &Config,
    backend: &Backend,
    service: &'static str,
    typed: &[&str],
) -> (PamCode, Conv, Lines) {
    let mut conv = Conv {
        replies: typed.iter().map(|t| (*t).to_owned()).collect(),
        ..Conv::default()
    };
    let mut log = Lines::default();
    let code = authenticate(
        cfg,
        backend,
        "alice",
        &Env(service),
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    (code, conv, log)
}

/// Scenario: alice's device keys are pinned on this host, so that a broken-into pushauthd cannot
/// let anyone in as her. But the offline values the host caches are the server's word alone
/// (hashes it sends after her next real approval): the intruder sends hashes of codes it chose,
/// then stops answering, and logs in with one of them at the offline prompt, no device needed.
#[test]
fn attack12_offline_codes_bypass_pinned_device_keys() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pins = dir.path().join("pins");
    std::fs::create_dir(&pins).unwrap();
    std::fs::set_permissions(&pins, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = pushauth_proto::DeviceSigningKey::from_seed(&[5; 32]).public_key();
    std::fs::write(
        pins.join("alice"),
        format!("ed25519 {} phone\n", key.to_b64()),
    )
    .unwrap();
    let pinned = format!(
        "server_unreachable = \"offline\"\nauthorized_devices = \"{}\"\n",
        pins.display()
    );
    let cfg = config(dir.path(), &pinned);
    // What the intruder's server stored at alice's last approval: a code it knows.
    let state = StateDir::new(&cfg.state_dir, cfg.owner);
    {
        let mut locked = Locked::open(&state, "alice").unwrap();
        locked.cache.merge(&answer(0, &[(1, "424242")]));
        locked.save().unwrap();
    }
    let backend = Backend {
        unreachable: true,
        ..Backend::default()
    };
    let (code, conv, log) = login(&cfg, &backend, "sshd", &["424242"]);
    assert_eq!(
        code,
        PamCode::AuthErr,
        "a pinned user got in on the server's word: {:?}",
        log.0
    );
    assert!(conv.prompts.is_empty(), "no code asked: {:?}", conv.prompts);
    assert!(
        conv.errors[0].contains("pinned"),
        "the person is told why: {:?}",
        conv.errors
    );
    assert!(log.0.join("\n").contains("outcome=offline_pinned_denied"));
    // The administrator may accept it, as for backup codes.
    let cfg = config(
        dir.path(),
        &format!("{pinned}pinned_offline_codes = true\n"),
    );
    let (code, _, log) = login(&cfg, &backend, "sshd", &["424242"]);
    assert_eq!(code, PamCode::Success, "{:?}", log.0);
}

/// Scenario: alice used her device's last cached value here (counter 3) while the server was
/// down. At her next online login the report of that use fails (a 5xx, a timeout), but the
/// fetch of new values works: the host, holding no value of that device, says it holds nothing,
/// and the server (which still believes counter 0) sends counters 1..3 again. The code used
/// here (seen over her shoulder) then works a second time on this host.
#[test]
fn attack12_a_used_counter_never_comes_back_through_a_refill() {
    let mut cache = Cache::default();
    cache.merge(&answer(0, &[(1, "111111"), (2, "222222"), (3, "333333")]));
    let found = cache.find("333333").unwrap();
    cache.consume(&found, "2026-11-30T12:00:00Z".into(), "333333");
    assert_eq!(cache.value_count(), 0);
    // The report is still pending: the host tells the server it is past counter 3.
    assert_eq!(cache.have().get("dev1"), Some(&3), "{:?}", cache.have());
    // A server that had not heard of it sends 1..4 anyway: only 4 is taken.
    cache.merge(&answer(
        0,
        &[(1, "111111"), (2, "222222"), (3, "333333"), (4, "444444")],
    ));
    assert_eq!(cache.find("333333"), None, "the used code works again");
    assert_eq!(cache.find("222222"), None, "an older code works again");
    assert_eq!(cache.find("444444").map(|f| f.counter), Some(4));
}

/// Scenario: at sshd's push prompt the person types their password by habit (the previous
/// prompt was the password). Anything of 12 letters and digits was sent to pushauthd as a
/// backup code: the password leaves the host and counts as a wrong backup code.
#[test]
fn attack12_a_password_typed_at_the_prompt_is_never_sent_as_a_backup_code() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let backend = Backend::default();
    for typed in [
        "correct horse battery staple",
        "Summer2026!Passw0rd",
        "K7QM-3XHT-9RWD-PC4",
    ] {
        let (code, conv, log) = login(&cfg, &backend, "sshd", &[typed]);
        assert_eq!(code, PamCode::AuthErr, "{typed}");
        assert_eq!(
            backend.backup_checks.get(),
            0,
            "{typed} was sent to the server"
        );
        assert!(
            conv.prompts.iter().any(|p| p.contains("not a backup code")),
            "{typed}: {:?}",
            conv.prompts
        );
        assert!(!log.0.join("\n").contains(typed));
    }
    // A real code (any case, any grouping) still goes to the server.
    let (code, _, _) = login(&cfg, &backend, "sshd", &["k7qm 3xht 9rwd pc4n"]);
    assert_eq!(code, PamCode::Success);
    assert_eq!(backend.backup_checks.get(), 1);
}

/// Scenario: `grace_secs = 300` for a burst of SSH logins. `sudo` rightly never takes grace
/// without `sudo_grace`, but `su`, `su-l`, `doas`, pkexec (`polkit-1`) and `run0`
/// (`systemd-run0`) raise privileges just the same and asked for grace: within five minutes of
/// one approved `su`, any session of the user (the tty is not in the grace key) becomes root
/// with the password alone.
#[test]
fn attack12_privilege_raising_services_never_ask_for_grace() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "grace_secs = 300\n");
    for service in [
        "su",
        "su-l",
        "doas",
        "polkit-1",
        "systemd-run0",
        "sudo",
        "sudo-i",
    ] {
        assert_eq!(
            pam_push::grace::ask(&cfg, service, &keyed()),
            None,
            "{service} asks for grace"
        );
    }
    assert_eq!(pam_push::grace::ask(&cfg, "sshd", &keyed()), Some(300));
    let cfg = config(dir.path(), "grace_secs = 300\nsudo_grace = true\n");
    assert_eq!(pam_push::grace::ask(&cfg, "su", &keyed()), Some(300));
}

fn keyed() -> Context {
    let mut c = Context::new();
    c.insert("service".into(), "sshd".into());
    c.insert("rhost".into(), "192.0.2.7".into());
    c.insert("ssh_key".into(), "ssh-ed25519 SHA256:k1".into());
    c
}

/// Attack (issue 12 review): sshd with passwords only, or without `ExposeAuthInfo`, gives the
/// module no key fingerprint, so the grace key is user, service, host and address alone:
/// anyone with the password from the same address (a shared NAT, a jump host) rode on the
/// person's approval. Without a key, sshd logins ask no grace unless `grace_without_key`.
#[test]
fn attack12_sshd_without_a_known_key_asks_no_grace() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "grace_secs = 300\n");
    let mut password = keyed();
    password.remove("ssh_key");
    assert_eq!(pam_push::grace::ask(&cfg, "sshd", &password), None);
    assert_eq!(pam_push::grace::ask(&cfg, "sshd", &keyed()), Some(300));
    // Services that never have a key (a console login) are unchanged.
    assert_eq!(pam_push::grace::ask(&cfg, "login", &password), Some(300));
    let cfg = config(dir.path(), "grace_secs = 300\ngrace_without_key = true\n");
    assert_eq!(pam_push::grace::ask(&cfg, "sshd", &password), Some(300));
    // A typo'd value is refused, not read as false.
    assert!(pam_push::config::Config::parse(
        std::path::Path::new("/t.conf"),
        "server = \"https://push.example\"\napi_key = \"k\"\ngrace_without_key = \"yes\"\n",
        pam_push::config::Ownership {
            uid: pushauth_testkit::euid()
        }
    )
    .is_err());
}

/// A backend whose fetch of offline values takes `fetch_secs` (a slow or overloaded server
/// hashing a fresh window with Argon2id).
struct SlowFetch {
    fetch: std::time::Duration,
}

impl PushBackend for SlowFetch {
    type Login = ();
    fn start(
        &self,
        _user: &str,
        _context: &Context,
        _opts: &StartOptions,
        _deadline: Instant,
    ) -> Result<(), ClientError> {
        Ok(())
    }
    fn challenge_id(_login: &()) -> &str {
        "chal-1"
    }
    fn code(_login: &()) -> Option<&str> {
        None
    }
    fn device_names(_login: &()) -> Vec<String> {
        Vec::new()
    }
    fn wait(&self, _login: &(), _deadline: Instant) -> Result<Outcome, ClientError> {
        Ok(Outcome::Expired)
    }
    fn cancel(&self, _login: &(), _deadline: Instant) -> Result<(), ClientError> {
        Ok(())
    }
    fn offline_values(
        &self,
        _login: &(),
        _have: &std::collections::BTreeMap<String, u64>,
        deadline: Instant,
    ) -> Result<OfflineResponse, ClientError> {
        // As the real client: it gives up at the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.fetch.min(left));
        Err(ClientError::Unreachable("slow".into()))
    }
}

/// Scenario: the offline cache was locked as a whole directory, and the refill after every
/// approved push held that lock across its network calls (up to 10 s). One user's slow refill
/// (or a guesser's Argon2id checks at the offline prompt) then held up every other user's
/// login on the host: an outage, or one busy account, stalls all of them.
#[test]
fn attack12_one_users_refill_never_holds_up_another_users_login() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(dir.path(), "server_unreachable = \"offline\"\n"));
    let state = StateDir::new(&cfg.state_dir, cfg.owner);
    {
        let mut locked = Locked::open(&state, "bob").unwrap();
        let mut fill = answer(0, &[(1, "424242")]);
        fill.user = "bob".into();
        locked.cache.merge(&fill);
        locked.save().unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let refill = {
        let cfg = Arc::clone(&cfg);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let backend = SlowFetch {
                fetch: std::time::Duration::from_secs(8),
            };
            let mut log = Lines::default();
            let deadline = Instant::now() + std::time::Duration::from_secs(30);
            pam_push::offline::refill(&cfg, &backend, &(), "alice", deadline, &mut log, &|o, _| {
                o.to_owned()
            });
            done.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut conv = Conv {
        replies: vec!["424242".to_owned()].into(),
        ..Conv::default()
    };
    let mut log = Lines::default();
    let code =
        pam_push::offline::login(&cfg, "bob", &mut conv, &mut log, &|o, _| o.to_owned(), "x");
    assert_eq!(code, PamCode::Success, "{:?}", log.0);
    assert!(
        !done.load(Ordering::SeqCst),
        "bob's offline login waited for alice's refill"
    );
    refill.join().unwrap();
}

/// Scenario (issue 12 review): the push is approved with 2 s of the login's 30 s left, and
/// pushauthd is slow to hash the offline values. The refill gave itself 10 s from the
/// approval, so the login (let in only after it) outlasted its own deadline and could run into
/// sshd's LoginGraceTime. The refill now ends at the login's deadline, and is skipped when none
/// is left.
#[test]
fn attack12_the_refill_never_outlasts_the_logins_deadline() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "server_unreachable = \"offline\"\n");
    let backend = SlowFetch {
        fetch: Duration::from_secs(8),
    };
    let mut log = Lines::default();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1_000);
    pam_push::offline::refill(&cfg, &backend, &(), "alice", deadline, &mut log, &|o, _| {
        o.to_owned()
    });
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1_800),
        "the refill took {took:?}"
    );
    assert!(
        log.0.join("\n").contains("offline_values_failed"),
        "{:?}",
        log.0
    );
    // No time left: nothing is sent, the skip is logged.
    let mut log = Lines::default();
    let started = Instant::now();
    pam_push::offline::refill(&cfg, &backend, &(), "alice", started, &mut log, &|o, _| {
        o.to_owned()
    });
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(
        log.0.join("\n").contains("offline_refill_skipped"),
        "{:?}",
        log.0
    );
}

/// Scenario: a broken-into (or misconfigured) pushauthd sends offline values whose Argon2id
/// parameters are its own choice, and the host verified each typed code with them: a million
/// passes (or gigabytes of memory) per value, in the sshd child, under the user's lock. One
/// refill makes every later offline login of that user hang or exhaust the host's memory.
#[test]
fn attack12_offline_hashes_with_costs_of_the_servers_choosing_are_never_run() {
    // Well formed, but t = 1_000_000 passes (the hash bytes need not be right: it is never
    // supposed to be computed).
    let costly = "$argon2id$v=19$m=8,t=1000000,p=1$CQkJCQkJCQkJCQkJCQkJCQ$\
                  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut fill = answer(0, &[(1, "111111")]);
    fill.devices[0].values.push(OfflineValue {
        counter: 2,
        hash: costly.into(),
    });
    let mut cache = Cache::default();
    assert_eq!(cache.merge(&fill), 1, "the costly value is not stored");
    // A cache file that already holds one (written before this check) never runs it either.
    let cache: Cache = serde_json::from_value(serde_json::json!({
        "devices": [{"device_id": "dev1", "digits": 6, "values": [{"counter": 2, "hash": costly}]}]
    }))
    .unwrap();
    let started = Instant::now();
    assert_eq!(cache.find("222222"), None);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the server's costs ran: {:?}",
        started.elapsed()
    );
}

/// Scenario: `state_dir` under a directory another user can write (`/srv/shared/pam_push`,
/// a home directory). The state directory itself is root's and 0700, so each check passed; but
/// the owner of the parent can rename it away and back: put aside a copy of the offline cache
/// (or grace record) holding codes that are later used, then restore it, and the used codes
/// work again.
#[test]
fn attack12_a_state_dir_whose_parent_others_can_write_is_refused() {
    use pam_push::state::Feature;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let state = StateDir::new(shared.join("pam_push"), me());
    let err = state.feature_dir(Feature::Offline).unwrap_err().to_string();
    assert!(err.contains("shared"), "{err}");
    // Through a symlink to it, just the same.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&shared, &link).unwrap();
    let state = StateDir::new(link.join("pam_push"), me());
    assert!(state.feature_dir(Feature::Grace).is_err());
    // A sticky directory (like /tmp) cannot have our entries renamed: fine. So is a private one.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let state = StateDir::new(shared.join("pam_push"), me());
    state.feature_dir(Feature::Offline).unwrap();
}

/// Scenario: while pushauthd is down, someone tries many made-up user names (sshd runs PAM for
/// invalid users too). A user without a cache must leave nothing behind on disk: no cache, no
/// lock file, or names alone would fill the state directory.
#[test]
fn attack12_unknown_users_at_the_offline_prompt_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "server_unreachable = \"offline\"\n");
    for i in 0..20 {
        let mut conv = Conv::default();
        let mut log = Lines::default();
        let user = format!("nobody{i}");
        let code =
            pam_push::offline::login(&cfg, &user, &mut conv, &mut log, &|o, _| o.to_owned(), "x");
        assert_eq!(code, PamCode::AuthErr);
    }
    let offline = cfg.state_dir.join("offline");
    let left: Vec<_> = std::fs::read_dir(&offline)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A server whose start fails with `error()`.
struct Failing(fn() -> ClientError);

impl PushBackend for Failing {
    type Login = ();
    fn start(
        &self,
        _user: &str,
        _context: &Context,
        _opts: &StartOptions,
        _deadline: Instant,
    ) -> Result<(), ClientError> {
        Err((self.0)())
    }
    fn challenge_id(_login: &()) -> &str {
        "chal-1"
    }
    fn code(_login: &()) -> Option<&str> {
        None
    }
    fn device_names(_login: &()) -> Vec<String> {
        Vec::new()
    }
    fn wait(&self, _login: &(), _deadline: Instant) -> Result<Outcome, ClientError> {
        Ok(Outcome::Expired)
    }
    fn cancel(&self, _login: &(), _deadline: Instant) -> Result<(), ClientError> {
        Ok(())
    }
}

/// Scenario (held): a man in the middle answers with a bad certificate, a 5xx, a malformed
/// body, or the server says the user is locked. None of them is "unreachable": the offline
/// prompt is never shown, even to a user with a full cache, so the attacker cannot steer a
/// login from the push onto six guessable digits.
#[test]
fn attack12_only_true_unreachability_opens_the_offline_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "server_unreachable = \"offline\"\n");
    let state = StateDir::new(&cfg.state_dir, cfg.owner);
    {
        let mut locked = Locked::open(&state, "alice").unwrap();
        locked.cache.merge(&answer(0, &[(1, "424242")]));
        locked.save().unwrap();
    }
    let errors: [fn() -> ClientError; 6] = [
        || ClientError::TlsFailure("invalid peer certificate: UnknownIssuer".into()),
        || ClientError::ServerError("server error 503: down".into()),
        || ClientError::ServerError("connection reset after connect".into()),
        || ClientError::BadAnswer("not JSON".into()),
        || ClientError::RateLimited {
            code: pushauth_client::ErrorCode::UserLocked,
            message: "locked".into(),
        },
        || ClientError::Unauthorized,
    ];
    for error in errors {
        let backend = Failing(error);
        let mut conv = Conv {
            replies: vec!["424242".to_owned()].into(),
            ..Conv::default()
        };
        let mut log = Lines::default();
        let code = authenticate(
            &cfg,
            &backend,
            "alice",
            &Env("sshd"),
            &mut conv,
            &mut log,
            false,
            Instant::now(),
        );
        assert_ne!(code, PamCode::Success, "{:?}", log.0);
        // No offline prompt (a paused user is offered a backup code, which pushauthd checks).
        assert!(
            !conv.prompts.iter().any(|p| p.contains("offline")),
            "{:?}: {:?}",
            (error)(),
            conv.prompts
        );
    }
    // The code is still there for a real outage.
    let backend = Failing(|| ClientError::Unreachable("connection refused".into()));
    let (code, _, log) = {
        let mut conv = Conv {
            replies: vec!["424242".to_owned()].into(),
            ..Conv::default()
        };
        let mut log = Lines::default();
        let code = authenticate(
            &cfg,
            &backend,
            "alice",
            &Env("sshd"),
            &mut conv,
            &mut log,
            false,
            Instant::now(),
        );
        (code, conv, log)
    };
    assert_eq!(code, PamCode::Success, "{:?}", log.0);
}
