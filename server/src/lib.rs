//! pushauth-server: the push server `pushauthd`. It keeps the device registry (enrollment,
//! revocation), records challenges from relying parties, lets devices fetch and answer them over
//! a signed API, wakes long-polls the moment a challenge changes, enforces push-fatigue limits,
//! and offers admin subcommands that work directly on the store.
//!
//! Layers, each importing only those below it:
//! - [`cli`] and [`server`] (with [`conn`], [`tls`]): the binary's edges;
//! - [`api`]: routes, middleware, extractors, the one HTTP error type, the handlers;
//! - [`state`]: what handlers share, and the bookkeeping after a change;
//! - [`service`]: the rules, as plain functions over the store, returning domain errors;
//! - [`store`] (with [`jobs`], the threads that run it), [`hashing`], [`bounds`], [`waiters`], [`webhook`],
//!   [`webpush`], [`metrics`]: infrastructure;
//! - [`web`] (the web app's files and headers), [`auth`] (secret hashing), [`enrollment`] (enrollment refusals), [`limits`], [`rights`],
//!   [`backup_code`] (backup codes as values), [`clock`], [`config`]: leaves.

pub mod api;
pub mod auth;
pub mod backup_code;
pub mod bounds;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod created;
pub mod enrollment;
pub mod error;
pub mod hashing;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod offline;
pub mod opening;
pub mod rights;
pub mod server;
pub mod service;
pub mod shown;
pub mod site_keys;
pub mod starting;
pub mod state;
pub mod store;
pub mod tls;
pub mod waiters;
pub mod wake;
pub mod web;
pub mod webhook;
pub mod webpush;

pub use api::ApiError;
pub use config::{Limits, ServerConfig, TlsConfig, WebhookConfig};
pub use error::ServerError;
pub use server::{serve, RunningServer};
