//! The store's behaviour, the same on every backend (issue 13): these tests run on SQLite, and
//! on PostgreSQL when `PUSHAUTH_TEST_STORE=postgresql` (each test then gets a database of its
//! own in the test process's one cluster). SQLite-only matters (WAL, checkpoints, file modes,
//! group commit) are tested in `sqlite::tests`; PostgreSQL-only ones (several replicas on one
//! database, NOTIFY, advisory locks) in `postgres::tests`.

mod counts;
mod timing;

use std::ops::Deref;

use pushauth_proto::{ChallengeState, Context, Decision};

use crate::clock::Millis;
use crate::config::StoreConfig;
use crate::limits::{PushState, Refusal};
use crate::store::postgres::PgSettings;
use crate::store::{
    AnswerRecord, AuditEntry, Cas, CodeTally, Create, NewChallenge, NewDevice, Pruned, Redeem,
    SharedStore, Spent, Store, Swept,
};

/// A store for one test on the backend of this run, with a way to count rows from outside.
pub(crate) struct TestStore {
    store: SharedStore,
    /// SQLite: the database file; PostgreSQL: the database's URL.
    place: Place,
    _dir: tempfile::TempDir,
}

enum Place {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Deref for TestStore {
    type Target = dyn Store + Send + Sync;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl TestStore {
    /// `sql` (a `SELECT count(*)` in SQL both backends take) run on a connection of its own.
    pub(crate) fn count(&self, sql: &str) -> i64 {
        match &self.place {
            Place::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.query_row(sql, [], |r| r.get(0)).unwrap()
            }
            Place::Postgres(url) => {
                let db = url.rsplit('/').next().unwrap();
                let pg = pushauth_testkit::PgCluster::shared("store tests").unwrap();
                pg.psql_db(db, sql).parse().unwrap()
            }
        }
    }
}

/// A fresh store on this run's backend.
pub(crate) fn store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    if pushauth_testkit::on_postgres() {
        let url = pushauth_testkit::test_database();
        let settings = PgSettings::parse(&url, None, None).unwrap();
        let opened =
            crate::store::open::open(&StoreConfig::Postgres(Box::new(settings)), &data, true)
                .unwrap();
        return TestStore {
            store: opened.store,
            place: Place::Postgres(url),
            _dir: dir,
        };
    }
    let opened = crate::store::open::open(&StoreConfig::DataDir, &data, true).unwrap();
    TestStore {
        store: opened.store,
        place: Place::Sqlite(data.join(crate::store::sqlite::DB_FILE)),
        _dir: dir,
    }
}

/// Enrolls `device` for `user` through a token (and checks the token is then used).
pub(crate) fn enrolled(store: &dyn Store, user: &str, device: &str) {
    enrolled_with(store, user, device, [device.len() as u8; 32]);
}

/// [`enrolled`] with the enrollment token's hash given (several devices of the same name length
/// in one database).
pub(crate) fn enrolled_with(store: &dyn Store, user: &str, device: &str, hash: [u8; 32]) {
    store.create_enrollment(user, &hash, 0, 10_000).unwrap();
    let new = NewDevice {
        id: device.into(),
        name: "phone".into(),
        alg: "ed25519".into(),
        public_key: "k".into(),
    };
    assert!(matches!(
        store.redeem_enrollment(&hash, &new, None, 1).unwrap(),
        Redeem::Enrolled(_)
    ));
    assert_eq!(
        store.redeem_enrollment(&hash, &new, None, 2).unwrap(),
        Redeem::Used
    );
}

/// Stores relying party `rp` (every user, no other right) with `key_hash`.
pub(crate) fn relying_party(store: &dyn Store, key_hash: [u8; 32]) {
    let rp = crate::store::RelyingPartyRecord {
        id: "rp".into(),
        name: "rp".into(),
        key_hash,
        users: vec!["*".into()],
        enroll: false,
        bootstrap: false,
        created_at: 0,
        revoked_at: None,
    };
    store.create_relying_party(&rp, 0).unwrap();
}

/// A challenge for alice from relying party `rp`, every limit allowing it.
pub(crate) fn challenge(store: &dyn Store, id: &str, now: Millis, expires_at: Millis) -> Create {
    store
        .create_challenge(
            &new_challenge(id, now, expires_at),
            std::sync::Arc::new(move |_| Ok(())),
        )
        .unwrap()
}

