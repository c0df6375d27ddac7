//! Writing a secret or state file: 0600 from the first byte, synced before it counts.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::FileError;

/// Creates `path` with mode 0600 (`O_CREAT|O_EXCL|O_CLOEXEC`: never overwrites, never follows a
/// symlink), writes `bytes` and syncs. An existing path is [`FileError::Exists`] and is left
/// as it was; a failed write removes the partial file.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            ErrorKind::AlreadyExists => FileError::Exists {
                path: path.to_owned(),
            },
            _ => FileError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    if let Err(source) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(FileError::Write {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

/// Replaces `path` atomically: writes `bytes` to a 0600 temporary file beside it
/// (`.<name>.tmp-<pid>`, created with `O_EXCL`), syncs it and renames it over `path`, so a
/// crash leaves the old file or the new one, never half of one. The temporary file is removed
/// on failure.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = temp_path(path)?;
    // A stale temporary file of an earlier run with the same pid: ours to remove.
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, bytes).map_err(|e| match e {
        FileError::Exists { .. } => FileError::Write {
            path: tmp.clone(),
            source: ErrorKind::AlreadyExists.into(),
        },
        other => other,
    })?;
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        FileError::Write {
            path: path.to_owned(),
            source,
        }
    })?;
    // The rename itself is durable once the directory is synced; best effort.
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn temp_path(path: &Path) -> Result<PathBuf, FileError> {
    let Some(name) = path.file_name() else {
        return Err(FileError::Write {
            path: path.to_owned(),
            source: std::io::Error::new(ErrorKind::InvalidInput, "not a file name"),
        });
    };
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}
