//! HTTPS with a private CA: the client trusts the server only with the configured CA file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::fs;

use common::TestServer;
use pushauth_client::{Client, ClientConfig, ClientError};
use pushauth_server::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// Writes a CA and a server certificate for 127.0.0.1 signed by it; returns the CA file path.
fn private_ca(dir: &std::path::Path) -> (std::path::PathBuf, TlsConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    fs::write(&ca_file, ca.pem()).unwrap();
    fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    // pushauthd refuses a TLS key that others may read.
    fs::set_permissions(
        dir.join("key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    (
        ca_file,
        TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        },
    )
}

#[test]
fn private_ca_is_trusted_only_when_configured() {
    let pki = tempfile::tempdir().unwrap();
    let (ca_file, tls) = private_ca(pki.path());
    let mut server = TestServer::start_with(|cfg| cfg.tls = Some(tls));
    assert!(server.url.starts_with("https://"), "{}", server.url);
    server.trust(&ca_file);
    let api_key = server.api_key();

    let mut cfg = ClientConfig::new(vec![server.url.clone()], api_key);
    cfg.ca_file = Some(ca_file);
    let client = Client::new(cfg.clone()).unwrap();
    // An answer from the server: TLS worked.
    assert!(matches!(
        client.devices("nobody"),
        Err(ClientError::UnknownUser) | Ok(_)
    ));

    cfg.ca_file = None;
    let untrusting = Client::new(cfg).unwrap();
    // issue 9 item 6: an untrusted certificate is a TLS failure (a possible attack), never
    // "unreachable", which a `safe` policy would let through.
    let result = untrusting.devices("nobody");
    assert!(
        matches!(result, Err(ClientError::TlsFailure(_))),
        "{result:?}"
    );
    // Session 22: the message says what to do about a private CA, and names the URL once (it
    // said it twice, and a newcomer found `--ca-file` only in `--help`).
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains("ca_file") && text.contains("--ca-file"),
        "{text}"
    );
    assert_eq!(text.matches("/v1/").count(), 1, "{text}");
}

/// A certificate from another CA than the configured one, and a certificate for another name:
/// TLS failures, with failover to the next server still refusing in the end.
#[test]
fn issue9_item6_untrusted_or_misnamed_certificate_is_a_tls_failure() {
    let pki = tempfile::tempdir().unwrap();
    let (_ca_file, tls) = private_ca(pki.path());
    let mut server = TestServer::start_with(|cfg| cfg.tls = Some(tls));
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = private_ca(other.path());
    server.trust(&other_ca);

    let mut cfg = ClientConfig::new(vec![server.url.clone()], "rp.key");
    cfg.ca_file = Some(other_ca.clone());
    let result = Client::new(cfg.clone()).unwrap().devices("nobody");
    assert!(
        matches!(result, Err(ClientError::TlsFailure(_))),
        "{result:?}"
    );
    // A dead server after it: the verdict is still the TLS failure, not "unreachable".
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    cfg.servers = vec![server.url.clone(), dead];
    let result = Client::new(cfg.clone()).unwrap().devices("nobody");
    assert!(
        matches!(result, Err(ClientError::TlsFailure(_))),
        "{result:?}"
    );

    // The right CA, but the name "localhost" is not in the certificate (only 127.0.0.1).
    let (ca_file, _) = (pki.path().join("ca.pem"), ());
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let mut cfg = ClientConfig::new(vec![format!("https://localhost:{port}")], "rp.key");
    cfg.ca_file = Some(ca_file);
    let result = Client::new(cfg).unwrap().devices("nobody");
    assert!(
        matches!(result, Err(ClientError::TlsFailure(_))),
        "{result:?}"
    );
}

/// Session 23: the device library (and so `pushauth-device`) says what to do about a private CA
/// it was not given, naming the URL once; with the CA file it enrolls.
#[test]
fn a_device_told_of_an_unknown_ca_is_told_to_enroll_with_its_ca_file() {
    let pki = tempfile::tempdir().unwrap();
    let (ca_file, tls) = private_ca(pki.path());
    let mut server = TestServer::start_with(|cfg| cfg.tls = Some(tls));
    server.trust(&ca_file);
    let link = server.enrollment_link("alice");

    let refused = pushauth_device::DeviceClient::enroll(&link, "phone", None).unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains("enroll --ca-file") && text.contains("not signed by a CA this device"),
        "{text}"
    );
    assert_eq!(text.matches("/v1/").count(), 1, "{text}");

    let profile = pushauth_device::DeviceClient::enroll(&link, "phone", Some(&ca_file)).unwrap();
    assert_eq!(profile.user, "alice");
    assert_eq!(profile.ca_file.as_deref(), Some(ca_file.as_path()));
}
