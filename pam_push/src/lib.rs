//! pam_push: the PAM module (`pam_push.so`) that makes "approve on your phone" a second factor for
//! sshd, sudo and login. It reads `/etc/pam_push.conf` (failing closed when that file is missing,
//! malformed or has unsafe permissions), starts a push challenge through `pushauth-client`, shows
//! the person the device name and the code to type on it, waits (blocking, no threads, with a hard
//! deadline) and maps the outcome to a PAM result, logging one line to `authpriv` per outcome.
//!
//! The PAM entry points live in `system::hooks` (`pam_hooks!` catches panics at the boundary);
//! the decisions live in plain modules tested without PAM:
//! - [`config`]: the TOML config and its permission checks;
//! - [`policy`]: group include/exclude patterns and the failure policies;
//! - [`context`]: the context sent with the challenge;
//! - [`prompt`]: what to show, in a prompt or as messages;
//! - [`offline`]: offline codes when no server can be reached (issue 12);
//! - [`state`]: the state directory on the host (`state_dir`: offline cache, grace);
//! - [`grace`]: the grace window for repeated logins, checked against the host's own record;
//! - [`authenticate`]: the flow over conversation, PAM and push-backend traits
//!   ([`interfaces`], [`backend`]), entered through [`entry`]; a challenge that cannot be
//!   started goes to the failure policies (`start_failed`), every outcome is one log line
//!   (`record`);
//! - [`backup`]: a backup code typed at the prompt instead of Enter (issue 12);
//! - [`system`]: the real implementations of those traits (libpam, libc, syslog).

pub mod approval;
pub mod authenticate;
pub mod backend;
pub mod backup;
pub mod config;
pub mod context;
pub mod entry;
pub mod grace;
pub mod interfaces;
pub mod offline;
pub mod policy;
pub mod prompt;
mod record;
mod start_failed;
pub mod state;
// The one module allowed unsafe code: libpam, libc and syslog calls, and the PAM entry points.
#[allow(unsafe_code)]
pub mod system;
