//! pushauth-idp-sidecar: the HTTP service that identity-provider shims (the Keycloak provider in
//! `keycloak/`) call for push logins. One login step is "start" then "state" until a decision;
//! the sidecar holds the pending challenge (with the nonce and digest the device answer is
//! verified against), long-polls pushauthd through `pushauth-client`, and hands the shim a result
//! token signed with its own Ed25519 key. It also starts device enrollments (with an approval
//! by an existing device or a backup code, see [`enroll`]), verifies and issues backup codes
//! ([`backup`], [`api::backup`]), lists and removes a user's devices, and implements
//! Keycloak's CIBA "HTTP authentication channel" so CIBA clients get push approval with no Java
//! at all. IdP users map to pushauthd users by an explicit rule per realm ([`realms`]).
//!
//! The sidecar never speaks the relying-party API itself: every call to pushauthd goes through
//! [`pushauth_client::Client`] with the sidecar's relying-party key (never the admin token).

pub mod account_change;
pub mod api;
pub mod app;
pub mod backup;
pub mod blocking;
pub mod ciba;
pub mod config;
pub mod config_error;
pub mod enroll;
pub mod error;
pub mod extract;
pub mod logins;
pub mod metrics;
pub mod realms;
pub mod result_token;
pub mod server;
pub mod settings;
pub mod tls;
pub mod upstream;
pub mod wire;

pub use config::{ConfigError, FileConfig, Settings};
pub use error::{ApiError, ErrorCode};
pub use result_token::{ResultFields, ResultSigner, ResultToken, RESULT_DOMAIN};
pub use server::{RunningSidecar, SidecarError};
