//! HTTPS with a self-signed certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use pushauth_server::{RunningServer, ServerConfig, TlsConfig};

#[test]
fn serves_https_with_the_configured_certificate_and_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    // A secret: readable by pushauthd's user alone.
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("data"),
        "tls-admin-token".into(),
    );
    config.tls = Some(TlsConfig {
        cert: cert_path.clone(),
        key: key_path.clone(),
    });
    // Issue 10 item 3: the key is a secret like the others, so a key others may read (here
    // 0644, what a plain write leaves) stops the server with the shared fix-it message.
    for mode in [0o644, 0o640] {
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = RunningServer::start(config.clone())
            .err()
            .unwrap_or_else(|| panic!("a {mode:o} TLS key was accepted"))
            .to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", key_path.display())),
            "{err}"
        );
    }
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = RunningServer::start(config).unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let agent = ureq::AgentBuilder::new().tls_config(Arc::new(tls)).build();
    let r = agent
        .post(&format!("{}/v1/admin/enrollments", server.url()))
        .set("Authorization", "Bearer tls-admin-token")
        .send_string(r#"{"user":"alice"}"#)
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    let link = body["url"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/enroll?token=", server.url())),
        "{link}"
    );

    // The relying-party client trusts it through its CA file.
    let mut client_config =
        pushauth_client::ClientConfig::new(vec![server.url()], "tls-admin-token");
    client_config.ca_file = Some(cert_path);
    let client = pushauth_client::Client::new(client_config).unwrap();
    let devices = client.devices("alice").unwrap();
    assert!(devices.is_empty());
    assert!(client.devices("nobody").is_err());

    // Plain HTTP to the TLS port gets nothing useful.
    let plain = ureq::get(&format!("http://{}/healthz", server.addr())).call();
    assert!(plain.is_err());
    server.shutdown();
}
