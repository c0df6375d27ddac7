//! Issue 11, number matching that meets NIST SP 800-63B-4: codes of `code_digits` digits (6 by
//! default), their length in the device's view, and consecutive wrong codes counted per user
//! across challenges, in the store, locking pushes at `max_code_failures` until an
//! administrator unlocks or a right code resets the count.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use pushauth_proto::{b64, context_digest, Context, Decision};
use serde_json::{json, Value};

/// A challenge for alice from its own source address (`198.51.100.<n>`), so the per-source
/// push limits (10 unapproved per window) never decide these tests: only the code lock does.
fn create_from(srv: &Srv, key: &str, n: u32, extra: Value) -> (Resp, Option<Challenge>) {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let context: Context = [
        ("service", "sshd".to_owned()),
        ("host", "web01".to_owned()),
        ("rhost", format!("198.51.100.{n}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut body = json!({"user": "alice", "context": context, "rp_nonce": b64::encode(nonce)});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    let challenge = (r.status == 201).then(|| Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: "alice".to_owned(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: context_digest(&context),
    });
    (r, challenge)
}

/// A code of the right length that is not the challenge's.
fn wrong(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

/// Challenge `n` answered on `dev` with a wrong code of the right length: `code_mismatch`.
fn mismatch(srv: &Srv, key: &str, dev: &Device, n: u32) {
    let (r, c) = create_from(srv, key, n, json!({}));
    assert_eq!(r.status, 201, "challenge {n}: {}", r.text);
    let c = c.unwrap();
    let code = c.code.clone().unwrap();
    let r = dev.answer(srv, &c, Decision::Approve, &wrong(&code));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "denied");
    assert_eq!(r.json["reason"], "code_mismatch");
}

fn assert_code_locked(r: &Resp) {
    assert_error(r, 429, "user_locked");
    assert!(
        r.json["message"].as_str().unwrap().contains("wrong codes"),
        "{}",
        r.text
    );
}

fn locks(srv: &Srv) -> Vec<Value> {
    srv.audit()
        .into_iter()
        .filter(|e| e["kind"] == "user_locked")
        .collect()
}

#[test]
fn issue11_codes_have_six_digits_by_default_and_the_device_sees_the_length() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let code = c.code.clone().unwrap();
    assert_eq!(code.len(), 6, "{code}");
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    let listed = dev.pending(&srv, 0);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["challenges"][0]["code_length"], 6);
    assert!(
        !listed.text.contains(&format!("\"{code}\"")),
        "the device view never holds the code"
    );
    // The grouped form the login screens show is the same code.
    let grouped = pushauth_proto::challenge::group_code(&code);
    let r = dev.answer(&srv, &c, Decision::Approve, &grouped);
    assert_eq!(r.json["state"], "approved", "{}", r.text);

    // Without number matching: no length.
    let (r, c) = srv.create(&key, "alice", json!({"code": false}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["code"], Value::Null);
    let listed = dev.pending(&srv, 0);
    assert_eq!(listed.json["challenges"][0]["code_length"], Value::Null);
    assert_eq!(listed.json["challenges"][0]["code_required"], false);
    dev.answer(&srv, &c.unwrap(), Decision::Deny, "");

    // code_digits = 8, and 2 (weaker than 800-63B-4 asks, still allowed).
    for digits in [8u8, 2] {
        let srv = start_with(|config| {
            config.code_digits =
                pushauth_proto::challenge::CodeDigits::new(u64::from(digits)).unwrap();
        });
        let key = srv.rp_key();
        let dev = srv.device("alice");
        let c = srv.challenge(&key, "alice");
        assert_eq!(c.code.as_ref().unwrap().len(), usize::from(digits));
        assert_eq!(
            dev.pending(&srv, 0).json["challenges"][0]["code_length"],
            digits
        );
    }
}