/// What [`challenge`] creates: for every active device of alice, code 42.
pub(crate) fn new_challenge(id: &str, now: Millis, expires_at: Millis) -> NewChallenge {
    NewChallenge {
        id: id.into(),
        user: "alice".into(),
        rp_id: "rp".into(),
        rp_key: None,
        context: Context::new(),
        context_digest: [0; 32],
        rp_nonce: vec![1; 32],
        code: Some("42".into()),
        requested_devices: None,
        created_at: now,
        expires_at,
        window_start: now - 600_000,
        known_since: crate::limits::known_since(now),
        source: String::new(),
    }
}

/// An answer of device d1 with the code 42.
pub(crate) fn answer(decision: Decision, state: ChallengeState) -> AnswerRecord {
    AnswerRecord {
        device_id: "d1".into(),
        state,
        decision,
        reason: None,
        typed_code: "42".into(),
        responded_at: "2026-01-01T00:00:00Z".into(),
        signature: "sig".into(),
        lock_user_until: None,
        code_tally: CodeTally::Keep,
    }
}

/// An audit entry of `kind` alone.
pub(crate) fn note(kind: &'static str) -> AuditEntry {
    AuditEntry {
        kind,
        ..AuditEntry::default()
    }
}

#[test]
fn transitions_are_compare_and_set() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    assert!(matches!(
        challenge(&*store, "c1", 1_000, 60_000),
        Create::Created { .. }
    ));
    assert!(
        matches!(store.acknowledge("c1", 2_000).unwrap(), Cas::Changed(c) if c.state == ChallengeState::Acknowledged)
    );
    let approve = answer(Decision::Approve, ChallengeState::Approved);
    assert!(
        matches!(store.answer("c1", &approve, 3_000).unwrap(), Cas::Changed(c) if c.state == ChallengeState::Approved)
    );
    // terminal: nothing moves it
    assert!(matches!(
        store.answer("c1", &approve, 3_001).unwrap(),
        Cas::WrongState(_)
    ));
    assert!(matches!(
        store.cancel("c1", None, 3_002).unwrap(),
        Cas::WrongState(_)
    ));
    assert!(matches!(
        store.acknowledge("c1", 3_003).unwrap(),
        Cas::WrongState(_)
    ));
    assert!(matches!(
        store.cancel("nope", None, 3_004).unwrap(),
        Cas::Missing
    ));
    let (c, expired) = store.get_challenge("c1", 100_000).unwrap().unwrap();
    assert_eq!((c.state, expired), (ChallengeState::Approved, false));
    assert_eq!(c.device_id.as_deref(), Some("d1"));
}

#[test]
fn expiry_wins_over_late_writes_and_reads() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    challenge(&*store, "c1", 1_000, 5_000);
    challenge(&*store, "c2", 1_000, 5_000);
    challenge(&*store, "c3", 1_000, 5_000);
    let approve = answer(Decision::Approve, ChallengeState::Approved);
    assert!(
        matches!(store.answer("c1", &approve, 5_000).unwrap(), Cas::Expired(c) if c.state == ChallengeState::Expired)
    );
    let (c, expired) = store.get_challenge("c2", 5_000).unwrap().unwrap();
    assert_eq!((c.state, expired), (ChallengeState::Expired, true));
    let (c, expired) = store.get_challenge("c2", 6_000).unwrap().unwrap();
    assert_eq!((c.state, expired), (ChallengeState::Expired, false));
    let (open, expired) = store.device_challenges("d1", 4_999).unwrap();
    assert_eq!((open.len(), expired.len()), (1, 0));
    let swept = store.sweep(5_000, 100).unwrap();
    assert!(!swept.more);
    assert_eq!(swept.expired.len(), 1);
    assert_eq!(swept.expired[0].id, "c3");
    assert_eq!(swept.expired[0].devices, vec!["d1".to_owned()]);
    assert_eq!(store.open_challenges(5_000).unwrap(), 0);
    let expired_events = store
        .list_audit(100, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "challenge_expired")
        .count();
    assert_eq!(expired_events, 3);
}

