//! Issue 12: a backup code typed at the prompt instead of Enter, through the flow with a
//! scripted conversation against a real pushauthd (the real-PAM suite proves the wiring in
//! sshd). No device answers in any of these.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use pam_push::authenticate::{authenticate, ConvFailed, Conversation, Level, Log, PamCode, PamEnv};
use pam_push::config::{Config, Ownership};
use pam_push::context::LoginFacts;
use pam_push::policy::{GroupId, UserGroup};
use pam_push::system::LookupFailed;
use pushauth_testkit::TestServer;
use serde_json::json;
use zeroize::Zeroizing;

#[derive(Default)]
struct Conv {
    replies: VecDeque<String>,
    prompts: Vec<String>,
    shown: Vec<String>,
    /// Runs at the first prompt (e.g. stops the server before the code is checked).
    at_prompt: Option<Box<dyn FnOnce()>>,
}

impl Conversation for Conv {
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        self.prompts.push(text.to_owned());
        if let Some(f) = self.at_prompt.take() {
            f();
        }
        Ok(Zeroizing::new(self.replies.pop_front().unwrap_or_default()))
    }
    fn info(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.shown.push(text.to_owned());
        Ok(())
    }
    fn error(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.shown.push(text.to_owned());
        Ok(())
    }
}

struct Env;

