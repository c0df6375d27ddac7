//! Temporary PostgreSQL clusters for tests: `initdb` into a temporary directory, `pg_ctl` on
//! 127.0.0.1 on a free port with the unix socket in that directory, and a streaming standby
//! made with `pg_basebackup -R`. Never the system service.
//!
//! The binaries are found by glob (`/usr/lib/postgresql/*/bin`, newest version first) or in
//! `PUSHAUTH_PG_BIN`. As root every server-side command runs as the `postgres` system user
//! (`runuser -u postgres --`, the directory handed to it); as anyone else, directly. The
//! superuser is always [`PG_USER`], with `trust` authentication on loopback, so URLs carry no
//! password.
//!
//! ```no_run
//! use pushauth_testkit::PgCluster;
//!
//! let Some(pg) = PgCluster::start_or_skip("my_test") else { return };
//! pg.create_database("app");
//! pg.psql_db("app", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
//! let standby = pg.standby();
//! standby.wait_for(|s| s.psql_db("app", "SELECT count(*) FROM t") == "1");
//! pg.kill();
//! standby.promote();
//! standby.psql_db("app", "INSERT INTO t VALUES (2)");
//! ```

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The superuser of every test cluster (`initdb -U`), trusted on loopback.
pub const PG_USER: &str = "pushauth";

/// Set to any value to make [`PgCluster::start_or_skip`] fail instead of skipping when no
/// PostgreSQL binaries are installed (CI, where skipping would hide a missing package).
pub const REQUIRE_ENV: &str = "PUSHAUTH_REQUIRE_POSTGRES";

/// How a cluster is set up before its first start.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgOptions {
    /// `fsync` and `full_page_writes` on. Off (the default) makes tests fast and still keeps
    /// every commit through a SIGKILL of PostgreSQL (the kernel has the writes); turn it on
    /// only where a test checks that a commit survives a crash of the machine.
    /// `synchronous_commit` is always on: with it off an acknowledged commit is lost when
    /// the server is killed, which is what the failover tests must rule out.
    pub durable: bool,
    /// A password for [`PG_USER`], asked for over TCP on 127.0.0.1 with `scram-sha-256` (a
    /// `pg_hba.conf` line before the trusted ones); the unix socket and replication stay
    /// trusted. `None` (the default): trust everywhere, URLs carry no password.
    pub password: Option<&'static str>,
}

/// One temporary PostgreSQL cluster (a primary, or a standby from [`PgCluster::standby`]).
/// Dropping it stops the server (immediate shutdown) and removes its directory; should the test
/// process die first (killed by a timeout), a reaper process does both once it is gone.
pub struct PgCluster {
    /// `root/data` is the data directory, `root/log` the server log, and `root` the socket
    /// directory. Owned by the user the server runs as.
    dir: TempDir,
    /// Its loopback port; the same after [`PgCluster::restart`].
    port: u16,
    /// The PostgreSQL `bin` directory it was made with.
    bin: PathBuf,
    /// [`PgOptions::password`], which the psql helpers send.
    password: Option<&'static str>,
}

impl PgCluster {
    /// The PostgreSQL `bin` directory: `PUSHAUTH_PG_BIN`, else the newest
    /// `/usr/lib/postgresql/<version>/bin` that has `initdb`; `None` when there is none.
    pub fn bin_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("PUSHAUTH_PG_BIN") {
            let dir = PathBuf::from(dir);
            return dir.join("initdb").is_file().then_some(dir);
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    /// Whether PostgreSQL binaries are installed (tests that need them skip when not).
    pub fn available() -> bool {
        Self::bin_dir().is_some()
    }

    /// A started cluster, or `None` with a `SKIPPED` line on stderr naming `test` when no
    /// PostgreSQL binaries are installed. Panics instead of skipping when [`REQUIRE_ENV`] is
    /// set, so CI cannot pass by skipping.
    pub fn start_or_skip(test: &str) -> Option<PgCluster> {
        if Self::available() {
            return Some(Self::start());
        }
        if std::env::var_os(REQUIRE_ENV).is_some() {
            panic!("{test}: no PostgreSQL binaries (/usr/lib/postgresql/*/bin) and {REQUIRE_ENV} is set");
        }
        eprintln!(
            "SKIPPED {test}: no PostgreSQL binaries under /usr/lib/postgresql/*/bin \
             (apt-get install postgresql, or set PUSHAUTH_PG_BIN)"
        );
        None
    }

    /// One cluster for the whole test process, started on first use (`None`, with a `SKIPPED`
    /// line naming `test`, when PostgreSQL is not installed; see [`PgCluster::start_or_skip`]).
    /// A static is never dropped: its reaper (every cluster has one) stops the server and
    /// removes its directory once the test process has exited. Give each test its own database
    /// ([`PgCluster::create_database`]).
    pub fn shared(test: &str) -> Option<&'static PgCluster> {
        static SHARED: OnceLock<Option<PgCluster>> = OnceLock::new();
        SHARED.get_or_init(|| Self::start_or_skip(test)).as_ref()
    }

