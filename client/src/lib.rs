//! pushauth-client: the one relying-party client of pushauthd. It starts a push challenge for a
//! user, long-polls it until a decision or a deadline, cancels it, and verifies the device's
//! signed answer against what it sent (and against pinned device keys) so that a broken-into
//! server cannot approve on its own.
//!
//! Blocking and single-threaded on purpose: it runs inside sshd through PAM, where no threads or
//! async runtime may be started.

pub mod action;
mod admin;
mod backup;
mod client;
mod config;
mod error;
mod grace;
mod http;
mod offline;
pub mod pinned;
mod rp_admin;
pub mod settings;
pub mod transport;
mod verify;

pub use action::{ActionOutcome, ActionRequest, PendingAction};
pub use admin::AdminClient;
pub use client::{Client, Outcome, PendingLogin, StartOptions};
pub use config::{ClientConfig, DEFAULT_CONNECT_TIMEOUT};
pub use error::ClientError;
pub use grace::GraceGrant;
pub use pushauth_proto::wire::{BackupCodeSet, BackupCodeVerified, DeviceInfo, ErrorCode};

pub use pushauth_proto::Context;
pub use settings::{api_key_is_printable_ascii, ClientSettings, SettingsError};
