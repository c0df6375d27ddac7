//! `[backup_codes]` (issue 12): how many one-time codes a set holds.

use serde::Deserialize;

/// Most codes one set may hold.
pub const MAX_BACKUP_CODES: u32 = 50;

/// `[backup_codes]`: the size of a set of backup codes (NIST SP 800-63B-4 saved recovery
/// codes). Consecutive wrong codes are limited by `[limits] max_backup_code_failures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupCodesConfig {
    /// Codes in a new set when the request names no count: 1 to [`MAX_BACKUP_CODES`], default 10.
    pub count: u32,
}

impl Default for BackupCodesConfig {
    fn default() -> Self {
        BackupCodesConfig { count: 10 }
    }
}
