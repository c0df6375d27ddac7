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

/// An existing data directory that group or others may write lets them replace the database
/// (and with it every device key and relying party): pushauthd refuses to start on it, naming
/// the fix; the admin CLI refuses it too.
#[test]
fn attack10_data_dir_writable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for mode in [0o777, 0o775, 0o757] {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(mode)).unwrap();
        let config = pushauth_server::ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            data.clone(),
            "attack10-admin-token".into(),
        );
        let err = match pushauth_server::RunningServer::start(config) {
            Ok(_) => panic!("a {mode:o} data directory was used"),
            Err(e) => e,
        };
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(chain.contains("chmod go-w"), "{mode:o}: {chain}");
        assert!(
            !data.join(pushauth_server::store::sqlite::DB_FILE).exists(),
            "{mode:o}: a database was created"
        );
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = pushauth_server::ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        data,
        "attack10-admin-token".into(),
    );
    pushauth_server::RunningServer::start(config)
        .unwrap()
        .shutdown();
}
