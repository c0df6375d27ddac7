//! Backup codes through the relying-party API (issue 12; NIST SP 800-63B-4 §3.1.2, saved
//! recovery codes): verify one for a login step, enroll a replacement device with one, issue a
//! new set after an `issue_backup_codes` push. pushauthd hashes, throttles and replaces codes;
//! this client only carries them, never logging one.
//!
//! Placeholder written by the IdP sidecar's side against the issue-12 contract; the server
//! side's own module replaces it at the merge.

use std::time::Instant;

use pushauth_proto::wire::EnrollmentCreated;
use serde::{Deserialize, Serialize};

use crate::http::path_segment;
use crate::{Client, ClientError, Context};

/// The answer to a used backup code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BackupCodeUse {
    /// The pushauthd user the code belonged to.
    pub user: String,
    /// The new code that replaces the used one: show it once, where it was used.
    pub replacement: String,
    /// How many unused codes the user has now.
    pub remaining: u32,
}

/// `POST /v1/users/{user}/backup-codes/verify`.
#[derive(Debug, Serialize)]
struct VerifyBackupCode<'a> {
    code: &'a str,
    context: &'a Context,
}

/// `POST /v1/users/{user}/backup-codes`.
#[derive(Debug, Serialize)]
struct IssueBackupCodes<'a> {
    approval: &'a str,
}

/// The new set.
#[derive(Debug, Deserialize)]
struct IssuedBackupCodes {
    codes: Vec<String>,
}

/// `POST /v1/enrollments` with a backup code instead of an approval.
#[derive(Debug, Serialize)]
struct CreateEnrollmentWithCode<'a> {
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_secs: Option<u64>,
    backup_code: &'a str,
}

/// The link, plus the code that replaces the one used.
#[derive(Debug, Deserialize)]
struct EnrollmentWithReplacement {
    #[serde(flatten)]
    created: EnrollmentCreated,
    replacement: String,
}

impl Client {
    /// Consumes one of `user`'s backup codes for a login step described by `context`.
    ///
    /// Errors: 403 `backup_code_invalid` (wrong, used, or the user has none: one code for all,
    /// so nothing leaks), 429 when the user is locked after too many failures.
    pub fn verify_backup_code(
        &self,
        user: &str,
        code: &str,
        context: &Context,
        deadline: Instant,
    ) -> Result<BackupCodeUse, ClientError> {
        let path = format!("/v1/users/{}/backup-codes/verify", path_segment(user));
        let body = VerifyBackupCode { code, context };
        let (used, _) = self.call_with_failover_until("POST", &path, Some(&body), deadline)?;
        Ok(used)
    }

    /// Issues a new set of backup codes for `user` (voiding the old), approved by `approval`:
    /// a challenge this client made for `user` with context `action = "issue_backup_codes"`,
    /// approved with its code on one of the user's devices.
    pub fn issue_backup_codes(
        &self,
        user: &str,
        approval: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, ClientError> {
        let path = format!("/v1/users/{}/backup-codes", path_segment(user));
        let body = IssueBackupCodes { approval };
        let (issued, _): (IssuedBackupCodes, _) =
            self.call_with_failover_until("POST", &path, Some(&body), deadline)?;
        Ok(issued.codes)
    }

    /// An enrollment link for `user` approved by one of their backup codes (a lost device);
    /// returns the link and the replacement code.
    pub fn create_enrollment_with_backup_code(
        &self,
        user: &str,
        code: &str,
        ttl_secs: Option<u64>,
        deadline: Instant,
    ) -> Result<(EnrollmentCreated, String), ClientError> {
        let body = CreateEnrollmentWithCode {
            user,
            ttl_secs,
            backup_code: code,
        };
        let (created, _): (EnrollmentWithReplacement, _) =
            self.call_with_failover_until("POST", "/v1/enrollments", Some(&body), deadline)?;
        Ok((created.created, created.replacement))
    }
}
