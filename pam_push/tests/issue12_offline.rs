//! Issue 12, offline codes in the module, against a real pushauthd (in process) and a device
//! with its offline secret: an approval fills the cache; with no server the right code lets in
//! once; reuse, older codes, guessing past the limit and a broken cache are refused; the next
//! approval reports the use and resets the count.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use common::answer;
use pam_push::authenticate::{ConvFailed, Conversation, Level, Log, PamCode};
use pam_push::config::{Config, Ownership};
use pam_push::offline::cache::{Cache, CacheError, Locked};
use pam_push::offline::{login, refill};
use pam_push::state::StateDir;
use pushauth_client::{Client, Context, Outcome, StartOptions};
use pushauth_proto::offline::OfflineResponse;
use pushauth_testkit::{TestDevice, TestServer};
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
        self.replies
            .pop_front()
            .map(Zeroizing::new)
            .ok_or(ConvFailed)
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
struct MemLog(Vec<(Level, String)>);

impl Log for MemLog {
    fn log(&mut self, level: Level, line: &str) {
        self.0.push((level, line.to_owned()));
    }
}

impl MemLog {
    fn has(&self, outcome: &str) -> bool {
        self.0
            .iter()
            .any(|(_, l)| l.contains(&format!("outcome={outcome}")))
    }
}

fn line(outcome: &str, detail: Option<&str>) -> String {
    format!(
        "pam_push: outcome={outcome} detail={}",
        detail.unwrap_or("-")
    )
}

fn config(srv: &TestServer, key: &str, state: &Path) -> Config {
    let text = format!(
        "server = \"{}\"\napi_key = \"{key}\"\nserver_unreachable = \"offline\"\nstate_dir = \"{}\"\n",
        srv.url,
        state.display()
    );
    let me = Ownership {
        uid: pushauth_testkit::euid(),
    };
    Config::parse(Path::new("/test.conf"), &text, me).unwrap()
}

/// An approved push through the module's client, then the refill the module does after it.
fn approve_and_refill(cfg: &Config, dev: &TestDevice, log: &mut MemLog) {
    let client = Client::new(cfg.client_config()).unwrap();
    let mut context = Context::new();
    context.insert("service".into(), "sshd".into());
    let pending = client
        .start("alice", &context, &StartOptions::default())
        .unwrap();
    dev.approve(&pending.id, pending.code.as_deref().unwrap());
    let outcome = client
        .wait(&pending, Instant::now() + Duration::from_secs(20))
        .unwrap();
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    refill(cfg, &client, &pending, "alice", deadline, log, &line);
}

fn offline(cfg: &Config, typed: &[&str]) -> (PamCode, Conv, MemLog) {
    let mut conv = Conv {
        replies: typed.iter().map(|t| t.to_string()).collect(),
        ..Conv::default()
    };
    let mut log = MemLog::default();
    let code = login(cfg, "alice", &mut conv, &mut log, &line, "unreachable");
    (code, conv, log)
}