impl PamEnv for Env {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: Some("sshd".into()),
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

#[derive(Default)]
struct Lines(Vec<String>);

impl Log for Lines {
    fn log(&mut self, _level: Level, line: &str) {
        self.0.push(line.to_owned());
    }
}

fn me() -> Ownership {
    Ownership {
        uid: pushauth_testkit::euid(),
    }
}

fn config(server: &TestServer, extra: &str) -> Config {
    Config::parse(
        Path::new("/test/pam_push.conf"),
        &format!(
            "server = \"{}\"\napi_key = \"{}\"\ntimeout = 20\n{extra}",
            server.url(),
            server.api_key()
        ),
        me(),
    )
    .unwrap()
}

fn login(cfg: &Config, typed: &str) -> (PamCode, Conv, Lines) {
    login_with(cfg, typed, None)
}

fn login_with(
    cfg: &Config,
    typed: &str,
    at_prompt: Option<Box<dyn FnOnce()>>,
) -> (PamCode, Conv, Lines) {
    let client = pushauth_client::Client::new(cfg.client_config()).unwrap();
    let mut conv = Conv {
        replies: vec![typed.to_owned()].into(),
        at_prompt,
        ..Conv::default()
    };
    let mut log = Lines::default();
    let code = authenticate(
        cfg,
        &client,
        "alice",
        &Env,
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    (code, conv, log)
}

fn codes(server: &TestServer) -> Vec<String> {
    let r = server.admin(
        "POST",
        "/v1/admin/users/alice/backup-codes",
        Some(json!({"count": 3})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn issue12_a_code_at_the_prompt_lets_in_once_and_shows_its_replacement() {
    let server = TestServer::start();
    let phone = server.enroll("alice", "Pixel 7");
    let set = codes(&server);
    let cfg = config(&server, "");
    let started = Instant::now();
    let (code, conv, log) = login(&cfg, &set[0].to_lowercase());
    assert_eq!(code, PamCode::Success, "{:?} {:?}", conv.shown, log.0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no wait for the push"
    );
    assert!(
        conv.prompts[0].contains("or type a backup code"),
        "{:?}",
        conv.prompts
    );
    // The replacement is shown inside a prompt (sshd holds messages back).
    let shown = &conv.prompts[1];
    assert!(
        shown.starts_with("Your backup code was used. Your new backup code: "),
        "{shown}"
    );
    let replacement = shown
        .split("new backup code: ")
        .nth(1)
        .and_then(|r| r.split(". Store").next())
        .unwrap()
        .to_owned();
    assert_eq!(replacement.len(), 19, "{replacement}");
    let line = log.0.join("\n");
    assert!(line.contains("outcome=backup_code_used"), "{line}");
    assert!(
        !line.contains(&set[0]) && !line.contains(&set[0].to_lowercase()),
        "{line}"
    );
    assert!(!line.contains(&replacement), "{line}");
    // The push was cancelled: nothing is left for the phone.
    assert!(phone.client.pending(0).unwrap().is_empty());
    // The same code again: refused, with a clear message.
    let (code, conv, log) = login(&cfg, &set[0]);
    assert_eq!(code, PamCode::AuthErr);
    assert!(
        conv.prompts[1].contains("that backup code was not accepted"),
        "{:?}",
        conv.prompts
    );
    assert!(log.0.join("\n").contains("outcome=backup_code_refused"));
    // The replacement works.
    let (code, _, _) = login(&cfg, &replacement);
    assert_eq!(code, PamCode::Success);
}

#[test]
fn issue12_codes_are_refused_for_pinned_users_and_when_turned_off() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    let _phone = server.enroll("alice", "Pixel 7");
    let set = codes(&server);
    let pins = tempfile::tempdir().unwrap();
    std::fs::set_permissions(pins.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = pushauth_proto::DeviceSigningKey::from_seed(&[5; 32]).public_key();
    std::fs::write(
        pins.path().join("alice"),
        format!("ed25519 {} phone\n", key.to_b64()),
    )
    .unwrap();
    let pinned = format!("authorized_devices = \"{}\"\n", pins.path().display());
    for extra in [pinned.clone(), "backup_codes = false\n".to_owned()] {
        let cfg = config(&server, &extra);
        let (code, conv, log) = login(&cfg, &set[0]);
        assert_eq!(code, PamCode::AuthErr, "{extra}");
        assert!(
            !conv.prompts[0].contains("backup code"),
            "not offered: {}",
            conv.prompts[0]
        );
        assert!(
            conv.prompts[1].contains("backup codes are not accepted"),
            "{:?}",
            conv.prompts
        );
        assert!(
            log.0.join("\n").contains("outcome=backup_code_not_allowed"),
            "{:?}",
            log.0
        );
    }
    // The code was never sent: it still works where codes are taken, pinned users included
    // when the administrator says so.
    let cfg = config(&server, &format!("{pinned}pinned_backup_codes = true\n"));
    let (code, conv, _) = login(&cfg, &set[0]);
    assert_eq!(code, PamCode::Success, "{:?}", conv.prompts);
}

#[test]
fn issue12_a_server_lost_while_the_code_is_checked_never_lets_in_even_with_safe() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let server = Rc::new(RefCell::new(TestServer::start()));
    let _phone = server.borrow().enroll("alice", "Pixel 7");
    let set = codes(&server.borrow());
    let cfg = config(&server.borrow(), "server_unreachable = \"safe\"\n");
    let stop = Rc::clone(&server);
    let (code, conv, log) = login_with(
        &cfg,
        &set[0],
        Some(Box::new(move || stop.borrow_mut().stop())),
    );
    assert_eq!(code, PamCode::AuthErr, "{:?}", log.0);
    assert!(
        conv.prompts[1].contains("could not be checked"),
        "{:?}",
        conv.prompts
    );
    let lines = log.0.join("\n");
    assert!(lines.contains("outcome=backup_code_error"), "{lines}");
    assert!(!lines.contains(&set[0]), "{lines}");
}

#[test]
fn issue12_a_user_whose_devices_are_all_revoked_can_still_use_a_code() {
    // The lost-phone case: the admin revoked the phone, so no push can be sent; the prompt
    // asks for a backup code instead of failing before any prompt.
    let server = TestServer::start();
    let phone = server.enroll("alice", "Pixel 7");
    let set = codes(&server);
    let r = server.admin(
        "DELETE",
        &format!("/v1/admin/devices/{}", phone.profile.device_id),
        None,
    );
    assert!(r.status < 300, "{} {}", r.status, r.text);
    let cfg = config(&server, "");
    // Enter: refused as before, with the same message.
    let (code, conv, log) = login(&cfg, "");
    assert_eq!(code, PamCode::AuthErr);
    assert!(
        conv.prompts[0].contains("no device can approve this login. Type a backup code"),
        "{:?}",
        conv.prompts
    );
    assert!(
        conv.shown
            .iter()
            .any(|m| m.contains("no enrolled device for this user")),
        "{:?}",
        conv.shown
    );
    assert!(log.0.join("\n").contains("outcome=no_device_denied"));
    // A code: in, and its replacement shown.
    let (code, conv, log) = login(&cfg, &set[1]);
    assert_eq!(code, PamCode::Success, "{:?} {:?}", conv.prompts, log.0);
    assert!(conv.prompts[1].starts_with("Your backup code was used."));
    assert!(log.0.join("\n").contains("outcome=backup_code_used"));
    // A wrong one: refused with the message.
    let (code, conv, _) = login(&cfg, "AAAA-BBBB-CCCC-DDDD");
    assert_eq!(code, PamCode::AuthErr);
    assert!(
        conv.prompts[1].contains("not accepted") || conv.prompts[1].contains("not a backup code"),
        "{:?}",
        conv.prompts
    );
    // With no_device = "allow" the module lets in without asking (unchanged).
    let open = config(&server, "no_device = \"allow\"\n");
    let (code, conv, _) = login(&open, "");
    assert_eq!(code, PamCode::Success);
    assert!(conv.prompts.is_empty(), "{:?}", conv.prompts);
}
