//! Argon2id hashes of offline values (the privacyIDEA "offline" model): the host gets only
//! salted slow hashes, never a value. Hashing costs server CPU on the login path, so it runs
//! on blocking threads, at most [`HASH_CONCURRENCY`] hashing jobs at a time server-wide.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Argon2id cost: 19 MiB, 2 passes, 1 lane (OWASP's minimum for Argon2id). A host verifies
/// each cached value with the same cost, so a stolen cache costs an attacker about as much per
/// guess per value.
pub const OFFLINE_HASH_PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

/// Hashing jobs that may run at once; others wait their turn.
pub const HASH_CONCURRENCY: usize = 2;

/// How long a request waits for its turn before it is told the server is busy (as the
/// backup-code pool does), so queued requests cannot hold connections without bound.
pub const PERMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a value could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// No randomness for a salt.
    #[error("no randomness for a salt: {0}")]
    Random(String),
    /// The hashing library refused (never with these parameters).
    #[error("argon2: {0}")]
    Argon2(String),
    /// The blocking thread failed.
    #[error("hashing thread: {0}")]
    Join(String),
    /// No permit within [`PERMIT_WAIT`]: the server is busy
    /// hashing; a request does not wait (and hold its connection) without bound.
    #[error("the server is busy hashing offline values; they come with a later login")]
    Busy,
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let (m, t, p) = OFFLINE_HASH_PARAMS;
    let params = Params::new(m, t, p, None).map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The Argon2id PHC string of `value` with a fresh 16-byte salt.
///
/// # Errors
/// [`HashError`].
pub fn hash_value(value: &str) -> Result<String, HashError> {
    let salt =
        pushauth_proto::random::bytes::<16>().map_err(|e| HashError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Argon2(e.to_string()))?;
    let hash = argon2()?
        .hash_password(value.as_bytes(), &salt)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(hash.to_string())
}

/// The bounded pool every offline hashing job goes through.
#[derive(Debug, Clone)]
pub struct HashPool {
    permits: Arc<Semaphore>,
}

impl Default for HashPool {
    fn default() -> Self {
        HashPool {
            permits: Arc::new(Semaphore::new(HASH_CONCURRENCY)),
        }
    }
}

impl HashPool {
    /// Hashes every value on a blocking thread once a permit is free, in order.
    ///
    /// # Errors
    /// [`HashError::Busy`] when no permit comes within
    /// [`PERMIT_WAIT`]; the other [`HashError`]s.
    pub async fn hash_all(&self, values: Vec<Zeroizing<String>>) -> Result<Vec<String>, HashError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let _permit = tokio::time::timeout(PERMIT_WAIT, self.permits.acquire())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|e| HashError::Join(e.to_string()))?;
        tokio::task::spawn_blocking(move || values.iter().map(|v| hash_value(v)).collect())
            .await
            .map_err(|e| HashError::Join(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash_value("123456").unwrap();
        let b = hash_value("123456").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(Argon2::default()
            .verify_password(b"123456", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"123457", &parsed)
            .is_err());
    }
}
