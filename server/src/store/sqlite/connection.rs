//! Connections: how one is opened (pragmas), the writer behind its mutex, the pool of readers,
//! and [`Db`], the two ways the operations reach the database (a plain [`SqliteStore`] gives
//! each write its own transaction; a [`Group`] makes its writes share one).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, TransactionBehavior};

use super::error::{from_sqlite, OrStore};
use super::group::Group;
use super::SqliteStore;
use crate::store::{Store, StoreResult};

use super::MAX_IDLE_READERS;

/// Locks `mutex`, taking over a poisoned one.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the connection usable (SQLite rolls back).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens a connection to the database at `path` with the store's settings.
pub(super) fn open_connection(path: &Path) -> StoreResult<Connection> {
    configured(path).or_store()
}

fn configured(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // No mmap: pages touched through it count as the process's memory, and with WAL every
    // write invalidates the readers' view anyway; reads go through a small page cache instead.
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The background checkpointer copies pages as they come; the writer's own checkpoint, at
    // 64 MiB of WAL, only finishes that work and lets the WAL start over. Rarer is better for
    // it (it stalls every operation while it syncs); much larger WALs make reads slower.
    conn.pragma_update(None, "wal_autocheckpoint", 16_000)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// How the [`Store`] operations reach the database. The closures speak rusqlite; their errors
/// become [`StoreError`](crate::store::StoreError)s here, at the edge.
pub(super) trait Db {
    /// Runs `f` on a connection that sees everything committed (and, in a group, the group's own
    /// writes).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T>;
    /// Runs `f` atomically on the writer: all of it takes effect or none.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T>;
    /// [`Store::group`].
    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()>;
    /// [`Store::atomic`].
    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()>;
}

impl Db for SqliteStore {
    /// Reads on a pooled reader connection. The pool keeps up to [`MAX_IDLE_READERS`] (at
    /// least one per store job thread, which the server checks), so connections are not
    /// opened and closed per read.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result.map_err(from_sqlite)
    }

    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut conn = lock(&self.writer);
        let value = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })()
        .map_err(from_sqlite)?;
        self.checkpointer.committed();
        Ok(value)
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        let group = Group::new(self);
        work(&group);
        group.commit()
    }

    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()> {
        // A group that holds the writer from its start: its reads see no other writer's
        // changes come in before its writes. On `Err` dropping it rolls everything back.
        let group = Group::new(self);
        group.run_atomic(work)?;
        group.commit()
    }
}
