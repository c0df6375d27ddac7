//! Schema creation and migration from older versions.

use rusqlite::Connection;

use super::super::schema::{MIGRATIONS, SCHEMA_VERSION};
use super::super::{SqliteStore, DB_FILE};
use super::enrolled;
use crate::store::Store;

#[test]
fn issue9_item2_a_version_1_database_keeps_its_relying_parties_with_old_rights() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1);
             INSERT INTO users VALUES ('alice', 1);
             INSERT INTO devices (id, user, name, alg, public_key, created_at)
                 VALUES ('d1', 'alice', 'phone', 'ed25519', 'k', 1);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO relying_parties VALUES ('rp1', 'old host', ?1, 5)",
            [&[7u8; 32][..]],
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let rp = store.get_relying_party("rp1").unwrap().unwrap();
    assert_eq!(rp.users, vec!["*".to_owned()]);
    assert!(!rp.enroll && !rp.bootstrap);
    assert_eq!(
        (rp.created_at, rp.revoked_at, rp.key_hash),
        (5, None, [7; 32])
    );
    let d = store.get_device("d1").unwrap().unwrap();
    assert_eq!((d.source, d.via, d.approved_by), (None, None, None));
    // Revoke and rotate are compare-and-set on "not revoked".
    let rotated = store
        .rotate_relying_party("rp1", &[8; 32], 6)
        .unwrap()
        .unwrap();
    assert_eq!(rotated.key_hash, [8; 32]);
    let revoked = store.revoke_relying_party("rp1", 7).unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(7));
    let again = store
        .rotate_relying_party("rp1", &[9; 32], 8)
        .unwrap()
        .unwrap();
    assert_eq!((again.key_hash, again.revoked_at), ([8; 32], Some(7)));
    assert_eq!(
        store
            .revoke_relying_party("rp1", 9)
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(7)
    );
    assert!(store.revoke_relying_party("nope", 9).unwrap().is_none());
    assert_eq!(store.list_relying_parties().unwrap().len(), 1);
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        enrolled(&store, "alice", "d1");
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(store.get_device("d1").unwrap().is_some());
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
