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
