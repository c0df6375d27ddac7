//! Issue 13, session 19: with several replicas a device often answers on a replica where no
//! relying party waits. There its answer goes ahead of new work in the store's queue when the
//! challenge was listed to that device on that replica (`server/src/shown.rs`), and only then:
//! an answer naming a challenge that replica never listed queues with everything else, as a
//! forged one must, and a listing lets only three of the device's requests go ahead. Real replicas (the built binary) over a temporary PostgreSQL cluster;
//! skips without PostgreSQL binaries (`PUSHAUTH_REQUIRE_POSTGRES=1` makes that a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod ha;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ha::{approve, assert_approved, client, wait_in_background, TwoReplicas};
use pushauth_proto::{ChallengeState, Decision};

const AHEAD: &str = "pushauth_store_jobs_queued_ahead";

#[test]
fn an_answer_goes_ahead_on_the_other_replica_only_for_a_challenge_it_listed() {
    let Some(site) = TwoReplicas::start_or_skip("ha answers ahead", "ahead") else {
        return;
    };
    let TwoReplicas {
        a,
        b,
        key,
        phone,
        phone_b,
        ..
    } = &site;
    let on_a = Arc::new(client(&[a], key));

    // Listed to the phone on B, answered on B: B runs the answer ahead (nothing waits on B).
    let before = b.counter(AHEAD);
    let (login, waiting) = wait_in_background(&on_a, "alice");
    thread::sleep(Duration::from_millis(200));
    approve(phone_b, &login);
    assert_approved(&waiting.join().unwrap().0);
    assert_eq!(b.counter(AHEAD), before + 1, "the answer on B went ahead");

    // Listed on A only, answered on B: B never listed it, so the answer queues as any
    // request whose id B cannot vouch for (a forged one's).
    let before = b.counter(AHEAD);
    let (login, waiting) = wait_in_background(&on_a, "alice");
    let seen_on_a = phone.find(&login.id);
    let status = phone_b
        .respond(
            &seen_on_a,
            Decision::Approve,
            login.code.as_deref().unwrap(),
        )
        .unwrap();
    assert_eq!(status.state, ChallengeState::Approved);
    assert_approved(&waiting.join().unwrap().0);
    assert_eq!(
        b.counter(AHEAD),
        before,
        "an answer to a challenge B never listed"
    );

    // A device flooding requests on its own listed challenge gets only the listing's few
    // ahead of other users' logins; the rest queue (and the answer still lands).
    let before = b.counter(AHEAD);
    let (login, waiting) = wait_in_background(&on_a, "alice");
    let listed = phone_b.find(&login.id);
    for _ in 0..6 {
        phone_b.ack(&login.id).unwrap();
    }
    assert_eq!(
        b.counter(AHEAD),
        before + 3,
        "three of six acknowledgements"
    );
    let status = phone_b
        .respond(&listed, Decision::Approve, login.code.as_deref().unwrap())
        .unwrap();
    assert_eq!(status.state, ChallengeState::Approved);
    assert_approved(&waiting.join().unwrap().0);
    assert_eq!(b.counter(AHEAD), before + 3, "the budget was spent");
}

/// Session 23: a relying party's long-poll woken by an acknowledgement made on its replica
/// answers with the committed record, without a store job of its own (it read the challenge
/// again: a job and a statement more for every login from the phone app, which acknowledges
/// before it answers). The acknowledgement itself goes ahead, as the change a waiting relying
/// party awaits.
#[test]
fn an_acknowledgement_made_here_answers_the_waiting_relying_party_without_a_read() {
    let Some(site) = TwoReplicas::start_or_skip("ha acknowledgement without a read", "ackread")
    else {
        return;
    };
    let TwoReplicas { a, key, phone, .. } = &site;
    let login = ha::start(&client(&[a], key), "alice");
    let url = format!("{}/v1/challenges/{}?wait=20", a.url, login.id);
    let bearer = format!("Bearer {key}");
    let waiting = thread::spawn(move || {
        let agent = pushauth_testkit::agent();
        pushauth_testkit::call_with(&agent, "GET", &url, Some(&bearer), None)
    });
    thread::sleep(Duration::from_millis(300));
    let before = a.counter(AHEAD);
    phone.ack(&login.id).unwrap();
    let answered = waiting.join().unwrap();
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert_eq!(answered.json["state"], "acknowledged", "{}", answered.text);
    assert_eq!(
        a.counter(AHEAD),
        before + 1,
        "only the acknowledgement ran (ahead); the long-poll read nothing"
    );
}
