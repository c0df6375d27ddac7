//! Issue 12: the grace window for repeated logins. A relying party that asks for it
//! (`grace_secs`) gets a login let in without a push when a device approved the same login
//! (same relying party, user, service, host, rhost and SSH key) within the window; anything
//! else, an expired window, a report, an end by the device or an administrator, or a revoked
//! device means a push again. The attacks come first: every way a login could ride on an
//! approval it should not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use pushauth_proto::{b64, context_digest, Context, Decision};
use serde_json::{json, Value};

/// An SSH login from 192.0.2.7 with key `SHA256:k1` to web01.
fn ssh() -> Context {
    [
        ("service", "sshd"),
        ("host", "web01"),
        ("rhost", "192.0.2.7"),
        ("ssh_key", "ssh-ed25519 SHA256:k1"),
        ("tty", "ssh"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn with(mut context: Context, key: &str, value: Option<&str>) -> Context {
    match value {
        Some(v) => context.insert(key.to_owned(), v.to_owned()),
        None => context.remove(key),
    };
    context
}

/// `POST /v1/challenges` for `user` with `context`, asking `grace` seconds when given.
fn login(
    srv: &Srv,
    key: &str,
    user: &str,
    context: &Context,
    grace: Option<Value>,
) -> (Resp, Challenge) {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let mut body = json!({"user": user, "context": context, "rp_nonce": b64::encode(nonce)});
    if let Some(grace) = grace {
        body["grace_secs"] = grace;
    }
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    let c = Challenge {
        id: r.json["id"].as_str().unwrap_or_default().to_owned(),
        user: user.to_owned(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: context_digest(context),
    };
    (r, c)
}

/// A login that must push (201, pending, sent to a device, no grace).
fn pushed(srv: &Srv, key: &str, user: &str, context: &Context, grace: Option<u64>) -> Challenge {
    let (r, c) = login(srv, key, user, context, grace.map(Value::from));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["state"], "pending", "expected a push: {}", r.text);
    assert!(r.json.get("grace").is_none(), "{}", r.text);
    assert!(!r.json["devices"].as_array().unwrap().is_empty());
    c
}

/// A login that a grace window lets in: approved at once, naming `of`, nothing pushed.
fn graced(srv: &Srv, key: &str, user: &str, context: &Context, secs: u64, of: &str) -> Value {
    let (r, _) = login(srv, key, user, context, Some(Value::from(secs)));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["state"], "approved", "expected grace: {}", r.text);
    assert_eq!(r.json["grace"]["of"], of, "{}", r.text);
    assert!(r.json["grace"]["until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.json["devices"], json!([]));
    assert_eq!(r.json["code"], Value::Null);
    r.json
}

/// A pushed login approved by `device`: the window's start.
fn approved(srv: &Srv, key: &str, device: &Device, context: &Context, grace: u64) -> Challenge {
    let c = pushed(srv, key, &device.user, context, Some(grace));
    let r = device.approve(srv, &c);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "approved");
    c
}

/// A server whose push limits leave room for the many open challenges these tests make.
fn start() -> Srv {
    start_with(|config| {
        config.limits.max_open_per_source = 100;
        config.limits.max_open_per_user = 100;
        config.limits.max_new_per_window = 1000;
        config.limits.max_new_per_user_window = 1000;
    })
}

fn count(srv: &Srv, kind: &str) -> usize {
    srv.audit_kinds().iter().filter(|k| *k == kind).count()
}

#[test]
fn issue12_a_burst_after_one_approval_takes_one_push() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 60);
    for _ in 0..20 {
        graced(&srv, &key, "alice", &ssh(), 60, &first.id);
    }
    // One push: one challenge created and sent; twenty grace logins, each audited with the
    // approval it rode on; the phone has nothing open.
    assert_eq!(count(&srv, "challenge_created"), 1);
    assert_eq!(count(&srv, "grace_login"), 20);
    let rows: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "grace_login")
        .collect();
    for row in &rows {
        assert_eq!(row["user"], "alice");
        assert_eq!(row["device_id"], phone.id.as_str());
        assert!(row["detail"].as_str().unwrap().contains(&first.id), "{row}");
    }
    let pending = phone.pending(&srv, 0);
    assert_eq!(pending.json["challenges"], json!([]), "{}", pending.text);
    // The grace challenge reads back approved, with no device answer and no signature: a
    // relying party that waits on it cannot mistake it for a device's approval.
    let id = rows[0]["challenge_id"].as_str().unwrap();
    let status = srv.status(&key, id);
    assert_eq!(status.json["state"], "approved", "{}", status.text);
    assert!(status.json.get("signature").is_none(), "{}", status.text);
    assert!(status.json.get("device_id").is_none(), "{}", status.text);
}

