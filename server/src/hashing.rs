//! Slow hashes, one parameter set and one pool: every Argon2id hash pushauthd makes (backup
//! codes, offline values) uses [`ARGON2_M_KIB`], [`ARGON2_T`], [`ARGON2_P`] ([`phc`]) and runs
//! off the async runtime through the one [`Hashing`] pool, a few at a time: each job runs on a
//! blocking thread holding one of a small number of permits, so neither relying-party nor
//! device traffic can occupy every core or queue work without bound.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Semaphore;

/// Why slow-hash work did not run (the service maps it: busy is 429, the rest 500).
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// No permit within [`PERMIT_WAIT`]: a request does not wait (and hold its connection)
    /// without bound.
    #[error("the server is busy hashing codes; try again in a few seconds")]
    Busy,
    /// The work panicked, or the pool closed.
    #[error("{0}")]
    Failed(String),
}

/// Argon2id memory cost in KiB: 19 MiB, the OWASP floor (with `t = 2`, `p = 1`). A PAM host
/// verifies cached offline values with the costs in their PHC strings, so a stolen cache costs
/// an attacker as much per guess per value.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_T: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// The Argon2id hasher with the one parameter set (verifying reads the parameters from the
/// stored string, so raising them later keeps older hashes usable).
///
/// # Errors
/// The library's refusal of the parameters (never with these).
pub fn argon2() -> Result<Argon2<'static>, String> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The Argon2id PHC string of `secret` with a fresh 16-byte salt. Slow (tens of milliseconds):
/// run it through [`Hashing`].
///
/// # Errors
/// Without randomness, or when the library refuses; the text names no secret.
pub fn phc(secret: &[u8]) -> Result<String, String> {
    let salt = pushauth_proto::random::bytes::<16>().map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("argon2 salt: {e}"))?;
    let hash = argon2()?
        .hash_password(secret, &salt)
        .map_err(|e| format!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// How long a request waits for a permit before it is told the server is busy.
pub const PERMIT_WAIT: Duration = Duration::from_secs(5);

/// The bounded pool of slow-hash work (the only one: backup codes and offline values share it).
#[derive(Debug, Clone)]
pub struct Hashing {
    permits: Arc<Semaphore>,
    /// Jobs started (`pushauth_slow_hash_jobs_total`): what an attack test counts to prove
    /// a request paid for no more hashing than it should.
    jobs: Counter,
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
            jobs: Counter::default(),
        }
    }

    /// This pool, counting its jobs on `jobs` (the server's metric) instead of its own counter.
    #[must_use]
    pub fn counting_on(mut self, jobs: Counter) -> Self {
        self.jobs = jobs;
        self
    }

    /// Runs `work` on a blocking thread once a permit is free.
    ///
    /// # Errors
    /// [`HashingError::Busy`] when no permit comes within [`PERMIT_WAIT`];
    /// [`HashingError::Failed`] when the work panicked or the pool closed.
    pub async fn run<T, F>(&self, work: F) -> Result<T, HashingError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(PERMIT_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| HashingError::Busy)?
            .map_err(|_| HashingError::Failed("the hashing pool closed".into()))?;
        self.jobs.inc();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| HashingError::Failed(format!("hashing job failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Backup codes and offline values share this pool: however many jobs are queued, no
    /// more than its permits run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue12_one_pool_bounds_every_slow_hash() {
        let pool = Hashing::new(1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        phc(b"123456")
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            let hash = job.await.unwrap().unwrap().unwrap();
            assert!(
                hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{hash}"
            );
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