#[test]
fn a_sweep_works_off_a_backlog_in_bounded_steps() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    for i in 0..5 {
        challenge(&*store, &format!("c{i}"), 1_000, 5_000);
        assert!(store
            .spend_device_nonce("d1", &format!("n{i}"), 1_000, 3_000)
            .unwrap()
            .is_fresh());
    }
    let first = store.sweep(6_000, 2).unwrap();
    assert_eq!((first.expired.len(), first.more), (2, true));
    let second = store.sweep(6_000, 2).unwrap();
    assert_eq!((second.expired.len(), second.more), (2, true));
    let third = store.sweep(6_000, 2).unwrap();
    // The last challenge and nonce: the step is not full, so nothing is left.
    assert_eq!((third.expired.len(), third.more), (1, false));
    let last = store.sweep(6_000, 2).unwrap();
    assert_eq!(last, Swept::default());
    assert_eq!(store.open_challenges(1_000).unwrap(), 0);
    assert_eq!(store.count("SELECT count(*) FROM device_nonces"), 0);
}

#[test]
fn retention_deletes_only_old_finished_records() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    challenge(&*store, "old-done", 1_000, 5_000);
    challenge(&*store, "old-open", 1_000, 5_000);
    challenge(&*store, "new-done", 1_000, 50_000);
    let approve = answer(Decision::Approve, ChallengeState::Approved);
    store.answer("old-done", &approve, 2_000).unwrap();
    store.answer("new-done", &approve, 2_000).unwrap();
    store.audit(&note("late"), 60_000).unwrap();
    let audit_before = store.count("SELECT count(*) FROM audit");

    assert_eq!(store.prune(None, None, 100).unwrap(), Pruned::default());
    let pruned = store.prune(Some(10_000), None, 100).unwrap();
    assert_eq!((pruned.challenges, pruned.audit_events), (1, 0));
    // Past its expiry but still open (never swept): it stays until it is expired.
    assert!(store.get_challenge("old-open", 4_000).unwrap().is_some());
    assert!(store.get_challenge("old-done", 4_000).unwrap().is_none());
    assert!(store.get_challenge("new-done", 4_000).unwrap().is_some());

    // Audit events from before 60,000 go, two per step; the late one stays.
    let mut steps = 0;
    loop {
        let step = store.prune(None, Some(60_000), 2).unwrap();
        steps += 1;
        if !step.more {
            break;
        }
    }
    assert!(steps > 1);
    assert_eq!(store.count("SELECT count(*) FROM audit"), 1);
    assert!(audit_before > 2);
    assert_eq!(store.list_audit(10, None).unwrap()[0].kind, "late");
}

/// Session 11: a device request's nonce is spent in one step with reading the device, so
/// that its key can come from a cache. Only an active device's nonce is stored: an unknown or
/// revoked device writes nothing, and the device comes back as it is now.
#[test]
fn issue13_a_nonce_is_spent_only_for_an_active_device_read_with_it() {
    let store = store();
    let nonces = || store.count("SELECT count(*) FROM device_nonces");
    assert_eq!(
        store
            .spend_device_nonce("nobody", "n1", 1_000, 10_000)
            .unwrap(),
        Spent::Unknown
    );
    assert_eq!(
        store
            .spend_device_nonce("nul\0", "n1", 1_000, 10_000)
            .unwrap(),
        Spent::Unknown
    );
    assert_eq!(nonces(), 0);
    enrolled(&*store, "alice", "d1");
    match store.spend_device_nonce("d1", "n1", 1_000, 10_000).unwrap() {
        Spent::Fresh(device) => {
            assert_eq!((device.id.as_str(), device.user.as_str()), ("d1", "alice"));
            assert!(device.is_active());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.spend_device_nonce("d1", "n1", 1_001, 10_000).unwrap(),
        Spent::Replayed
    );
    assert_eq!(nonces(), 1);
    store.revoke_device("d1", "admin", 2_000).unwrap();
    assert_eq!(
        store.spend_device_nonce("d1", "n2", 2_001, 10_000).unwrap(),
        Spent::Revoked
    );
    assert_eq!(nonces(), 1, "a revoked device's nonce was stored");
    assert_eq!(
        store.get_device("d1").unwrap().unwrap().last_seen_at,
        Some(1_000)
    );
}

#[test]
fn nonces_are_single_use_until_they_go_stale() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    enrolled_with(&*store, "alice", "d2", [7; 32]);
    assert!(store
        .spend_device_nonce("d1", "n1", 1_000, 10_000)
        .unwrap()
        .is_fresh());
    assert!(!store
        .spend_device_nonce("d1", "n1", 2_000, 11_000)
        .unwrap()
        .is_fresh());
    assert!(store
        .spend_device_nonce("d2", "n1", 2_000, 11_000)
        .unwrap()
        .is_fresh());
    store.sweep(9_999, 100).unwrap();
    assert!(!store
        .spend_device_nonce("d1", "n1", 9_999, 12_000)
        .unwrap()
        .is_fresh());
    store.sweep(10_001, 100).unwrap();
    assert!(store
        .spend_device_nonce("d1", "n1", 10_001, 12_000)
        .unwrap()
        .is_fresh());
    assert_eq!(
        store.get_device("d1").unwrap().unwrap().last_seen_at,
        Some(10_001)
    );
}

