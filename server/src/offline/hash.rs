//! Argon2id hashes of offline values (the privacyIDEA "offline" model): the host gets only
//! salted slow hashes, never a value. Hashing costs server CPU on the login path, so it runs
//! in the server's one bounded pool ([`crate::hashing::Hashing`], shared with backup codes),
//! with the one parameter set ([`crate::hashing::phc`]).

use zeroize::Zeroizing;

use crate::hashing::{Hashing, HashingError};

/// The Argon2id PHC string of `value` with a fresh 16-byte salt.
///
/// # Errors
/// [`HashingError::Failed`] without randomness or when the library refuses.
pub fn hash_value(value: &str) -> Result<String, HashingError> {
    crate::hashing::phc(value.as_bytes()).map_err(HashingError::Failed)
}

/// Hashes every value, in order, through `pool`: one job per value, so backup-code checks
/// waiting for the pool take their turn between them instead of after the whole batch.
///
/// # Errors
/// [`HashingError::Busy`] when the pool stays busy past its wait, [`HashingError::Failed`].
pub async fn hash_all(
    pool: &Hashing,
    values: Vec<Zeroizing<String>>,
) -> Result<Vec<String>, HashingError> {
    let mut hashes = Vec::with_capacity(values.len());
    for value in values {
        hashes.push(pool.run(move || hash_value(&value)).await??);
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use argon2::Argon2;

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
