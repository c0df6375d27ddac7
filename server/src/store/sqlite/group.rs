//! Group commit: the operations of many concurrent requests share one transaction and cost one
//! commit (see [`Store::group`]).

use std::cell::RefCell;
use std::sync::MutexGuard;

use rusqlite::Connection;

use super::connection::{lock, Db};
use super::error::{from_sqlite, OrStore};
use super::SqliteStore;
use crate::store::{Store, StoreResult};

/// Operations whose writes share one transaction, committed when the group ends (see
/// [`Store::group`]; [`Store::atomic`] is a group that takes the writer at once). The writer is taken at the group's first write, not before, so a group
/// that only reads never holds up other threads' writes; from then on reads use the writer's
/// connection too, so later operations see the earlier ones' writes.
pub(super) struct Group<'a> {
    pub(super) store: &'a SqliteStore,
    pub(super) writer: RefCell<Option<MutexGuard<'a, Connection>>>,
}

impl<'a> Group<'a> {
    /// A group over `store` that holds nothing yet.
    pub(super) fn new(store: &'a SqliteStore) -> Self {
        Group {
            store,
            writer: RefCell::new(None),
        }
    }

    /// Commits the group's writes (if it made any); on failure none of them are kept.
    pub(super) fn commit(self) -> StoreResult<()> {
        let Some(conn) = self.writer.take() else {
            return Ok(());
        };
        if let Err(e) = conn.execute_batch("COMMIT") {
            // Nothing of the group is kept: its callers are told it failed.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(from_sqlite(e));
        }
        self.store.checkpointer.committed();
        Ok(())
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        // Only reached with the writer still held if the group unwound before committing.
        if let Some(conn) = self.writer.get_mut().take() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
}

impl Group<'_> {
    /// Runs `f` on the writer's connection, taking the writer (and beginning the group's
    /// transaction) at the group's first write.
    fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut slot = self.writer.borrow_mut();
        let conn = match slot.as_deref_mut() {
            Some(conn) => conn,
            None => {
                let conn = lock(&self.store.writer);
                conn.execute_batch("BEGIN IMMEDIATE").or_store()?;
                slot.insert(conn)
            }
        };
        f(conn)
    }
}

/// Undoes an unfinished [`Db::run_atomic`] of a group if its work unwinds, so that a panicking
/// job's half of a unit is not committed with the rest of the group.
struct AtomicGuard<'g, 'a> {
    group: &'g Group<'a>,
    armed: bool,
}

impl Drop for AtomicGuard<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.group.with_writer(|conn| {
                conn.execute_batch("ROLLBACK TO atomic; RELEASE atomic")
                    .or_store()
            });
        }
    }
}

impl Db for Group<'_> {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if let Some(conn) = self.writer.borrow().as_deref() {
            return f(conn).or_store();
        }
        self.store.read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        // A savepoint per operation: one that fails leaves the rest of the group as it was.
        self.with_writer(|conn| {
            (|| {
                let savepoint = conn.savepoint()?;
                let value = f(&savepoint)?;
                savepoint.commit()?;
                Ok(value)
            })()
            .or_store()
        })
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        // Already grouped: the outer group commits.
        work(self);
        Ok(())
    }

    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()> {
        // The writer is taken first, so every read of `work` goes through it; a savepoint lets
        // a failed unit leave the rest of the group as it was.
        self.with_writer(|conn| conn.execute_batch("SAVEPOINT atomic").or_store())?;
        let mut guard = AtomicGuard {
            group: self,
            armed: true,
        };
        let result = work(self);
        guard.armed = false;
        let end = if result.is_ok() {
            "RELEASE atomic"
        } else {
            "ROLLBACK TO atomic; RELEASE atomic"
        };
        self.with_writer(|conn| conn.execute_batch(end).or_store())?;
        result
    }
}
