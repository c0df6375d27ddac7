//! Issue 13, session 16: a relying party's long-poll on a challenge its replica created, and
//! that nothing changed since, starts waiting without reading it (`server/src/created.rs`).
//! Such a wait must still end with the truth: the answer given through either replica, a
//! change made through the other replica just before the wait began, and the same refusals
//! as a wait that reads (another relying party's challenge, a wrong or revoked key). Real
//! replicas (the built binary) over a temporary PostgreSQL cluster; skips without PostgreSQL
//! binaries (`PUSHAUTH_REQUIRE_POSTGRES=1` makes that a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod ha;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ha::{approve, assert_approved, client, start, wait_in_background, Replica, Site, TwoReplicas};
use pushauth_testkit::{call_with, PgCluster};
use serde_json::Value;

/// `GET /v1/challenges/{id}?wait=SECS` on `replica` with `key`: status, body and how long it
/// took.
fn wait_on(replica: &Replica, key: &str, id: &str, secs: u64) -> (u16, Value, Duration) {
    let started = Instant::now();
    let r = call_with(
        &pushauth_testkit::agent(),
        "GET",
        &format!("{}/v1/challenges/{id}?wait={secs}", replica.url),
        Some(&format!("Bearer {key}")),
        None,
    );
    (r.status, r.json, started.elapsed())
}

const UNREAD: &str = "pushauth_long_polls_started_unread";

/// A wait that starts from the view still returns the answer, given through this replica or
/// the other one; and the view was used (the counter says so), else this proves nothing.
#[test]
fn a_wait_that_starts_unread_returns_the_answer_given_through_either_replica() {
    let Some(site) = TwoReplicas::start_or_skip("ha unread wait", "unread") else {
        return;
    };
    let TwoReplicas {
        a,
        key,
        phone,
        phone_b,
        ..
    } = &site;
    let on_a = Arc::new(client(&[a], key));
    for (round, device) in [&phone, &phone_b, &phone, &phone_b].into_iter().enumerate() {
        let (login, waiting) = wait_in_background(&on_a, "alice");
        // Let the wait reach its long-poll, then answer.
        thread::sleep(Duration::from_millis(200));
        let answered = Instant::now();
        approve(device, &login);
        let (outcome, returned) = waiting.join().unwrap();
        assert_approved(&outcome);
        let took = returned.saturating_duration_since(answered);
        assert!(took < Duration::from_secs(2), "round {round}: {took:?}");
        assert_eq!(a.counter(UNREAD), round as u64 + 1, "round {round}");
    }
    // SQLite-like replicas aside, a wait of 0 always reads: it answers with the state.
    let login = start(&on_a, "alice");
    let (status, body, _) = wait_on(a, key, &login.id, 0);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "pending", "{body}");
    assert_eq!(a.counter(UNREAD), 4);
}

/// Attack: the challenge is cancelled, or approved, through B just before the relying party
/// waits on A, where A's view still says "pending" until B's notice arrives. The wait must
/// end at once with the truth, never sit until the expiry (a login that hangs), whichever
/// comes first on A: the notice or the wait.
#[test]
fn a_change_through_the_other_replica_just_before_the_wait_is_never_waited_out() {
    let Some(site) = TwoReplicas::start_or_skip("ha unread wait, changed elsewhere", "unreadraced")
    else {
        return;
    };
    let TwoReplicas {
        a, b, key, phone_b, ..
    } = &site;
    let on_a = client(&[a], key);
    let mut took = Vec::new();
    for round in 0..12 {
        let login = start(&on_a, "alice");
        let expected = if round % 2 == 0 {
            let r = call_with(
                &pushauth_testkit::agent(),
                "DELETE",
                &format!("{}/v1/challenges/{}", b.url, login.id),
                Some(&format!("Bearer {key}")),
                None,
            );
            assert_eq!(r.status, 200, "{}", r.text);
            "cancelled"
        } else {
            approve(phone_b, &login);
            "approved"
        };
        let (status, body, elapsed) = wait_on(a, key, &login.id, 20);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], expected, "round {round}: {body}");
        took.push(elapsed);
    }
    took.sort();
    eprintln!("changed through B, then waited on A: {took:?}");
    assert!(took[took.len() - 1] < Duration::from_secs(3), "{took:?}");
}

/// A wait that could start unread gives the refusals a reading one gives: another relying
/// party's challenge is not found, a wrong key and a revoked one are unauthorized, at once.
#[test]
fn a_wait_that_could_start_unread_refuses_what_a_read_refuses() {
    let Some(pg) = PgCluster::start_or_skip("ha unread wait, refusals") else {
        return;
    };
    let site = Site::on(&pg, "unreadrefused", "");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let other = site.api_key(&a);
    site.enroll(&a, "alice");
    let on_a = client(&[&a], &key);
    let other_on_a = client(&[&a], &other);
    // Both relying parties' records are kept on A now.
    let theirs = start(&other_on_a, "alice");
    let login = start(&on_a, "alice");

    let (status, body, took) = wait_on(&a, &other, &login.id, 10);
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (status, body, took) = wait_on(&a, &key, &theirs.id, 10);
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");

    let rp_id = key.split_once('.').unwrap().0;
    let wrong = format!("{rp_id}.{}", "A".repeat(43));
    let (status, body, took) = wait_on(&a, &wrong, &login.id, 10);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(a.counter(UNREAD), 0);

    // Revoked through B (which returns once every replica refuses it).
    let (status, body) = ha::admin(
        &b,
        "DELETE",
        &format!("/v1/admin/relying-parties/{rp_id}"),
        serde_json::json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body, took) = wait_on(&a, &key, &login.id, 10);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(a.counter(UNREAD), 0);
}
