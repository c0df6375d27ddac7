//! The `pushauth-device` binary end to end against a real pushauthd on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pushauth_proto::wire::{ChallengeCreated, ChallengeStatus};
use pushauth_proto::{b64, random, ChallengeState, Reason};
use pushauth_testkit::{TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};

/// pushauthd from the shared test kit, a relying-party key, and the CLI's config directory.
struct Env {
    server: TestServer,
    url: String,
    api_key: String,
    config: tempfile::TempDir,
}

/// `method url` with `Authorization: Bearer bearer`; the JSON answer of a call that must succeed.
fn http(method: &str, url: &str, bearer: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string().into_bytes());
    let auth = format!("Bearer {bearer}");
    let r = pushauth_testkit::call(method, url, Some(&auth), body.as_deref()).ok();
    serde_json::from_str(&r.text).unwrap()
}

impl Env {
    fn start() -> Env {
        let server = TestServer::start();
        Env {
            api_key: server.api_key(),
            url: server.url(),
            server,
            config: tempfile::tempdir().unwrap(),
        }
    }

    /// The config directory; the CLI creates it.
    fn dir(&self) -> std::path::PathBuf {
        self.config.path().join("pushauth-device")
    }

    fn link(&self, user: &str) -> String {
        self.server.enrollment(user, None).url
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pushauth-device"));
        cmd.arg("--config-dir").arg(self.dir()).args(args);
        cmd.env_remove("PUSHAUTH_DEVICE_DIR");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        eprintln!(
            "$ pushauth-device {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn challenge(&self, user: &str) -> ChallengeCreated {
        let body = json!({
            "user": user,
            "context": {"service": "sshd", "host": "web01", "rhost": "192.0.2.7"},
            "rp_nonce": b64::encode(random::rp_nonce().unwrap()),
        });
        let created = http(
            "POST",
            &format!("{}/v1/challenges", self.url),
            &self.api_key,
            Some(body),
        );
        serde_json::from_value(created).unwrap()
    }

    fn status(&self, id: &str) -> ChallengeStatus {
        let status = http(
            "GET",
            &format!("{}/v1/challenges/{id}", self.url),
            &self.api_key,
            None,
        );
        serde_json::from_value(status).unwrap()
    }

    fn enroll(&self, user: &str) {
        let out = self.run(&["enroll", &self.link(user), "--name", "cli phone"]);
        assert!(out.status.success());
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn enroll_pending_and_approve_with_the_code() {
    let env = Env::start();
    let out = env.run(&["enroll", &env.link("alice"), "--name", "cli phone"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("for user alice"), "{}", stdout(&out));
    let profile = env.dir().join("default.toml");
    assert_eq!(mode(&profile), 0o600);
    assert_eq!(mode(&env.dir()), 0o700);
    let text = fs::read_to_string(&profile).unwrap();
    assert!(text.contains("user = \"alice\""), "{text}");

    let created = env.challenge("alice");
    let code = created.code.clone().unwrap();
    let out = env.run(&["pending"]);
    assert!(out.status.success());
    let listing = stdout(&out);
    assert!(listing.contains(&created.id), "{listing}");
    assert!(
        listing.contains("sshd") && listing.contains("web01"),
        "{listing}"
    );
    assert!(listing.contains("192.0.2.7"), "{listing}");
    assert!(listing.contains("required"), "{listing}");
    assert!(
        !listing.contains(&format!(" {code}\n")),
        "the device must never see the code"
    );

    let out = env.run(&["pending", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["challenges"][0]["id"], created.id.as_str());
    assert_eq!(json["challenges"][0]["code_required"], true);
    assert_eq!(json["challenges"][0]["code_length"], 6);
    assert!(listing.contains("6-digit code"), "{listing}");

    // Approving without the code is refused locally.
    let out = env.run(&["approve", &created.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--code"), "{}", stderr(&out));

    let out = env.run(&["approve", &created.id, "--code", &code]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("approved"), "{}", stdout(&out));
    assert_eq!(env.status(&created.id).state, ChallengeState::Approved);

    // Answering again: the challenge is no longer open.
    let out = env.run(&["deny", &created.id]);
    assert!(!out.status.success());
}

#[test]
fn wrong_code_deny_and_report_print_the_outcome() {
    let env = Env::start();
    env.enroll("alice");

    let created = env.challenge("alice");
    let code = created.code.clone().unwrap();
    // A wrong code of the right length is sent (and ends the challenge); one digit too few or
    // a letter is refused locally, so a typo does not spend the one attempt.
    for typo in [&code[1..], &format!("{}x", &code[1..])] {
        let out = env.run(&["approve", &created.id, "--code", typo]);
        assert!(!out.status.success(), "{typo}");
        assert!(
            stderr(&out).contains("nothing was sent"),
            "{}",
            stderr(&out)
        );
        assert_eq!(env.status(&created.id).state, ChallengeState::Pending);
    }
    assert!(
        stderr(&env.run(&["approve", &created.id, "--code", &code[1..]])).contains("6 digits"),
        "the message names the length"
    );
    let wrong: String = code
        .bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect();
    let out = env.run(&["approve", &created.id, "--code", &wrong]);
    assert!(out.status.success(), "the server accepted the answer");
    assert!(stdout(&out).contains("code_mismatch"), "{}", stdout(&out));
    let status = env.status(&created.id);
    assert_eq!(status.state, ChallengeState::Denied);
    assert_eq!(status.reason, Some(Reason::CodeMismatch));

    let created = env.challenge("alice");
    let out = env.run(&["deny", &created.id]);
    assert!(out.status.success());
    assert_eq!(env.status(&created.id).reason, Some(Reason::Denied));

    let created = env.challenge("alice");
    let out = env.run(&["report", &created.id]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("reported"), "{}", stdout(&out));
    assert_eq!(env.status(&created.id).reason, Some(Reason::Reported));
}

#[test]
fn profiles_are_private_and_not_replaced() {
    let env = Env::start();
    env.enroll("alice");
    let profile = env.dir().join("default.toml");
    let before = fs::read_to_string(&profile).unwrap();

    // A second enrollment into the same profile is refused, and the link stays unused.
    let link = env.link("alice");
    let out = env.run(&["enroll", &link]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&profile).unwrap(), before);
    // Into another profile it works, with the same link.
    let out = env.run(&["--profile", "second", "enroll", &link]);
    assert!(out.status.success());
    assert!(env.dir().join("second.toml").exists());

    fs::set_permissions(&profile, fs::Permissions::from_mode(0o640)).unwrap();
    let out = env.run(&["pending"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[test]
fn bad_links_and_server_errors_are_explained() {
    let env = Env::start();
    let out = env.run(&["enroll", "not a link"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("enrollment link"), "{}", stderr(&out));

    let bogus = format!("{}/enroll?token=no-such-token", env.url);
    let out = env.run(&["enroll", &bogus]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown_enrollment"),
        "{}",
        stderr(&out)
    );
    assert!(!env.dir().join("default.toml").exists());

    let out = env.run(&["pending"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("enroll first"), "{}", stderr(&out));
}

#[test]
fn watch_once_answers_with_the_code_from_stdin() {
    let env = Env::start();
    env.enroll("alice");
    let created = env.challenge("alice");
    let code = created.code.clone().unwrap();

    let mut child = env
        .cmd(&["watch", "--once"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // An empty line is asked again; a code one digit short is refused locally (nothing
    // sent: the challenge stays open); then the code, grouped as the login screen shows it.
    let grouped = pushauth_proto::challenge::group_code(&code);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("\n{}\n{grouped}\n", &code[1..]).as_bytes())
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("watch --once did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    eprintln!("{text}{}", stderr(&out));
    assert!(out.status.success());
    assert!(
        text.contains("Type the 6-digit code shown on the login screen"),
        "{text}"
    );
    assert!(
        text.contains("has 6 digits; you typed 5; nothing was sent"),
        "{text}"
    );
    assert!(text.contains("web01"), "{text}");
    assert!(text.contains("approved"), "{text}");
    assert_eq!(env.status(&created.id).state, ChallengeState::Approved);
}

/// Item 1, scenario: a second device is bound to alice's account. Her first device's `pending`
/// prints the announcement with where it came from; an add_device challenge is shown as such.
/// (A name with a bidi override is refused at enrollment now, and server text reaching the
/// terminal is escaped: see the item 14 test below.)
#[test]
fn issue9_item1_pending_announces_a_new_device_and_marks_add_device_pushes() {
    let env = Env::start();
    env.enroll("alice");
    let link = env.link("alice");
    let out = env.run(&["--profile", "second", "enroll", &link, "--name", "tablet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["pending"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("New device 'tablet'"),
        "the notice is printed: {text}"
    );
    assert!(
        text.contains("was added to your account alice on 20"),
        "{text}"
    );
    assert!(text.contains("from 127.0.0.1:"), "{text}");
    assert!(
        text.contains("if this was not you, tell your administrator and revoke it"),
        "{text}"
    );
    assert!(
        !text.contains('\u{202e}'),
        "bidi override reached the terminal: {text:?}"
    );
    // JSON mode keeps stdout parseable and says it on stderr.
    let out = env.run(&["pending", "--json"]);
    assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());
    assert!(
        stderr(&out).contains("New device 'tablet'"),
        "{}",
        stderr(&out)
    );
    // The new device is not told about itself.
    let out = env.run(&["--profile", "second", "pending"]);
    assert!(
        !stdout(&out).contains("New device 'tablet'"),
        "{}",
        stdout(&out)
    );
    // An add_device push is unmistakable.
    let body = json!({
        "user": "alice",
        "context": {"action": "add_device", "device_name": "tablet"},
        "rp_nonce": b64::encode(random::rp_nonce().unwrap()),
    });
    http(
        "POST",
        &format!("{}/v1/challenges", env.url),
        &env.api_key,
        Some(body),
    );
    let text = stdout(&env.run(&["pending"]));
    assert!(
        text.contains("ADD A NEW DEVICE 'tablet' to account alice — approve only if you are adding a device yourself"),
        "{text}"
    );
}

/// Serves `responses` in order, one per connection, to whatever asks (a server that lies).
fn fake_server(responses: Vec<(u16, String)>) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn issue9_item14_device_cli_escapes_server_text_cuts_visibly_and_names_the_rp() {
    let env = Env::start();
    env.enroll("alice");
    // A relying party with its own name, and a context value longer than the CLI shows.
    let rp = http(
        "POST",
        &format!("{}/v1/admin/relying-parties", env.url),
        ADMIN_TOKEN,
        Some(json!({"name": "web-servers"})),
    );
    let key = rp["api_key"].as_str().unwrap();
    let long = format!("{}TAIL-NOT-SHOWN", "x".repeat(300));
    http(
        "POST",
        &format!("{}/v1/challenges", env.url),
        key,
        Some(json!({
            "user": "alice",
            "context": {"service": "sudo", "command": long, "rhost": "192.0.2.9"},
            "rp_nonce": b64::encode(random::rp_nonce().unwrap()),
        })),
    );
    let out = env.run(&["pending"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("asked by relying party 'web-servers'"),
        "{text}"
    );
    assert!(!text.contains("TAIL-NOT-SHOWN"), "{text}");
    assert!(
        text.contains(&format!(
            "{}… [114 more characters not shown]",
            "x".repeat(200)
        )),
        "{text}"
    );
    // The JSON view carries the name for programs.
    let out = env.run(&["pending", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["challenges"][0]["rp_name"], "web-servers");

    // A server that lies: hidden characters in what it sends are shown as escapes, never
    // interpreted by the terminal or dropped.
    let evil = json!({"challenges": [{
        "id": "c\u{1b}[2Jx",
        "user": "alice\u{202e}ecila",
        "state": "pending",
        "context": {"host": "web01\u{202e}10bew", "service\u{1b}]0;t\u{7}": "sshd"},
        "context_digest": b64::encode([0u8; 32]),
        "rp_nonce": b64::encode([1u8; 32]),
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:01:00Z",
        "code_required": true,
        "rp_name": "ops\u{200b}\u{202e}"
    }]});
    let error = json!({"error": "forbidden", "message": "no\u{1b}[31m red \u{202e}text"});
    // `pending` reads the device notices first, then the challenges.
    let no_notices = json!({"notices": []}).to_string();
    let fake = fake_server(vec![
        (200, no_notices.clone()),
        (200, evil.to_string()),
        (200, no_notices.clone()),
        (200, evil.to_string()),
        (200, no_notices),
        (403, error.to_string()),
    ]);
    let profile = env.dir().join("default.toml");
    let text = fs::read_to_string(&profile).unwrap();
    let rewritten: String = text
        .lines()
        .map(|l| {
            if l.starts_with("server = ") {
                format!("server = \"{fake}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&profile, rewritten + "\n").unwrap();

    let out = env.run(&["pending"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    for raw in ['\u{1b}', '\u{202e}', '\u{200b}', '\u{7}'] {
        assert!(
            !shown.contains(raw),
            "raw U+{:04X} in {shown:?}",
            raw as u32
        );
    }
    for escaped in [
        "c\\u{001B}[2Jx",
        "alice\\u{202E}ecila",
        "web01\\u{202E}10bew",
        "service\\u{001B}]0;t\\u{0007}:",
        "asked by relying party 'ops\\u{200B}\\u{202E}'",
    ] {
        assert!(shown.contains(escaped), "{escaped} not in {shown}");
    }
    // The JSON view stays the same JSON value, with hidden characters as \u escapes.
    let out = env.run(&["pending", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{200b}'),
        "{text:?}"
    );
    assert!(text.contains("\\u202e"), "{text}");
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["challenges"][0]["user"], "alice\u{202e}ecila");
    assert_eq!(parsed["challenges"][0]["rp_name"], "ops\u{200b}\u{202e}");

    let out = env.run(&["pending"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{202e}'),
        "{err:?}"
    );
    assert!(err.contains("no\\u{001B}[31m red \\u{202E}text"), "{err}");
}

/// Issue 11: `enroll --alg es256` makes a P-256 key, pushauthd lists the device as `es256` with
/// the key the profile holds (0600, `alg = "es256"`), `info` shows the fingerprint of exactly that
/// key and never the secret, and the device approves with its ES256 signature. An unknown
/// `--alg` is refused before the single-use link is spent.
#[test]
fn issue11_enroll_alg_es256_info_and_approve() {
    let env = Env::start();
    let link = env.link("alice");
    let out = env.run(&["enroll", &link, "--name", "cli phone", "--alg", "rsa"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("es256"), "{}", stderr(&out));
    assert!(!env.dir().join("default.toml").exists());

    let out = env.run(&["enroll", &link, "--name", "cli phone", "--alg", "es256"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let profile = env.dir().join("default.toml");
    assert_eq!(mode(&profile), 0o600);
    let text = fs::read_to_string(&profile).unwrap();
    assert!(text.contains("alg = \"es256\""), "{text}");

    let listed = http(
        "GET",
        &format!("{}/v1/admin/users/alice/devices", env.url),
        ADMIN_TOKEN,
        None,
    );
    assert_eq!(listed["devices"][0]["alg"], "es256", "{listed}");
    let public = pushauth_proto::DevicePublicKey::from_wire(
        "es256",
        listed["devices"][0]["public_key"].as_str().unwrap(),
    )
    .unwrap();
    let fingerprint = public.fingerprint();
    assert!(
        stdout(&out).contains(&format!("key: es256 {fingerprint}")),
        "{}",
        stdout(&out)
    );

    for command in ["info", "show"] {
        let out = env.run(&[command]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = stdout(&out);
        assert!(
            shown.contains(&format!("fingerprint: {fingerprint}")),
            "{shown}"
        );
        assert!(shown.contains("algorithm:   es256"), "{shown}");
        assert!(
            shown.contains(&format!("es256 {} cli phone", public.to_b64())),
            "{shown}"
        );
        let secret = text
            .lines()
            .find_map(|l| l.strip_prefix("key_seed = "))
            .unwrap()
            .trim_matches('"');
        assert!(!shown.contains(secret), "info printed the secret");
    }

    let created = env.challenge("alice");
    let code = created.code.clone().unwrap();
    let out = env.run(&["approve", &created.id, "--code", &code]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = env.status(&created.id);
    assert_eq!(status.state, ChallengeState::Approved);
    let sig = b64::decode(status.signature.as_deref().unwrap(), "signature").unwrap();
    assert_eq!(sig.len(), 64);
}

/// A profile written before `--alg` existed (no `alg` line) still works as an Ed25519 device.
#[test]
fn issue11_profiles_without_alg_still_answer() {
    let env = Env::start();
    env.enroll("alice");
    let path = env.dir().join("default.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("alg = \"ed25519\""), "{text}");
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("alg ="))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&path, old).unwrap();
    let out = env.run(&["info"]);
    assert!(
        stdout(&out).contains("algorithm:   ed25519"),
        "{}",
        stdout(&out)
    );
    let created = env.challenge("alice");
    let out = env.run(&["deny", &created.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.status(&created.id).state, ChallengeState::Denied);
}

/// Issue 12: `backup-codes` prints a new set once (the old one is void) and the other device's
/// `pending` announces it; a used code is announced too.
#[test]
fn issue12_backup_codes_prints_a_set_and_notices_announce_sets_and_uses() {
    let env = Env::start();
    env.enroll("alice");
    let link = env.link("alice");
    let out = env.run(&["--profile", "second", "enroll", &link, "--name", "tablet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["backup-codes", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("New backup codes for alice"), "{text}");
    assert!(text.contains("keep them offline"), "{text}");
    let codes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().split_once(". ").map(|(_, c)| c))
        .filter(|c| c.len() == 19)
        .collect();
    assert_eq!(codes.len(), 3, "{text}");
    let out = env.run(&["backup-codes", "--count", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("count must be 1 to 50"),
        "{}",
        stderr(&out)
    );
    // A relying party uses one: the tablet hears of the new set and of the use.
    let used = http(
        "POST",
        &format!("{}/v1/users/alice/backup-codes/verify", env.url),
        &env.api_key,
        Some(json!({"code": codes[0], "context": {"service": "sshd", "host": "web01"}})),
    );
    assert_eq!(used["remaining"], 3, "{used}");
    let text = stdout(&env.run(&["--profile", "second", "pending"]));
    assert!(
        text.contains("A new set of 3 backup codes was issued for your account alice"),
        "{text}"
    );
    assert!(
        text.contains("A backup code of your account alice was used"),
        "{text}"
    );
    assert!(
        text.contains("host=web01") && text.contains("3 unused codes left"),
        "{text}"
    );
}

/// Newcomer walk n2: a device enrolled with one replica had no way to use another while that
/// one was down. `--server` does for one run, `set-server` keeps one once it has accepted the
/// device; a server that does not know the device changes nothing.
#[test]
fn issue13_another_server_for_one_run_or_kept_in_the_profile() {
    let env = Env::start();
    let out = env.run(&["enroll", &env.link("alice")]);
    assert!(out.status.success());
    let profile = env.dir().join("default.toml");
    // The server the device enrolled with goes away (its replica is down).
    let dead = "http://127.0.0.1:9";
    let text = fs::read_to_string(&profile).unwrap();
    fs::write(&profile, text.replace(&env.url, dead)).unwrap();
    let created = env.challenge("alice");
    let out = env.run(&["pending"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--server URL"), "{}", stderr(&out));

    // For one run: another server serves the device; the profile is unchanged.
    let out = env.run(&["--server", &env.url, "pending"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&created.id), "{}", stdout(&out));
    let code = created.code.clone().unwrap();
    let out = env.run(&[
        "approve",
        &created.id,
        "--code",
        &code,
        "--server",
        &env.url,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.status(&created.id).state, ChallengeState::Approved);
    assert!(fs::read_to_string(&profile).unwrap().contains(dead));
    // Where it has no meaning it is refused, not ignored.
    let out = env.run(&["--server", &env.url, "info"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("set-server"), "{}", stderr(&out));

    // A server that does not answer, or does not know this device, is not kept.
    let out = env.run(&["set-server", "http://127.0.0.1:1"]);
    assert!(!out.status.success());
    let other = TestServer::start();
    let out = env.run(&["set-server", &other.url()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("did not accept this device"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read_to_string(&profile).unwrap().contains(dead));
    assert_eq!(mode(&profile), 0o600);

    // A profile on https does not take a URL without it (attack review r11).
    let text = fs::read_to_string(&profile).unwrap();
    fs::write(&profile, text.replace(dead, "https://127.0.0.1:9")).unwrap();
    let out = env.run(&["set-server", &env.url]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));
    assert!(fs::read_to_string(&profile)
        .unwrap()
        .contains("https://127.0.0.1:9"));
    fs::write(&profile, text).unwrap();

    // Kept: later runs use it without --server.
    let out = env.run(&["set-server", &env.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = fs::read_to_string(&profile).unwrap();
    assert!(
        text.contains(&format!("server = \"{}\"", env.url)),
        "{text}"
    );
    assert_eq!(mode(&profile), 0o600);
    let again = env.challenge("alice");
    let out = env.run(&["pending"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&again.id), "{}", stdout(&out));
}

/// Issue 14: an approval asked on someone else's behalf (`action = "approval"`) is announced
/// first, with its message on a line of its own, before the other details; approving it needs
/// no code, and the signature covers the message (the relying party reads it approved).
#[test]
fn issue14_pending_shows_an_approval_s_message_first_and_approve_needs_no_code() {
    let env = Env::start();
    env.enroll("alice");
    let body = json!({
        "user": "alice",
        "context": {"action": "approval", "message": "Deploy 2.3 to prod", "requester": "ci-runner-7"},
        "code": false,
        "rp_nonce": b64::encode(random::rp_nonce().unwrap()),
    });
    let created: ChallengeCreated = serde_json::from_value(http(
        "POST",
        &format!("{}/v1/challenges", env.url),
        &env.api_key,
        Some(body),
    ))
    .unwrap();
    let out = env.run(&["pending"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("!!! APPROVAL REQUESTED from ci-runner-7"),
        "{text}"
    );
    assert_eq!(lines[1], ">>> Deploy 2.3 to prod", "{text}");
    assert!(text.contains("code:      not required"), "{text}");
    let out = env.run(&["approve", &created.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.status(&created.id).state, ChallengeState::Approved);
}
