//! Attack review of issue 10 (helper h8): the client's own files.

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
