//! A pushauthd child process on a temporary SQLite store (or on a PostgreSQL URL, as one of
//! several replicas sharing a data directory), and what /proc says about it.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use pushauth_device::{DeviceClient, Profile};
use serde_json::{json, Value};
use tempfile::TempDir;
use zeroize::Zeroizing;

pub struct Server {
    child: Child,
    /// Config, admin token and data directory; replicas share one (the offline-code and VAPID
    /// keys must be the same on every replica of a site).
    dir: Arc<TempDir>,
    /// `--store-url`, when not the default SQLite store in the data directory.
    store_url: Option<String>,
    pub url: String,
    admin_token: Zeroizing<String>,
    agent: ureq::Agent,
}

/// The bench lifts the per-user push-fatigue limits: they are policy, and the bench measures
/// capacity. Its 10,000 waits (and their clients) all come from 127.0.0.1, so it also lifts the
/// per-address connection cap (default 256) and the global one (default 16,384) above them.
/// Everything else is the default configuration.
const CONFIG: &str = r#"
[limits]
max_open_per_source = 1000000
max_open_per_user = 1000000
max_new_per_window = 1000000000
max_new_per_user_window = 1000000000
window_secs = 600
report_lockout_secs = 900
max_connections = 60000
max_connections_per_address = 60000
"#;

impl Server {
    /// pushauthd on SQLite in a new temporary data directory.
    pub fn start(binary: &Path) -> Result<Server> {
        Self::spawn(binary, Arc::new(tempfile::tempdir()?), None)
    }

    /// pushauthd on the PostgreSQL database at `store_url`, in a new temporary data directory.
    pub fn start_on(binary: &Path, store_url: &str) -> Result<Server> {
        Self::spawn(
            binary,
            Arc::new(tempfile::tempdir()?),
            Some(store_url.to_owned()),
        )
    }

    /// Another replica of this one: same store, data directory, config and admin token.
    pub fn replica(&self, binary: &Path) -> Result<Server> {
        Self::spawn(binary, Arc::clone(&self.dir), self.store_url.clone())
    }

    fn spawn(binary: &Path, dir: Arc<TempDir>, store_url: Option<String>) -> Result<Server> {
        raise_fd_limit();
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("pushauthd.toml");
        fs::write(&config, CONFIG)?;
        let token_file = dir.path().join("admin-token");
        let mut command = Command::new(binary);
        command
            .args(["serve", "--config"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--admin-token-file")
            .arg(&token_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if let Some(url) = &store_url {
            command.args(["--store-url", url]);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let mut server = Server {
            child,
            dir,
            store_url,
            url: format!("http://127.0.0.1:{port}"),
            admin_token: Zeroizing::new(String::new()),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("pushauthd exited at start: {status}");
            }
            if server
                .agent
                .get(&format!("{}/healthz", server.url))
                .call()
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("pushauthd did not answer /healthz within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.admin_token = Zeroizing::new(fs::read_to_string(&token_file)?.trim().to_owned());
        Ok(server)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn admin_post(&self, path: &str, body: Value) -> Result<Value> {
        let answer = self
            .agent
            .post(&format!("{}{path}", self.url))
            .set(
                "Authorization",
                &format!("Bearer {}", self.admin_token.as_str()),
            )
            .send_json(body)
            .with_context(|| format!("POST {path}"))?;
        Ok(answer.into_json()?)
    }

    /// A relying party's API key.
    pub fn create_rp(&self, name: &str) -> Result<Zeroizing<String>> {
        let answer = self.admin_post("/v1/admin/relying-parties", json!({ "name": name }))?;
        let key = answer["api_key"]
            .as_str()
            .context("no api_key in the answer")?;
        Ok(Zeroizing::new(key.to_owned()))
    }

    /// Enrolls a new device for `user` the way the device CLI does, and returns its client.
    pub fn enroll(&self, user: &str) -> Result<DeviceClient> {
        Ok(DeviceClient::new(&self.enroll_profile(user)?)?)
    }

    /// Enrolls a new device for `user` and returns its profile (which names this server).
    pub fn enroll_profile(&self, user: &str) -> Result<Profile> {
        let answer = self.admin_post("/v1/admin/enrollments", json!({ "user": user }))?;
        let link = answer["url"].as_str().context("no url in the answer")?;
        Ok(DeviceClient::enroll(link, &format!("bench {user}"), None)?)
    }

    fn proc_field(&self, file: &str, key: &str) -> Result<u64> {
        let text = fs::read_to_string(format!("/proc/{}/{file}", self.child.id()))?;
        let line = text
            .lines()
            .find(|l| l.starts_with(key))
            .with_context(|| format!("{key} not in /proc/PID/{file}"))?;
        let kib = line
            .split_whitespace()
            .nth(1)
            .context("no value")?
            .parse()?;
        Ok(kib)
    }

    pub fn rss_mib(&self) -> Result<f64> {
        Ok(self.proc_field("status", "VmRSS:")? as f64 / 1024.0)
    }

    pub fn threads(&self) -> Result<u64> {
        self.proc_field("status", "Threads:")
    }

    pub fn peak_rss_mib(&self) -> Result<f64> {
        Ok(self.proc_field("status", "VmHWM:")? as f64 / 1024.0)
    }

    /// User plus system CPU seconds pushauthd has used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds_of(&self.child.id().to_string())
    }

    /// A Prometheus gauge or counter value from /metrics (first sample of that name).
    pub fn metric(&self, name: &str) -> Result<f64> {
        let text = self
            .agent
            .get(&format!("{}/metrics", self.url))
            .call()?
            .into_string()?;
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .with_context(|| format!("{name} not in /metrics"))?;
        Ok(line.rsplit(' ').next().context("no value")?.parse()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU seconds used by process `pid` (a number, or `self`), from
/// `/proc/<pid>/stat` (proc(5): utime and stime, fields 14 and 15, in clock ticks).
pub fn cpu_seconds_of(pid: &str) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the ")" that closes the command name.
    let rest = stat.rsplit_once(')').context("odd /proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).context("no utime")?.parse::<u64>()?
        + fields.get(12).context("no stime")?.parse::<u64>()?;
    let hz = rustix::param::clock_ticks_per_second().max(1) as f64;
    Ok(ticks as f64 / hz)
}

/// Many waits need many sockets: lift the soft descriptor limit to the hard one (the child
/// inherits it).
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}