#[test]
fn issue12_another_key_address_service_host_user_or_rp_pushes() {
    let srv = start();
    let key = srv.rp_key();
    let other_rp = srv.rp_key();
    let phone = srv.device("alice");
    let _bob_phone = srv.device("bob");
    approved(&srv, &key, &phone, &ssh(), 300);
    for (what, context) in [
        (
            "another key",
            with(ssh(), "ssh_key", Some("ssh-ed25519 SHA256:k2")),
        ),
        ("no key", with(ssh(), "ssh_key", None)),
        ("another address", with(ssh(), "rhost", Some("192.0.2.8"))),
        ("no address", with(ssh(), "rhost", None)),
        ("another service", with(ssh(), "service", Some("sudo"))),
        ("another host", with(ssh(), "host", Some("web02"))),
    ] {
        let (r, _) = login(&srv, &key, "alice", &context, Some(json!(300)));
        assert_eq!(r.json["state"], "pending", "{what}: {}", r.text);
        assert!(r.json.get("grace").is_none(), "{what}");
    }
    pushed(&srv, &key, "bob", &ssh(), Some(300));
    // Another relying party (another host's key) never rides on this one's approvals.
    pushed(&srv, &other_rp, "alice", &ssh(), Some(300));
    // Another tty or a message does not make another login.
    let c = login(
        &srv,
        &key,
        "alice",
        &with(ssh(), "tty", Some("pts/9")),
        Some(json!(300)),
    )
    .0;
    assert_eq!(c.json["state"], "approved", "{}", c.text);
}

#[test]
fn issue12_grace_is_opt_in_on_both_ends() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    // An approval of a challenge that did not ask for grace opens no window.
    let plain = pushed(&srv, &key, "alice", &ssh(), None);
    assert_eq!(phone.approve(&srv, &plain).status, 200);
    pushed(&srv, &key, "alice", &ssh(), Some(300));
    // And a request that does not ask gets a push even with a window open (sudo without
    // sudo_grace is such a request: pam_push leaves grace_secs out).
    let sudo = with(ssh(), "service", Some("sudo"));
    let first = approved(&srv, &key, &phone, &sudo, 300);
    pushed(&srv, &key, "alice", &sudo, None);
    graced(&srv, &key, "alice", &sudo, 300, &first.id);
}

#[test]
fn issue12_the_window_ends_on_time_and_is_not_extended_by_grace_logins() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 2);
    graced(&srv, &key, "alice", &ssh(), 2, &first.id);
    // The window is the relying party's ask of now: a shorter ask closes it sooner.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    pushed(&srv, &key, "alice", &ssh(), Some(1));
    graced(&srv, &key, "alice", &ssh(), 2, &first.id);
    // The grace logins above do not move the window: it ends two seconds after the approval.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    pushed(&srv, &key, "alice", &ssh(), Some(2));
}

