//! `pushauth-approve` end to end (issue 14): the real binary against a real pushauthd (the test
//! kit's), with devices that answer through the device CLI's own library. Approve, deny, no
//! answer in time, an unreachable server, an answer signed by a key that is not pinned, nobody
//! to ask, and bad usage: each with its exit code and what it prints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pushauth_device::{Decision, PendingChallenge};
use pushauth_proto::DeviceSigningKey;
use pushauth_testkit::{TestDevice, TestServer};
use tempfile::TempDir;

const MESSAGE: &str = "Deploy 2.3 to prod";

struct Env {
    server: TestServer,
    dir: TempDir,
}

impl Env {
    fn start() -> Env {
        let server = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        let env = Env { server, dir };
        let key = env
            .server
            .add_rp(serde_json::json!({"name": "deploy pipeline"}))
            .api_key;
        let key_file = env.dir.path().join("api-key");
        fs::write(&key_file, format!("{key}\n")).unwrap();
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
        env.write_config("");
        env
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("approve.toml")
    }

    /// The config: this server and the key file, then `extra` lines.
    fn write_config(&self, extra: &str) {
        let text = format!(
            "server = \"{}\"\napi_key_file = \"{}\"\n{extra}",
            self.server.url(),
            self.dir.path().join("api-key").display()
        );
        fs::write(self.config(), text).unwrap();
        fs::set_permissions(self.config(), fs::Permissions::from_mode(0o644)).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pushauth-approve"));
        cmd.arg("--config").arg(self.config()).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits (up to 20 s) for the approval with [`MESSAGE`] to reach `device`.
fn approval(device: &TestDevice) -> PendingChallenge {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let pending = device.pending(2).unwrap();
        if let Some(found) = pending
            .into_iter()
            .find(|c| c.context.get("message").map(String::as_str) == Some(MESSAGE))
        {
            return found;
        }
    }
    panic!("the approval never reached the device");
}

/// Runs `pushauth-approve` with `args` while `answer` runs beside it; its output.
fn run_while(env: &Env, args: &[&str], answer: impl FnOnce() + Send) -> Output {
    std::thread::scope(|scope| {
        let child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let answering = scope.spawn(answer);
        let out = child.wait_with_output().unwrap();
        answering.join().unwrap();
        out
    })
}

/// Runs `pushauth-approve` with `args` while `device` waits for its approval and answers it
/// with `decision`; its output.
fn answered(env: &Env, args: &[&str], device: &TestDevice, decision: Decision) -> Output {
    run_while(env, args, || {
        let asked = approval(device);
        device.respond(&asked, decision, "").unwrap();
    })
}

fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

#[test]
fn issue14_the_first_approver_to_approve_decides_and_the_others_are_withdrawn() {
    let env = Env::start();
    let alice = env.server.enroll("alice", "alice phone");
    let carol = env.server.enroll("carol", "carol phone");
    let args = [
        "--user",
        "alice",
        "--user",
        "carol",
        "--message",
        MESSAGE,
        "--context",
        "env=prod",
        "--requester",
        "ci-runner-7",
        "--timeout",
        "30",
    ];
    let out = run_while(&env, &args, || {
        let asked = approval(&carol);
        // What the approver sees and signs: the message, who asks, the extra context; no code.
        assert_eq!(
            asked.context.get("action").map(String::as_str),
            Some("approval")
        );
        assert_eq!(
            asked.context.get("requester").map(String::as_str),
            Some("ci-runner-7")
        );
        assert_eq!(asked.context.get("env").map(String::as_str), Some("prod"));
        assert!(!asked.code_required);
        assert_eq!(asked.user, "carol");
        // alice was asked too, with a challenge of her own.
        assert_eq!(approval(&alice).user, "alice");
        carol.respond(&asked, Decision::Approve, "").unwrap();
    });
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("approved by carol"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("carol phone"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("asked alice, carol"),
        "{}",
        stderr(&out)
    );
    // pushauthd's audit tells who asked what, and who answered how.
    let audit = env.server.admin("GET", "/v1/admin/audit?limit=1000", None);
    let events = audit.json["events"].as_array().unwrap();
    let created = events
        .iter()
        .find(|e| e["kind"] == "challenge_created" && e["user"] == "carol")
        .unwrap();
    let detail = created["detail"].as_str().unwrap();
    assert!(
        detail.contains("approval asked by \"ci-runner-7\": \"Deploy 2.3 to prod\""),
        "{detail}"
    );
    assert!(events.iter().any(|e| e["kind"] == "challenge_answered"
        && e["user"] == "carol"
        && e["detail"] == "approve"));
    // alice's phone no longer asks.
    assert!(alice
        .pending(0)
        .unwrap()
        .iter()
        .all(|c| c.state.is_terminal()));
}

#[test]
fn issue14_a_denial_refuses_and_no_answer_in_time_refuses() {
    let env = Env::start();
    let alice = env.server.enroll("alice", "alice phone");
    let args = ["--user", "alice", "--message", MESSAGE, "--timeout", "30"];
    let out = answered(&env, &args, &alice, Decision::Deny);
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("denied by alice"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let started = Instant::now();
    let out = env.run(&["--user", "alice", "--message", MESSAGE, "--timeout", "2"]);
    assert_eq!(exit_code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("no answer"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(stdout(&out).is_empty());
    // "Not mine to approve" refuses too (and, as for a login, pauses pushes to alice).
    let out = answered(&env, &args, &alice, Decision::Report);
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("reported"), "{}", stderr(&out));
}

#[test]
fn issue14_an_answer_signed_by_a_key_that_is_not_pinned_is_refused() {
    let env = Env::start();
    let alice = env.server.enroll("alice", "alice phone");
    // alice's pinned keys list only a key pushauthd never saw (a server that was broken into
    // and enrolled a device of its own would look like this).
    let pins = env.dir.path().join("authorized_devices");
    fs::create_dir(&pins).unwrap();
    fs::set_permissions(&pins, fs::Permissions::from_mode(0o755)).unwrap();
    let other = DeviceSigningKey::generate().unwrap().public_key();
    write_pins(
        &pins,
        "alice",
        &format!("{} {}\n", other.alg().as_str(), other.to_b64()),
    );
    env.write_config(&format!("authorized_devices = \"{}\"\n", pins.display()));
    let args = ["--user", "alice", "--message", MESSAGE, "--timeout", "30"];
    let out = answered(&env, &args, &alice, Decision::Approve);
    assert_eq!(exit_code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("pinned"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    // With her own key pinned, the same approval goes through.
    let mine = alice.signing_key().public_key();
    write_pins(
        &pins,
        "alice",
        &format!("{} {}\n", mine.alg().as_str(), mine.to_b64()),
    );
    let out = answered(&env, &args, &alice, Decision::Approve);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
}

fn write_pins(dir: &Path, user: &str, text: &str) {
    let file = dir.join(user);
    fs::write(&file, text).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn issue14_unreachable_nobody_to_ask_and_bad_usage_each_have_their_exit_code() {
    let env = Env::start();
    let _alice = env.server.enroll("alice", "alice phone");
    // Nobody to ask: a user the server does not know.
    let out = env.run(&["--user", "mallory", "--message", MESSAGE]);
    assert_eq!(exit_code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("mallory is not asked"),
        "{}",
        stderr(&out)
    );
    // A group that does not exist is bad usage, named.
    let out = env.run(&["--group", "pushauth-no-such-group", "--message", MESSAGE]);
    assert_eq!(exit_code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--group pushauth-no-such-group: no such group"),
        "{}",
        stderr(&out)
    );
    // Bad usage, each refused before anything is sent.
    for (args, says) in [
        (vec!["--user", "alice", "--message", ""], "message is empty"),
        (
            vec!["--user", "alice", "--message", "two\nlines"],
            "control character",
        ),
        (
            vec!["--user", "alice", "--user", "alice", "--message", MESSAGE],
            "named twice",
        ),
        (
            vec![
                "--user",
                "alice",
                "--message",
                MESSAGE,
                "--context",
                "action=x",
            ],
            "action",
        ),
        (
            vec![
                "--user",
                "alice",
                "--message",
                MESSAGE,
                "--context",
                "novalue",
            ],
            "KEY=VALUE",
        ),
        (vec!["--message", MESSAGE], "--user"),
    ] {
        let out = env.run(&args);
        assert_eq!(exit_code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let audit = env.server.admin("GET", "/v1/admin/audit?limit=1000", None);
    let created = audit.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "challenge_created")
        .count();
    assert_eq!(created, 0, "nothing was asked: {}", audit.text);
    // An inline key is refused: it belongs in a private file.
    env.write_config("api_key = \"x.y\"\n");
    let out = env.run(&["--user", "alice", "--message", MESSAGE]);
    assert_eq!(exit_code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("api_key"), "{}", stderr(&out));
    // A key file others can read is refused, with the fix.
    env.write_config("");
    fs::set_permissions(
        env.dir.path().join("api-key"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = env.run(&["--user", "alice", "--message", MESSAGE]);
    assert_eq!(exit_code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    // Unreachable: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    fs::set_permissions(
        env.dir.path().join("api-key"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::write(
        env.config(),
        format!(
            "server = \"http://127.0.0.1:{port}\"\napi_key_file = \"{}\"\n",
            env.dir.path().join("api-key").display()
        ),
    )
    .unwrap();
    let out = env.run(&["--user", "alice", "--message", MESSAGE, "--timeout", "5"]);
    assert_eq!(exit_code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
}

/// Attack (review of issue 14): the requester among the approvers. A pipeline that names the
/// person who started it (`--requester "$GITLAB_USER_LOGIN"`) and asks a team (`--user alice
/// --user carol`) asked alice to approve her own deployment. An approver named exactly as the
/// requester (by `--requester` or `--context requester=`) is not asked; when nobody else is
/// left, nobody is asked (exit 6).
#[test]
fn issue14_attack_the_requester_is_not_asked_to_approve_their_own_request() {
    let env = Env::start();
    let alice = env.server.enroll("alice", "alice phone");
    let carol = env.server.enroll("carol", "carol phone");
    for given in [["--requester", "alice"], ["--context", "requester=alice"]] {
        let mut args = vec!["--user", "alice", "--user", "carol", "--message", MESSAGE];
        args.extend(given);
        args.extend(["--timeout", "30"]);
        let out = answered(&env, &args, &carol, Decision::Deny);
        assert_eq!(exit_code(&out), 1, "{given:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("alice is the requester"),
            "{given:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("asked carol;"),
            "{given:?}: {}",
            stderr(&out)
        );
        assert!(
            alice.pending(0).unwrap().is_empty(),
            "{given:?}: alice was asked"
        );
    }
    let out = env.run(&[
        "--user",
        "alice",
        "--requester",
        "alice",
        "--message",
        MESSAGE,
    ]);
    assert_eq!(exit_code(&out), 6, "{}", stderr(&out));
    assert!(alice.pending(0).unwrap().is_empty(), "alice was asked");
}
