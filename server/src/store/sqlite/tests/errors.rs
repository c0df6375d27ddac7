//! issue 10 item 6: the store's errors name no database library, so a second backend
//! (PostgreSQL, issue 13) implements the same trait with the same error type.

use std::error::Error as _;

use rusqlite::Connection;

use super::super::error::from_sqlite;
use super::super::{SqliteStore, DB_FILE};
use super::{challenge, enrolled, store};
use crate::store::{DbError, DbErrorKind, Store, StoreError};

fn neutral<E: std::error::Error + Send + Sync + 'static>() {}

fn kind_and_message(err: &StoreError) -> (DbErrorKind, &str) {
    match err {
        StoreError::Db(DbError { kind, message }) => (*kind, message),
        other => panic!("not a database error: {other:?}"),
    }
}

#[test]
fn issue10_item6_store_error_is_backend_neutral() {
    // Compile-level: both error types cross threads and box into anyhow as they are.
    neutral::<StoreError>();
    neutral::<DbError>();

    // A real constraint failure through the trait: the token hash is the primary key.
    let (dir, store) = store();
    store.create_enrollment("alice", &[1; 32], 0, 10).unwrap();
    let err = store.create_enrollment("bob", &[1; 32], 1, 10).unwrap_err();
    let (kind, message) = kind_and_message(&err);
    assert_eq!(kind, DbErrorKind::Constraint);
    assert!(
        message.contains("UNIQUE constraint failed: enrollments.token_hash"),
        "{message}"
    );
    // The text people read is what it was with the rusqlite error inside.
    assert_eq!(err.to_string(), format!("database: {message}"));
    // The cause chain ends at the neutral type: nothing of SQLite's hangs behind it.
    let source = err
        .source()
        .expect("a database error has its details as source");
    assert!(source.downcast_ref::<DbError>().is_some());
    assert!(source.source().is_none());

    // A stored value that does not fit its record type is invalid data, not a bug.
    enrolled(&store, "alice", "d1");
    challenge(&store, "c1", 1_000, 60_000);
    let outside = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
    outside
        .execute("UPDATE challenges SET state = 'bogus' WHERE id = 'c1'", [])
        .unwrap();
    let err = store.get_challenge("c1", 2_000).unwrap_err();
    assert_eq!(kind_and_message(&err).0, DbErrorKind::InvalidData);

    // A lock held past the busy timeout is Busy (the operation may succeed later).
    let busy = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("database is locked".into()),
    );
    let err = from_sqlite(busy);
    assert_eq!(
        kind_and_message(&err),
        (DbErrorKind::Busy, "database is locked")
    );

    // A database file that cannot be opened: the environment, not the data.
    let blocked = tempfile::tempdir().unwrap();
    std::fs::create_dir(blocked.path().join(DB_FILE)).unwrap();
    let err = SqliteStore::open(blocked.path()).unwrap_err();
    assert_eq!(kind_and_message(&err).0, DbErrorKind::Unavailable);
}

#[test]
fn issue10_item6_the_trait_files_name_no_database_library() {
    for (file, text) in [
        ("store/mod.rs", include_str!("../../mod.rs")),
        ("store/error.rs", include_str!("../../error.rs")),
        ("store/records.rs", include_str!("../../records.rs")),
    ] {
        assert!(!text.contains("rusqlite"), "{file} names rusqlite");
    }
}
