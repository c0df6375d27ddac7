//! Offline codes (issue 12), the infrastructure (the `[offline]` settings live in
//! [`crate::config`]): the key that seals the
//! devices' HOTP secrets at rest ([`key`]), and the Argon2id hashing of the values a PAM host
//! caches ([`hash`], in the server's one pool). The rules live in [`crate::service::offline`], the routes in
//! [`crate::api::offline`].

pub mod hash;
pub mod key;

pub use key::{OfflineKey, OfflineKeyError, OFFLINE_KEY_FILE};

pub use crate::config::{FileOffline, OfflineConfig};