    /// initdb and start a cluster with [`PgOptions::default`] (fsync off). Panics when the
    /// binaries are missing or a step fails, with the step's output.
    pub fn start() -> PgCluster {
        Self::start_with(PgOptions::default())
    }

    /// initdb and start a cluster set up by `options`.
    pub fn start_with(options: PgOptions) -> PgCluster {
        let bin = Self::bin_dir().unwrap_or_else(|| {
            panic!("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (or PUSHAUTH_PG_BIN)")
        });
        let cluster = PgCluster {
            dir: server_dir(),
            port: free_port(),
            bin,
            password: None,
        };
        let data = cluster.data_dir();
        cluster.run_server_cmd(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                PG_USER,
                "--auth-local=trust",
                "--auth-host=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let durable = if options.durable { "on" } else { "off" };
        let conf = format!(
            "\n# pushauth test cluster\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = '{}'\nfsync = {durable}\nfull_page_writes = {durable}\n\
             synchronous_commit = on\nshared_buffers = 32MB\nmax_connections = 200\n\
             wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\n\
             wal_receiver_status_interval = 1s\nlog_min_messages = warning\n",
            cluster.port,
            path_str(cluster.dir.path()),
        );
        cluster.append_conf(&conf);
        cluster.start_server();
        cluster.spawn_reaper();
        let Some(password) = options.password else {
            return cluster;
        };
        // Set while still trusted, then ask for it: the first matching line wins.
        let quoted = password.replace('\'', "''");
        cluster.psql(&format!(
            "SET password_encryption = 'scram-sha-256'; ALTER ROLE {PG_USER} PASSWORD '{quoted}'"
        ));
        let hba = cluster.data_dir().join("pg_hba.conf");
        let old = fs::read_to_string(&hba)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", hba.display()));
        fs::write(
            &hba,
            format!("host all all 127.0.0.1/32 scram-sha-256\n{old}"),
        )
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", hba.display()));
        cluster.pg_ctl(&["reload"]);
        let mut cluster = cluster;
        cluster.password = Some(password);
        cluster
    }

    /// The data directory (`root/data`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory that holds the unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its loopback port (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host=127.0.0.1 port=…` for a libpq host list, e.g. `127.0.0.1:5433`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `postgresql://pushauth@127.0.0.1:PORT/DBNAME` (trust authentication: no password).
    pub fn url(&self, dbname: &str) -> String {
        format!("postgresql://{PG_USER}@127.0.0.1:{}/{dbname}", self.port)
    }

    /// A URL listing `clusters` as hosts in order, with `target_session_attrs=read-write`:
    /// what a replica uses to find the primary after a failover.
    pub fn multi_host_url(clusters: &[&PgCluster], dbname: &str) -> String {
        let hosts: Vec<String> = clusters.iter().map(|c| c.host_port()).collect();
        format!(
            "postgresql://{PG_USER}@{}/{dbname}?target_session_attrs=read-write",
            hosts.join(",")
        )
    }

    /// `CREATE DATABASE name` (on the primary).
    pub fn create_database(&self, name: &str) {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
    }

    /// Runs `sql` in the `postgres` database; returns psql's unaligned, tuples-only output,
    /// trimmed (`"1"` for `SELECT 1`). Panics with psql's error when it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// Runs `sql` in database `db`, like [`PgCluster::psql`].
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        self.try_psql_db(db, sql)
            .unwrap_or_else(|e| panic!("psql on port {} ({db}) `{sql}` failed: {e}", self.port))
    }

