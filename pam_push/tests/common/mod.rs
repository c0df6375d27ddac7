//! Helpers shared by the module's integration tests: an answer of pushauthd's offline-values
//! route with Argon2id hashes of chosen codes.

#![allow(dead_code)]

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use pushauth_proto::offline::{OfflineDevice, OfflineResponse, OfflineValue};

/// An Argon2id PHC string of `code` (a fixed salt: tests only).
pub fn hash(code: &str) -> String {
    let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
    Argon2::default()
        .hash_password(code.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// pushauthd's answer for alice's device `dev1` (6 digits): `last_used` and `(counter, code)`.
pub fn answer(last_used: u64, values: &[(u64, &str)]) -> OfflineResponse {
    OfflineResponse {
        user: "alice".into(),
        digits: 6,
        devices: vec![OfflineDevice {
            device_id: "dev1".into(),
            last_used,
            digits: 6,
            values: values
                .iter()
                .map(|(counter, code)| OfflineValue {
                    counter: *counter,
                    hash: hash(code),
                })
                .collect(),
        }],
    }
}
