//! The errors of starting a server. HTTP errors are [`crate::api::ApiError`].

use thiserror::Error;

use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The VAPID key for Web Push could not be read or made.
    #[error(transparent)]
    WebPush(#[from] crate::webpush::VapidError),
    /// The key that seals offline-code secrets could not be read or made.
    #[error(transparent)]
    OfflineKey(#[from] crate::offline::OfflineKeyError),
    /// This replica's keys are not the site's (issue 13 review).
    #[error(transparent)]
    SiteKey(#[from] crate::site_keys::SiteKeyError),
    /// Any other I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ServerError {
    /// Whether waiting may fix it: the store's own failure or the key check's store access
    /// failed as [`StoreError::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.store_error().is_some_and(StoreError::is_transient)
    }

    /// Whether the database refused pushauthd's credentials ([`StoreError::is_denied`]).
    pub fn is_denied(&self) -> bool {
        self.store_error().is_some_and(StoreError::is_denied)
    }

    fn store_error(&self) -> Option<&StoreError> {
        match self {
            ServerError::Store(e)
            | ServerError::SiteKey(crate::site_keys::SiteKeyError::Store(e)) => Some(e),
            _ => None,
        }
    }
}
