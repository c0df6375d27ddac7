//! An in-process pushauthd on 127.0.0.1 with a temporary store, and what an administrator does
//! to it over HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushauth_device::{Alg, DeviceClient};
use pushauth_server::{RunningServer, ServerConfig};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::device::TestDevice;
use crate::http::{agent, call_with, Resp};

/// The admin token of every [`TestServer`] (`Authorization: Bearer ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running pushauthd for one test: its own temporary directory (the store lives in
/// `dir/data`), listening on a free loopback port. Dropping it stops the server, then removes
/// the directory.
pub struct TestServer {
    /// The server; `None` after [`TestServer::stop`].
    pub server: Option<RunningServer>,
    /// The temporary directory: `data/` is the data directory, the rest is free for the test.
    pub dir: TempDir,
    /// `http://127.0.0.1:PORT` (`https://` with TLS); the same after a restart.
    pub url: String,
    /// The bound address; the same after a restart.
    pub addr: SocketAddr,
    /// The configuration it runs with (`listen` is the bound address once started).
    pub config: ServerConfig,
    /// The agent for the kit's calls: 60 s per call, trusting a private CA after
    /// [`TestServer::trust`].
    pub agent: ureq::Agent,
    /// The CA file given to [`TestServer::trust`], handed on to the devices it enrolls.
    ca_file: Option<PathBuf>,
}

/// A relying party made through the admin API.
#[derive(Debug, Clone)]
pub struct TestRp {
    /// Its id (`/v1/admin/relying-parties/{id}`).
    pub id: String,
    /// Its API key, shown once by the server.
    pub api_key: String,
}

/// An enrollment link made through the admin API.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The single-use token.
    pub token: String,
    /// The link a device redeems (`{url}/enroll?token=...`).
    pub url: String,
}

impl TestServer {
    /// The configuration a test server starts from: pushauthd's defaults, listening on
    /// `127.0.0.1:0`, data directory `dir/data`, admin token [`ADMIN_TOKEN`], and the store of
    /// this test run ([`crate::test_store_config`]).
    pub fn config_for(dir: &Path) -> ServerConfig {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = ServerConfig::new(listen, dir.join("data"), ADMIN_TOKEN.to_owned());
        // SQLite in `data`, or a PostgreSQL database of its own (PUSHAUTH_TEST_STORE).
        config.store = crate::store::test_store_config();
        config
    }

