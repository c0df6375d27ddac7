//! Private directories: created 0700; an existing one checked for owner and write bits.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::error::FileError;
use crate::owner::Owner;
use crate::read::{check_owner_and_mode, open, Kind};

/// Checks that `path` is a directory owned by `owner` that group and others cannot write (or
/// they could remove or replace the files in it). The directory is opened and the opened
/// directory checked (`fstat`); a symlink to a directory is followed.
pub fn check_dir(path: &Path, owner: &Owner) -> Result<(), FileError> {
    let dir = open(path, true)?;
    let meta = dir.metadata().map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(FileError::NotADirectory {
            path: path.to_owned(),
        });
    }
    check_owner_and_mode(path, &meta, owner, Kind::Config).map(drop)
}

/// Creates `path` (and missing parents) with mode 0700, then checks it with [`check_dir`]: a
/// directory that already existed must be owned by `owner` and not writable by group or
/// others.
pub fn create_private_dir(path: &Path, owner: &Owner) -> Result<(), FileError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| FileError::Write {
            path: path.to_owned(),
            source,
        })?;
    check_dir(path, owner)
}
