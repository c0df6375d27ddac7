//! A real pushauthd on 127.0.0.1 for the integration tests, with an admin helper and simulated
//! devices (the `pushauth-device` library).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pushauth_client::{Client, ClientConfig};
use pushauth_device::{DeviceClient, PendingChallenge, Profile};
use pushauth_server::{RunningServer, ServerConfig};
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub data_dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub url: String,
    /// Agent for the admin calls (trusts a private CA after [`TestServer::trust`]).
    pub agent: ureq::Agent,
}

pub fn config(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
    let mut cfg = ServerConfig::new(listen, data_dir, ADMIN_TOKEN.to_string());
    cfg.sweep_interval_secs = 1;
    cfg
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cfg = config(
            "127.0.0.1:0".parse().unwrap(),
            data_dir.path().to_path_buf(),
        );
        tweak(&mut cfg);
        let server = RunningServer::start(cfg).unwrap();
        let addr = server.addr();
        let url = server.url();
        TestServer {
            server: Some(server),
            data_dir,
            addr,
            url,
            agent: ureq::Agent::new(),
        }
    }

    /// Stops the server and starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        let started = Instant::now();
        loop {
            match RunningServer::start(config(self.addr, self.data_dir.path().to_path_buf())) {
                Ok(server) => {
                    self.server = Some(server);
                    return;
                }
                // The port may linger briefly after shutdown.
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("restart failed, retrying: {e:?}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot restart the server: {e:?}"),
            }
        }
    }

    /// Makes the admin calls trust the CA certificates in `ca_file` (and nothing else).
    pub fn trust(&mut self, ca_file: &std::path::Path) {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_file).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        self.agent = ureq::AgentBuilder::new()
            .tls_config(std::sync::Arc::new(config))
            .build();
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.url))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"));
        let response = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        match response {
            Ok(response) => {
                let text = response.into_string().unwrap();
                if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).unwrap()
                }
            }
            Err(e) => panic!("admin {method} {path} failed: {e}"),
        }
    }

    /// A new relying party's API key.
    pub fn api_key(&self) -> String {
        let rp = self.admin(
            "POST",
            "/v1/admin/relying-parties",
            Some(json!({"name": "test-rp"})),
        );
        rp["api_key"].as_str().unwrap().to_string()
    }

    /// An enrollment link for `user`.
    pub fn enrollment_link(&self, user: &str) -> String {
        let e = self.admin("POST", "/v1/admin/enrollments", Some(json!({"user": user})));
        e["url"].as_str().unwrap().to_string()
    }

    /// Enrolls a simulated device for `user`.
    pub fn enroll(&self, user: &str, name: &str) -> (Profile, DeviceClient) {
        let profile = DeviceClient::enroll(&self.enrollment_link(user), name, None).unwrap();
        assert_eq!(profile.user, user);
        let device = DeviceClient::new(&profile).unwrap();
        (profile, device)
    }

    pub fn client(&self) -> Client {
        Client::new(ClientConfig::new(vec![self.url.clone()], self.api_key())).unwrap()
    }
}

/// Waits on the device side until challenge `id` shows up.
pub fn find_challenge(device: &DeviceClient, id: &str) -> PendingChallenge {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(found) = device.pending(2).unwrap().into_iter().find(|c| c.id == id) {
            return found;
        }
    }
    panic!("challenge {id} never reached the device");
}

/// A context like sshd's.
pub fn ssh_context() -> pushauth_client::Context {
    [
        ("service", "sshd"),
        ("host", "web01"),
        ("rhost", "192.0.2.7"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A URL where nothing listens.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
