//! Issue 13 (attack review): a replica that starts while PostgreSQL is down must still listen
//! and refuse (503 `store_unavailable`), never leave its port closed: a client classes a
//! refused connection as "unreachable", which `server_unreachable = "safe"` lets in. Once the
//! database is back the same port serves logins. Skips without PostgreSQL binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod ha;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use ha::{client, device_on, Site};
use pushauth_client::{ClientError, Outcome, StartOptions};
use pushauth_proto::Context;
use pushauth_testkit::{assert_error, call_with};
use serde_json::json;

fn context() -> Context {
    [("service".to_string(), "sshd".to_string())].into()
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

    pg.start_again();
    let back = Instant::now();
    replica.wait_ready(Duration::from_secs(20));
    eprintln!("database back -> replica ready: {:?}", back.elapsed());
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
