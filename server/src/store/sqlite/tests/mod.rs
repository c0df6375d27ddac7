//! The SQLite store's own unit tests (what every backend does is tested in `store::tests`, on
//! each backend): group commit and checkpoints in `group`, schema and migrations in `schema`,
//! the backend-neutral errors in `errors`, and an opt-in timing run in `bench`.

mod bench;
mod errors;
mod group;
mod schema;

use rusqlite::Connection;

use super::SqliteStore;
use crate::clock::Millis;
use crate::store::{Create, Store};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("data")).unwrap();
    (dir, store)
}

pub(super) use crate::store::tests::{answer, enrolled, note};

fn challenge(store: &SqliteStore, id: &str, now: Millis, expires_at: Millis) -> Create {
    challenge_in(store, id, now, expires_at)
}

fn challenge_in(store: &dyn Store, id: &str, now: Millis, expires_at: Millis) -> Create {
    crate::store::tests::challenge(store, id, now, expires_at)
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}