#[test]
fn unknown_users_devices_and_limits() {
    let store = store();
    assert!(matches!(
        challenge(&*store, "c0", 0, 1),
        Create::UnknownUser
    ));
    store.create_enrollment("alice", &[9; 32], 0, 10).unwrap();
    assert!(matches!(challenge(&*store, "c0", 0, 1), Create::NoDevice));
    enrolled(&*store, "alice", "d1");
    challenge(&*store, "c1", 1_000, 60_000);
    let new = NewChallenge {
        code: None,
        window_start: 0,
        ..new_challenge("c2", 2_000, 60_000)
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let saw = std::sync::Arc::clone(&seen);
    let refused = store
        .create_challenge(
            &new,
            std::sync::Arc::new(move |state| {
                *saw.lock().unwrap() = Some(*state);
                Err(Refusal::TooManyOpen)
            }),
        )
        .unwrap();
    assert!(matches!(refused, Create::Refused(Refusal::TooManyOpen)));
    assert_eq!(
        seen.lock().unwrap().unwrap(),
        PushState {
            locked_until: None,
            open_source: 1,
            open_user: 1,
            recent_source: 1,
            recent_user: 1,
            known_source: false,
            code_failures: 0,
        }
    );
    assert!(store.get_challenge("c2", 2_000).unwrap().is_none());
    store.revoke_device("d1", "admin", 3_000).unwrap();
    assert!(matches!(
        challenge(&*store, "c3", 3_000, 60_000),
        Create::NoDevice
    ));
}

/// Session 11: a device's list names the relying party that asked, read in the same
/// statement as the challenges (it was a read of its own per poll); an id without a relying
/// party (the admin's pushes) has no name.
#[test]
fn issue13_a_device_s_challenges_come_with_the_relying_party_s_name() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    assert!(matches!(
        challenge(&*store, "c1", 1_000, 60_000),
        Create::Created { .. }
    ));
    let (open, _) = store.device_challenges("d1", 2_000).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].0.id.as_str(), open[0].1.as_deref()), ("c1", None));
    store
        .create_relying_party(
            &crate::store::RelyingPartyRecord {
                id: "rp".into(),
                name: "web01".into(),
                key_hash: [3; 32],
                users: vec!["*".into()],
                enroll: false,
                bootstrap: false,
                created_at: 1_500,
                revoked_at: None,
            },
            1_500,
        )
        .unwrap();
    let (open, _) = store.device_challenges("d1", 2_000).unwrap();
    assert_eq!(open[0].1.as_deref(), Some("web01"));
}

/// Session 11: a creation reads its devices' Web Push subscriptions in its own transaction
/// (the push then needs no read of its own): those of the devices it was sent to, and only
/// those.
#[test]
fn issue13_a_creation_carries_its_devices_push_subscriptions() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    enrolled(&*store, "alice", "d22");
    let sub = crate::store::PushSubscriptionRecord {
        device_id: "d22".into(),
        endpoint: "https://push.example/abc".into(),
        p256dh: "key".into(),
        auth: "secret".into(),
        created_at: 500,
    };
    store.set_push_subscription(&sub, "alice", "test").unwrap();
    match challenge(&*store, "c1", 1_000, 60_000) {
        Create::Created { subscriptions, .. } => assert_eq!(subscriptions, vec![sub.clone()]),
        other => panic!("{other:?}"),
    }
    // Sent to d1 alone: d22's subscription is not its business.
    let new = NewChallenge {
        requested_devices: Some(vec!["d1".into()]),
        ..new_challenge("c2", 1_000, 60_000)
    };
    match store
        .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
        .unwrap()
    {
        Create::Created { subscriptions, .. } => assert!(subscriptions.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn issue11_a_revoked_device_leaves_its_open_challenges() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    enrolled(&*store, "alice", "d22");
    assert!(matches!(
        challenge(&*store, "c1", 1_000, 60_000),
        Create::Created { .. }
    ));
    assert_eq!(store.device_challenges("d1", 2_000).unwrap().0.len(), 1);
    store.revoke_device("d1", "self", 3_000).unwrap();
    // Its open challenges no longer list it; the other device still has the challenge.
    assert!(store.device_challenges("d1", 4_000).unwrap().0.is_empty());
    assert_eq!(store.device_challenges("d22", 4_000).unwrap().0.len(), 1);
    let c = store.get_challenge("c1", 4_000).unwrap().unwrap().0;
    assert_eq!(c.state, ChallengeState::Pending);
}

/// Attack review r9: a device revoked between its request's authentication and its answer
/// (milliseconds, another replica or the admin) still approved: the store's compare-and-set
/// did not look at the device. Now it takes no answer from a revoked device.
#[test]
fn issue13_a_revoked_device_cannot_answer_even_after_it_was_authenticated() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    assert!(matches!(
        challenge(&*store, "c1", 1_000, 60_000),
        Create::Created { .. }
    ));
    store.revoke_device("d1", "admin", 2_000).unwrap();
    let outcome = store
        .answer(
            "c1",
            &answer(Decision::Approve, ChallengeState::Approved),
            3_000,
        )
        .unwrap();
    // Refused as what it is: the device was revoked (the device is told so, not that the
    // challenge is in the wrong state; newcomer walk n2).
    assert!(matches!(outcome, Cas::DeviceRevoked(_)), "{outcome:?}");
    let c = store.get_challenge("c1", 3_000).unwrap().unwrap().0;
    assert_eq!(c.state, ChallengeState::Pending);
}

