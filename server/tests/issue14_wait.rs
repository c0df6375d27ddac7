//! Issue 14: a relying party waits on several of its challenges at once
//! (`GET /v1/challenges?ids=…&wait=N`), as an approval by someone else does: one challenge per
//! approver, the first answer decides.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::{Duration, Instant};

use common::*;
use pushauth_proto::Decision;
use serde_json::json;

fn wait_path(ids: &[&str], wait: u64) -> String {
    format!("/v1/challenges?ids={}&wait={wait}", ids.join(","))
}

#[test]
fn issue14_a_wait_on_several_challenges_returns_when_any_is_answered() {
    let srv = start();
    let key = srv.rp_key();
    let alice = srv.device("alice");
    let carol = srv.device("carol");
    let for_alice = srv.challenge(&key, "alice");
    let for_carol = srv.challenge(&key, "carol");
    let ids = [for_alice.id.as_str(), for_carol.id.as_str()];

    // Nothing answered: wait=0 gives both, pending, in the order asked.
    let r = srv.rp(&key, "GET", &wait_path(&ids, 0), None);
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.json["challenges"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], for_alice.id.as_str());
    assert_eq!(list[1]["id"], for_carol.id.as_str());
    assert!(list.iter().all(|c| c["state"] == "pending"), "{}", r.text);

    // Carol answers while the relying party waits: the wait returns with her approval.
    let started = Instant::now();
    let answered = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| srv.rp(&key, "GET", &wait_path(&ids, 20), None));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(carol.approve(&srv, &for_carol).status, 200);
        waiter.join().unwrap()
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken, not timed out"
    );
    assert_eq!(answered.status, 200, "{}", answered.text);
    let list = answered.json["challenges"].as_array().unwrap();
    assert_eq!(list[0]["state"], "pending");
    assert_eq!(list[1]["state"], "approved");
    assert_eq!(list[1]["device_id"], carol.id.as_str());
    assert!(list[1]["signature"].is_string());

    // A terminal one among them: answered at once, however long the wait asked.
    let started = Instant::now();
    let r = srv.rp(&key, "GET", &wait_path(&ids, 30), None);
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(alice);
}

#[test]
fn issue14_a_wait_on_several_challenges_refuses_bad_lists_and_others_challenges() {
    let srv = start();
    let key = srv.rp_key();
    let other = srv.rp_key();
    let _alice = srv.device("alice");
    let mine = srv.challenge(&key, "alice");
    let theirs = srv.challenge(&other, "alice");

    for (path, says) in [
        ("/v1/challenges?wait=1".to_owned(), "ids is required"),
        (
            "/v1/challenges?ids=&wait=1".to_owned(),
            "not a challenge id",
        ),
        (wait_path(&[&mine.id, &mine.id], 1), "twice"),
        (wait_path(&[&mine.id, "a b"], 1), "item 2"),
        (wait_path(&vec![mine.id.as_str(); 17], 1), "at most 16"),
        (format!("/v1/challenges?ids={}&wait=x", mine.id), "wait"),
    ] {
        let r = srv.rp(&key, "GET", &path, None);
        assert_error(&r, 400, "malformed_request");
        assert!(r.text.contains(says), "{path}: {}", r.text);
    }
    // Another relying party's challenge, or none: not found, as for one id.
    let r = srv.rp(&key, "GET", &wait_path(&[&mine.id, &theirs.id], 0), None);
    assert_error(&r, 404, "not_found");
    let r = srv.rp(
        &key,
        "GET",
        &wait_path(&[&mine.id, "nosuchchallenge"], 0),
        None,
    );
    assert_error(&r, 404, "not_found");
    // Without a key: unauthorized, before anything is looked at.
    let r = srv.call("GET", &wait_path(&[&mine.id], 0), None, None);
    assert_error(&r, 401, "unauthorized");
    // Nothing above changed the challenges.
    let r = srv.status(&key, &mine.id);
    assert_eq!(r.json["state"], "pending");
}

#[test]
fn issue14_a_wait_on_several_challenges_ends_at_the_earliest_expiry() {
    let srv = start();
    let key = srv.rp_key();
    let _alice = srv.device("alice");
    let _carol = srv.device("carol");
    let (r, short) = srv.create(&key, "alice", json!({"ttl_secs": 1}));
    assert_eq!(r.status, 201, "{}", r.text);
    let short = short.unwrap();
    let long = srv.challenge(&key, "carol");
    let started = Instant::now();
    let r = srv.rp(&key, "GET", &wait_path(&[&long.id, &short.id], 20), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(started.elapsed() < Duration::from_secs(10));
    let list = r.json["challenges"].as_array().unwrap();
    assert_eq!(list[0]["state"], "pending");
    assert_eq!(list[1]["state"], "expired");
    // A denial ends a wait as well (the first answer decides, whatever it is).
    let other = srv.challenge(&key, "alice");
    let answered = std::thread::scope(|scope| {
        let waiter =
            scope.spawn(|| srv.rp(&key, "GET", &wait_path(&[&long.id, &other.id], 20), None));
        std::thread::sleep(Duration::from_millis(300));
        let denied = _carol.answer(
            &srv,
            &long,
            Decision::Deny,
            long.code.as_deref().unwrap_or(""),
        );
        assert_eq!(denied.status, 200, "{}", denied.text);
        waiter.join().unwrap()
    });
    assert_eq!(
        answered.json["challenges"][0]["state"], "denied",
        "{}",
        answered.text
    );
}
