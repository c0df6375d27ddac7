//! HTTPS with a private CA: the client trusts the server only with the configured CA file.

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
    assert!(matches!(
        untrusting.devices("nobody"),
        Err(ClientError::Unreachable(_))
    ));
}
