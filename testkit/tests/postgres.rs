//! The PostgreSQL cluster fixture against real `initdb`/`pg_ctl`/`pg_basebackup`: a cluster
//! starts and answers, survives stop/kill/restart with its data, and a streaming standby
//! receives rows, refuses writes, and accepts them once promoted. Skips (with a `SKIPPED`
//! line) where PostgreSQL is not installed, unless `PUSHAUTH_REQUIRE_POSTGRES` is set.

use std::path::PathBuf;

use pushauth_testkit::{process_alive, PgCluster};

#[test]
fn a_cluster_starts_answers_and_keeps_rows_across_stop_kill_and_restart() {
    let Some(pg) = PgCluster::start_or_skip("cluster_lifecycle") else {
        return;
    };
    assert_eq!(pg.psql("SELECT 1"), "1");
    assert_eq!(pg.psql("SHOW listen_addresses"), "127.0.0.1");
    assert_eq!(pg.psql("SHOW fsync"), "off");
    assert!(pg
        .socket_dir()
        .join(format!(".s.PGSQL.{}", pg.port()))
        .exists());
    pg.create_database("app");
    pg.psql_db("app", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");

    pg.stop();
    assert!(
        pg.try_psql_db("app", "SELECT 1").is_err(),
        "a stopped cluster answered"
    );
    pg.start_again();
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t"), "1");

    pg.psql_db("app", "INSERT INTO t VALUES (2)");
    let before = pg.postmaster_pid().unwrap();
    pg.kill();
    assert!(
        pg.try_psql_db("app", "SELECT 1").is_err(),
        "a killed cluster answered"
    );
    pg.start_again();
    assert_ne!(pg.postmaster_pid().unwrap(), before);
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t"), "2");

    pg.restart();
    assert_eq!(pg.psql_db("app", "SELECT sum(x) FROM t"), "3");
}

#[test]
fn a_standby_streams_refuses_writes_and_takes_over_when_promoted() {
    let Some(primary) = PgCluster::start_or_skip("standby_promote") else {
        return;
    };
    primary.create_database("app");
    primary.psql_db("app", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let standby = primary.standby();
    assert_ne!(standby.port(), primary.port());
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()"), "t");

    primary.psql_db("app", "INSERT INTO t VALUES (2)");
    standby.wait_for(|s| s.psql_db("app", "SELECT count(*) FROM t") == "2");
    let refused = standby
        .try_psql_db("app", "INSERT INTO t VALUES (3)")
        .unwrap_err();
    assert!(refused.contains("read-only"), "{refused}");

    let url = PgCluster::multi_host_url(&[&primary, &standby], "app");
    assert!(
        url.contains(&format!(",127.0.0.1:{}/app?", standby.port())),
        "{url}"
    );
    assert!(url.ends_with("target_session_attrs=read-write"), "{url}");

    primary.kill();
    standby.promote();
    standby.psql_db("app", "INSERT INTO t VALUES (3)");
    assert_eq!(standby.psql_db("app", "SELECT sum(x) FROM t"), "6");
}

#[test]
fn dropping_a_cluster_stops_it_and_removes_its_directory() {
    let Some(pg) = PgCluster::start_or_skip("drop_cleans_up") else {
        return;
    };
    let data: PathBuf = pg.data_dir();
    let pid = pg.postmaster_pid().unwrap();
    let port = pg.port();
    drop(pg);
    assert!(!data.exists(), "{} left behind", data.display());
    assert!(!process_alive(pid), "postmaster {pid} still runs");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn the_shared_cluster_is_one_per_process() {
    let Some(a) = PgCluster::shared("shared_cluster") else {
        return;
    };
    let b = PgCluster::shared("shared_cluster").unwrap();
    assert_eq!(a.port(), b.port());
    a.create_database("shared_one");
    assert_eq!(b.psql_db("shared_one", "SELECT 1"), "1");
}

/// Run by the test below in a child process: starts a cluster, says where, and waits to be
/// killed.
#[test]
#[ignore = "a helper: run by a_killed_test_process_leaves_no_cluster_behind"]
fn helper_start_a_cluster_and_wait_to_be_killed() {
    if std::env::var_os("PUSHAUTH_PG_HELPER").is_none() {
        return;
    }
    let pg = PgCluster::start();
    println!(
        "CLUSTER {} {}",
        pg.data_dir().display(),
        pg.postmaster_pid().unwrap()
    );
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn a_killed_test_process_leaves_no_cluster_behind() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    if PgCluster::start_or_skip("killed_process_reaped").is_none() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_start_a_cluster_and_wait_to_be_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("PUSHAUTH_PG_HELPER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("CLUSTER ")))
        .expect("the helper never started its cluster");
    let mut parts = line.split(' ').skip(1);
    let data = PathBuf::from(parts.next().unwrap());
    let pid: i32 = parts.next().unwrap().parse().unwrap();
    assert!(data.exists() && process_alive(pid));
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    while data.exists() || process_alive(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "cluster {} (postmaster {pid}) outlived its killed test process",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
