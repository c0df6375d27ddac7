//! Issue 13 (attack review): a replica that starts while PostgreSQL is down must still listen
//! and refuse (503 `store_unavailable`), never leave its port closed: a client classes a
//! refused connection as "unreachable", which `server_unreachable = "safe"` lets in. Once the
//! database is back the same port serves logins. Skips without PostgreSQL binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod ha;

use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ha::{client, context, device_on, Site};
use pushauth_client::{ClientError, Outcome, StartOptions};
use pushauth_server::config::StoreConfig;
use pushauth_server::store::postgres::PgSettings;
use pushauth_server::{RunningServer, ServerConfig, TlsConfig};
use pushauth_testkit::{assert_error, call_with};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

/// Waits until `replica`'s port accepts connections (10 s); how long that took.
fn wait_listening(replica: &ha::Replica) -> Duration {
    let started = Instant::now();
    let addr = replica.url.trim_start_matches("http://");
    while TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "port never opened; log:\n{}",
            replica.log_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// Waits (20 s) for the replica's process to end: its exit status.
fn wait_exit(replica: &mut ha::Replica) -> std::process::ExitStatus {
    let child = replica.child.as_mut().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running; log:\n{}",
            replica.log_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_database_back_but_too_new_stops_the_waiting_replica_with_the_error() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting too new") else {
        return;
    };
    let site = Site::on(&pg, "toonew", "");
    drop(site.spawn("first"));
    pg.psql_db("toonew", "UPDATE schema_version SET version = 99");
    pg.stop();
    let mut replica = site.launch("a");
    wait_listening(&replica);
    assert_eq!(replica.health().0, 503);
    // Past the first retry (0.5 s), which logs its failure.
    thread::sleep(Duration::from_millis(1200));
    pg.start_again();
    let status = wait_exit(&mut replica);
    assert!(!status.success(), "{status:?}");
    let log = replica.log_text();
    assert!(log.contains("version 99 is newer"), "{log}");
    assert!(log.contains("the store is still unavailable"), "{log}");
    let addr = replica.url.trim_start_matches("http://");
    assert!(TcpStream::connect(addr).is_err(), "port still open");
}

#[test]
fn a_database_back_without_the_named_database_stops_the_waiting_replica() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting missing") else {
        return;
    };
    // A bad configuration (SQLSTATE 3D000) is not "unavailable": waiting cannot fix it.
    let site = Site::new(pg.url("missing"), "");
    pg.stop();
    let mut replica = site.launch("a");
    wait_listening(&replica);
    thread::sleep(Duration::from_millis(1200));
    pg.start_again();
    let status = wait_exit(&mut replica);
    assert!(!status.success(), "{status:?}");
    let log = replica.log_text();
    assert!(log.contains("does not exist"), "{log}");
}

