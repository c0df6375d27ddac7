//! Why `/etc/pam_push.conf` cannot be used ([`ConfigError`]): every message names the file and
//! says what to fix.

use std::path::PathBuf;

use pushauth_files::FileError;
use thiserror::Error;

/// Why the config cannot be used. Every message names the file and says what to fix.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file does not exist: every login is refused until it does.
    #[error("{path} is missing; create it (see pam_push.conf(5) example) — refusing all logins")]
    Missing {
        /// The missing file or directory.
        path: PathBuf,
    },
    /// Opening or reading failed (permission denied, I/O error).
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Not a regular file ([`pushauth_files`] holds the message).
    #[error("{file}")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Owned by another user than root (`chown root`).
    #[error("{file}")]
    NotOwnedByRoot {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Group or others may write it (`chmod go-w`).
    #[error("{file}")]
    Writable {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Holds the API key and group or others have a permission bit on it (`chmod 600`).
    #[error("{file}")]
    SecretReadable {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Larger than 64 KiB.
    #[error("{file}")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Not TOML, not UTF-8, or an unknown key.
    #[error("{path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where and what (`line N (key): message`; never the line itself).
        message: String,
    },
    /// A value or combination of values is not allowed.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Not a directory (the pinned-key directory).
    #[error("{file}")]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// The shared refusal, whose text is the message.
        file: FileError,
    },
    /// Any other refusal of [`pushauth_files`] (not made by the module today: it follows
    /// symlinks and writes nothing).
    #[error(transparent)]
    File(FileError),
    /// The API key is not printable ASCII.
    #[error("the API key in {path} holds characters other than printable ASCII (0x21-0x7E): a byte-order mark, a no-break or zero-width space, a space? Write the key alone on one line")]
    BadApiKey {
        /// The file holding the key (the config file for an inline key).
        path: PathBuf,
    },
}

impl From<FileError> for ConfigError {
    /// Maps the shared file rule's refusals to this module's variants (their messages are the
    /// shared ones, except "missing", which says that all logins are refused).
    fn from(file: FileError) -> Self {
        let path = file.path().to_owned();
        match file {
            FileError::NotFound { path } => ConfigError::Missing { path },
            FileError::Read { path, source } => ConfigError::Unreadable { path, source },
            FileError::NotUtf8 { path } => ConfigError::Malformed {
                path,
                message: "not UTF-8 text".into(),
            },
            FileError::NotAFile { .. } => ConfigError::NotAFile { path, file },
            FileError::NotADirectory { .. } => ConfigError::NotADirectory { path, file },
            FileError::WrongOwner { .. } => ConfigError::NotOwnedByRoot { path, file },
            FileError::Writable { .. } => ConfigError::Writable { path, file },
            FileError::Readable { .. } => ConfigError::SecretReadable { path, file },
            FileError::TooLarge { .. } => ConfigError::TooLarge { path, file },
            other => ConfigError::File(other),
        }
    }
}