    /// Starts a server with the default test configuration.
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// Starts a server after `tweak` has changed the test configuration (limits, TLS,
    /// lifetimes...).
    pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
        let mut config = Self::config_for(dir.path());
        tweak(&mut config);
        let server = RunningServer::start(config.clone())
            .unwrap_or_else(|e| panic!("cannot start pushauthd: {e}"));
        // Restarts reuse the port.
        config.listen = server.addr();
        TestServer {
            url: server.url(),
            addr: server.addr(),
            server: Some(server),
            dir,
            config,
            agent: agent(),
            ca_file: None,
        }
    }

    /// The base URL, as [`RunningServer::url`] gives it (the same as the `url` field).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The data directory (the store's files).
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The admin commands' flags that name this server's store: `--data-dir DIR`, and on a
    /// PostgreSQL run `--store-url URL` too (issue 13).
    pub fn store_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--data-dir".into(), self.data_dir().into_os_string()];
        if let pushauth_server::config::StoreConfig::Postgres(pg) = &self.config.store {
            args.push("--store-url".into());
            args.push(pg.url.clone().into());
        }
        args
    }

    /// The server's own store, opened a second time (as `pushauthd` subcommands open it while
    /// the server runs): SQLite in the data directory, or its PostgreSQL database.
    pub fn open_store(&self) -> pushauth_server::store::SharedStore {
        pushauth_server::store::open::open(&self.config.store, &self.data_dir(), false)
            .unwrap_or_else(|e| panic!("cannot open the server's store: {e}"))
            .store
    }

    /// Runs `sql`, an `UPDATE` or `DELETE` that both backends accept (no parameters; no
    /// `user` column: PostgreSQL's is `user_name`), on this server's store behind its back
    /// (ageing records, filling tables); returns the rows it changed.
    pub fn update_sql(&self, sql: &str) -> u64 {
        match &self.config.store {
            pushauth_server::config::StoreConfig::Postgres(pg) => {
                let db = pg.url.rsplit('/').next().unwrap_or_default().to_owned();
                let cluster = crate::postgres::PgCluster::shared("update_sql")
                    .unwrap_or_else(|| panic!("no PostgreSQL for {db}"));
                let out = cluster.psql_db(
                    &db,
                    &format!("WITH changed AS ({sql} RETURNING 1) SELECT count(*) FROM changed"),
                );
                out.parse()
                    .unwrap_or_else(|e| panic!("{sql}: {e} in {out:?}"))
            }
            _ => {
                let path = self.data_dir().join("pushauthd.sqlite3");
                let db = rusqlite::Connection::open(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let changed = db.execute(sql, []).unwrap_or_else(|e| panic!("{sql}: {e}"));
                u64::try_from(changed).unwrap_or(u64::MAX)
            }
        }
    }

    /// Stops the server and closes its store; the directory stays until drop.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }

    /// Stops the server now (the directory goes with it).
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Stops the server and starts it again on the same data directory and address (retrying
    /// for up to 10 s while the port is still held).
    pub fn restart(&mut self) {
        self.stop();
        let started = Instant::now();
        loop {
            match RunningServer::start(self.config.clone()) {
                Ok(server) => {
                    assert_eq!(server.url(), self.url);
                    self.server = Some(server);
                    return;
                }
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("restart failed, retrying: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot restart pushauthd: {e}"),
            }
        }
    }

    /// Makes the kit's calls, and the devices it enrolls from now on, trust the CA
    /// certificates in `ca_file` (PEM) and nothing else.
    pub fn trust(&mut self, ca_file: &Path) {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", ca_file.display()))
        {
            let cert = cert.unwrap_or_else(|e| panic!("bad PEM in {}: {e}", ca_file.display()));
            roots
                .add(cert)
                .unwrap_or_else(|e| panic!("bad CA in {}: {e}", ca_file.display()));
        }
        let config = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("rustls: {e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
        self.agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(config))
            .timeout(Duration::from_secs(60))
            .build();
        self.ca_file = Some(ca_file.to_owned());
    }

    /// `method path` on this server with an optional whole `Authorization` value and body.
    pub fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&[u8]>) -> Resp {
        call_with(
            &self.agent,
            method,
            &format!("{}{path}", self.url),
            auth,
            body,
        )
    }

    /// An admin API call (`Bearer ADMIN_TOKEN`) with an optional JSON body; any status.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call(
            method,
            path,
            Some(&format!("Bearer {ADMIN_TOKEN}")),
            bytes.as_deref(),
        )
    }

    /// A relying-party API call (`Bearer key`) with an optional JSON body; any status.
    pub fn rp(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call(
            method,
            path,
            Some(&format!("Bearer {key}")),
            bytes.as_deref(),
        )
    }

    /// A new relying party; `body` is the admin API's request (`name`, `users`, `enroll`,
    /// `bootstrap`). Panics unless the server made it.
    #[track_caller]
    pub fn add_rp(&self, body: Value) -> TestRp {
        let r = self.admin("POST", "/v1/admin/relying-parties", Some(body));
        assert_eq!(r.status, 201, "{}", r.text);
        TestRp {
            id: field(&r, "id"),
            api_key: field(&r, "api_key"),
        }
    }

    /// The API key of a new relying party named "test rp" with the default rights (every
    /// user, no enrollment).
    #[track_caller]
    pub fn api_key(&self) -> String {
        self.add_rp(json!({"name": "test rp"})).api_key
    }

    /// A new enrollment link for `user` from the admin API, living `ttl_secs` (the server's
    /// default if `None`). Panics unless the server made it and the link names this server.
    #[track_caller]
    pub fn enrollment(&self, user: &str, ttl_secs: Option<u64>) -> Enrollment {
        let mut body = json!({"user": user});
        if let Some(ttl) = ttl_secs {
            body["ttl_secs"] = json!(ttl);
        }
        let r = self.admin("POST", "/v1/admin/enrollments", Some(body));
        assert_eq!(r.status, 201, "{}", r.text);
        let url = field(&r, "url");
        assert!(
            url.starts_with(&format!("{}/enroll?token=", self.url)),
            "{url}"
        );
        Enrollment {
            token: field(&r, "token"),
            url,
        }
    }

    /// Enrolls a new device called `name` for `user` as an administrator would: an admin
    /// enrollment link, redeemed by the device library (new key, proof of possession).
    #[track_caller]
    pub fn enroll(&self, user: &str, name: &str) -> TestDevice {
        self.enroll_alg(user, name, Alg::Ed25519)
    }

    /// As [`TestServer::enroll`], with a device key of `alg` (`Alg::Es256`: ECDSA P-256, as a
    /// browser without Ed25519 enrolls).
    #[track_caller]
    pub fn enroll_alg(&self, user: &str, name: &str, alg: Alg) -> TestDevice {
        let link = self.enrollment(user, None).url;
        let profile = DeviceClient::enroll_alg(&link, name, self.ca_file.as_deref(), alg)
            .unwrap_or_else(|e| panic!("enrolling {name:?} ({alg}) for {user:?}: {e}"));
        assert_eq!(profile.user, user);
        assert_eq!(profile.alg, alg);
        TestDevice::new(profile)
    }
}

/// A string field of a JSON answer; panics (with the answer) when it is missing.
#[track_caller]
fn field(r: &Resp, name: &str) -> String {
    match r.json[name].as_str() {
        Some(value) => value.to_owned(),
        None => panic!("no {name:?} in {}", r.text),
    }
}