#[test]
fn sigterm_stops_a_replica_waiting_for_its_database() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting sigterm") else {
        return;
    };
    let site = Site::on(&pg, "sigterm", "");
    pg.stop();
    let mut replica = site.launch("a");
    wait_listening(&replica);
    let pid = replica.child.as_ref().unwrap().id().to_string();
    let asked = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_exit(&mut replica);
    eprintln!(
        "SIGTERM while waiting for the database -> exit: {:?}",
        asked.elapsed()
    );
    assert!(status.success(), "{status:?}; log:\n{}", replica.log_text());
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn a_replica_started_while_the_database_is_down_listens_refuses_then_serves() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting") else {
        return;
    };
    let site = Site::on(&pg, "starting", "");
    let first = site.spawn("first");
    let key = site.api_key(&first);
    let phone = site.enroll(&first, "alice");
    drop(first);

    // The outage: the database is down and the replica (re)starts.
    pg.stop();
    let started = Instant::now();
    let replica = site.launch("a");
    let addr = replica.url.trim_start_matches("http://").to_owned();
    while TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "port never opened; log:\n{}",
            replica.log_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let port_open = started.elapsed();
    eprintln!("start with the database down -> port open: {port_open:?}");

    let agent = pushauth_testkit::agent();
    let body = json!({"user": "alice", "context": {"service": "sshd"}, "rp_nonce": "A".repeat(43)});
    let text = body.to_string();
    let refused = call_with(
        &agent,
        "POST",
        &format!("{}/v1/challenges", replica.url),
        Some(&format!("Bearer {key}")),
        Some(text.as_bytes()),
    );
    assert_error(&refused, 503, "store_unavailable");
    let health = replica.health();
    assert_eq!(health.0, 503, "{}", health.1);
    assert_eq!(
        health.1,
        json!({"status": "not_ready", "reason": "store_unavailable"})
    );
    // What pam_push hears: a refusal from a server, not "unreachable".
    let rp = client(&[&replica], &key);
    match rp.start("alice", &context(), &StartOptions::default()) {
        Err(ClientError::ServerError(_)) => {}
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(
        replica
            .log_text()
            .contains("cannot open the store; answering 503"),
        "{}",
        replica.log_text()
    );

    // From now until it is ready, the port never refuses a connection (the handover from
    // the refusing server to the real one keeps the listener).
    let done = Arc::new(AtomicBool::new(false));
    let probe = {
        let (addr, done) = (addr.clone(), Arc::clone(&done));
        thread::spawn(move || {
            let (mut tries, mut refused) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                tries += 1;
                if TcpStream::connect(&addr).is_err() {
                    refused += 1;
                }
                thread::sleep(Duration::from_millis(2));
            }
            (tries, refused)
        })
    };
    pg.start_again();
    let back = Instant::now();
    replica.wait_ready(Duration::from_secs(20));
    eprintln!("database back -> replica ready: {:?}", back.elapsed());
    thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    let (tries, refused) = probe.join().unwrap();
    assert_eq!(refused, 0, "{refused} of {tries} connections refused");
    assert!(tries > 50, "{tries}");
    assert_eq!(replica.url, format!("http://{addr}"));

    let login = rp
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let phone = device_on(&phone, &replica);
    let status = phone.approve(&login.id, login.code.as_deref().unwrap());
    assert_eq!(status.state, pushauth_proto::ChallengeState::Approved);
    let outcome = rp
        .wait(&login, Instant::now() + Duration::from_secs(20))
        .unwrap();
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
}

/// `GET`/`POST` over `agent`: status and JSON body.
fn tls_call(agent: &ureq::Agent, method: &str, url: &str, auth: Option<&str>) -> (u16, Value) {
    let mut request = agent.request(method, url);
    if let Some(auth) = auth {
        request = request.set("Authorization", auth);
    }
    let response = match method {
        "POST" => request.send_string("{}"),
        _ => request.call(),
    };
    let response = match response {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn in_process_with_tls_the_waiting_server_refuses_over_tls_then_serves() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting tls") else {
        return;
    };
    pg.create_database("tls");
    pg.stop();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = "tls-admin-token-0123456789";
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("data"),
        token.into(),
    );
    config.tls = Some(TlsConfig {
        cert: cert_path,
        key: key_path,
    });
    let settings = PgSettings::parse(&pg.url("tls"), None, None).unwrap();
    config.store = StoreConfig::Postgres(Box::new(settings));
    let server = RunningServer::start(config).unwrap();
    assert!(server.url().starts_with("https://"));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(Arc::new(tls))
        .timeout(Duration::from_secs(5))
        .build();
    let url = server.url();
    let health = tls_call(&agent, "GET", &format!("{url}/healthz"), None);
    assert_eq!(
        health,
        (
            503,
            json!({"status": "not_ready", "reason": "store_unavailable"})
        )
    );
    let admin = format!("Bearer {token}");
    let refused = tls_call(
        &agent,
        "POST",
        &format!("{url}/v1/admin/relying-parties"),
        Some(&admin),
    );
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert_eq!(refused.1["error"], "store_unavailable", "{}", refused.1);

    pg.start_again();
    let back = Instant::now();
    // Every probe gets an answer, across the handover too (see the test below).
    while tls_call(&agent, "GET", &format!("{url}/healthz"), None).0 != 200 {
        assert!(back.elapsed() < Duration::from_secs(20), "never ready");
        thread::sleep(Duration::from_millis(50));
    }
    let made = tls_call(
        &agent,
        "GET",
        &format!("{url}/v1/admin/relying-parties"),
        Some(&admin),
    );
    assert_eq!(made.0, 200, "{}", made.1);
    server.shutdown();
}

