//! Issue 13: while pushauthd cannot reach PostgreSQL (killed here, as a crashed database
//! host), `/healthz` says not ready within its bound, API requests answer 503
//! `store_unavailable` at once (unauthenticated ones included: they hold nothing), and a
//! relying party's long-poll that was already waiting neither fails nor returns early: it
//! returns the device's answer once the database is back, in the same request. Skips without
//! PostgreSQL binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::thread;
use std::time::{Duration, Instant};

use pushauth_server::config::StoreConfig;
use pushauth_server::store::postgres::PgSettings;
use pushauth_testkit::{assert_error, PgCluster, TestServer};
use serde_json::json;

/// A cluster of the test's own (it is killed, paused or reconfigured) and a server on it;
/// `None` (skipped) without PostgreSQL.
fn server_on_own_cluster(test: &str) -> Option<(PgCluster, TestServer)> {
    let pg = PgCluster::start_or_skip(test)?;
    pg.create_database("own");
    let settings = PgSettings::parse(&pg.url("own"), None, None).unwrap();
    let server = TestServer::start_with(|c| c.store = StoreConfig::Postgres(Box::new(settings)));
    Some((pg, server))
}

#[test]
fn a_dead_database_is_503_and_a_waiting_long_poll_outlives_it() {
    let Some((pg, server)) = server_on_own_cluster("ha unavailable") else {
        return;
    };
    let key = server.api_key();
    let phone = server.enroll("alice", "phone");
    let health = server.call("GET", "/healthz", None, None);
    assert_eq!(
        (health.status, health.json["status"].as_str()),
        (200, Some("ready"))
    );
    wait_for_metric(&server, "pushauth_store_listener_connected 1");
    assert!(metrics(&server).contains("pushauth_store_listener_reconnects_total 0"));

    let body = json!({"user": "alice", "context": {"service": "sshd"}, "rp_nonce": "A".repeat(43)});
    let created = server.rp(&key, "POST", "/v1/challenges", Some(body.clone()));
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let code = created.json["code"].as_str().unwrap().to_owned();
    let (url, auth, path) = (
        server.url.clone(),
        format!("Bearer {key}"),
        format!("/v1/challenges/{id}?wait=25"),
    );
    let poll = thread::spawn(move || {
        let started = Instant::now();
        let r = pushauth_testkit::call_with(
            &pushauth_testkit::agent(),
            "GET",
            &format!("{url}{path}"),
            Some(&auth),
            None,
        );
        (r, started.elapsed())
    });
    thread::sleep(Duration::from_millis(300));

    pg.kill();
    let asked = Instant::now();
    let health = server.call("GET", "/healthz", None, None);
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(
        health.json,
        json!({"status": "not_ready", "reason": "store_unavailable"})
    );
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "healthz took {:?}",
        asked.elapsed()
    );

    let refused = server.rp(&key, "POST", "/v1/challenges", Some(body));
    assert_error(&refused, 503, "store_unavailable");
    let refused = server.rp(&key, "GET", "/v1/users/alice/devices", None);
    assert_error(&refused, 503, "store_unavailable");
    // Nobody can be authenticated now: an unknown key is answered at once, not held.
    let asked = Instant::now();
    let stranger = server.rp(
        "nobody.secret",
        "GET",
        &format!("/v1/challenges/{id}?wait=25"),
        None,
    );
    assert_error(&stranger, 503, "store_unavailable");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "held for {:?}",
        asked.elapsed()
    );
    let admin = server.admin("GET", "/v1/admin/audit", None);
    assert_error(&admin, 503, "store_unavailable");

    thread::sleep(Duration::from_secs(1));
    assert!(
        !poll.is_finished(),
        "the long-poll ended while the database was down"
    );
    pg.start_again();
    let back = Instant::now();
    while server.call("GET", "/healthz", None, None).status != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "never ready again"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !poll.is_finished(),
        "the long-poll returned early after the database came back"
    );
    // The wake-up listener found its connection gone and made it again.
    wait_for_metric(&server, "pushauth_store_listener_reconnects_total 1");
    assert!(metrics(&server).contains("pushauth_store_listener_connected 1"));
    let status = phone.approve(&id, &code);
    assert_eq!(status.state, pushauth_proto::ChallengeState::Approved);
    let (r, took) = poll.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    assert!(
        took < Duration::from_secs(25),
        "answered only at the deadline: {took:?}"
    );
}

fn metrics(server: &TestServer) -> String {
    // /metrics reads the store too: empty while the database is still coming back.
    let r = server.call("GET", "/metrics", None, None);
    if r.status == 200 {
        r.text
    } else {
        String::new()
    }
}

fn wait_for_metric(server: &TestServer, line: &str) {
    let started = Instant::now();
    while !metrics(server).lines().any(|l| l == line) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {line:?} in /metrics:\n{}",
            metrics(server)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A database host that hangs (every PostgreSQL process stopped: connections stay open, nothing
/// answers) must not hang the readiness probe: `/healthz` says not ready within its bound,
/// every time it is asked, and ready again once the database answers.
#[test]
fn healthz_is_bounded_when_the_database_hangs() {
    let Some((pg, server)) = server_on_own_cluster("ha hung database") else {
        return;
    };
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    pg.pause();
    let probes: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url.clone();
            thread::spawn(move || {
                let asked = Instant::now();
                let r = pushauth_testkit::call_with(
                    &pushauth_testkit::agent(),
                    "GET",
                    &format!("{url}/healthz"),
                    None,
                    None,
                );
                (r.status, r.json, asked.elapsed())
            })
        })
        .collect();
    let answers: Vec<_> = probes.into_iter().map(|p| p.join().unwrap()).collect();
    pg.resume();
    for (status, body, took) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["status"], "not_ready");
        assert!(*took < Duration::from_secs(3), "a probe took {took:?}");
    }
    let back = Instant::now();
    while server.call("GET", "/healthz", None, None).status != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "never ready again"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// The newcomer walk-through's finding: a primary promoted with a `synchronous_standby_names`
/// it cannot satisfy answers reads but never finishes a commit, so every login hung while
/// `/healthz` said ready. The probe now also waits for a commit (at most once a second).
#[test]
fn healthz_is_not_ready_while_commits_do_not_come_back() {
    let Some((pg, server)) = server_on_own_cluster("ha stuck commits") else {
        return;
    };
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);

    // A synchronous standby that does not exist: every commit now waits for it.
    pg.psql("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
    pg.psql("SELECT pg_reload_conf()");
    thread::sleep(pushauth_server::api::ops::COMMIT_PROBE_EVERY + Duration::from_millis(300));
    let asked = Instant::now();
    let health = server.call("GET", "/healthz", None, None);
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.json["status"], "not_ready");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "healthz took {:?}",
        asked.elapsed()
    );

    // Back to asynchronous commits: the waiting commits finish and the replica is ready again.
    pg.psql("ALTER SYSTEM RESET synchronous_standby_names");
    pg.psql("SELECT pg_reload_conf()");
    let back = Instant::now();
    while server.call("GET", "/healthz", None, None).status != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "never ready again"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
