//! Reviewer r3's attacks on issue 11's wrong-code lock (NIST SP 800-63B-4: consecutive wrong
//! codes counted per user across challenges, pushes stopped at `max_code_failures`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use pushauth_proto::{b64, context_digest, Context, Decision};
use serde_json::json;

/// An open challenge for alice from its own source address (`198.51.100.<n>`), so the
/// per-source limits never decide: only the code lock does.
fn open_from(srv: &Srv, key: &str, n: u32) -> Challenge {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let context: Context = [
        ("service", "sshd".to_owned()),
        ("rhost", format!("198.51.100.{n}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let body = json!({"user": "alice", "context": context, "rp_nonce": b64::encode(nonce)});
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    assert_eq!(r.status, 201, "challenge {n}: {}", r.text);
    Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: "alice".to_owned(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: context_digest(&context),
    }
}

/// A code of the right length that is not the challenge's.
fn wrong(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

fn state(srv: &Srv, key: &str, c: &Challenge) -> String {
    let r = srv.rp(key, "GET", &format!("/v1/challenges/{}", c.id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["state"].as_str().unwrap().to_owned()
}

/// Challenges opened before the lock are still open when it falls. Before the fix they took
/// further guesses: with `max_code_failures` open at once from several sources (the per-user
/// ceiling is 30), the person's blind guesses went on past the limit, and a lucky right one
/// approved the login and reset the count. Now, once the user is locked, an approval (right
/// or wrong code, refused alike so the refusal tells nothing about the code) changes nothing
/// and counts nothing; deny and report still end the challenge.
#[test]
fn attack11_open_challenges_take_no_guess_after_the_lock() {
    let srv = start_with(|config| config.limits.max_code_failures = 3);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let open: Vec<Challenge> = (0..6).map(|n| open_from(&srv, &key, n)).collect();
    for c in &open[..3] {
        let r = dev.answer(&srv, c, Decision::Approve, &wrong(c.code.as_ref().unwrap()));
        assert_eq!(r.json["reason"], "code_mismatch", "{}", r.text);
    }
    // Locked: a fourth guess, wrong, is refused and the challenge stays open.
    let fourth = &open[3];
    let r = dev.answer(
        &srv,
        fourth,
        Decision::Approve,
        &wrong(fourth.code.as_ref().unwrap()),
    );
    assert_error(&r, 429, "user_locked");
    assert_eq!(state(&srv, &key, fourth), "pending");
    // The right code is refused the same way: no approval, no reset of the count.
    let fifth = &open[4];
    let refused = dev.approve(&srv, fifth);
    assert_error(&refused, 429, "user_locked");
    assert_eq!(
        refused.json, r.json,
        "the refusal must not tell right from wrong"
    );
    assert_eq!(state(&srv, &key, fifth), "pending");
    let r = srv.rp(
        &key,
        "POST",
        "/v1/challenges",
        Some(json!({"user": "alice", "rp_nonce": b64::encode([7u8; 32])})),
    );
    assert_error(&r, 429, "user_locked");
    // Deny still ends a challenge (it lets nobody in).
    let r = dev.answer(&srv, &open[5], Decision::Deny, "");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "denied");
    // The count stayed at the limit: the unlock forgets exactly 3.
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let unlocked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "user_unlocked")
        .unwrap();
    assert!(
        unlocked["detail"]
            .as_str()
            .unwrap()
            .contains("3 wrong code(s) forgotten"),
        "{unlocked}"
    );
    // After the unlock the open challenge can be approved with its right code.
    let r = dev.approve(&srv, fifth);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
}

/// Eight wrong answers sent at once to eight open challenges, with `max_code_failures = 3`:
/// exactly three are taken (the lock is read in the answer's own transaction), the other
/// five are refused, and the unlock forgets exactly three.
#[test]
fn attack11_parallel_wrong_answers_take_exactly_max_code_failures() {
    let srv = start_with(|config| config.limits.max_code_failures = 3);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let open: Vec<Challenge> = (0..8).map(|n| open_from(&srv, &key, n)).collect();
    let (srv_ref, dev_ref) = (&srv, &dev);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = open
            .iter()
            .map(|c| {
                scope.spawn(move || {
                    let r = dev_ref.answer(
                        srv_ref,
                        c,
                        Decision::Approve,
                        &wrong(c.code.as_ref().unwrap()),
                    );
                    (r.status, r.text)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let taken = answers
        .iter()
        .filter(|(status, text)| *status == 200 && text.contains("code_mismatch"))
        .count();
    let refused = answers
        .iter()
        .filter(|(status, text)| *status == 429 && text.contains("user_locked"))
        .count();
    assert_eq!((taken, refused), (3, 5), "{answers:?}");
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let unlocked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "user_unlocked")
        .unwrap();
    assert!(
        unlocked["detail"]
            .as_str()
            .unwrap()
            .contains("3 wrong code(s) forgotten"),
        "{unlocked}"
    );
}

/// The unlock through the admin API names where it came from (one admin token is shared, so
/// the address is the only "who" the server has); the CLI's names the CLI.
#[test]
fn attack11_an_unlock_is_audited_with_its_source_address() {
    let srv = start_with(|config| config.limits.max_code_failures = 1);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = open_from(&srv, &key, 0);
    dev.answer(
        &srv,
        &c,
        Decision::Approve,
        &wrong(c.code.as_ref().unwrap()),
    );
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let unlocked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "user_unlocked")
        .unwrap();
    let detail = unlocked["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("by admin API from 127.0.0.1;"),
        "{unlocked}"
    );
}
