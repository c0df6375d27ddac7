//! Replicas for the issue 13 tests: the built `pushauthd` binary spawned as separate processes
//! over one PostgreSQL database (a [`PgCluster`]), with what an administrator and a relying
//! party do to them over HTTP. Every replica shares one data directory (the offline-code key
//! and the VAPID key, which every replica of a site must hold the same), one admin token and
//! one config file.
#![allow(dead_code)] // each test file uses part of it
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pushauth_client::{Client, ClientConfig, Outcome, PendingLogin, StartOptions};
use pushauth_device::DeviceClient;
use pushauth_proto::Context;
use pushauth_testkit::{call_with, PgCluster, TestDevice};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The admin token every replica of a [`Site`] accepts.
pub const ADMIN_TOKEN: &str = "ha-admin-token-0123456789abcdef";

/// One database, a shared data directory and config, and the replicas running on it.
pub struct Site {
    /// Config file, admin token, data directory and the replicas' logs.
    pub dir: TempDir,
    /// The store URL every replica is given (`--store-url`).
    pub store_url: String,
}

/// One running `pushauthd serve` process.
pub struct Replica {
    /// The child process; `None` once killed.
    pub child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its log file (stderr and stdout).
    pub log: PathBuf,
}

impl Site {
    /// A site on `store_url`, with `config` (TOML) as the replicas' config file.
    pub fn new(store_url: String, config: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("admin-token");
        std::fs::write(&token, format!("{ADMIN_TOKEN}\n")).unwrap();
        set_mode(&token, 0o600);
        let conf = dir.path().join("pushauthd.toml");
        std::fs::write(&conf, config).unwrap();
        set_mode(&conf, 0o600);
        Site { dir, store_url }
    }

    /// A site with its own database `name` on `pg` (trust authentication, no password).
    pub fn on(pg: &PgCluster, name: &str, config: &str) -> Site {
        pg.create_database(name);
        Site::new(pg.url(name), config)
    }

    /// Spawns a replica on a free port and waits until `/healthz` says ready (30 s).
    pub fn spawn(&self, name: &str) -> Replica {
        let replica = self.launch(name);
        replica.wait_ready(Duration::from_secs(30));
        replica
    }

    /// Spawns a replica on a free port and returns at once (it may not be listening yet).
    pub fn launch(&self, name: &str) -> Replica {
        self.launch_with_data(name, &self.dir.path().join("data"))
    }

    /// [`Site::launch`] with a data directory (the keys) of its own.
    pub fn launch_with_data(&self, name: &str, data: &Path) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pushauthd"))
            .args(["serve", "--listen", &listen, "--config"])
            .arg(self.dir.path().join("pushauthd.toml"))
            .arg("--data-dir")
            .arg(data)
            .arg("--admin-token-file")
            .arg(self.dir.path().join("admin-token"))
            .args(["--store-url", &self.store_url])
            .env_remove("PUSHAUTHD_STORE_URL")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Replica {
            child: Some(child),
            url: format!("http://{listen}"),
            log,
        }
    }

    /// A relying party made through `replica`'s admin API: its API key.
    pub fn api_key(&self, replica: &Replica) -> String {
        let r = admin(
            replica,
            "POST",
            "/v1/admin/relying-parties",
            json!({"name": "ha rp"}),
        );
        assert_eq!(r.0, 201, "{}", r.1);
        r.1["api_key"].as_str().unwrap().to_owned()
    }

    /// A device for `user` enrolled through `replica`; `devices_on(...)` gives it on another.
    pub fn enroll(&self, replica: &Replica, user: &str) -> TestDevice {
        let r = admin(
            replica,
            "POST",
            "/v1/admin/enrollments",
            json!({"user": user}),
        );
        assert_eq!(r.0, 201, "{}", r.1);
        let link = r.1["url"].as_str().unwrap().to_owned();
        let profile = DeviceClient::enroll(&link, "phone", None).unwrap();
        TestDevice::new(profile)
    }
}

/// The same device, talking to `replica` instead.
pub fn device_on(device: &TestDevice, replica: &Replica) -> TestDevice {
    let mut profile = device.profile.clone();
    profile.server = replica.url.clone();
    TestDevice::new(profile)
}