#[test]
fn issue13_keys_no_row_can_hold_name_nothing_on_every_backend() {
    // An id from a URL path or a user from a query string may hold a NUL, which PostgreSQL's
    // text cannot: such a key names no row there, and none on SQLite either.
    let store = store();
    enrolled(&*store, "alice", "d1");
    challenge(&*store, "c1", 1_000, 60_000);
    assert!(store.get_challenge("c1\0", 1_000).unwrap().is_none());
    assert!(matches!(
        store.acknowledge("\0", 1_000).unwrap(),
        Cas::Missing
    ));
    assert!(store.user_devices("alice\0").unwrap().is_none());
    assert!(store.get_device("d1\0").unwrap().is_none());
    assert!(store.list_audit(10, Some("\0")).unwrap().is_empty());
    assert!(store.get_relying_party("\0").unwrap().is_none());
    assert!(!store.unlock_user("alice\0", "admin", 2_000).unwrap());
    assert!(store
        .revoke_device("d1\0", "admin", 2_000)
        .unwrap()
        .is_none());
    assert!(store.device_challenges("d1\0", 2_000).unwrap().0.is_empty());
    assert_eq!(store.device_challenges("d1", 2_000).unwrap().0.len(), 1);
}

/// Session 17: a creation that carries the key its relying party authenticated with
/// (`NewChallenge::rp_key`) is made only while, inside the creating transaction, the relying
/// party still has that key and is not revoked; refused, it writes nothing (no challenge, no
/// audit row), whatever the user.
#[test]
fn session17_a_creation_or_cancel_with_a_key_rotated_or_revoked_since_writes_nothing() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    relying_party(&*store, [1; 32]);
    let create = |id: &str, user: &str, key: [u8; 32]| {
        let new = NewChallenge {
            user: user.into(),
            rp_key: Some(key),
            ..new_challenge(id, 1_000, 60_000)
        };
        store
            .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
            .unwrap()
    };
    let written = || {
        (
            store.count("SELECT count(*) FROM challenges"),
            store.count("SELECT count(*) FROM audit"),
        )
    };
    assert!(matches!(
        create("c1", "alice", [1; 32]),
        Create::Created { .. }
    ));
    assert!(matches!(create("c2", "alice", [2; 32]), Create::KeyRevoked));

    store.rotate_relying_party("rp", &[2; 32], 2_000).unwrap();
    let before = written();
    assert!(matches!(create("c3", "alice", [1; 32]), Create::KeyRevoked));
    assert!(matches!(
        create("c4", "nobody", [1; 32]),
        Create::KeyRevoked
    ));
    assert_eq!(written(), before);
    assert!(matches!(
        create("c5", "alice", [2; 32]),
        Create::Created { .. }
    ));

    store.revoke_relying_party("rp", 3_000).unwrap();
    let before = written();
    assert!(matches!(create("c6", "alice", [2; 32]), Create::KeyRevoked));
    assert_eq!(written(), before);
    assert_eq!(before.0, 2);
    // A cancel checks the key in its transaction too.
    assert!(matches!(
        store.cancel("c5", Some(&[2; 32]), 4_000).unwrap(),
        Cas::KeyRevoked(c) if c.state == ChallengeState::Pending
    ));
    assert_eq!(written(), before);
    // Without a key (the admin token), nothing is checked.
    let new = new_challenge("c7", 1_000, 60_000);
    assert!(matches!(
        store
            .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
            .unwrap(),
        Create::Created { .. }
    ));
    assert!(matches!(
        store.cancel("c5", None, 4_000).unwrap(),
        Cas::Changed(c) if c.state == ChallengeState::Cancelled
    ));
}

