//! WAL checkpoints off the store thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold: it syncs
//! the WAL, copies its pages into the database and syncs that, all while every other store
//! operation waits (15 to 20 ms each on this machine, several times a second under load). This
//! thread copies pages as they come, with a `PASSIVE` checkpoint on its own connection, which
//! never blocks the writer. The writer keeps a (rarer) automatic checkpoint only to finish what
//! this one could not and to let the WAL start over; by then little is left for it to copy.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// How long the thread lets commits gather before copying them: one checkpoint's syncs then
/// cover many commits.
const GATHER: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Signal {
    /// Commits since the last checkpoint started.
    dirty: bool,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    signal: Mutex<Signal>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Signal> {
        self.signal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The background checkpoint thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread over `conn` (a connection of its own to the database at `path`).
    pub fn start(conn: Connection, path: &Path) -> StoreResult<Checkpointer> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            let path = path.to_owned();
            thread::Builder::new()
                .name("pushauthd-checkpoint".into())
                .spawn(move || run(&conn, &shared, &path))
                .map_err(StoreError::Thread)?
        };
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Tells the thread that a commit added to the WAL.
    pub fn committed(&self) {
        let mut signal = self.shared.lock();
        if !signal.dirty {
            signal.dirty = true;
            self.shared.wake.notify_one();
        }
    }
}

fn run(conn: &Connection, shared: &Shared, path: &Path) {
    loop {
        {
            let mut signal = shared.lock();
            while !signal.dirty && !signal.stop {
                signal = shared.wake.wait(signal).unwrap_or_else(|p| p.into_inner());
            }
            if signal.stop {
                return;
            }
        }
        thread::sleep(GATHER);
        shared.lock().dirty = false;
        // Busy (the writer's own checkpoint is running) and errors are harmless: the WAL keeps
        // the data, and the next commit brings the thread back.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(db = %path.display(), error = %e, "background checkpoint failed");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