    /// Runs `sql` in database `db`; `Err` holds psql's stderr (a refused connection, a
    /// read-only standby refusing a write).
    pub fn try_psql_db(&self, db: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-p", &port, "-U", PG_USER, "-d", db, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .envs(self.password.map(|p| ("PGPASSWORD", p)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Starts the server again after [`PgCluster::stop`] or [`PgCluster::kill`] (crash
    /// recovery after a kill). Waits until it accepts connections.
    pub fn start_again(&self) {
        self.start_server();
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended, nothing committed is
    /// lost).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// SIGKILLs the postmaster (a crashed host); its backends end when they notice. Start it
    /// again with [`PgCluster::start_again`].
    pub fn kill(&self) {
        let pid = self
            .postmaster_pid()
            .unwrap_or_else(|| panic!("cluster on port {} is not running", self.port));
        let pid = rustix::process::Pid::from_raw(pid)
            .unwrap_or_else(|| panic!("bad postmaster pid {pid}"));
        rustix::process::kill_process(pid, rustix::process::Signal::KILL)
            .unwrap_or_else(|e| panic!("cannot SIGKILL the postmaster: {e}"));
        // Wait until the postmaster and every backend are gone, so a start cannot race them.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let listening = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if !listening && !process_alive(pid.as_raw_nonzero().get()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the postmaster on port {} outlived SIGKILL for 20 s",
            self.port
        );
    }

    /// SIGSTOPs the postmaster and every backend: the server keeps its connections open and
    /// answers nothing (a hung host, a network that drops packets). Undo with
    /// [`PgCluster::resume`].
    pub fn pause(&self) {
        self.signal_all(rustix::process::Signal::STOP);
    }

    /// SIGCONTs what [`PgCluster::pause`] stopped.
    pub fn resume(&self) {
        self.signal_all(rustix::process::Signal::CONT);
    }

    /// SIGSTOPs one server process (`pid`, from `pg_stat_activity` or `pg_locks`): its
    /// session keeps its socket and locks and answers nothing, while every other goes on
    /// (one connection of a replica hung on a dropping network path). Undo with
    /// [`PgCluster::resume_backend`].
    pub fn pause_backend(&self, pid: i32) {
        Self::signal_one(pid, rustix::process::Signal::STOP);
    }

    /// SIGCONTs what [`PgCluster::pause_backend`] stopped.
    pub fn resume_backend(&self, pid: i32) {
        Self::signal_one(pid, rustix::process::Signal::CONT);
    }

    fn signal_one(pid: i32, signal: rustix::process::Signal) {
        let target = rustix::process::Pid::from_raw(pid)
            .unwrap_or_else(|| panic!("{pid} is not a process id"));
        rustix::process::kill_process(target, signal)
            .unwrap_or_else(|e| panic!("cannot signal server process {pid}: {e}"));
    }

    fn signal_all(&self, signal: rustix::process::Signal) {
        let postmaster = self
            .postmaster_pid()
            .unwrap_or_else(|| panic!("cluster on port {} is not running", self.port));
        let mut pids = vec![postmaster];
        pids.extend(children_of(postmaster));
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                // A backend that just ended is no failure.
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
    }

    /// Fast stop, then start.
    pub fn restart(&self) {
        self.stop();
        self.start_server();
    }

    /// The postmaster's pid from `postmaster.pid`, while a server runs.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// A streaming standby of this cluster: `pg_basebackup -R -X stream` into a new temporary
    /// directory, started on its own free port, read-only until [`PgCluster::promote`].
    pub fn standby(&self) -> PgCluster {
        let standby = PgCluster {
            dir: server_dir(),
            port: free_port(),
            bin: self.bin.clone(),
            // pg_hba.conf and the role's password come with the base backup.
            password: self.password,
        };
        let data = standby.data_dir();
        let port = self.port.to_string();
        standby.run_server_cmd(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                PG_USER,
                "-D",
                path_str(&data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        // Later lines win: the copied postgresql.conf still names the primary's port.
        standby.append_conf(&format!(
            "\n# standby\nport = {}\nunix_socket_directories = '{}'\n",
            standby.port,
            path_str(standby.dir.path())
        ));
        standby.start_server();
        standby.spawn_reaper();
        standby
    }

    /// Promotes a standby to primary (`pg_ctl promote -w`): it accepts writes when this
    /// returns.
    pub fn promote(&self) {
        self.pg_ctl(&["promote", "-w", "-t", "60"]);
        self.wait_for(|c| {
            c.try_psql_db("postgres", "SELECT pg_is_in_recovery()") == Ok("f".into())
        });
    }

    /// Calls `check` every 20 ms until it is true; panics after 30 s.
    pub fn wait_for(&self, check: impl Fn(&PgCluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "cluster on port {}: condition not met within 30 s",
            self.port
        );
    }

    /// The server log so far (for a failing test's message).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Starts `sh` watching this process: when it is gone, an immediate stop and `rm -rf` of
    /// the cluster's directory. For [`PgCluster::shared`], which is never dropped, and for a
    /// test process killed before its clusters were dropped (a timeout, Ctrl-C).
    fn spawn_reaper(&self) {
        let data = self.data_dir();
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if running_as_root() {
            "runuser -u postgres -- \"$1\" stop -m immediate -w -D \"$2\""
        } else {
            "\"$1\" stop -m immediate -w -D \"$2\""
        };
        // The marker names this process: after a drop, a new cluster of another process may
        // get the same temporary name, and its directory is not ours to remove.
        let marker = format!(".pushauth-test-{}", std::process::id());
        let marker_path = self.dir.path().join(&marker);
        fs::write(&marker_path, b"")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker_path.display()));
        // The outer shell puts the watcher in the background and exits at once (waited for
        // here), so the watcher is nobody's zombie and outlives this process.
        let script = format!(
            "(while kill -0 {} 2>/dev/null; do sleep 0.5; done; \
             if [ -e \"$3/{marker}\" ]; then {stop} >/dev/null 2>&1; rm -rf \"$3\"; fi) \
             </dev/null >/dev/null 2>&1 &",
            std::process::id()
        );
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("pushauth-pg-reaper")
            .arg(pg_ctl)
            .arg(&data)
            .arg(self.dir.path())
            .current_dir("/")
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            panic!("cannot start the cluster reaper: {status:?}");
        }
    }