/// Session 23: an acknowledgement spends its request's nonce with the compare-and-set (one
/// statement on PostgreSQL). A fresh nonce moves a pending challenge to `acknowledged` and is
/// spent; a replay changes nothing; a nonce another key signed is refused; once
/// acknowledged, the challenge is in the wrong state for another acknowledgement (which still
/// spends its nonce); a due challenge expires; a revoked device's nonce is refused and stored
/// nowhere.
#[test]
fn session23_an_acknowledgement_spends_its_nonce_with_the_compare_and_set() {
    let store = store();
    enrolled(&*store, "alice", "d1");
    challenge(&*store, "c1", 1_000, 60_000);
    let nonces = || store.count("SELECT count(*) FROM device_nonces");
    let state = |id: &str| store.get_challenge(id, 2_000).unwrap().unwrap().0.state;
    let nonce = |n: &str, key: &str| crate::store::RequestNonce {
        device_id: "d1".into(),
        alg: "ed25519".into(),
        public_key: key.into(),
        nonce: n.into(),
        valid_until: 100_000,
    };

    // Signed by another key than the device's: refused (as an unknown device), nothing changes.
    let refused = store
        .acknowledge_spending(&nonce("n0", "other"), "c1", 2_000)
        .unwrap();
    assert!(
        matches!(refused, Err(crate::store::NonceRefused::Unknown)),
        "{refused:?}"
    );
    assert_eq!(state("c1"), ChallengeState::Pending);

    let acked = store
        .acknowledge_spending(&nonce("n1", "k"), "c1", 2_000)
        .unwrap();
    assert!(
        matches!(&acked, Ok(Cas::Changed(c)) if c.state == ChallengeState::Acknowledged),
        "{acked:?}"
    );
    assert_eq!(state("c1"), ChallengeState::Acknowledged);
    let spent = nonces();
    assert_eq!(
        store.count("SELECT count(*) FROM device_nonces WHERE nonce = 'n1'"),
        1
    );
    // The same request again: a replay, nothing more.
    let replayed = store
        .acknowledge_spending(&nonce("n1", "k"), "c1", 2_001)
        .unwrap();
    assert!(
        matches!(replayed, Err(crate::store::NonceRefused::Replayed)),
        "{replayed:?}"
    );
    assert_eq!(nonces(), spent);
    // A new request: the challenge is acknowledged already; its nonce is spent all the same.
    let again = store
        .acknowledge_spending(&nonce("n2", "k"), "c1", 2_002)
        .unwrap();
    assert!(
        matches!(&again, Ok(Cas::WrongState(c)) if c.state == ChallengeState::Acknowledged),
        "{again:?}"
    );
    assert_eq!(nonces(), spent + 1);
    // No such challenge: the nonce is spent, the answer says missing.
    let missing = store
        .acknowledge_spending(&nonce("n3", "k"), "nope", 2_003)
        .unwrap();
    assert!(matches!(missing, Ok(Cas::Missing)), "{missing:?}");
    assert_eq!(nonces(), spent + 2);

    // Due: it expires, as a plain acknowledgement's transition expires it.
    challenge(&*store, "c2", 1_000, 3_000);
    let due = store
        .acknowledge_spending(&nonce("n4", "k"), "c2", 3_000)
        .unwrap();
    assert!(
        matches!(&due, Ok(Cas::Expired(c)) if c.state == ChallengeState::Expired),
        "{due:?}"
    );

    // A revoked device: refused, its nonce stored nowhere, the challenge untouched.
    challenge(&*store, "c3", 4_000, 60_000);
    store.revoke_device("d1", "admin", 4_500).unwrap();
    let before = nonces();
    let revoked = store
        .acknowledge_spending(&nonce("n5", "k"), "c3", 5_000)
        .unwrap();
    assert!(
        matches!(revoked, Err(crate::store::NonceRefused::Revoked)),
        "{revoked:?}"
    );
    assert_eq!(nonces(), before);
}
