//! Secrets as the server keeps and compares them: relying-party API key secrets, enrollment
//! tokens and the admin token are stored and compared only as SHA-256 hashes. The one home of
//! that hashing; the callers themselves are in [`crate::service::keys`] (relying parties) and
//! [`crate::service::devices`] (signed device requests).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The relying-party id recorded for requests made with the admin token.
pub const ADMIN_RP: &str = "admin";

/// SHA-256 of a secret (an API key's secret part, an enrollment token): the only form in
/// which the store keeps secrets.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares through hashes so the time taken says nothing about length or content.
pub fn secret_eq(given: &str, expected: &str) -> bool {
    bool::from(hash_secret(given).ct_eq(&hash_secret(expected)))
}

/// Compares a secret with a stored hash in constant time.
pub fn matches_hash(given: &str, stored: &[u8; 32]) -> bool {
    bool::from(hash_secret(given).ct_eq(stored))
}