/// One raw HTTP/1.1 request on a fresh connection, the request sent `pause` after connecting:
/// the status line, or what went wrong (no answer at all).
fn raw_health(addr: &str, pause: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    thread::sleep(pause);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: pushauth\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    match answer.lines().next() {
        Some(status) if status.starts_with("HTTP/1.1 ") => Ok(status.to_owned()),
        _ => Err(format!("no answer ({read:?}): {answer:?}")),
    }
}

#[test]
fn no_connection_is_dropped_unanswered_when_the_waiting_server_hands_over() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting handover") else {
        return;
    };
    pg.create_database("handover");
    pg.stop();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("data"),
        "handover-admin-token-0123456789".into(),
    );
    let settings = PgSettings::parse(&pg.url("handover"), None, None).unwrap();
    config.store = StoreConfig::Postgres(Box::new(settings));
    let server = RunningServer::start(config).unwrap();
    let addr = server.url().trim_start_matches("http://").to_owned();

    // Clients connect all the time and send their request a moment later: some are
    // accepted by the refusing side and read only after it has stopped accepting.
    let ready_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (addr, ready_seen) = (addr.clone(), Arc::clone(&ready_seen));
            thread::spawn(move || {
                let (mut answers, mut lost) = (Vec::new(), Vec::new());
                let started = Instant::now();
                while ready_seen.load(Ordering::SeqCst) < 200 {
                    assert!(started.elapsed() < Duration::from_secs(60), "never ready");
                    let pause = Duration::from_millis(((i * 7 + answers.len()) % 25) as u64);
                    match raw_health(&addr, pause) {
                        Ok(status) => {
                            if status.contains(" 200 ") {
                                ready_seen.fetch_add(1, Ordering::SeqCst);
                            }
                            answers.push(status);
                        }
                        Err(e) => lost.push(e),
                    }
                }
                (answers, lost)
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    pg.start_again();
    let (mut refused, mut served) = (0, 0);
    for client in clients {
        let (answers, lost) = client.join().unwrap();
        assert!(lost.is_empty(), "connections closed unanswered: {lost:?}");
        for status in answers {
            match status.as_str() {
                s if s.starts_with("HTTP/1.1 503") => refused += 1,
                s if s.starts_with("HTTP/1.1 200") => served += 1,
                other => panic!("unexpected answer {other}"),
            }
        }
    }
    assert!(
        refused > 0 && served >= 200,
        "{refused} refused, {served} served"
    );
    server.shutdown();
}

/// Attack review r8: a replica starting while another holds the migration lock for longer
/// than `lock_timeout` (5 s: a long migration, or `pushauthd migrate` running) got "busy" and
/// exited, closing its port. Waiting fixes that: it must listen, refuse with 503, and serve
/// once the lock is free.
#[test]
fn a_replica_behind_another_ones_migration_waits_with_its_port_open() {
    let Some(pg) = pushauth_testkit::PgCluster::start_or_skip("ha starting migrate lock") else {
        return;
    };
    let site = Site::on(&pg, "migrating", "");
    drop(site.spawn("first"));
    // Another session holds the migration lock for 9 s (`MIGRATE_LOCK` in the store).
    let holder = {
        let url = pg.url("migrating");
        thread::spawn(move || {
            let out = Command::new("psql")
                .args([
                    &url,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    "SELECT pg_advisory_lock(8103509996671926274)",
                    "-c",
                    "SELECT pg_sleep(9)",
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        })
    };
    thread::sleep(Duration::from_millis(500));
    let mut replica = site.launch("a");
    // The first attempt (before the port is bound) fails as busy after lock_timeout; the
    // port then opens and the process keeps running, refusing, while the lock is held.
    wait_listening(&replica);
    let child = replica.child.as_mut().unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the replica exited; log:\n{}",
        replica.log_text()
    );
    assert_eq!(replica.health().0, 503, "{}", replica.log_text());
    holder.join().unwrap();
    replica.wait_ready(Duration::from_secs(20));
}
