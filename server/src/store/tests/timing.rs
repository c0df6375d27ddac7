//! A login's store time on the run's backend (issue 13): an opt-in timing run, not a test of
//! speed (it asserts outcomes only). Run it with
//! `cargo test -p pushauth-server --lib login_store_time -- --ignored --nocapture`, and again
//! with `PUSHAUTH_TEST_STORE=postgresql`.
//!
//! Each login makes, one after the other on one thread, the store calls the handlers make:
//! the relying party's key look-up, the create, the device's signed fetch (nonce + list), its
//! acknowledge and answer (nonce + transition each), and the relying party's read.

use std::time::Instant;

use pushauth_proto::{ChallengeState, Decision};

use super::{answer, challenge, enrolled, store};
use crate::store::{Cas, Create};

const LOGINS: usize = 300;

#[test]
#[ignore = "a timing run: cargo test -p pushauth-server --lib login_store_time -- --ignored --nocapture"]
fn login_store_time() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    super::relying_party(&*store, [3; 32]);
    let approve = answer(Decision::Approve, ChallengeState::Approved);
    let started = Instant::now();
    for i in 0..LOGINS {
        let now = 1_000 + i as i64;
        let id = format!("c{i}");
        assert!(store.get_relying_party("rp").unwrap().is_some());
        assert!(matches!(
            challenge(&*store, &id, now, now + 60_000),
            Create::Created { .. }
        ));
        assert!(store
            .spend_device_nonce("d1", &format!("f{i}"), now, now + 60_000)
            .unwrap()
            .is_fresh());
        assert_eq!(store.device_challenges("d1", now).unwrap().0.len(), 1);
        assert!(store
            .spend_device_nonce("d1", &format!("k{i}"), now, now + 60_000)
            .unwrap()
            .is_fresh());
        assert!(matches!(
            store.acknowledge(&id, now).unwrap(),
            Cas::Changed(_)
        ));
        assert!(store
            .spend_device_nonce("d1", &format!("a{i}"), now, now + 60_000)
            .unwrap()
            .is_fresh());
        assert!(matches!(
            store.answer(&id, &approve, now).unwrap(),
            Cas::Changed(_)
        ));
        let (c, _) = store.get_challenge(&id, now).unwrap().unwrap();
        assert_eq!(c.state, ChallengeState::Approved);
    }
    let per_login = started.elapsed() / LOGINS as u32;
    let backend = if pushauth_testkit::on_postgres() {
        "postgresql"
    } else {
        "sqlite"
    };
    eprintln!("login store time ({backend}): {per_login:?} per login (10 calls, one thread)");
}
