//! The web app's files: which file a request path names, from the files built into the binary
//! ([`pushauth_webapp`]) or from `[web] app_dir`, and the headers every app response carries
//! ([`headers`]).
//!
//! Paths are checked before anything is looked up: `/`-separated segments of `[A-Za-z0-9._-]`,
//! none empty or starting with `.`, so `..`, hidden files and directory listings cannot be
//! named, whichever source serves.

pub mod headers;

use std::borrow::Cow;
use std::path::Path;

use pushauth_files::{Owner, ReadPolicy};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The largest file served from `app_dir`, in bytes (the whole built-in app is far smaller).
pub const MAX_APP_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One file of the app, ready to send.
#[derive(Debug, Clone)]
pub struct WebFile {
    /// The file's bytes.
    pub bytes: Cow<'static, [u8]>,
    /// The gzip variant, when one was made at build time (built-in files only).
    pub gzip: Option<&'static [u8]>,
    /// The `Content-Type` value.
    pub content_type: &'static str,
    /// SHA-256 of `bytes`, lowercase hex: the entity tag.
    pub sha256: Cow<'static, str>,
}

/// Why a file could not be served.
#[derive(Debug, Error)]
pub enum WebError {
    /// No such file (or a path that may not be named): 404.
    #[error("no such file")]
    NotFound,
    /// A file in `app_dir` exists but is refused (writable by others, a symlink, too large)
    /// or unreadable: 500, with the reason for the log.
    #[error("app_dir: {0}")]
    Refused(String),
}

/// Logs at start which web app is served: the built-in release (version, release-key
/// fingerprint, a warning for a development build) or `app_dir`.
pub fn log_release(app_dir: Option<&Path>) {
    if let Some(dir) = app_dir {
        tracing::warn!(app_dir = %dir.display(), "serving the web app from app_dir, not the built-in signed release");
        return;
    }
    let release = pushauth_webapp::release();
    tracing::info!(
        version = release.version,
        release_key = release.key_fingerprint,
        "web app"
    );
    if release.development {
        tracing::warn!(
            "the web app is signed with a development key: build with PUSHAUTH_RELEASE_KEY_FILE for production"
        );
    }
}

/// Whether `path` (below `/app/`, no leading slash) is a name the app may have.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 200
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// The file at `path` (below `/app/`): from `app_dir` when set, else built in.
///
/// # Errors
/// [`WebError::NotFound`] for a path that is invalid, unknown or of a type the app may not
/// ship; [`WebError::Refused`] for an `app_dir` file that fails the file rules.
pub fn lookup(app_dir: Option<&Path>, path: &str) -> Result<WebFile, WebError> {
    if !valid_path(path) {
        return Err(WebError::NotFound);
    }
    let Some(dir) = app_dir else {
        let asset = pushauth_webapp::get(path).ok_or(WebError::NotFound)?;
        return Ok(WebFile {
            bytes: Cow::Borrowed(asset.bytes),
            gzip: Some(asset.gzip),
            content_type: asset.content_type,
            sha256: Cow::Borrowed(asset.sha256),
        });
    };
    let content_type = pushauth_webapp::content_type(path).ok_or(WebError::NotFound)?;
    read_from_dir(dir, path, content_type)
}

/// Reads `dir/path` under the config-file rule: every directory on the way and the file itself
/// not writable by group or others, no symlink as the file, a size cap.
fn read_from_dir(dir: &Path, path: &str, content_type: &'static str) -> Result<WebFile, WebError> {
    let mut current = dir.to_path_buf();
    let refused = |e: pushauth_files::FileError| match e {
        pushauth_files::FileError::NotFound { .. } | pushauth_files::FileError::NotAFile { .. } => {
            WebError::NotFound
        }
        other => WebError::Refused(other.to_string()),
    };
    // The directory itself too: the config check ran at start, the tree may change since.
    pushauth_files::check_dir(dir, &Owner::Any).map_err(refused)?;
    let segments: Vec<&str> = path.split('/').collect();
    let (file, dirs) = segments.split_last().ok_or(WebError::NotFound)?;
    for segment in dirs {
        current.push(segment);
        pushauth_files::check_dir(&current, &Owner::Any).map_err(|e| match e {
            pushauth_files::FileError::NotADirectory { .. } => WebError::NotFound,
            other => refused(other),
        })?;
    }
    current.push(file);
    let policy = ReadPolicy::config(Owner::Any)
        .max_bytes(MAX_APP_FILE_BYTES)
        .no_symlinks();
    let contents = pushauth_files::read(&current, &policy).map_err(refused)?;
    let bytes = contents.bytes().to_vec();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(WebFile {
        bytes: Cow::Owned(bytes),
        gzip: None,
        content_type,
        sha256: Cow::Owned(sha256),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_escape_or_list_are_not_valid() {
        for bad in [
            "",
            "..",
            "../etc/passwd",
            "a/../b",
            "/etc/passwd",
            "a//b",
            "dir/",
            ".hidden",
            "a/.git/config",
            "a\\b",
            "a%2fb",
            "nul\0",
            "sp ace",
        ] {
            assert!(!valid_path(bad), "{bad:?}");
        }
        for good in ["index.html", "icons/icon-192.png", "sw.js", "app.v2.css"] {
            assert!(valid_path(good), "{good:?}");
        }
    }

    #[test]
    fn built_in_files_are_found_and_unknown_ones_are_not() {
        let index = lookup(None, "index.html").unwrap();
        assert!(index.content_type.starts_with("text/html"));
        assert!(index.gzip.is_some());
        assert!(matches!(lookup(None, "nope.js"), Err(WebError::NotFound)));
        assert!(matches!(
            lookup(None, "../Cargo.toml"),
            Err(WebError::NotFound)
        ));
    }
}
