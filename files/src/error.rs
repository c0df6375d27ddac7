//! The one set of fix-it messages for secret and state files.

use std::path::PathBuf;

use thiserror::Error;

use crate::owner::Owner;

/// Why a file or directory was refused or could not be read or written. `Display` is the
/// message for the person at the keyboard: it names the path and says what to run. Modes are
/// the permission bits (`0o7777` mask), shown in octal.
#[derive(Debug, Error)]
pub enum FileError {
    /// The path does not exist.
    #[error("{path} is missing")]
    NotFound {
        /// The path looked up.
        path: PathBuf,
    },
    /// Opening, `fstat` or reading failed for another reason (permission denied, I/O error).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The last component is a symbolic link and the policy refuses links.
    #[error("{path} is a symlink; point the setting at the file itself")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A directory, device, socket or FIFO where a regular file was expected.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file where a directory was expected.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Owned by another user than the rule requires.
    #[error("{path} is owned by uid {uid}, not {expected}; chown {chown} {path}", chown = expected.chown_arg())]
    WrongOwner {
        /// The path.
        path: PathBuf,
        /// Its owner's uid.
        uid: u32,
        /// Who must own it.
        expected: Owner,
    },
    /// Group or others may write it: whoever can write it decides what it says.
    #[error("{path} is group- or world-writable (mode {mode:03o}); chmod go-w {path}")]
    Writable {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret with any group or other permission bit: a secret others can read is no secret.
    #[error(
        "{path} is group- or world-readable (mode {mode:03o}) and holds a secret; chmod 600 {path}"
    )]
    Readable {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than the policy's cap (a secret or config is small; a huge one is a mistake).
    #[error("{path} is larger than {max} bytes")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The cap, in bytes.
        max: u64,
    },
    /// The bytes are not UTF-8 text.
    #[error("{path} is not UTF-8 text")]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// [`crate::write_new`] found the file already there and left it alone.
    #[error("{path} already exists; it was not replaced")]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// Creating, writing, syncing or renaming failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl FileError {
    /// The path the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            FileError::NotFound { path }
            | FileError::Read { path, .. }
            | FileError::Symlink { path }
            | FileError::NotAFile { path }
            | FileError::NotADirectory { path }
            | FileError::WrongOwner { path, .. }
            | FileError::Writable { path, .. }
            | FileError::Readable { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::NotUtf8 { path }
            | FileError::Exists { path }
            | FileError::Write { path, .. } => path,
        }
    }
}
