//! Group commit and background checkpoints.

use std::cell::RefCell;
use std::fs;

use rusqlite::Connection;

use super::super::connection::Db;
use super::super::group::Group;
use super::super::DB_FILE;
use super::{challenge_in, count, enrolled, note, store};
use crate::store::{AuditEntry, Create, Store};

#[test]
fn a_group_commits_once_and_each_operation_stands_alone() {
    let (dir, store) = store();
    enrolled(&store, "alice", "d1");
    let outside = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
    let mut ran = false;
    store
        .group(&mut |g| {
            g.audit(&note("first"), 1).unwrap();
            // Not committed yet: another connection does not see it.
            assert_eq!(
                count(&outside, "SELECT count(*) FROM audit WHERE kind = 'first'"),
                0
            );
            assert!(matches!(
                challenge_in(g, "c1", 1_000, 60_000),
                Create::Created { .. }
            ));
            // Later operations of the group see the earlier ones' writes.
            assert!(g.get_challenge("c1", 1_001).unwrap().is_some());
            assert!(g
                .spend_device_nonce("d1", "n1", 1_000, 10_000)
                .unwrap()
                .is_fresh());
            assert!(!g
                .spend_device_nonce("d1", "n1", 1_001, 10_000)
                .unwrap()
                .is_fresh());
            // A failing operation (the token hash exists) undoes only itself.
            let reused = [2u8; 32];
            assert!(g.create_enrollment("bob", &reused, 2, 10).is_err());
            ran = true;
        })
        .unwrap();
    assert!(ran);
    assert_eq!(
        count(&outside, "SELECT count(*) FROM audit WHERE kind = 'first'"),
        1
    );
    assert_eq!(
        count(&outside, "SELECT count(*) FROM challenges WHERE id = 'c1'"),
        1
    );
    assert_eq!(count(&outside, "SELECT count(*) FROM device_nonces"), 1);
    assert_eq!(
        count(&outside, "SELECT count(*) FROM users WHERE name = 'bob'"),
        0
    );
    assert_eq!(
        count(
            &outside,
            "SELECT count(*) FROM audit WHERE kind = 'enrollment_created'"
        ),
        1
    );
}

#[test]
fn a_group_that_only_reads_never_takes_the_writer() {
    let (_dir, store) = store();
    enrolled(&store, "alice", "d1");
    store
        .group(&mut |g| {
            assert!(g.get_device("d1").unwrap().is_some());
            // The writer is free: a write outside the group goes through at once.
            assert!(store.writer.try_lock().is_ok());
        })
        .unwrap();
}

#[test]
fn a_group_that_cannot_commit_keeps_nothing() {
    let (dir, store) = store();
    enrolled(&store, "alice", "d1");
    let group = Group {
        store: &store,
        writer: RefCell::new(None),
    };
    group.audit(&note("doomed"), 1).unwrap();
    // A deferred foreign-key violation passes the savepoint and fails the commit.
    Db::write(&group, |c| {
        c.execute_batch(
            "PRAGMA defer_foreign_keys = ON; \
             INSERT INTO devices (id, user, name, alg, public_key, created_at) \
             VALUES ('ghost-device', 'ghost', 'n', 'ed25519', 'k', 0);",
        )
    })
    .unwrap();
    assert!(group.commit().is_err());
    let outside = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
    assert_eq!(
        count(&outside, "SELECT count(*) FROM audit WHERE kind = 'doomed'"),
        0
    );
    assert_eq!(
        count(
            &outside,
            "SELECT count(*) FROM devices WHERE user = 'ghost'"
        ),
        0
    );
    // The writer is usable again.
    store.audit(&note("after"), 2).unwrap();
    assert_eq!(
        count(&outside, "SELECT count(*) FROM audit WHERE kind = 'after'"),
        1
    );
}

#[test]
fn commits_reach_the_database_file_in_the_background() {
    let (dir, store) = store();
    let db = dir.path().join("data").join(DB_FILE);
    let size = || fs::metadata(&db).map_or(0, |m| m.len());
    let before = size();
    let filler = "x".repeat(500);
    for i in 0..200 {
        let entry = AuditEntry {
            kind: "filler",
            detail: Some(filler.clone()),
            ..AuditEntry::default()
        };
        store.audit(&entry, i).unwrap();
    }
    // Far below the writer's own checkpoint threshold: only the background thread copies
    // these pages from the WAL into the database file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// [`Store::atomic`]: a unit that fails keeps none of its writes, alone or inside a group (where
/// the group's other writes stand), and a unit's reads go through the writer from its start.
#[test]
fn issue10_item1_an_atomic_unit_keeps_all_or_none_of_its_writes() {
    let (dir, store) = store();
    // Fails on its second write: the same token hash twice.
    let failing = |s: &dyn Store| -> crate::store::StoreResult<()> {
        s.audit(&note("undone"), 1)?;
        s.create_enrollment("bob", &[5; 32], 1, 10)?;
        s.create_enrollment("bob", &[5; 32], 1, 10)
    };
    assert!(store.atomic(&mut |s| failing(s)).is_err());
    let mut inner = None;
    store
        .group(&mut |g| {
            g.audit(&note("kept"), 1).unwrap();
            inner = Some(g.atomic(&mut |s| failing(s)));
            g.audit(&note("kept too"), 1).unwrap();
        })
        .unwrap();
    assert!(inner.unwrap().is_err());
    let db = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) FROM audit WHERE kind = 'undone'"),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM enrollments"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM audit WHERE kind LIKE 'kept%'"),
        2
    );
    // A unit that succeeds keeps everything; while it runs it holds the writer, so another
    // connection cannot write between its reads and its writes.
    store
        .atomic(&mut |s| {
            assert!(s.get_enrollment(&[6; 32])?.is_none());
            let busy = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
            busy.busy_timeout(std::time::Duration::ZERO).unwrap();
            assert!(busy.execute_batch("BEGIN IMMEDIATE").is_err());
            s.create_enrollment("carol", &[6; 32], 1, 10)
        })
        .unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM enrollments"), 1);
}
