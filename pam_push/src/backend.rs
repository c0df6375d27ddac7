//! The push server as the authentication flow needs it ([`PushBackend`]), and its
//! implementation by the one relying-party client, `pushauth_client::Client`. Tests script
//! their own backends against the same trait.

use std::time::Instant;

use pushauth_client::{
    ActionRequest, BackupCodeVerified, ClientError, Context, GraceGrant, Outcome, PendingLogin,
    StartOptions,
};

/// The push server as the flow needs it. Implemented by `pushauth_client::Client`; tests may
/// script it.
pub trait PushBackend {
    /// A started login: its challenge and what the relying party needs to wait for it.
    type Login;
    /// Starts a challenge; gives up at `deadline` (connect, TLS and failover included).
    fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
        deadline: Instant,
    ) -> Result<Self::Login, ClientError>;
    /// The challenge id, for log lines.
    fn challenge_id(login: &Self::Login) -> &str;
    /// The code the person types on the device; `None` without number matching.
    fn code(login: &Self::Login) -> Option<&str>;
    /// Names of the devices the push went to, to show the person.
    fn device_names(login: &Self::Login) -> Vec<String>;
    /// Waits for the outcome, verified against the device's key (and pins); gives up at
    /// `deadline`.
    fn wait(&self, login: &Self::Login, deadline: Instant) -> Result<Outcome, ClientError>;
    /// Cancels the challenge; gives up at `deadline` (the client allows a short attempt even
    /// when it has passed).
    fn cancel(&self, login: &Self::Login, deadline: Instant) -> Result<(), ClientError>;
    /// Uses a backup code typed instead of the push (issue 12); gives up at `deadline`. A
    /// backend that takes none refuses.
    fn verify_backup_code(
        &self,
        user: &str,
        code: &str,
        context: &Context,
        deadline: Instant,
    ) -> Result<BackupCodeVerified, ClientError> {
        let _ = (user, code, context, deadline);
        Err(ClientError::Config(
            "this backend takes no backup codes".into(),
        ))
    }
    /// Offline values for an approved `login` (issue 12); a backend without them refuses.
    fn offline_values(
        &self,
        _login: &Self::Login,
        _have: &std::collections::BTreeMap<String, u64>,
        _deadline: Instant,
    ) -> Result<pushauth_proto::offline::OfflineResponse, ClientError> {
        Err(ClientError::Config(
            "no offline codes from this backend".into(),
        ))
    }
    /// Reports an offline code used here (issue 12); the server's counter after it.
    fn report_offline_used(
        &self,
        _user: &str,
        _report: &pushauth_proto::offline::OfflineUsedRequest,
        _deadline: Instant,
    ) -> Result<u64, ClientError> {
        Err(ClientError::Config(
            "no offline codes from this backend".into(),
        ))
    }
    /// The grace window the server says let this login in without a push (issue 12), still
    /// to be checked against the host's own record ([`crate::grace`]).
    fn grace(_login: &Self::Login) -> Option<&GraceGrant> {
        None
    }
    /// Issue 14: asks every approver of `request` (a challenge each, no number matching);
    /// gives up at `deadline`. Each asked approver with its challenge, in order, and the
    /// approvers that could not be asked (unknown, or without a device). A backend without
    /// approvals refuses.
    #[allow(clippy::type_complexity)]
    fn start_action(
        &self,
        _request: &ActionRequest,
        _deadline: Instant,
    ) -> Result<(Vec<(String, Self::Login)>, Vec<String>), ClientError> {
        Err(ClientError::Config("this backend asks no approvers".into()))
    }
    /// Issue 14: waits until one of `logins` is decided (verified against that approver's
    /// device key and pins), expires or is cancelled, or until `deadline`: which one, and how.
    fn wait_any(
        &self,
        _logins: &[Self::Login],
        _deadline: Instant,
    ) -> Result<(Option<usize>, Outcome), ClientError> {
        Err(ClientError::Config("this backend asks no approvers".into()))
    }
}

impl PushBackend for pushauth_client::Client {
    type Login = PendingLogin;
    fn start(
        &self,
        user: &str,
        context: &Context,
        opts: &StartOptions,
        deadline: Instant,
    ) -> Result<PendingLogin, ClientError> {
        pushauth_client::Client::start_until(self, user, context, opts, deadline)
    }
    fn challenge_id(login: &PendingLogin) -> &str {
        &login.id
    }
    fn code(login: &PendingLogin) -> Option<&str> {
        login.code.as_deref()
    }
    fn device_names(login: &PendingLogin) -> Vec<String> {
        login.devices.iter().map(|d| d.name.clone()).collect()
    }
    fn wait(&self, login: &PendingLogin, deadline: Instant) -> Result<Outcome, ClientError> {
        pushauth_client::Client::wait(self, login, deadline)
    }
    fn cancel(&self, login: &PendingLogin, deadline: Instant) -> Result<(), ClientError> {
        pushauth_client::Client::cancel_until(self, login, deadline)
    }
    fn verify_backup_code(
        &self,
        user: &str,
        code: &str,
        context: &Context,
        deadline: Instant,
    ) -> Result<BackupCodeVerified, ClientError> {
        self.verify_backup_code_until(user, code, context, deadline)
    }
    fn offline_values(
        &self,
        login: &PendingLogin,
        have: &std::collections::BTreeMap<String, u64>,
        deadline: Instant,
    ) -> Result<pushauth_proto::offline::OfflineResponse, ClientError> {
        self.offline_values_until(login, have, deadline)
    }
    fn report_offline_used(
        &self,
        user: &str,
        report: &pushauth_proto::offline::OfflineUsedRequest,
        deadline: Instant,
    ) -> Result<u64, ClientError> {
        self.report_offline_used_until(user, report, deadline)
    }
    fn grace(login: &PendingLogin) -> Option<&GraceGrant> {
        login.grace.as_ref()
    }
    fn start_action(
        &self,
        request: &ActionRequest,
        deadline: Instant,
    ) -> Result<(Vec<(String, PendingLogin)>, Vec<String>), ClientError> {
        let started = pushauth_client::Client::start_action(self, request, deadline)?;
        let asked = started
            .challenges
            .into_iter()
            .map(|c| (c.user.clone(), c))
            .collect();
        Ok((asked, started.skipped))
    }
    fn wait_any(
        &self,
        logins: &[PendingLogin],
        deadline: Instant,
    ) -> Result<(Option<usize>, Outcome), ClientError> {
        pushauth_client::Client::wait_any(self, logins, deadline)
    }
}
