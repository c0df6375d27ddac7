//! Backup codes through the relying-party API (issue 12; NIST SP 800-63B-4 §3.1.2): use a code
//! the person typed instead of approving a push, enroll a new device with a code, and issue a
//! new set on an `issue_backup_codes` approval.
//!
//! The server decides; there is no device signature to check (a code is the server's word
//! alone), so a relying party that pins device keys must decide for itself whether a code may
//! let a person in (pam_push refuses codes for pinned users unless told otherwise).

use std::time::Instant;

use pushauth_proto::wire::{
    BackupCodeSet, BackupCodeVerified, CreateRpEnrollment, EnrollmentCreated,
    IssueBackupCodesForRp, VerifyBackupCode,
};
use pushauth_proto::Context;

use crate::http::path_segment;
use crate::{Client, ClientError};

/// True for a code as the server shows it: letters, digits and dashes, at most 32 characters,
/// so it is safe to print at a terminal as it came.
fn shown_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

impl Client {
    /// Refuses a backup code for a user with a pinned-key file unless
    /// [`crate::ClientConfig::pinned_backup_codes`]: the server alone decides a backup code,
    /// and pins promise that only a pinned device's signature lets such a user in. Read before
    /// anything is sent, so the code is not used up.
    ///
    /// Errors: [`ClientError::Config`] naming the setting; the pin file's own errors.
    fn refuse_pinned(&self, user: &str) -> Result<(), ClientError> {
        if self.pinned_backup_codes {
            return Ok(());
        }
        if self.pins_keys_for(user)? {
            return Err(ClientError::Config(
                "backup codes are not taken for a user with pinned device keys (pinned_backup_codes is off)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `POST /v1/users/{user}/backup-codes/verify`: uses `code` (as typed) once, giving up at
    /// `deadline`. `context` (service, host, rhost…) is audited and told to the user's
    /// devices. The answer's `replacement` must be shown to the person, once.
    ///
    /// Errors: [`ClientError::Rejected`] with `backup_code_invalid` (403) for a wrong, used or
    /// missing code, or `forbidden` when this relying party may not push to the user;
    /// [`ClientError::RateLimited`] with `user_locked` after too many wrong codes;
    /// [`ClientError::BadAnswer`] for an answer about another user or with an unprintable code.
    pub fn verify_backup_code_until(
        &self,
        user: &str,
        code: &str,
        context: &Context,
        deadline: Instant,
    ) -> Result<BackupCodeVerified, ClientError> {
        self.refuse_pinned(user)?;
        let path = format!("/v1/users/{}/backup-codes/verify", path_segment(user));
        let body = VerifyBackupCode {
            code: code.to_owned(),
            context: context.clone(),
        };
        let (verified, _): (BackupCodeVerified, _) =
            self.call_with_failover_until("POST", &path, Some(&body), deadline)?;
        if verified.user != user {
            return Err(ClientError::BadAnswer(format!(
                "backup code answer for another user ({:?})",
                pushauth_proto::text::for_terminal_cut(&verified.user, 64)
            )));
        }
        if !shown_code(&verified.replacement) {
            return Err(ClientError::BadAnswer(
                "the replacement backup code is not letters, digits and dashes".into(),
            ));
        }
        Ok(verified)
    }

    /// `POST /v1/enrollments` with a backup code instead of an approval: a link for a person
    /// who lost every device (needs the `enroll` right). The code is used up; the answer's
    /// `replacement` must be shown to the person.
    ///
    /// Errors: as [`Client::create_enrollment`], plus `backup_code_invalid` and `user_locked`.
    pub fn enroll_with_backup_code(
        &self,
        user: &str,
        code: &str,
        ttl_secs: Option<u64>,
    ) -> Result<EnrollmentCreated, ClientError> {
        self.refuse_pinned(user)?;
        let body = CreateRpEnrollment {
            user: user.to_owned(),
            ttl_secs,
            approval: None,
            backup_code: Some(code.to_owned()),
        };
        let (created, _): (EnrollmentCreated, _) =
            self.call_with_failover("POST", "/v1/enrollments", Some(&body))?;
        if created
            .replacement
            .as_deref()
            .is_some_and(|c| !shown_code(c))
        {
            return Err(ClientError::BadAnswer(
                "the replacement backup code is not letters, digits and dashes".into(),
            ));
        }
        Ok(created)
    }

    /// `POST /v1/users/{user}/backup-codes`: a new set (voiding the old) on `approval`, the id
    /// of an `issue_backup_codes` challenge this client created for `user` and the person
    /// approved with the code in the last 5 minutes (usable once). `count` defaults to the
    /// server's setting.
    ///
    /// Errors: `approval_invalid` (403), `approval_used` (409), `forbidden`.
    pub fn issue_backup_codes(
        &self,
        user: &str,
        approval: &str,
        count: Option<u32>,
    ) -> Result<BackupCodeSet, ClientError> {
        let path = format!("/v1/users/{}/backup-codes", path_segment(user));
        let body = IssueBackupCodesForRp {
            approval: approval.to_owned(),
            count,
        };
        let (set, _): (BackupCodeSet, _) = self.call_with_failover("POST", &path, Some(&body))?;
        if set.user != user || !set.codes.iter().all(|c| shown_code(c)) {
            return Err(ClientError::BadAnswer(
                "the backup code set is for another user or holds unprintable codes".into(),
            ));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::shown_code;

    #[test]
    fn issue12_only_plain_codes_are_shown() {
        assert!(shown_code("K7QM-3XHT-9RWD-PC4N"));
        assert!(!shown_code(""));
        assert!(!shown_code("K7QM\u{1b}[2J"));
        assert!(!shown_code("k7qm"));
        assert!(!shown_code(&"A".repeat(33)));
    }
}
