//! Attack review of issue 10 (helper h8): the client's own files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::fs;
use std::os::unix::fs::PermissionsExt;

use pushauth_client::transport::tls_config;

/// Whoever can write the CA file chooses which server the client trusts (and, without pinned
/// keys, which "approved" it believes). `pam_push` checks its `ca_file` before the client reads
/// it, but the IdP sidecar and the device CLI hand theirs straight to
/// `transport::tls_config`, which read it with no owner or mode check: a CA file that group or
/// others can write was trusted. The shared file rule now applies where the file is read.
#[test]
fn attack10_ca_file_writable_by_group_or_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let path = dir.path().join("ca.pem");
    fs::write(&path, ca.cert.pem()).unwrap();
    for mode in [0o666, 0o664, 0o646, 0o620] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = match tls_config(&path) {
            Ok(_) => panic!("a CA file with mode {mode:o} was trusted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("ca.pem") && err.contains("chmod"),
            "{mode:o}: {err}"
        );
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    tls_config(&path).expect("a CA file only its owner can write is trusted");
}

/// Whether this test runs as root (it needs to give a file to another user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Pinned keys decide who may approve. The client read them under "any owner, not writable by
/// group or others", so a pinned-key file (or directory) belonging to some other unprivileged
/// user was trusted, and that user chose the keys for the sidecar's logins. Like sshd's
/// `StrictModes` for `authorized_keys`: the file and its directory must belong to root or to
/// the user the program runs as. (`pam_push` checks root ownership itself before.)
#[test]
fn attack10_pinned_keys_owned_by_another_user_are_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to chown a file to another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let key = pushauth_proto::DeviceSigningKey::from_seed(&[7; 32]).public_key();
    let alice = dir.path().join("alice");
    fs::write(&alice, format!("ed25519 {}\n", key.to_b64())).unwrap();
    fs::set_permissions(&alice, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(pushauth_client::pinned::load_pinned(dir.path(), "alice").is_ok());
    std::os::unix::fs::chown(&alice, Some(NOBODY), None).unwrap();
    let err = pushauth_client::pinned::load_pinned(dir.path(), "alice")
        .expect_err("a pinned-key file owned by another user was trusted")
        .to_string();
    assert!(err.contains("chown"), "{err}");
    std::os::unix::fs::chown(&alice, Some(0), None).unwrap();
    // The directory too: its owner can replace the files in it.
    std::os::unix::fs::chown(dir.path(), Some(NOBODY), None).unwrap();
    let err = pushauth_client::pinned::load_pinned(dir.path(), "alice")
        .expect_err("a pinned-key directory owned by another user was trusted")
        .to_string();
    assert!(err.contains("chown"), "{err}");
    std::os::unix::fs::chown(dir.path(), Some(0), None).unwrap();
}
