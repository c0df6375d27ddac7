//! The counts replicas share (`store::counts`, issue 13 review), on every backend: each claim
//! and count is atomic (concurrent callers cannot both win), and the sweeper, pruning and
//! unlocking bound the tables; and the fingerprints of the site's keys.

use std::sync::{Arc, Barrier};

use super::{enrolled, store, TestStore};

/// Runs `op` on 8 threads released at once against one store; their results.
fn race<T: Send + 'static>(op: fn(&TestStore) -> T) -> Vec<T> {
    let store = Arc::new(store());
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                op(&store)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn issue13_an_offline_batch_is_claimed_once_until_released_or_swept() {
    let store = store();
    assert!(store.claim_offline_batch("c1", 10_000).unwrap());
    assert!(!store.claim_offline_batch("c1", 20_000).unwrap());
    assert!(store.claim_offline_batch("c2", 10_000).unwrap());
    store.release_offline_batch("c1").unwrap();
    assert!(store.claim_offline_batch("c1", 30_000).unwrap());
    // The sweeper deletes claims whose keep time has passed, and only those.
    store.sweep(10_000, 100).unwrap();
    assert_eq!(store.count("SELECT count(*) FROM offline_batches"), 1);
    assert!(!store.claim_offline_batch("c1", 40_000).unwrap());
}

#[test]
fn issue13_concurrent_claims_of_one_batch_have_one_winner() {
    let won = race(|store| store.claim_offline_batch("c1", 10_000).unwrap())
        .into_iter()
        .filter(|won| *won)
        .count();
    assert_eq!(won, 1);
}

#[test]
fn issue13_offline_reports_are_recorded_once_and_pruned_with_the_audit() {
    let store = store();
    assert!(store.record_offline_report("d1", "rp1", 3, 1_000).unwrap());
    assert!(!store.record_offline_report("d1", "rp1", 3, 2_000).unwrap());
    assert!(store.record_offline_report("d1", "rp2", 3, 2_000).unwrap());
    assert!(store.record_offline_report("d1", "rp1", 2, 5_000).unwrap());
    store.prune(None, Some(3_000), 100).unwrap();
    assert_eq!(store.count("SELECT count(*) FROM offline_reports"), 1);
    // A copy older than the audit it would repeat is recorded again.
    assert!(store.record_offline_report("d1", "rp1", 3, 6_000).unwrap());
}

#[test]
fn issue13_offline_checks_count_per_device_and_rp_until_the_user_is_unlocked() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    enrolled(&*store, "bob", "dev2");
    for n in 1..=3 {
        assert_eq!(store.count_offline_check("d1", "rp1").unwrap(), n);
    }
    store.uncount_offline_check("d1", "rp1").unwrap();
    assert_eq!(store.count_offline_check("d1", "rp1").unwrap(), 3);
    assert_eq!(store.count_offline_check("d1", "rp2").unwrap(), 1);
    assert_eq!(store.count_offline_check("dev2", "rp1").unwrap(), 1);
    // Never below zero.
    store.uncount_offline_check("d3", "rp1").unwrap();
    assert!(store.unlock_user("alice", "test", 5_000).unwrap());
    assert_eq!(store.count_offline_check("d1", "rp1").unwrap(), 1);
    assert_eq!(store.count_offline_check("dev2", "rp1").unwrap(), 2);
}

#[test]
fn issue13_concurrent_offline_checks_are_each_counted() {
    let mut seen = race(|store| store.count_offline_check("d1", "rp1").unwrap());
    seen.sort_unstable();
    assert_eq!(seen, (1..=8).collect::<Vec<u64>>());
}

#[test]
fn issue13_push_changes_count_in_a_window_that_the_sweeper_ends() {
    let store = store();
    for n in 1..=3 {
        assert_eq!(store.count_push_change("d1", 1_000, 10_000).unwrap(), n);
    }
    assert_eq!(store.count_push_change("d2", 2_000, 10_000).unwrap(), 1);
    // Still the window that began at 1,000; a new one at its end.
    assert_eq!(store.count_push_change("d1", 10_999, 10_000).unwrap(), 4);
    assert_eq!(store.count_push_change("d1", 11_000, 10_000).unwrap(), 1);
    // d2's window ended at 12,000; d1's runs to 21,000.
    store.sweep(12_000, 100).unwrap();
    assert_eq!(store.count("SELECT count(*) FROM push_changes"), 1);
    assert_eq!(store.count_push_change("d1", 12_000, 10_000).unwrap(), 2);
}

#[test]
fn issue13_the_first_fingerprint_of_a_site_key_is_kept() {
    let store = store();
    assert_eq!(store.pin_site_key("vapid", "aa", 1_000).unwrap(), "aa");
    assert_eq!(store.pin_site_key("vapid", "bb", 2_000).unwrap(), "aa");
    assert_eq!(store.pin_site_key("offline", "cc", 2_000).unwrap(), "cc");
    assert_eq!(store.count("SELECT count(*) FROM site_keys"), 2);
}