#[test]
fn issue12_a_report_ends_every_window_of_the_user_at_once() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 300);
    let other = with(ssh(), "rhost", Some("198.51.100.1"));
    let second = approved(&srv, &key, &phone, &other, 300);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    graced(&srv, &key, "alice", &other, 300, &second.id);
    // "This was not me" on a login from a third address ends both windows.
    let third = with(ssh(), "rhost", Some("203.0.113.5"));
    let suspicious = pushed(&srv, &key, "alice", &third, Some(300));
    let r = phone.answer(&srv, &suspicious, Decision::Report, "");
    assert_eq!(r.status, 200, "{}", r.text);
    pushed(&srv, &key, "alice", &ssh(), Some(300));
    pushed(&srv, &key, "alice", &other, Some(300));
}

#[test]
fn issue12_the_device_ends_every_window_with_a_signed_request() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 300);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    // Unsigned, or signed by a key that is not the device's: refused, nothing written.
    let before = srv.audit().len();
    let r = srv.call("DELETE", "/v1/device/grace", None, None);
    assert_eq!(r.status, 401, "{}", r.text);
    let impostor = Device {
        id: phone.id.clone(),
        user: "alice".into(),
        key: pushauth_proto::DeviceSigningKey::generate().unwrap(),
    };
    let r = impostor.send(&srv, "DELETE", "/v1/device/grace", b"");
    assert_error(&r, 401, "bad_signature");
    assert!(!srv.audit_kinds().contains(&"grace_ended".to_owned()));
    assert!(srv.audit().len() >= before);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    let r = phone.send(&srv, "DELETE", "/v1/device/grace", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, json!({"user": "alice", "ended": true}));
    let ended: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "grace_ended")
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["user"], "alice");
    assert_eq!(ended[0]["device_id"], phone.id.as_str());
    pushed(&srv, &key, "alice", &ssh(), Some(300));
    // The user's devices are told, as a notice naming the device that asked.
    let notices = phone.send(&srv, "GET", "/v1/device/notices?kinds=all", b"");
    let grace: Vec<&Value> = notices.json["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "grace_ended")
        .collect();
    assert_eq!(grace.len(), 1, "{}", notices.text);
    assert_eq!(grace[0]["via"], format!("device:{}", phone.id));
    // A new approval after the end opens a new window.
    let again = approved(&srv, &key, &phone, &ssh(), 300);
    graced(&srv, &key, "alice", &ssh(), 300, &again.id);
}

#[test]
fn issue12_the_administrator_ends_every_window() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 300);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    // Not with a relying party's key, nor without a token.
    let r = srv.rp(&key, "DELETE", "/v1/admin/users/alice/grace", None);
    assert_eq!(r.status, 401, "{}", r.text);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    let r = srv.admin("DELETE", "/v1/admin/users/alice/grace", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["ended"], true);
    pushed(&srv, &key, "alice", &ssh(), Some(300));
    let r = srv.admin("DELETE", "/v1/admin/users/nobody/grace", None);
    assert_error(&r, 404, "unknown_user");
    let notices = phone.send(&srv, "GET", "/v1/device/notices?kinds=all", b"");
    let kinds: Vec<&Value> = notices.json["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "grace_ended" && n["via"] == "admin")
        .collect();
    assert_eq!(kinds.len(), 1, "{}", notices.text);
    assert_eq!(kinds[0]["source"], "127.0.0.1");
    let ended: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "grace_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0]["detail"]
        .as_str()
        .unwrap()
        .contains("admin API from 127.0.0.1"));
}