/// A relying-party client with these servers in order (failover list).
pub fn client(servers: &[&Replica], api_key: &str) -> Client {
    let urls = servers.iter().map(|r| r.url.clone()).collect();
    Client::new(ClientConfig::new(urls, api_key)).unwrap()
}

/// Two replicas A and B of one site on a database of their own, a relying party's key made
/// through A, and alice's phone enrolled through A (`phone`) and the same phone talking to B
/// (`phone_b`). Fields drop in order: the replicas stop before their database.
pub struct TwoReplicas {
    pub a: Replica,
    pub b: Replica,
    pub key: String,
    pub phone: TestDevice,
    pub phone_b: TestDevice,
    pub site: Site,
    pub pg: PgCluster,
}

impl TwoReplicas {
    /// Starts them on a new cluster with database `db`; `None` (the test skips) without
    /// PostgreSQL binaries, as [`PgCluster::start_or_skip`] says for `test`.
    pub fn start_or_skip(test: &str, db: &str) -> Option<TwoReplicas> {
        let pg = PgCluster::start_or_skip(test)?;
        let site = Site::on(&pg, db, "");
        let a = site.spawn("a");
        let b = site.spawn("b");
        let key = site.api_key(&a);
        let phone = site.enroll(&a, "alice");
        let phone_b = device_on(&phone, &b);
        Some(TwoReplicas {
            a,
            b,
            key,
            phone,
            phone_b,
            site,
            pg,
        })
    }
}

/// The login context every replica test sends (`service=sshd`).
pub fn context() -> Context {
    [("service".to_string(), "sshd".to_string())].into()
}

/// Starts a login for `user` through `client`.
pub fn start(client: &Client, user: &str) -> PendingLogin {
    client
        .start(user, &context(), &StartOptions::default())
        .unwrap()
}

/// Starts a login for `user` and waits for it on another thread (deadline 60 s): the login,
/// and the thread giving the outcome and when it came.
pub fn wait_in_background(
    client: &std::sync::Arc<Client>,
    user: &str,
) -> (PendingLogin, std::thread::JoinHandle<(Outcome, Instant)>) {
    let login = start(client, user);
    let (client, waiting) = (std::sync::Arc::clone(client), login.clone());
    let handle = std::thread::spawn(move || {
        let outcome = client
            .wait(&waiting, Instant::now() + Duration::from_secs(60))
            .unwrap();
        (outcome, Instant::now())
    });
    (login, handle)
}

/// `device` approves `login` with its code; panics unless it is approved.
pub fn approve(device: &TestDevice, login: &PendingLogin) {
    let status = device.approve(&login.id, login.code.as_deref().unwrap());
    assert_eq!(status.state, pushauth_proto::ChallengeState::Approved);
}

/// Panics unless `outcome` is an approval.
pub fn assert_approved(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
}

/// An admin API call: status and JSON.
pub fn admin(replica: &Replica, method: &str, path: &str, body: Value) -> (u16, Value) {
    let agent = pushauth_testkit::agent();
    let text = body.to_string();
    let r = call_with(
        &agent,
        method,
        &format!("{}{path}", replica.url),
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        Some(text.as_bytes()),
    );
    (r.status, r.json)
}

impl Replica {
    /// `GET /healthz`: status and body (0 when nothing answered within 5 s).
    pub fn health(&self) -> (u16, Value) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        match agent.get(&format!("{}/healthz", self.url)).call() {
            Ok(r) => (r.status(), json_of(r)),
            Err(ureq::Error::Status(code, r)) => (code, json_of(r)),
            Err(_) => (0, Value::Null),
        }
    }

    /// Waits until `/healthz` says ready; panics with the log after `within`.
    pub fn wait_ready(&self, within: Duration) {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.health().0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "replica {} not ready in {within:?}; log:\n{}",
            self.url,
            self.log_text()
        );
    }

    /// SIGKILL (a crashed host); waits for the process to end.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The value of counter `name` (without `_total`) in its `/metrics`; panics when absent.
    pub fn counter(&self, name: &str) -> u64 {
        let r = call_with(
            &pushauth_testkit::agent(),
            "GET",
            &format!("{}/metrics", self.url),
            None,
            None,
        );
        r.text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_total ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name}_total in {}", r.text))
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn json_of(r: ureq::Response) -> Value {
    r.into_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
