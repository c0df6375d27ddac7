//! Pinned device keys: `<authorized_devices_dir>/<user>`, in the style of sshd's
//! `authorized_keys`; a `/` in a user name (the IdP sidecar's `{realm}/{username}`) is a
//! subdirectory, checked like the directory itself. Where the file exists, only answers signed by a key it lists count, so a
//! broken-into server cannot approve on the person's behalf.
//!
//! Format: one key per line, `<alg> <base64url raw key> [comment]` with `alg` `ed25519` (32-byte
//! key) or `es256` (the 65-byte uncompressed P-256 point, as `pushauthd devices` prints it);
//! blank lines and lines starting with `#` are ignored. Anything else makes the whole file invalid (fail closed).

use std::fs;
use std::path::{Path, PathBuf};

use pushauth_files::{FileError, Owner, ReadPolicy};

use pushauth_proto::DevicePublicKey;

use crate::ClientError;

/// Parses the text of an authorized-devices file. The error names the line.
pub fn parse_authorized_devices(text: &str) -> Result<Vec<DevicePublicKey>, String> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(alg), Some(key)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "line {}: expected \"ed25519|es256 <base64url key> [comment]\"",
                index + 1
            ));
        };
        let key =
            DevicePublicKey::from_wire(alg, key).map_err(|e| format!("line {}: {e}", index + 1))?;
        keys.push(key);
    }
    Ok(keys)
}

/// Where `user`'s pinned keys live: the file `<dir>/<user>`, where each `/` in the user name
/// starts a subdirectory (`kc/alice` is `<dir>/kc/alice`), and the subdirectories between `dir`
/// and the file, in order, which callers check as they check `dir` (owner, not writable by group
/// or others).
///
/// # Errors
/// A message when the name could leave `dir` or read as something else: an empty component
/// (`""`, `a//b`, `/a`, `a/`), one starting with `.` (`..`, `.hidden`), a backslash, NUL or
/// control character.
pub fn pinned_path(dir: &Path, user: &str) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let refuse = || format!("user name {user:?} cannot name a pinned-key file");
    if user.contains(['\\', '\0']) || user.chars().any(char::is_control) {
        return Err(refuse());
    }
    let mut path = dir.to_path_buf();
    let mut subdirs = Vec::new();
    let mut components = user.split('/').peekable();
    while let Some(component) = components.next() {
        if component.is_empty() || component.starts_with('.') {
            return Err(refuse());
        }
        path.push(component);
        if components.peek().is_some() {
            subdirs.push(path.clone());
        }
    }
    Ok((path, subdirs))
}

/// Checks the pinned-key directory: it must exist, be a directory (a symlink to one is
/// followed), belong to root or to the user this runs as, and not be writable by group or
/// others, who could otherwise remove or replace a user's pinned keys (programs that need a
/// stricter owner, like `pam_push`, check it first).
pub fn check_pinned_dir(dir: &Path) -> Result<(), ClientError> {
    pushauth_files::check_dir(dir, &Owner::RootOrCurrent)
        .map_err(|e| ClientError::Config(format!("authorized devices directory: {e}")))
}

