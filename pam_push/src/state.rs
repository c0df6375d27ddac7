//! The module's state directory on a PAM host (`state_dir`, default `/var/lib/pam_push`): what
//! the module remembers between logins (the offline-code cache, grace bookkeeping). One
//! subdirectory per feature (`offline/`, `grace/`), one file per user in it.
//!
//! Rules, the same as for the pinned-key directory, because whoever can write these files
//! decides who gets in:
//! - the directory and each feature directory are created 0700 on first use and must be owned
//!   by root (the config's [`Ownership`]) and not writable by group or others; a symlink in
//!   their place is refused; every directory above them must be root's (or the owner's) and
//!   not writable by group or others unless sticky, or the state could be swapped for an old
//!   copy;
//! - a user's file is read under the secret rule (owner, 0600, size cap, no symlink) and written
//!   atomically (a 0600 temporary file renamed over it, [`pushauth_files::replace`]);
//! - a user name maps to exactly one file name by [`user_file_name`], which can never leave the
//!   feature directory.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use pushauth_files::{FileError, Owner, ReadPolicy};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::config::Ownership;

/// Where the state lives without `state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam_push";

/// Longest file name [`user_file_name`] makes from an escaped user name; longer names are
/// hashed (file systems allow 255 bytes).
const MAX_ESCAPED_NAME: usize = 200;

/// A feature's subdirectory of the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `offline/`: the offline-code cache (issue 12).
    Offline,
    /// `grace/`: the grace-window bookkeeping (issue 12).
    Grace,
}

impl Feature {
    /// The subdirectory's name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Feature::Offline => "offline",
            Feature::Grace => "grace",
        }
    }
}

/// Why the state could not be read or written. The text names the path and what to fix.
#[derive(Debug, Error)]
pub enum StateError {
    /// A file or directory failed the shared file rule, or an I/O error.
    #[error("pam_push state: {0}")]
    File(#[from] FileError),
    /// The state directory (or a feature directory) is a symlink.
    #[error(
        "pam_push state: {path} is a symlink; make it a real directory owned by root, mode 0700"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The user name is empty.
    #[error("pam_push state: an empty user name has no state file")]
    EmptyUser,
    /// A directory above the state directory can be written by someone else, who could rename
    /// the state away and put an older copy back (used offline codes would work again).
    #[error(
        "pam_push state: {path}, above the state directory, belongs to uid {uid} with mode {mode:o}: \
         whoever can write it can swap the state for an old copy; put state_dir under directories \
         owned by root and not writable by group or others (chown root {path}; chmod go-w {path}), \
         or use the default /var/lib/pam_push"
    )]
    UnsafeParent {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its mode.
        mode: u32,
    },
}

/// The state directory with the owner its files must have (root in the module).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    owner: Ownership,
}

