//! Group commit on PostgreSQL (issue 13, speed): a [`Store::group`] is one transaction whose
//! operations each take effect or fail on their own, and which either commits everything the
//! operations reported or, failing, reports nothing (the contract of the trait).

use std::sync::Arc;

use super::{PgSettings, PgStore};
use crate::store::tests::enrolled;
use crate::store::{Store, StoreError};

fn database(test: &str) -> Option<String> {
    if !pushauth_testkit::PgCluster::available()
        && std::env::var_os(pushauth_testkit::REQUIRE_ENV).is_none()
    {
        eprintln!("SKIPPED {test}: PostgreSQL is not installed");
        return None;
    }
    Some(pushauth_testkit::test_database())
}

fn replica(url: &str) -> Arc<PgStore> {
    let settings = PgSettings::parse(url, None, Some(4)).unwrap();
    Arc::new(PgStore::open(&settings, true).unwrap().with_group_commit())
}

#[test]
fn issue13_a_group_is_one_transaction_and_a_failed_operation_spoils_nothing() {
    let Some(url) = database("issue13_a_group_is_one_transaction") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    let mut results: Vec<Result<bool, String>> = Vec::new();
    let mut seen_inside = None;
    a.group(&mut |g| {
        let mut push = |r: Result<bool, StoreError>| results.push(r.map_err(|e| e.to_string()));
        push(
            g.spend_device_nonce("d1", "n1", 1_000, 10_000)
                .map(|s| s.is_fresh()),
        );
        // The token `enrolled` used for d1 again: a constraint error inside the transaction.
        push(
            g.create_enrollment("alice", &[2; 32], 0, 10_000)
                .map(|()| true),
        );
        push(
            g.create_enrollment("alice", &[9; 32], 0, 10_000)
                .map(|()| true),
        );
        push(
            g.spend_device_nonce("d1", "n2", 1_000, 10_000)
                .map(|s| s.is_fresh()),
        );
        // An atomic unit that fails keeps nothing and spoils nothing either.
        let unit = g.atomic(&mut |u| {
            u.create_enrollment("alice", &[8; 32], 0, 10_000)?;
            u.create_enrollment("alice", &[2; 32], 0, 10_000)
        });
        push(unit.map(|()| true));
        push(
            g.spend_device_nonce("d1", "n3", 1_000, 10_000)
                .map(|s| s.is_fresh()),
        );
        // Not committed yet: the other replica sees none of it.
        seen_inside = Some(b.get_enrollment(&[9; 32]).unwrap().is_some());
    })
    .unwrap();
    assert_eq!(results[0], Ok(true));
    assert!(results[1].is_err(), "a duplicate token was stored");
    assert_eq!(results[2], Ok(true));
    assert_eq!(results[3], Ok(true));
    assert!(results[4].is_err(), "the unit's second write succeeded");
    assert_eq!(results[5], Ok(true));
    assert_eq!(
        seen_inside,
        Some(false),
        "a group's write was visible before its commit"
    );
    // Committed, all of what was reported and nothing of what failed.
    assert!(b.get_enrollment(&[9; 32]).unwrap().is_some());
    assert!(b.get_enrollment(&[8; 32]).unwrap().is_none());
    for nonce in ["n1", "n2", "n3"] {
        assert!(!b
            .spend_device_nonce("d1", nonce, 1_001, 10_000)
            .unwrap()
            .is_fresh());
    }
}

#[test]
fn issue13_a_group_that_cannot_commit_keeps_and_reports_nothing() {
    let Some(url) = database("issue13_a_group_that_cannot_commit") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    let pg = pushauth_testkit::PgCluster::shared("group").unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let mut first = None;
    let outcome = a.group(&mut |g| {
        first = Some(g.spend_device_nonce("d1", "n1", 1_000, 10_000).is_ok());
        // The group's session dies between two of its operations (a crash, a failover).
        pg.psql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE state = 'idle in transaction' AND datname = '{db}'"
        ));
        let _ = g.spend_device_nonce("d1", "n2", 1_000, 10_000);
    });
    assert_eq!(first, Some(true));
    let err = outcome.expect_err("a group without its session reported a commit");
    assert!(err.is_unavailable(), "{err:?}");
    // Nothing of it was kept: the first nonce is new to the other replica.
    assert!(b
        .spend_device_nonce("d1", "n1", 1_001, 10_000)
        .unwrap()
        .is_fresh());
    // And the store goes on working on a fresh connection.
    a.group(&mut |g| {
        assert!(g
            .spend_device_nonce("d1", "n4", 1_000, 10_000)
            .unwrap()
            .is_fresh())
    })
    .unwrap();
}

/// Attack review r8: an operation that panics inside a group (the job thread catches it and
/// runs the rest) left its savepoint's writes in place, and the group committed them while
/// its caller was told it failed. A panic must keep nothing of the group (the callers all
/// hear of a failure; a panic is a bug, and half an operation must never be committed).
#[test]
fn issue13_a_panic_inside_a_group_commits_nothing() {
    let Some(url) = database("issue13_a_panic_inside_a_group") else {
        return;
    };
    let (a, b) = (replica(&url), replica(&url));
    enrolled(a.as_ref(), "alice", "d1");
    let outcome = a.group(&mut |g| {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = g.atomic(&mut |u| {
                u.create_enrollment("alice", &[7; 32], 0, 10_000)?;
                panic!("a bug halfway through an operation");
            });
        }));
        assert!(panicked.is_err());
    });
    assert!(outcome.is_err(), "the group reported success: {outcome:?}");
    assert!(
        b.get_enrollment(&[7; 32]).unwrap().is_none(),
        "half an operation was committed"
    );
}
