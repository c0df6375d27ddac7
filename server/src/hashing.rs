//! Slow hashes (Argon2id for backup codes) off the async runtime, a few at a time: each runs
//! on a blocking thread holding one of a small number of permits, so neither relying-party nor
//! device traffic can occupy every core or queue work without bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::service::Error;

/// How long a request waits for a permit before it is told the server is busy.
pub const PERMIT_WAIT: Duration = Duration::from_secs(5);

/// The bounded pool of slow-hash work.
#[derive(Debug, Clone)]
pub struct Hashing {
    permits: Arc<Semaphore>,
}

impl Default for Hashing {
    /// One permit per core less one (at least 1, at most 4): Argon2id at 19 MiB each.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Hashing::new(cores.saturating_sub(1).clamp(1, 4))
    }
}

impl Hashing {
    /// A pool running at most `permits` hashes at once.
    pub fn new(permits: usize) -> Self {
        Hashing {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a permit is free.
    ///
    /// # Errors
    /// [`Error::TooManyChanges`] (429) when no permit comes within [`PERMIT_WAIT`];
    /// [`Error::Internal`] when the work panicked or the pool closed.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(PERMIT_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| {
                Error::TooManyChanges(
                    "the server is busy checking codes; try again in a few seconds".into(),
                )
            })?
            .map_err(|_| Error::Internal("the hashing pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing job failed: {e}")))
    }
}
