//! pushauth-server: the push server `pushauthd`. It keeps the device registry (enrollment,
//! revocation), records challenges from relying parties, lets devices fetch and answer them over
//! a signed API, wakes long-polls the moment a challenge changes, enforces push-fatigue limits,
//! and offers admin subcommands that work directly on the store.
//!
//! - [`config`]: settings, the TOML file and the admin token file;
//! - [`server`]: [`RunningServer`] and [`serve`];
//! - [`app`]: shared state, the route table and error middleware; [`api`]: the handlers;
//! - [`auth`]: API keys, admin token, device request signatures and nonces;
//! - [`store`]: the storage trait and its SQLite implementation; [`jobs`]: the threads that run it;
//! - [`rights`]: what a relying party may do; [`enrollment`]: who may get an enrollment link;
//! - [`waiters`], [`limits`], [`webhook`], [`metrics`], [`tls`], [`cli`].

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod enrollment;
pub mod error;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod rights;
pub mod server;
pub mod store;
pub mod tls;
pub mod waiters;
pub mod webhook;

pub use config::{Limits, ServerConfig, TlsConfig, WebhookConfig};
pub use error::{ApiError, ServerError};
pub use server::{serve, RunningServer};
