//! Store jobs run on a few dedicated threads instead of tokio's blocking pool.
//!
//! The blocking pool grows to hundreds of threads when many requests wait on the store at once
//! (ten thousand long-polls each start with a read); every such thread gets its own malloc arena
//! and SQLite reader connection, which costs memory and, through the reader pool's churn, CPU.
//! SQLite has one writer anyway, so a handful of threads serve the store as fast as hundreds.
//! Keeping the store off the blocking pool also means slow webhook deliveries (which stay there)
//! can never queue store work behind them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, ThreadId};

use tokio::sync::oneshot;

use crate::store::Store;

/// Threads serving store jobs: enough to overlap reads with the one writer, few enough that
/// they rarely contend for it.
pub const STORE_THREADS: usize = 4;

type Job = Box<dyn FnOnce(&dyn Store) + Send>;

/// The store's job threads; dropping it lets queued jobs finish and joins the threads.
pub struct StoreJobs {
    queue: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for StoreJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreJobs")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// The job threads are gone (only while shutting down, or if a thread could not start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobsStopped;

impl StoreJobs {
    /// Starts `threads` job threads over `store`.
    pub fn start(store: Arc<dyn Store>, threads: usize) -> std::io::Result<StoreJobs> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            let jobs = Arc::clone(&jobs);
            let store = Arc::clone(&store);
            handles.push(
                thread::Builder::new()
                    .name(format!("pushauthd-store-{i}"))
                    .spawn(move || worker(&jobs, store.as_ref()))?,
            );
        }
        Ok(StoreJobs {
            queue: Some(queue),
            threads: handles,
        })
    }

    /// Runs `f` on a job thread and returns its result. A job that panics yields
    /// [`JobsStopped`] to its caller; the thread goes on serving.
    pub async fn run<T, F>(&self, f: F) -> Result<T, JobsStopped>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            // The caller may have gone away (a dropped request); nothing to do then.
            let _ = tx.send(f(store));
        });
        self.queue
            .as_ref()
            .ok_or(JobsStopped)?
            .send(job)
            .map_err(|_| JobsStopped)?;
        rx.await.map_err(|_| JobsStopped)
    }
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, store: &dyn Store) {
    loop {
        let job = {
            let queue = jobs.lock().unwrap_or_else(|p| p.into_inner());
            queue.recv()
        };
        let Ok(job) = job else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| job(store))).is_err() {
            tracing::error!("a store job panicked");
        }
    }
}

impl Drop for StoreJobs {
    fn drop(&mut self) {
        drop(self.queue.take());
        let me: ThreadId = thread::current().id();
        for handle in self.threads.drain(..) {
            // A job holding the last reference to the state drops it on a job thread: that
            // thread cannot join itself, and ends by itself once the queue is closed.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = StoreJobs::start(store, 2).unwrap();
        assert_eq!(jobs.run(|s| s.health().is_ok()).await, Ok(true));
        let panicked: Result<(), JobsStopped> = jobs.run(|_| panic!("boom")).await;
        assert_eq!(panicked, Err(JobsStopped));
        let names: Vec<_> = futures_join(&jobs).await;
        assert_eq!(names.len(), 8);
        assert!(names.iter().all(|n| n.starts_with("pushauthd-store-")));
    }

    /// Runs several jobs and returns the names of the threads that ran them.
    async fn futures_join(jobs: &StoreJobs) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..8 {
            let name = jobs
                .run(|_| thread::current().name().unwrap_or("").to_owned())
                .await
                .unwrap();
            out.push(name);
        }
        out
    }
}