#[test]
fn issue12_offline_codes_in_the_module() {
    let mut srv = TestServer::start();
    let key = srv.api_key();
    let dev = srv.enroll("alice", "phone");
    let secret = dev.profile.offline.clone().unwrap();
    let state = tempfile::tempdir().unwrap();
    let cfg = config(&srv, &key, &state.path().join("state"));

    // No cache yet: refused without a prompt.
    let (code, conv, log) = offline(&cfg, &["123456"]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(conv.prompts.is_empty());
    assert!(conv.errors[0].contains("holds no offline codes for you"));
    assert!(log.has("offline_no_cache_denied"));

    let mut log = MemLog::default();
    approve_and_refill(&cfg, &dev, &mut log);
    assert!(log.has("offline_cache_filled"), "{:?}", log.0);
    srv.stop();

    // The code for counter 3 lets in (typed with a space); 1 and 2 are gone with it, 3 too.
    let c = |n: u64| secret.code(n).unwrap().to_string();
    let grouped = pushauth_proto::hotp::group(&c(3));
    let (code, conv, log) = offline(&cfg, &[grouped.as_str()]);
    assert_eq!(code, PamCode::Success, "{:?} {:?}", conv.errors, log.0);
    assert!(conv.prompts[0].contains("Type the offline code your device shows"));
    assert!(log.has("offline_code_accepted"));
    assert!(
        !log.0.iter().any(|(_, l)| l.contains(&c(3))),
        "the code is never logged"
    );
    for used in [1, 2, 3] {
        let (code, conv, _) = offline(&cfg, &[&c(used), "c"]);
        assert_eq!(code, PamCode::AuthErr, "counter {used} again");
        assert!(conv.errors[0].contains("not valid here"));
    }
    // Not a code: asked again, not counted; "c" cancels.
    let (code, conv, _) = offline(&cfg, &["abc", "c"]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(conv.errors[0].contains("6 to 8 digits"));

    // Guessing: 3 wrong codes so far; 7 more reach the limit, then even the right code is
    // refused on this host.
    let wrong = if c(9) == "000000" { "000001" } else { "000000" };
    let (_, _, _) = offline(&cfg, &[wrong, wrong, wrong]);
    let (_, _, _) = offline(&cfg, &[wrong, wrong, wrong]);
    let (code, _, log) = offline(&cfg, &[wrong, &c(4)]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(log.has("offline_locked_denied"), "{:?}", log.0);
    let (code, _, log) = offline(&cfg, &[&c(4)]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(log.has("offline_locked_denied"));

    // Server back: the next approval reports counter 3 and resets the count.
    srv.restart();
    let mut log = MemLog::default();
    approve_and_refill(&cfg, &dev, &mut log);
    assert!(log.has("offline_use_reported"), "{:?}", log.0);
    srv.stop();
    let (code, _, _) = offline(&cfg, &[&c(4)]);
    assert_eq!(code, PamCode::Success);
    srv.restart();
    let audit = srv.admin("GET", "/v1/admin/audit?limit=200", None);
    let used = audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "offline_code_used")
        .count();
    assert_eq!(used, 1, "{}", audit.text);
}

#[test]
fn issue12_a_tampered_cache_refuses() {
    use std::os::unix::fs::PermissionsExt;
    let srv = TestServer::start();
    let key = srv.api_key();
    let state = tempfile::tempdir().unwrap();
    let cfg = config(&srv, &key, &state.path().join("state"));
    let dir = state.path().join("state/offline");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(
        state.path().join("state"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Readable by others: whoever could read it could brute-force the hashes offline.
    std::fs::write(dir.join("alice"), br#"{"devices":[]}"#).unwrap();
    std::fs::set_permissions(dir.join("alice"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, conv, log) = offline(&cfg, &["123456"]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(log.has("offline_cache_error"), "{:?}", log.0);
    assert!(conv.errors[0].contains("cannot be read"));
    // A state directory others can write is refused the same way.
    std::fs::set_permissions(dir.join("alice"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, log) = offline(&cfg, &["123456"]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(log.has("offline_cache_error"));
}

/// A report queued by an older pam_push carries no code, and pushauthd now refuses reports
/// without one (issue 12 review): the next online login drops it with a log line, and still
/// fills the cache. A report queued now carries the code typed.
#[test]
fn issue12_reports_queued_without_their_code_are_dropped_with_a_log_line() {
    use std::os::unix::fs::PermissionsExt;
    let srv = TestServer::start();
    let key = srv.api_key();
    let dev = srv.enroll("alice", "phone");
    let state = tempfile::tempdir().unwrap();
    let cfg = config(&srv, &key, &state.path().join("state"));
    let dir = state.path().join("state/offline");
    std::fs::create_dir_all(&dir).unwrap();
    for d in [state.path().join("state"), dir.clone()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let old = format!(
        r#"{{"devices":[],"pending":[{{"device_id":"{}","counter":1,"used_at":"2026-11-30T12:00:00Z"}}]}}"#,
        dev.id()
    );
    std::fs::write(dir.join("alice"), old).unwrap();
    std::fs::set_permissions(dir.join("alice"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut log = MemLog::default();
    approve_and_refill(&cfg, &dev, &mut log);
    assert!(log.has("offline_report_dropped"), "{:?}", log.0);
    assert!(log.has("offline_cache_filled"), "{:?}", log.0);
    assert!(!log.has("offline_report_failed"), "{:?}", log.0);
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("alice")).unwrap()).unwrap();
    assert_eq!(cache["pending"], serde_json::json!([]), "{cache}");
    // A code used now is queued with its proof, and pushauthd believes it.
    let code = dev
        .profile
        .offline
        .clone()
        .unwrap()
        .code(2)
        .unwrap()
        .to_string();
    let (pam, _, _) = offline(&cfg, &[&code]);
    assert_eq!(pam, PamCode::Success);
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("alice")).unwrap()).unwrap();
    assert_eq!(cache["pending"][0]["code"], code.as_str(), "{cache}");
    let mut log = MemLog::default();
    approve_and_refill(&cfg, &dev, &mut log);
    assert!(log.has("offline_use_reported"), "{:?}", log.0);
}

#[test]
fn issue12_merge_find_consume() {
    let mut cache = Cache::default();
    assert_eq!(
        cache.merge(&answer(0, &[(1, "111111"), (2, "222222"), (3, "333333")])),
        3
    );
    assert_eq!(cache.have().get("dev1"), Some(&3));
    assert_eq!(cache.merge(&answer(0, &[(4, "444444")])), 1);
    // A wrong code, a code of the wrong length: nothing.
    assert_eq!(cache.find("999999"), None);
    assert_eq!(cache.find("33333"), None);
    let found = cache.find("333333").unwrap();
    assert_eq!(found.counter, 3);
    cache.consume(&found, "2026-11-30T12:00:00Z".into(), "333333");
    // Used, and the older ones with it.
    assert_eq!(cache.find("333333"), None);
    assert_eq!(cache.find("111111"), None);
    assert_eq!(cache.find("444444").map(|f| f.counter), Some(4));
    assert_eq!(cache.pending.len(), 1);
    // The server says 4 was used elsewhere: dropped here too. A device it no longer lists
    // is dropped whole.
    cache.merge(&answer(4, &[(5, "555555")]));
    assert_eq!(cache.find("444444"), None);
    assert_eq!(cache.value_count(), 1);
    cache.merge(&OfflineResponse {
        user: "alice".into(),
        digits: 6,
        devices: vec![],
    });
    assert_eq!(cache.value_count(), 0);
}

#[test]
fn issue12_cache_file_round_trips_under_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let owner = pam_push::config::Ownership {
        uid: pushauth_testkit::euid(),
    };
    let state = StateDir::new(tmp.path().join("s"), owner);
    {
        let mut locked = Locked::open(&state, "alice").unwrap();
        assert!(!locked.existed);
        locked.cache.merge(&answer(0, &[(1, "111111")]));
        locked.cache.failures = 2;
        locked.save().unwrap();
    }
    let locked = Locked::open(&state, "alice").unwrap();
    assert!(locked.existed);
    assert_eq!(locked.cache.failures, 2);
    assert_eq!(locked.cache.value_count(), 1);
    drop(locked);
    std::fs::write(tmp.path().join("s/offline/bob"), b"not json").ok();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tmp.path().join("s/offline/bob"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert!(matches!(
        Locked::open(&state, "bob"),
        Err(CacheError::Malformed(_))
    ));
}