#[test]
fn issue11_ten_mismatches_over_ten_challenges_lock_the_user_until_unlocked() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    // A source alice approved from: the known-source exemption must not lift the code lock.
    let (_, c) = create_from(&srv, &key, 200, json!({}));
    dev.approve(&srv, &c.unwrap());

    for n in 0..10 {
        assert!(locks(&srv).is_empty(), "locked after {n} mismatches");
        mismatch(&srv, &key, &dev, n);
    }
    let lock = locks(&srv);
    assert_eq!(lock.len(), 1, "{lock:?}");
    assert!(lock[0]["detail"]
        .as_str()
        .unwrap()
        .contains("10 wrong codes"));
    assert_eq!(lock[0]["user"], "alice");

    // The eleventh challenge is refused, from a new source and from the known one, with or
    // without number matching.
    let (r, _) = create_from(&srv, &key, 10, json!({}));
    assert_code_locked(&r);
    let (r, _) = create_from(&srv, &key, 200, json!({}));
    assert_code_locked(&r);
    let (r, _) = create_from(&srv, &key, 11, json!({"code": false}));
    assert_code_locked(&r);

    // Only the administrator unlocks; audited, and the next push goes through.
    let r = srv.rp(&key, "POST", "/v1/admin/users/alice/unlock", None);
    assert_error(&r, 401, "unauthorized");
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let (r, c) = create_from(&srv, &key, 12, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let unlocked: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "user_unlocked")
        .collect();
    assert!(
        unlocked[0]["detail"]
            .as_str()
            .unwrap()
            .contains("10 wrong code(s) forgotten"),
        "{unlocked:?}"
    );
    // The count starts again from zero: one mismatch does not lock.
    let c = c.unwrap();
    let code = c.code.clone().unwrap();
    dev.answer(&srv, &c, Decision::Approve, &wrong(&code));
    let (r, _) = create_from(&srv, &key, 13, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn issue11_a_right_code_after_nine_mismatches_resets_the_count() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    for n in 0..9 {
        mismatch(&srv, &key, &dev, n);
    }
    let (r, c) = create_from(&srv, &key, 9, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = dev.approve(&srv, &c.unwrap());
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    // Nine more mismatches after the reset: still not locked (18 in all, never 10 in a row).
    for n in 10..19 {
        mismatch(&srv, &key, &dev, n);
    }
    let (r, c) = create_from(&srv, &key, 19, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(locks(&srv).is_empty());
    // The tenth in a row locks.
    let c = c.unwrap();
    dev.answer(
        &srv,
        &c,
        Decision::Approve,
        &wrong(c.code.as_ref().unwrap()),
    );
    let (r, _) = create_from(&srv, &key, 20, json!({}));
    assert_code_locked(&r);
}

#[test]
fn issue11_deny_report_expiry_cancel_and_codeless_approvals_neither_count_nor_reset() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    for n in 0..9 {
        mismatch(&srv, &key, &dev, n);
    }
    // Deny, report (its own lock-out, of its source only), expiry, cancel, and an approval
    // without number matching (it proves nothing about a code).
    let (_, c) = create_from(&srv, &key, 30, json!({}));
    let r = dev.answer(&srv, &c.unwrap(), Decision::Deny, "");
    assert_eq!(r.json["reason"], "denied", "{}", r.text);
    let (_, c) = create_from(&srv, &key, 31, json!({}));
    let r = dev.answer(&srv, &c.unwrap(), Decision::Report, "");
    assert_eq!(r.json["reason"], "reported", "{}", r.text);
    let (_, c) = create_from(&srv, &key, 32, json!({"ttl_secs": 1}));
    let c = c.unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(srv.status(&key, &c.id).json["state"], "expired");
    let (_, c) = create_from(&srv, &key, 33, json!({}));
    let r = srv.rp(
        &key,
        "DELETE",
        &format!("/v1/challenges/{}", c.unwrap().id),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, c) = create_from(&srv, &key, 34, json!({"code": false}));
    let r = dev.answer(&srv, &c.unwrap(), Decision::Approve, "");
    assert_eq!(r.json["state"], "approved", "{}", r.text);

    // Nine counted, none of the above: a push still goes through...
    let (r, c) = create_from(&srv, &key, 35, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(locks(&srv)
        .iter()
        .all(|e| !e["detail"].as_str().unwrap().contains("wrong codes")));
    // ...and none of them reset the count either: the tenth mismatch locks.
    let c = c.unwrap();
    dev.answer(
        &srv,
        &c,
        Decision::Approve,
        &wrong(c.code.as_ref().unwrap()),
    );
    let (r, _) = create_from(&srv, &key, 36, json!({}));
    assert_code_locked(&r);
}

#[test]
fn issue11_the_count_survives_a_restart_and_the_cli_unlocks() {
    let mut srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    for n in 0..5 {
        mismatch(&srv, &key, &dev, n);
    }
    srv.restart();
    for n in 5..10 {
        mismatch(&srv, &key, &dev, n);
    }
    srv.restart();
    let (r, _) = create_from(&srv, &key, 10, json!({}));
    assert_code_locked(&r);

    let out = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["unlock", "alice"])
        .args(srv.store_args())
        .env_remove("PUSHAUTHD_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, _) = create_from(&srv, &key, 11, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let unlocked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "user_unlocked")
        .unwrap();
    assert!(
        unlocked["detail"]
            .as_str()
            .unwrap()
            .contains("pushauthd unlock"),
        "{unlocked}"
    );
}

#[test]
fn issue11_a_lower_max_code_failures_locks_sooner() {
    let srv = start_with(|config| config.limits.max_code_failures = 3);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    for n in 0..3 {
        mismatch(&srv, &key, &dev, n);
    }
    let (r, _) = create_from(&srv, &key, 3, json!({}));
    assert_code_locked(&r);
    // Other users are not affected.
    srv.device("bob");
    let c = srv.challenge(&key, "bob");
    assert!(c.code.is_some());
}

#[test]
fn issue11_code_settings_out_of_range_are_config_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, named) in [
        ("code_digits = 9\n", "code_digits"),
        ("code_digits = 1\n", "code_digits"),
        ("code_digits = \"six\"\n", "code_digits"),
        ("[limits]\nmax_code_failures = 0\n", "max_code_failures"),
    ] {
        let path = pushauth_testkit::write_file(dir.path(), "pushauthd.toml", text, 0o600);
        let data = dir.path().join("data");
        let out = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("PUSHAUTHD_DATA_DIR")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: {err}");
        assert!(err.contains(named), "{text}: {err}");
        // A refused config changes nothing: no data directory, no admin token.
        assert!(!data.exists(), "{text}");
    }
}
