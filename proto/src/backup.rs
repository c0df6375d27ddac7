//! JSON bodies of the backup-code routes (issue 12; NIST SP 800-63B-4 saved recovery codes).
//! Re-exported from [`crate::wire`]. Codes travel as people read them (`K7QM-3XHT-9RWD-PC4N`);
//! servers accept them in any case, with or without separators.

use serde::{Deserialize, Serialize};

use crate::Context;

/// The context `action` value of a challenge that approves issuing a new set of backup codes
/// (`POST /v1/users/{user}/backup-codes` with `approval`).
pub const ACTION_ISSUE_BACKUP_CODES: &str = "issue_backup_codes";

/// `POST /v1/admin/users/{user}/backup-codes` and `POST /v1/device/backup-codes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBackupCodes {
    /// Codes in the set; the server's `[backup_codes] count` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// `POST /v1/users/{user}/backup-codes` (relying party): a new set for a person who just
/// approved a challenge with context `action = issue_backup_codes` on one of their devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBackupCodesForRp {
    /// Id of that challenge: created by the same relying party for this user, approved with
    /// the code, at most 5 minutes ago, not used before.
    pub approval: String,
    /// Codes in the set; the server's `[backup_codes] count` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// 201 answer of every route that issues a set: the codes, shown once (the server keeps only
/// their hashes). Issuing voids every earlier code of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCodeSet {
    /// The user the codes belong to.
    pub user: String,
    /// The codes, grouped for reading.
    pub codes: Vec<String>,
    /// RFC 3339 time of issue.
    pub created_at: String,
}

/// Answer of `DELETE /v1/admin/users/{user}/backup-codes`: every code of the user is void (a
/// lost sheet); none is issued in their place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCodesVoided {
    /// The user whose codes were voided.
    pub user: String,
    /// RFC 3339 time they were voided.
    pub voided_at: String,
}

/// `POST /v1/users/{user}/backup-codes/verify` (relying party): a code the person typed
/// instead of approving a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBackupCode {
    /// What the person typed.
    pub code: String,
    /// Where (service, host, rhost…), audited and told to the user's devices.
    #[serde(default, deserialize_with = "crate::context::deserialize_unique")]
    pub context: Context,
}

/// 200 answer of a verify: the code is used up; `replacement` takes its place and must be
/// shown to the person where they used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCodeVerified {
    /// The user.
    pub user: String,
    /// A fresh code replacing the used one, grouped for reading (shown once).
    pub replacement: String,
    /// Unused codes the user has now (the replacement counted).
    pub remaining: u32,
}
