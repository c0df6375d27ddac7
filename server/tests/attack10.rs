//! Attack review of issue 10 (helper h8): checks that the restructuring must not lose.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::os::unix::fs::PermissionsExt;

use pushauth_server::TlsConfig;

/// Issue 10 item 3: "group-readable secrets are refused everywhere". pushauthd's TLS private
/// key was read under the *config* rule (only "not writable by group or others"), so a key
/// that every local user can read (0644, what `fs::write` leaves behind) served HTTPS. It is a
/// secret like the admin token and the webhook secret: owned by pushauthd's user, 0600.
#[test]
fn attack10_tls_key_readable_by_group_or_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let config = TlsConfig {
        cert: cert_path,
        key: key_path.clone(),
    };
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = match pushauth_server::tls::load(&config) {
            Ok(_) => panic!("a TLS key with mode {mode:o} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("chmod"), "{mode:o}: {err}");
    }
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    pushauth_server::tls::load(&config).expect("a 0600 key of our own is accepted");
}