/// Maps a user name to the one file name that holds its state: bytes `A-Z a-z 0-9 _ -` and
/// `.` (not as the first byte) stay, every other byte becomes `%XX` (upper-case hex), so `/`,
/// `..`, NUL and control characters can never name another path; names whose escaped form is
/// longer than 200 bytes become `~` and the hex SHA-256 of the name (`~` is always escaped
/// otherwise, so the two forms cannot collide).
///
/// # Errors
/// [`StateError::EmptyUser`] for an empty name.
pub fn user_file_name(user: &str) -> Result<String, StateError> {
    if user.is_empty() {
        return Err(StateError::EmptyUser);
    }
    let mut name = String::with_capacity(user.len());
    for (i, byte) in user.bytes().enumerate() {
        let keep =
            byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (byte == b'.' && i > 0);
        if keep {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.len() > MAX_ESCAPED_NAME {
        let digest = Sha256::digest(user.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        return Ok(format!("~{hex}"));
    }
    Ok(name)
}

impl StateDir {
    /// The state directory at `root`, whose files and directories must belong to `owner`.
    pub fn new(root: impl Into<PathBuf>, owner: Ownership) -> StateDir {
        StateDir {
            root: root.into(),
            owner,
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn owner(&self) -> Owner {
        Owner::named(self.owner.uid, "root")
    }

    /// Checks every existing directory above the state directory (after resolving symlinks):
    /// owned by root (or the configured owner) and not writable by group or others, unless
    /// sticky (like `/tmp`, where nobody else can rename our entries).
    fn check_parents(&self) -> Result<(), StateError> {
        use std::os::unix::fs::MetadataExt;
        let Some(parent) = self.root.parent() else {
            return Ok(());
        };
        let Some(existing) = parent.ancestors().find(|p| p.exists()) else {
            return Ok(());
        };
        let real = fs::canonicalize(existing).map_err(|source| FileError::Read {
            path: existing.to_owned(),
            source,
        })?;
        for dir in real.ancestors() {
            let meta = fs::metadata(dir).map_err(|source| FileError::Read {
                path: dir.to_owned(),
                source,
            })?;
            let mode = meta.mode() & 0o7777;
            let owner_ok = meta.uid() == 0 || meta.uid() == self.owner.uid;
            let writable = mode & 0o022 != 0 && mode & 0o1000 == 0;
            if !owner_ok || writable {
                return Err(StateError::UnsafeParent {
                    path: dir.to_owned(),
                    uid: meta.uid(),
                    mode,
                });
            }
        }
        Ok(())
    }

    /// Refuses a symlink at `path` (a missing path is fine: it is created next).
    fn refuse_symlink(path: &Path) -> Result<(), StateError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => Err(StateError::Symlink {
                path: path.to_owned(),
            }),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(FileError::Read {
                path: path.to_owned(),
                source,
            }
            .into()),
        }
    }

    /// The feature's directory, created 0700 (with the state directory) on first use and
    /// checked: owned by root, not writable by group or others, not a symlink.
    ///
    /// # Errors
    /// A [`StateError`] naming the directory and the fix.
    pub fn feature_dir(&self, feature: Feature) -> Result<PathBuf, StateError> {
        let owner = self.owner();
        self.check_parents()?;
        Self::refuse_symlink(&self.root)?;
        pushauth_files::create_private_dir(&self.root, &owner)?;
        let dir = self.root.join(feature.dir_name());
        Self::refuse_symlink(&dir)?;
        pushauth_files::create_private_dir(&dir, &owner)?;
        Ok(dir)
    }

    /// The path of `user`'s file for `feature` (the directories are created and checked).
    ///
    /// # Errors
    /// As [`StateDir::feature_dir`], or an empty user name.
    pub fn user_path(&self, feature: Feature, user: &str) -> Result<PathBuf, StateError> {
        let name = user_file_name(user)?;
        Ok(self.feature_dir(feature)?.join(name))
    }

    /// Reads `user`'s file for `feature`: `Ok(None)` when there is none. The file must be a
    /// regular file (not a symlink) owned by root with mode 0600 or stricter, at most
    /// `max_bytes` long.
    ///
    /// # Errors
    /// A [`StateError`] when the file fails those checks or cannot be read.
    pub fn read_user(
        &self,
        feature: Feature,
        user: &str,
        max_bytes: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
        let path = self.user_path(feature, user)?;
        let policy = ReadPolicy::secret(self.owner())
            .max_bytes(max_bytes)
            .no_symlinks();
        match pushauth_files::read(&path, &policy) {
            Ok(contents) => Ok(Some(Zeroizing::new(contents.bytes().to_vec()))),
            Err(FileError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces `user`'s file for `feature` with `bytes`, atomically (temp file + rename,
    /// mode 0600).
    ///
    /// # Errors
    /// A [`StateError`] when a directory fails its checks or the write fails.
    pub fn write_user(&self, feature: Feature, user: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.user_path(feature, user)?;
        pushauth_files::replace(&path, bytes)?;
        Ok(())
    }

    /// Removes `user`'s file for `feature`; no file is fine.
    ///
    /// # Errors
    /// A [`StateError`] when a directory fails its checks or the removal fails.
    pub fn remove_user(&self, feature: Feature, user: &str) -> Result<(), StateError> {
        let path = self.user_path(feature, user)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(FileError::Write { path, source }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn me() -> Ownership {
        Ownership {
            uid: pushauth_testkit::euid(),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn names_never_escape_and_never_collide() {
        assert_eq!(user_file_name("alice").unwrap(), "alice");
        assert_eq!(user_file_name("a.b-c_d").unwrap(), "a.b-c_d");
        assert_eq!(user_file_name("..").unwrap(), "%2E.");
        assert_eq!(user_file_name(".hidden").unwrap(), "%2Ehidden");
        assert_eq!(user_file_name("kc/alice").unwrap(), "kc%2Falice");
        assert_eq!(user_file_name("a\0b").unwrap(), "a%00b");
        assert_eq!(user_file_name("a%2Fb").unwrap(), "a%252Fb");
        assert_eq!(user_file_name("é").unwrap(), "%C3%A9");
        assert!(matches!(user_file_name(""), Err(StateError::EmptyUser)));
        let long = "/".repeat(256);
        let hashed = user_file_name(&long).unwrap();
        assert!(hashed.starts_with('~') && hashed.len() == 65);
        assert_ne!(user_file_name(&"/".repeat(255)).unwrap(), hashed);
        for name in ["a/../b", "../../etc/passwd", "x\ny", "~abc"] {
            let file = user_file_name(name).unwrap();
            assert!(!file.contains('/') && !file.starts_with('.') && !file.starts_with('~'));
        }
    }

    #[test]
    fn creates_private_dirs_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path().join("state"), me());
        assert!(state
            .read_user(Feature::Offline, "alice", 1024)
            .unwrap()
            .is_none());
        assert_eq!(mode(state.root()), 0o700);
        let dir = state.feature_dir(Feature::Offline).unwrap();
        assert_eq!(mode(&dir), 0o700);
        state
            .write_user(Feature::Offline, "kc/alice", b"hello")
            .unwrap();
        let path = dir.join("kc%2Falice");
        assert_eq!(mode(&path), 0o600);
        let back = state
            .read_user(Feature::Offline, "kc/alice", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(back.as_slice(), b"hello");
        state
            .write_user(Feature::Offline, "kc/alice", b"again")
            .unwrap();
        let back = state
            .read_user(Feature::Offline, "kc/alice", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(back.as_slice(), b"again");
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(state.read_user(Feature::Offline, "kc/alice", 3).is_err());
        state.remove_user(Feature::Offline, "kc/alice").unwrap();
        state.remove_user(Feature::Offline, "kc/alice").unwrap();
        assert!(state
            .read_user(Feature::Grace, "kc/alice", 1024)
            .unwrap()
            .is_none());
    }

    #[test]
    fn refuses_unsafe_dirs_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let state = StateDir::new(&root, me());
        let err = state.feature_dir(Feature::Offline).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();

        // A symlinked feature directory is refused even when its target is fine.
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
        symlink(&elsewhere, root.join("grace")).unwrap();
        assert!(matches!(
            state.feature_dir(Feature::Grace),
            Err(StateError::Symlink { .. })
        ));
        let linked_root = tmp.path().join("link");
        symlink(&root, &linked_root).unwrap();
        assert!(matches!(
            StateDir::new(&linked_root, me()).feature_dir(Feature::Offline),
            Err(StateError::Symlink { .. })
        ));

        // A user file others can read, or a symlink as the user file, is refused.
        let dir = state.feature_dir(Feature::Offline).unwrap();
        let file = dir.join("bob");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(state.read_user(Feature::Offline, "bob", 1024).is_err());
        symlink(&file, dir.join("carol")).unwrap();
        assert!(state.read_user(Feature::Offline, "carol", 1024).is_err());

        // Another owner is refused.
        let other = StateDir::new(&root, Ownership { uid: me().uid + 1 });
        assert!(other.feature_dir(Feature::Offline).is_err());
    }
}
