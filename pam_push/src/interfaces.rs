//! The small traits and values the authentication flow runs over ([`crate::authenticate`]):
//! the PAM result, the conversation, what PAM and the host tell, and the log. `system` holds
//! the real implementations; tests script their own.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::context::LoginFacts;
use crate::policy::{GroupId, UserGroup};
use crate::system::LookupFailed;

/// The PAM result the flow decides; `lib.rs` maps it to the C value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamCode {
    /// `PAM_SUCCESS`: the push was approved.
    Success,
    /// `PAM_AUTH_ERR`: denied, expired, failed verification, or failed closed.
    AuthErr,
    /// `PAM_IGNORE`: this user is not asked (group rules, or the `ignore` policy).
    Ignore,
    /// `PAM_AUTHINFO_UNAVAIL`: pushauthd could not be reached and the policy says so.
    AuthinfoUnavail,
    /// `PAM_SERVICE_ERR`: the module's own set-up is broken (config, arguments).
    ServiceErr,
    /// `PAM_USER_UNKNOWN`: PAM gave no user name.
    UserUnknown,
}

/// The conversation failed (the person pressed Ctrl-C, the connection closed, no conv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvFailed;

/// The application's conversation function.
pub trait Conversation {
    /// Shows `text` as a prompt with echo on and returns what was typed.
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed>;
    /// Shows an informational message.
    fn info(&mut self, text: &str) -> Result<(), ConvFailed>;
    /// Shows an error message.
    fn error(&mut self, text: &str) -> Result<(), ConvFailed>;
}

/// What the module reads from PAM and the host.
pub trait PamEnv {
    /// Service, hosts, tty, `SSH_AUTH_INFO_0`, argv.
    fn facts(&self) -> LoginFacts;
    /// The user's local groups (primary included), each with its name where it resolves;
    /// `Ok(None)` for an unknown user; `Err` when the user database failed.
    fn user_groups(&self, user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed>;
    /// The gid of a group named in a literal `groups` pattern.
    fn group_id(&self, name: &str) -> GroupId;
    /// The members of local group `name` as the group database lists them (issue 14: a
    /// `%group` in `approvers`); `Ok(None)` for no such group; `Err` when the database failed.
    fn group_members(&self, name: &str) -> Result<Option<Vec<String>>, LookupFailed> {
        let _ = name;
        Ok(None)
    }
    /// The uid of local account `name` (issue 14: an approver who is the requester under
    /// another name of the same account is never asked); `Ok(None)` for no such account;
    /// `Err` when the user database failed.
    fn user_id(&self, name: &str) -> Result<Option<u32>, LookupFailed> {
        let _ = name;
        Ok(None)
    }
    /// `PAM_RUSER`: the person asking, where the application names one (su, sudo: the
    /// invoking user; the PAM user is then the account switched to under su, or under sudo's
    /// `targetpw`/`rootpw`); `None` when unset or empty.
    fn ruser(&self) -> Option<String> {
        None
    }
    /// sshd's `LoginGraceTime` from `/etc/ssh/sshd_config` (and its includes), when the host
    /// program is sshd; `None` when unknown or unlimited.
    fn login_grace_time(&self) -> Option<Duration> {
        None
    }
    /// Whether the person asked to stop: a SIGINT, SIGQUIT, SIGHUP or SIGTERM is pending for the
    /// process (sudo blocks SIGINT and SIGQUIT while PAM runs, so Ctrl-C waits there until the
    /// module returns). Checked between slices of the wait; no handler is installed and no
    /// thread started.
    fn interrupted(&self) -> bool {
        false
    }
}

/// Syslog priority of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `LOG_ERR`.
    Error,
    /// `LOG_WARNING`.
    Warning,
    /// `LOG_NOTICE`.
    Notice,
    /// `LOG_INFO`.
    Info,
    /// `LOG_DEBUG` (only with the `debug` argument).
    Debug,
}

/// Where log lines go (syslog `authpriv` in the module).
pub trait Log {
    /// Writes one line at `level`; callers escape what came from outside before it gets here.
    fn log(&mut self, level: Level, line: &str);
}
