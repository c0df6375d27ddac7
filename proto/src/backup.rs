//! JSON bodies of the backup-code routes (issue 12; NIST SP 800-63B-4 saved recovery codes).
//! Re-exported from [`crate::wire`]. Codes travel as people read them (`K7QM-3XHT-9RWD-PC4N`);
//! servers accept them in any case, with or without separators.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Context;

/// The symbols a code is made of: digits and capitals without the look-alikes 0/O, 1/I/L and
/// U, so nothing reads as something else. The one list every part (pushauthd, pam_push) uses.
pub const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code, separators not counted.
pub const CODE_LEN: usize = 16;
/// Leading characters that select the stored row (not secret).
pub const TAG_LEN: usize = 2;
/// Characters per group when shown.
pub const GROUP: usize = 4;
/// Longest text read as a code at all (nobody types more than a few dozen characters).
const MAX_TYPED: usize = 64;

/// What a person typed, as a code in canonical form ([`CODE_LEN`] upper-case characters of
/// [`ALPHABET`]): case does not matter, and spaces, dashes, dots and tabs between characters
/// are ignored. `None` for anything else (then it is not a code and is never sent).
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    if typed.len() > MAX_TYPED {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(CODE_LEN));
    for c in typed.trim().chars() {
        if matches!(c, ' ' | '-' | '.' | '\t') {
            continue;
        }
        let up = c.to_ascii_uppercase();
        if !up.is_ascii() || !ALPHABET.contains(&(up as u8)) || out.len() == CODE_LEN {
            return None;
        }
        out.push(up);
    }
    (out.len() == CODE_LEN).then_some(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue12_codes_read_back_loosely_and_nothing_else() {
        let want = "K7QM3XHT9RWDPC4N";
        for typed in [
            "K7QM-3XHT-9RWD-PC4N",
            "k7qm 3xht 9rwd pc4n",
            " k7qm.3xht\t9rwd-pc4n\n",
        ] {
            assert_eq!(normalize(typed).as_deref().map(String::as_str), Some(want));
        }
        for bad in [
            "K7QM-3XHT-9RWD-PC4",
            "K7QM-3XHT-9RWD-PC4NN",
            "O7QM-3XHT-9RWD-PC4N",
            "K7QM-3XHT-9RWD-PC4\u{418}",
            "correct horse battery",
        ] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
        assert!(normalize(&"-".repeat(65)).is_none());
        // 30 symbols, none a look-alike.
        assert_eq!(ALPHABET.len(), 30);
        assert!(!ALPHABET.iter().any(|b| b"01OILU".contains(b)));
    }
}
