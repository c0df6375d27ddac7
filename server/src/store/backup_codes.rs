//! Records of backup codes (issue 12): what an attempt is decided on, and a code to store.
//! Codes themselves never reach the store: only their tag and Argon2id hash.

/// What the store knows about a user's backup codes when an attempt comes in, read before the
/// slow verify; the unit that then uses the code checks again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupCodeFacts {
    /// The user exists (an unknown user has no codes and gets none counted).
    pub known_user: bool,
    /// Consecutive wrong backup codes so far.
    pub failures: u32,
    /// The PHC string of the unused code with the attempt's tag, if any.
    pub hash: Option<String>,
}

/// A backup code as stored: its tag (not secret) and the Argon2id PHC string of the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// The code's first characters ([`crate::backup_code::TAG_LEN`]), unique in the user's set.
    pub tag: String,
    /// Argon2id PHC string of the whole code.
    pub hash: String,
}

/// The outcome of using a backup code ([`crate::store::Store::use_backup_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCode {
    /// Used: its row now holds the replacement; unused codes the user has.
    Used {
        /// Unused codes after the use (the replacement counted).
        remaining: u32,
    },
    /// The row changed since it was read (another attempt used the code first).
    Gone,
}
