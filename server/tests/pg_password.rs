//! Issue 13 review: PostgreSQL asking for a password (`scram-sha-256` on 127.0.0.1). The right
//! one from `[store] password_file` connects; a wrong one makes `pushauthd migrate` fail at
//! once with the server's "password authentication failed for user …" and never the password;
//! a replica starting with it keeps its port answering 503 (`/healthz` not ready), logs the
//! refusal each time it tries (backed off), and serves once the database takes its password.
//! Skips without PostgreSQL binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod ha;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ha::Site;
use pushauth_testkit::{PgCluster, PgOptions, PG_USER};

const PASSWORD: &str = "right-Horse-battery-42";
const WRONG: &str = "wrong-Staple-17";

fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn pushauthd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(args)
        .env_remove("PUSHAUTHD_STORE_URL")
        .env_remove("PUSHAUTHD_CONFIG")
        .env_remove("PUSHAUTHD_DATA_DIR")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn store_config(url: &str, password_file: &Path) -> String {
    format!("[store]\nurl = {url:?}\npassword_file = {password_file:?}\n")
}

#[test]
fn issue13_a_wrong_database_password_is_refused_clearly_and_a_replica_keeps_refusing() {
    if !PgCluster::available() && std::env::var_os(pushauth_testkit::REQUIRE_ENV).is_none() {
        eprintln!("SKIPPED issue13_a_wrong_database_password: PostgreSQL is not installed");
        return;
    }
    let pg = PgCluster::start_with(PgOptions {
        password: Some(PASSWORD),
        ..PgOptions::default()
    });
    pg.create_database("pw");
    let url = pg.url("pw");
    let dir = tempfile::tempdir().unwrap();
    let right = password_file(dir.path(), "right", PASSWORD);
    let wrong = password_file(dir.path(), "wrong", WRONG);
    let conf = |name: &str, file: &Path| {
        let path = dir.path().join(name);
        std::fs::write(&path, store_config(&url, file)).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (right_conf, wrong_conf) = (conf("right.toml", &right), conf("wrong.toml", &wrong));

    // No password at all: refused by the server (the cluster really asks for one).
    // The message says what is missing and where it goes (it used to be only "invalid
    // configuration").
    let out = pushauthd(&["migrate", "--store-url", &url]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("asked for a password") && said.contains("password_file"),
        "{said}"
    );

    // The wrong one: migrate fails at once, saying what and for whom, never echoing it.
    let started = Instant::now();
    let out = pushauthd(&["migrate", "--config", &wrong_conf]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let said = text(&out);
    let refusal = format!("password authentication failed for user \"{PG_USER}\"");
    assert!(said.contains(&refusal), "{said}");
    assert!(!said.contains(WRONG) && !said.contains(PASSWORD), "{said}");
    assert_eq!(
        pg.psql_db("pw", "SELECT to_regclass('schema_version') IS NULL"),
        "t"
    );

    // The right one connects and migrates; admin commands use it too.
    let out = pushauthd(&["migrate", "--config", &right_conf]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pushauthd(&["rp", "add", "bastion", "--config", &wrong_conf]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains(&refusal), "{said}");
    // Session 24: it says what to check, not to point to another store (it is the right one).
    assert!(
        said.contains("check [store] password_file") && !said.contains("--store-url URL"),
        "{said}"
    );
    let out = pushauthd(&["rp", "add", "bastion", "--config", &right_conf]);
    assert!(out.status.success(), "{}", text(&out));

    // A replica starting with the wrong one: its port answers 503 not_ready (never closed,
    // which `safe` clients would let in), and it says why each time it tries.
    let site = Site::new(url.clone(), &store_config(&url, &wrong));
    let mut replica = site.launch("wrong");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = replica.log_text();
        if log.matches(&refusal).count() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = replica.health();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready", "{body}");
    let log = replica.log_text();
    assert!(!log.contains(WRONG) && !log.contains(PASSWORD), "{log}");
    assert!(child_running(&mut replica), "{log}");

    // The database administrator sets the password the replica has: it serves.
    pg.psql(&format!("ALTER ROLE {PG_USER} PASSWORD '{WRONG}'"));
    replica.wait_ready(Duration::from_secs(15));
    let (status, body) = replica.health();
    assert_eq!(status, 200, "{body}");
    replica.kill9();
}

fn child_running(replica: &mut ha::Replica) -> bool {
    replica
        .child
        .as_mut()
        .is_some_and(|c| c.try_wait().unwrap().is_none())
}