/// The pinned keys of `user`, or `None` when the user has no file (no pinning). A file that
/// exists but cannot be read or parsed is an error: pinning must never silently switch off.
/// The directory is checked first ([`check_pinned_dir`]).
pub fn load_pinned(dir: &Path, user: &str) -> Result<Option<Vec<DevicePublicKey>>, ClientError> {
    let (path, subdirs) = pinned_path(dir, user).map_err(ClientError::Config)?;
    check_pinned_dir(dir)?;
    for sub in &subdirs {
        match pushauth_files::check_dir(sub, &Owner::RootOrCurrent) {
            Ok(()) => {}
            // No directory for the realm: nobody of it is pinned.
            Err(FileError::NotFound { .. }) => return Ok(None),
            Err(e) => {
                return Err(ClientError::Config(format!(
                    "authorized devices directory: {e}"
                )))
            }
        }
    }
    // The shared file rule (fstat on the opened file): a regular file, not writable by group or
    // others and owned by root or the user this runs as (whoever could write it would choose
    // the keys), at most 64 KiB. Programs that need a stricter owner (pam_push: root) check it
    // before.
    let policy = ReadPolicy::config(Owner::RootOrCurrent);
    let text = match pushauth_files::read(&path, &policy).and_then(|c| c.into_text()) {
        Ok(text) => text,
        Err(FileError::NotFound { .. }) => {
            // The directory itself must be readable, or "no file" could be a permissions problem.
            return match fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => Ok(None),
                Ok(_) => Err(ClientError::Config(format!(
                    "authorized devices path {} is not a directory",
                    dir.display()
                ))),
                Err(e) => Err(ClientError::Config(format!(
                    "cannot read authorized devices directory {}: {e}",
                    dir.display()
                ))),
            };
        }
        Err(e) => {
            return Err(ClientError::Config(format!(
                "pinned device keys {}: {e}",
                path.display()
            )))
        }
    };
    parse_authorized_devices(&text)
        .map(Some)
        .map_err(|e| ClientError::Config(format!("pinned device keys {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_proto::DeviceSigningKey;

    fn key(seed: u8) -> DevicePublicKey {
        DeviceSigningKey::from_seed(&[seed; 32]).public_key()
    }

    #[test]
    fn parses_keys_comments_and_blank_lines() {
        let text = format!(
            "# alice's devices\n\n  ed25519 {} phone\ned25519\t{}\n   # trailing comment\n",
            key(1).to_b64(),
            key(2).to_b64()
        );
        let keys = parse_authorized_devices(&text).unwrap();
        assert_eq!(keys, vec![key(1), key(2)]);
        assert_eq!(parse_authorized_devices("# none\n\n").unwrap(), vec![]);
    }

    #[test]
    fn refuses_malformed_lines_naming_them() {
        let good = format!("ed25519 {}\n", key(1).to_b64());
        for (bad, line) in [
            (format!("{good}ed25519\n"), "line 2"),
            (format!("{good}rsa {}\n", key(1).to_b64()), "line 2"),
            ("ed25519 AAAA\n".to_string(), "line 1"),
            (format!("ed25519 {}==\n", key(1).to_b64()), "line 1"),
            (format!("\n\ned25519 {}x\n", key(1).to_b64()), "line 3"),
        ] {
            let err = parse_authorized_devices(&bad).unwrap_err();
            assert!(err.starts_with(line), "{bad:?} gave {err:?}");
        }
    }

    fn es256(secret: u8) -> DevicePublicKey {
        DeviceSigningKey::from_secret(pushauth_proto::Alg::Es256, &[secret; 32])
            .unwrap()
            .public_key()
    }

    /// `es256 <key>` lines pin P-256 keys beside Ed25519 ones; a key is pinned only under its
    /// own algorithm.
    #[test]
    fn issue11_es256_lines_parse() {
        let text = format!(
            "ed25519 {} laptop
es256 {} phone (browser)
",
            key(1).to_b64(),
            es256(2).to_b64()
        );
        let keys = parse_authorized_devices(&text).unwrap();
        assert_eq!(keys, vec![key(1), es256(2)]);
        assert_eq!(keys[1].alg(), pushauth_proto::Alg::Es256);
        assert!(!keys.contains(&es256(1)));
    }

    /// Malformed es256 lines make the whole file invalid, naming the line: a compressed or
    /// off-curve point, an Ed25519 key labelled es256 (and the reverse), a truncated key.
    #[test]
    fn issue11_malformed_es256_lines_are_refused_naming_them() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let good = format!(
            "es256 {}
",
            es256(1).to_b64()
        );
        let raw = es256(1).to_bytes();
        let compressed = p256::PublicKey::from_sec1_bytes(&raw)
            .unwrap()
            .to_encoded_point(true);
        let mut off = raw.clone();
        off[64] ^= 1;
        for (bad, line) in [
            (
                format!(
                    "{good}es256 {}
",
                    pushauth_proto::b64::encode(compressed.as_bytes())
                ),
                "line 2",
            ),
            (
                format!(
                    "{good}# c
es256 {}
",
                    pushauth_proto::b64::encode(&off)
                ),
                "line 3",
            ),
            (
                format!(
                    "{good}es256 {}
",
                    key(1).to_b64()
                ),
                "line 2",
            ),
            (
                format!(
                    "ed25519 {}
",
                    es256(1).to_b64()
                ),
                "line 1",
            ),
            (
                format!(
                    "es256 {}
",
                    pushauth_proto::b64::encode(&raw[..64])
                ),
                "line 1",
            ),
            (
                "es256
"
                .to_string(),
                "line 1",
            ),
            (
                format!(
                    "ES256 {}
",
                    es256(1).to_b64()
                ),
                "line 1",
            ),
        ] {
            let err = parse_authorized_devices(&bad).unwrap_err();
            assert!(err.starts_with(line), "{bad:?} gave {err:?}");
        }
    }

    #[test]
    fn loading_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_pinned(dir.path(), "alice").unwrap(), None);
        fs::write(
            dir.path().join("alice"),
            format!("ed25519 {}\n", key(4).to_b64()),
        )
        .unwrap();
        assert_eq!(
            load_pinned(dir.path(), "alice").unwrap(),
            Some(vec![key(4)])
        );
        fs::write(dir.path().join("bob"), "ed25519 garbage\n").unwrap();
        match load_pinned(dir.path(), "bob") {
            Err(ClientError::Config(msg)) => assert!(msg.contains("line 1"), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }
        // A directory where a file should be cannot be read: refused, not ignored.
        fs::create_dir(dir.path().join("carol")).unwrap();
        assert!(matches!(
            load_pinned(dir.path(), "carol"),
            Err(ClientError::Config(_))
        ));
        for user in [
            "../alice", ".hidden", "", "a//b", "/a", "a/", "a/../b", "a/.b", "a\\b", "a\nb",
        ] {
            assert!(
                matches!(load_pinned(dir.path(), user), Err(ClientError::Config(_))),
                "{user:?}"
            );
        }
        // A missing directory is not "no pinning".
        assert!(matches!(
            load_pinned(&dir.path().join("nope"), "alice"),
            Err(ClientError::Config(_))
        ));
    }

    /// The sidecar reads pinned keys only through the client: a pinned-key file that group or
    /// others can write (who could then choose the keys) is refused under the shared file rule
    /// of `pushauth_files`, not read.
    #[test]
    fn issue10_item2_pinned_key_files_others_can_write_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dave = dir.path().join("dave");
        fs::write(&dave, format!("ed25519 {}\n", key(4).to_b64())).unwrap();
        for mode in [0o666, 0o664, 0o646] {
            fs::set_permissions(&dave, fs::Permissions::from_mode(mode)).unwrap();
            match load_pinned(dir.path(), "dave") {
                Err(ClientError::Config(msg)) => assert!(msg.contains("chmod"), "{mode:o}: {msg}"),
                other => panic!("{mode:o}: unexpected {other:?}"),
            }
        }
        fs::set_permissions(&dave, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_pinned(dir.path(), "dave").unwrap(), Some(vec![key(4)]));
        // The same for the directory: whoever can write it can remove or replace the files.
        for mode in [0o777, 0o775, 0o757] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            match load_pinned(dir.path(), "dave") {
                Err(ClientError::Config(msg)) => assert!(msg.contains("chmod"), "{mode:o}: {msg}"),
                other => panic!("{mode:o}: unexpected {other:?}"),
            }
            assert!(check_pinned_dir(dir.path()).is_err());
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_pinned_dir(dir.path()).is_ok());
    }

    /// The sidecar's user names are `{realm}/{username}`: the realm is a subdirectory of the
    /// pinned-key directory, checked as the directory is, so SSO logins can pin keys with the
    /// default template.
    #[test]
    fn issue10_item2_realm_user_names_pin_through_a_subdirectory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        // No realm directory: nobody of that realm is pinned.
        assert_eq!(load_pinned(dir.path(), "kc/alice").unwrap(), None);
        let realm = dir.path().join("kc");
        fs::create_dir(&realm).unwrap();
        fs::set_permissions(&realm, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(load_pinned(dir.path(), "kc/alice").unwrap(), None);
        fs::write(
            realm.join("alice"),
            format!("ed25519 {}\n", key(7).to_b64()),
        )
        .unwrap();
        assert_eq!(
            load_pinned(dir.path(), "kc/alice").unwrap(),
            Some(vec![key(7)])
        );
        // A realm directory others may write is refused, not ignored.
        fs::set_permissions(&realm, fs::Permissions::from_mode(0o777)).unwrap();
        match load_pinned(dir.path(), "kc/alice") {
            Err(ClientError::Config(msg)) => assert!(msg.contains("chmod go-w"), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }
        let (path, subdirs) = pinned_path(Path::new("/p"), "a/b/c").unwrap();
        assert_eq!(path, Path::new("/p/a/b/c"));
        assert_eq!(
            subdirs,
            vec![PathBuf::from("/p/a"), PathBuf::from("/p/a/b")]
        );
    }
}
