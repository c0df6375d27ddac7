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
/// [`Store::group`]). The writer is taken at the group's first write, not before, so a group
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

impl Db for Group<'_> {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if let Some(conn) = self.writer.borrow().as_deref() {
            return f(conn).or_store();
        }
        self.store.read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut slot = self.writer.borrow_mut();
        let conn = match slot.as_deref_mut() {
            Some(conn) => conn,
            None => {
                let conn = lock(&self.store.writer);
                conn.execute_batch("BEGIN IMMEDIATE").or_store()?;
                slot.insert(conn)
            }
        };
        // A savepoint per operation: one that fails leaves the rest of the group as it was.
        (|| {
            let savepoint = conn.savepoint()?;
            let value = f(&savepoint)?;
            savepoint.commit()?;
            Ok(value)
        })()
        .or_store()
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        // Already grouped: the outer group commits.
        work(self);
        Ok(())
    }
}