    fn start_server(&self) {
        // After a SIGKILL the old backends may hold the shared memory a moment longer.
        let mut last = None;
        for _ in 0..50 {
            let out = self.server_cmd("pg_ctl").args(self.start_args()).output();
            match out {
                Ok(out) if out.status.success() => return,
                other => last = Some(describe(other)),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "pg_ctl start on port {} failed: {}\nlog:\n{}",
            self.port,
            last.unwrap_or_default(),
            self.log()
        );
    }

    fn start_args(&self) -> Vec<String> {
        let data = self.data_dir();
        let log = self.dir.path().join("log");
        [
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            path_str(&data),
            "-l",
            path_str(&log),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data_dir();
        let mut all = vec!["-D", path_str(&data)];
        all.extend_from_slice(args);
        self.run_server_cmd("pg_ctl", &all);
    }

    fn append_conf(&self, text: &str) {
        use std::io::Write;
        let path = self.data_dir().join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// A command for a PostgreSQL binary, as the server's user, in the cluster's directory.
    fn server_cmd(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut cmd = if running_as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    fn run_server_cmd(&self, program: &str, args: &[&str]) {
        let out = self.server_cmd(program).args(args).output();
        match out {
            Ok(out) if out.status.success() => {}
            other => panic!(
                "{program} {} failed: {}\nlog:\n{}",
                args.join(" "),
                describe(other),
                self.log()
            ),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.postmaster_pid().is_some() {
            let data = self.data_dir();
            let _ = self
                .server_cmd("pg_ctl")
                .args(["stop", "-m", "immediate", "-w", "-D", path_str(&data)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // TempDir removes the directory (root may remove the postgres user's files; as
        // another user they are ours).
    }
}

fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| crate::euid() == 0)
}

/// A temporary directory the server's user owns (mode 0700, as PostgreSQL requires of the data
/// directory's parent it writes the socket into).
fn server_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pushauth-pg-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
    if running_as_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            panic!(
                "cannot chown {} to postgres: {status:?}",
                dir.path().display()
            );
        }
    }
    dir
}

/// Whether `pid` is a live process: not gone and not a zombie (the sandbox's init may reap an
/// orphaned postmaster late).
pub fn process_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

/// The pids whose parent is `parent` (from `/proc/*/stat`).
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name: state, then the parent's pid.
            let (_, rest) = stat.rsplit_once(')')?;
            let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
        .port()
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("temp path is not UTF-8: {}", path.display()))
}

fn describe(out: std::io::Result<Output>) -> String {
    match out {
        Ok(out) => format!(
            "{}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("cannot run: {e}"),
    }
}
