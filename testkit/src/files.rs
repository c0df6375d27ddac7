//! Files with a given mode, as the secret- and config-file rules of `pushauth-files` expect them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes `text` to `dir/name` with permission bits `mode` (e.g. `0o600` for a secret) and
/// returns the path.
///
/// # Panics
/// When the file cannot be written (a test helper: the test fails).
pub fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    path
}
