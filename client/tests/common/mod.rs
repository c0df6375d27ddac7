//! A real pushauthd on 127.0.0.1 for the integration tests (the shared test kit,
//! `pushauth-testkit`), with an admin helper and simulated devices (the `pushauth-device`
//! library).

#![allow(dead_code, unused_imports)]

use std::ops::{Deref, DerefMut};

use pushauth_client::{Client, ClientConfig};
use pushauth_device::{DeviceClient, Profile};
use pushauth_server::ServerConfig;
use serde_json::Value;

pub use pushauth_testkit::{dead_url, find_challenge, ADMIN_TOKEN};

/// The kit's server (`Deref` gives `url`, `restart`, `trust`, `api_key`...), with the sweeper
/// every second and the calls these tests make.
pub struct TestServer(pub pushauth_testkit::TestServer);

impl Deref for TestServer {
    type Target = pushauth_testkit::TestServer;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer(pushauth_testkit::TestServer::start_with(|cfg| {
            cfg.sweep_interval_secs = 1;
            tweak(cfg);
        }))
    }

    /// An admin call that must succeed; its JSON answer (`Null` when empty).
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.0.admin(method, path, body);
        assert!(
            (200..300).contains(&r.status),
            "admin {method} {path} failed: {} {}",
            r.status,
            r.text
        );
        r.json
    }

    /// An enrollment link for `user`.
    pub fn enrollment_link(&self, user: &str) -> String {
        self.enrollment(user, None).url
    }

    /// Enrolls a simulated device for `user`.
    pub fn enroll(&self, user: &str, name: &str) -> (Profile, DeviceClient) {
        self.0.enroll(user, name).into_parts()
    }

    pub fn client(&self) -> Client {
        Client::new(ClientConfig::new(vec![self.url.clone()], self.api_key())).unwrap()
    }
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
