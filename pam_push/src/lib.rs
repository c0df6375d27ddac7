//! pam_push: the PAM module (`pam_push.so`) that makes "approve on your phone" a second factor for
//! sshd, sudo and login. It reads `/etc/pam_push.conf` (failing closed when that file is missing,
//! malformed or has unsafe permissions), starts a push challenge through `pushauth-client`, shows
//! the person the device name and the code to type on it, waits (blocking, no threads, with a hard
//! deadline) and maps the outcome to a PAM result, logging one line to `authpriv` per outcome.
//!
//! This file only wires the PAM entry points (`pam_hooks!` catches panics at the boundary); the
//! decisions live in plain modules tested without PAM:
//! - [`config`]: the TOML config and its permission checks;
//! - [`policy`]: group include/exclude patterns and the failure policies;
//! - [`context`]: the context sent with the challenge;
//! - [`prompt`]: what to show, in a prompt or as messages;
//! - [`authenticate`]: the flow over conversation, PAM and push-backend traits;
//! - [`system`]: the real implementations of those traits (libpam, libc, syslog).

pub mod authenticate;
pub mod config;
pub mod context;
pub mod policy;
pub mod prompt;
pub mod system;

use std::ffi::CStr;

use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};

use crate::authenticate::PamCode;
use crate::config::Ownership;

struct PamPush;
pam::pam_hooks!(PamPush);

fn to_c(code: PamCode) -> PamResultCode {
    match code {
        PamCode::Success => PamResultCode::PAM_SUCCESS,
        PamCode::AuthErr => PamResultCode::PAM_AUTH_ERR,
        PamCode::Ignore => PamResultCode::PAM_IGNORE,
        PamCode::AuthinfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        PamCode::ServiceErr => PamResultCode::PAM_SERVICE_ERR,
        PamCode::UserUnknown => PamResultCode::PAM_USER_UNKNOWN,
    }
}

impl PamHooks for PamPush {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let user = pamh.get_user(None).ok();
        // An argument that is not UTF-8 is kept as an unknown argument, so it fails closed.
        let args: Vec<&str> = args
            .iter()
            .map(|a| a.to_str().unwrap_or("<not UTF-8>"))
            .collect();
        let debug = args.contains(&"debug");
        let pamh: &PamHandle = pamh;
        let env = system::HostEnv { pamh };
        let mut conv = system::PamConversation::new(pamh);
        let mut log = system::Syslog { debug };
        to_c(authenticate::run(
            &args,
            user.as_deref(),
            Ownership::ROOT,
            &env,
            &mut conv,
            &mut log,
        ))
    }

    /// No credentials to set: the push only proves presence. (Only called after `auth`.)
    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    /// pam_push in the `account` stack is a mistake (no push would be asked): log it and fail
    /// closed with `PAM_PERM_DENIED` (issue 9 item 19).
    fn acct_mgmt(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        misplaced(pamh, authenticate::Stack::Account);
        PamResultCode::PAM_PERM_DENIED
    }

    /// pam_push in the `password` stack is a mistake: log it and fail closed with
    /// `PAM_AUTHTOK_ERR` (issue 9 item 19).
    fn sm_chauthtok(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        misplaced(pamh, authenticate::Stack::Password);
        PamResultCode::PAM_AUTHTOK_ERR
    }

    /// pam_push in the `session` stack is a mistake: log it and fail closed with
    /// `PAM_SESSION_ERR`.
    fn sm_open_session(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        misplaced(pamh, authenticate::Stack::Session);
        PamResultCode::PAM_SESSION_ERR
    }

    /// Closing a session that could not have been opened through this module: nothing to undo.
    fn sm_close_session(
        _pamh: &mut PamHandle,
        _args: Vec<&CStr>,
        _flags: PamFlag,
    ) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// Logs that the module sits in a stack other than `auth`.
fn misplaced(pamh: &mut PamHandle, stack: authenticate::Stack) {
    let user = pamh.get_user(None).ok();
    let pamh: &PamHandle = pamh;
    let env = system::HostEnv { pamh };
    let mut log = system::Syslog { debug: false };
    authenticate::log_misplaced(stack, user.as_deref(), &env, &mut log);
}
