//! Reading a secret or config file: open, then check the opened file (`fstat`), then read at
//! most the cap into a zeroizing buffer.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use zeroize::Zeroizing;

use crate::error::FileError;
use crate::owner::Owner;

/// Default size cap, in bytes (64 KiB): a config file is a few lines, a secret a few dozen
/// bytes, a PEM private key a few KiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What the file holds, which decides the mode it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A secret (key, token, private key): no group or other bits at all (0600 or 0400).
    Secret,
    /// Settings that decide who is trusted: readable by anyone, writable by its owner only.
    Config,
}

/// The rule a file is read under. Build it with [`ReadPolicy::secret`] or
/// [`ReadPolicy::config`] and adjust with the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPolicy {
    /// Who must own the file.
    pub owner: Owner,
    /// Secret or config mode rule.
    pub kind: Kind,
    /// Largest size accepted, in bytes.
    pub max_bytes: u64,
    /// Whether a symlink as the last path component is followed (the target is what gets
    /// checked) or refused (`O_NOFOLLOW`).
    pub follow_symlinks: bool,
}

impl ReadPolicy {
    /// A secret owned by `owner`: mode 0600 or stricter, at most [`MAX_FILE_BYTES`], symlinks
    /// followed (the target is checked).
    pub fn secret(owner: Owner) -> ReadPolicy {
        ReadPolicy {
            owner,
            kind: Kind::Secret,
            max_bytes: MAX_FILE_BYTES,
            follow_symlinks: true,
        }
    }

    /// A config file owned by `owner`: not group- or world-writable, at most
    /// [`MAX_FILE_BYTES`], symlinks followed.
    pub fn config(owner: Owner) -> ReadPolicy {
        ReadPolicy {
            kind: Kind::Config,
            ..ReadPolicy::secret(owner)
        }
    }

    /// The same policy with another size cap, in bytes.
    pub fn max_bytes(mut self, max: u64) -> ReadPolicy {
        self.max_bytes = max;
        self
    }

    /// The same policy refusing a symlink as the last path component (`O_NOFOLLOW`).
    pub fn no_symlinks(mut self) -> ReadPolicy {
        self.follow_symlinks = false;
        self
    }

    /// Checks an opened file's metadata against the policy (regular file, owner, mode, size)
    /// and returns its permission bits.
    pub fn check(&self, path: &Path, meta: &Metadata) -> Result<u32, FileError> {
        if !meta.is_file() {
            return Err(FileError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = check_owner_and_mode(path, meta, &self.owner, self.kind)?;
        if meta.len() > self.max_bytes {
            return Err(FileError::TooLarge {
                path: path.to_owned(),
                max: self.max_bytes,
            });
        }
        Ok(mode)
    }
}

/// Owner first, then the mode rule of `kind`; returns the permission bits.
pub(crate) fn check_owner_and_mode(
    path: &Path,
    meta: &Metadata,
    owner: &Owner,
    kind: Kind,
) -> Result<u32, FileError> {
    let mode = meta.mode() & 0o7777;
    if !owner.allows(meta.uid()) {
        return Err(FileError::WrongOwner {
            path: path.to_owned(),
            uid: meta.uid(),
            expected: owner.clone(),
        });
    }
    match kind {
        Kind::Secret => require_private(path, mode)?,
        Kind::Config if mode & 0o022 != 0 => {
            return Err(FileError::Writable {
                path: path.to_owned(),
                mode,
            })
        }
        Kind::Config => {}
    }
    Ok(mode)
}

/// Refuses permission bits `mode` for a file holding a secret unless group and others have no
/// bit at all. For a config file read under [`Kind::Config`] that turns out to hold a secret
/// inline, with the mode [`Contents::mode`] reported.
pub fn require_private(path: &Path, mode: u32) -> Result<(), FileError> {
    if mode & 0o077 != 0 {
        return Err(FileError::Readable {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// A file read under a [`ReadPolicy`]: its bytes (zeroized on drop) and permission bits.
pub struct Contents {
    path: PathBuf,
    bytes: Zeroizing<Vec<u8>>,
    /// The opened file's permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("mode", &format_args!("{:03o}", self.mode))
            .finish_non_exhaustive()
    }
}

impl Contents {
    /// The bytes read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The contents as UTF-8 text ([`FileError::NotUtf8`] otherwise), in a zeroizing string.
    pub fn into_text(self) -> Result<Zeroizing<String>, FileError> {
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => Ok(Zeroizing::new(text.to_owned())),
            Err(_) => Err(FileError::NotUtf8 { path: self.path }),
        }
    }
}

/// Opens `path` (`O_RDONLY|O_CLOEXEC|O_NONBLOCK`, plus `O_NOFOLLOW` when the policy refuses
/// symlinks; `O_NONBLOCK` so a FIFO cannot hang the open), checks the opened file against
/// `policy` with `fstat` and reads it, never more than `policy.max_bytes` (a file growing
/// after the check is refused too).
pub fn read(path: &Path, policy: &ReadPolicy) -> Result<Contents, FileError> {
    let mut file = open(path, policy.follow_symlinks)?;
    let read_err = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = file.metadata().map_err(read_err)?;
    let mode = policy.check(path, &meta)?;
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.by_ref()
        .take(policy.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > policy.max_bytes {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            max: policy.max_bytes,
        });
    }
    Ok(Contents {
        path: path.to_owned(),
        bytes,
        mode,
    })
}

/// Opens for reading; std already sets `O_CLOEXEC`.
pub(crate) fn open(path: &Path, follow_symlinks: bool) -> Result<File, FileError> {
    let mut flags = OFlags::NONBLOCK;
    if !follow_symlinks {
        flags |= OFlags::NOFOLLOW;
    }
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(flags.bits() as i32);
    options.open(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => FileError::NotFound {
            path: path.to_owned(),
        },
        _ if !follow_symlinks
            && source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
        {
            FileError::Symlink {
                path: path.to_owned(),
            }
        }
        _ => FileError::Read {
            path: path.to_owned(),
            source,
        },
    })
}