#[test]
fn issue12_revoking_the_device_ends_the_windows_it_opened() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let laptop = srv.device("alice");
    let by_phone = approved(&srv, &key, &phone, &ssh(), 300);
    let other = with(ssh(), "rhost", Some("198.51.100.1"));
    let by_laptop = approved(&srv, &key, &laptop, &other, 300);
    graced(&srv, &key, "alice", &ssh(), 300, &by_phone.id);
    let r = srv.admin("DELETE", &format!("/v1/admin/devices/{}", phone.id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    pushed(&srv, &key, "alice", &ssh(), Some(300));
    // The laptop's window stays.
    graced(&srv, &key, "alice", &other, 300, &by_laptop.id);
}

#[test]
fn issue12_a_denied_mismatched_or_open_challenge_opens_no_window() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let denied = pushed(&srv, &key, "alice", &ssh(), Some(300));
    assert_eq!(phone.answer(&srv, &denied, Decision::Deny, "").status, 200);
    pushed(&srv, &key, "alice", &ssh(), Some(300));
    let wrong = pushed(&srv, &key, "alice", &ssh(), Some(300));
    let r = phone.answer(&srv, &wrong, Decision::Approve, "00");
    assert_eq!(r.json["state"], "denied", "{}", r.text);
    // Still open ones (several pushed above) open nothing either.
    pushed(&srv, &key, "alice", &ssh(), Some(300));
}

#[test]
fn issue12_bad_grace_asks_are_refused_clearly() {
    let srv = start();
    let key = srv.rp_key();
    srv.device("alice");
    let before = count(&srv, "challenge_created");
    for bad in [json!(0), json!(3601), json!(86400), json!(u64::MAX)] {
        let (r, _) = login(&srv, &key, "alice", &ssh(), Some(bad.clone()));
        assert_error(&r, 400, "malformed_request");
        assert!(
            r.json["message"]
                .as_str()
                .unwrap()
                .contains("grace_secs must be 1 to 3600"),
            "{bad}: {}",
            r.text
        );
    }
    for bad in [json!(-1), json!("60"), json!(1.5)] {
        let (r, _) = login(&srv, &key, "alice", &ssh(), Some(bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    // An enrollment approval must come from a device, never from a window.
    let add = with(ssh(), "action", Some("add_device"));
    let (r, _) = login(&srv, &key, "alice", &add, Some(json!(60)));
    assert_error(&r, 400, "malformed_request");
    assert!(r.text.contains("add_device"), "{}", r.text);
    assert_eq!(
        count(&srv, "challenge_created"),
        before,
        "nothing was created"
    );
    // A relying party out of its scope learns nothing more from a grace ask.
    let (_, scoped) = srv.rp_with(json!({"name": "kc", "users": ["kc/*"]}));
    let (r, _) = login(&srv, &scoped, "alice", &ssh(), Some(json!(0)));
    assert_error(&r, 403, "forbidden");
}

#[test]
fn issue12_the_end_from_cli_ends_every_window() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 300);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    // The real binary on the running server's store (SQLite takes a second writer).
    let store_args = srv.store_args();
    let run = |user: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pushauthd"))
            .args(["grace", "end", user])
            .args(&store_args)
            .output()
            .unwrap()
    };
    let out = run("alice");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ended every grace window of alice"), "{text}");
    let out = run("nobody");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no user"),
        "{out:?}"
    );
    let ended: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "grace_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0]["detail"]
        .as_str()
        .unwrap()
        .contains("pushauthd grace end"));
    pushed(&srv, &key, "alice", &ssh(), Some(300));
}

#[test]
fn issue12_a_user_locked_by_wrong_codes_gets_no_grace() {
    let srv = start_with(|config| {
        config.limits.max_open_per_source = 100;
        config.limits.max_open_per_user = 100;
        config.limits.max_code_failures = 1;
    });
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let first = approved(&srv, &key, &phone, &ssh(), 300);
    graced(&srv, &key, "alice", &ssh(), 300, &first.id);
    // Someone guesses a code on another login: the user is locked, and no window lets anyone
    // in until an administrator unlocks.
    let other = with(ssh(), "rhost", Some("203.0.113.5"));
    let guessed = pushed(&srv, &key, "alice", &other, Some(300));
    let r = phone.answer(&srv, &guessed, Decision::Approve, "00");
    assert_eq!(r.json["state"], "denied", "{}", r.text);
    let (r, _) = login(&srv, &key, "alice", &ssh(), Some(json!(300)));
    assert_error(&r, 429, "user_locked");
    assert_eq!(count(&srv, "grace_login"), 1);
}
