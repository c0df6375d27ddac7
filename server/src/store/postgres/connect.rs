//! Connecting to the PostgreSQL store outside the pool: [`connect_one`], for a connection of
//! its own (the LISTEN connection of the replicas' wake-ups). The settings are
//! [`PgSettings`] (`config::postgres`).

use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use crate::config::postgres::{
    is_postgres_url, PgConfigError, PgSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE,
};
use crate::store::{DbErrorKind, StoreError};

/// The connection of [`connect_one`]: poll it (or spawn it) for the connection to make
/// progress; [`tokio_postgres::Connection::poll_message`] yields LISTEN notifications.
pub type PgConnection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// A connection of its own to the store's database (not from the pool), for LISTEN: the
/// caller polls or spawns the [`PgConnection`]. With several hosts and
/// `target_session_attrs=read-write` it reaches the primary.
///
/// # Errors
/// [`StoreError::Db`] of kind [`DbErrorKind::Unavailable`] when no host (or no primary)
/// answers, [`DbErrorKind::Denied`] when one refuses the credentials, with the driver's
/// message.
pub async fn connect_one(settings: &PgSettings) -> Result<(Client, PgConnection), StoreError> {
    settings
        .config
        .connect(settings.tls.clone())
        .await
        .map_err(|e| {
            let kind = if super::error::is_denied(&e) {
                DbErrorKind::Denied
            } else {
                DbErrorKind::Unavailable
            };
            StoreError::db(
                kind,
                format!("cannot connect: {}", super::error::message(&e)),
            )
        })
}
