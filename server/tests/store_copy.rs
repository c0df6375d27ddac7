//! Issue 13: `pushauthd store copy` moves a site from SQLite to PostgreSQL; the copied device
//! logs in on the PostgreSQL store, an open challenge is still answerable, and running the copy
//! again overwrites nothing. Runs whenever PostgreSQL is installed (skipped, saying so, when
//! not).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::process::{Command, Output};

use pushauth_proto::ChallengeState;
use pushauth_server::config::StoreConfig;
use pushauth_server::store::postgres::PgSettings;
use pushauth_testkit::{PgCluster, TestServer};
use serde_json::{json, Value};

fn create(srv: &TestServer, key: &str) -> Value {
    let body = json!({"user": "alice", "context": {"service": "sshd"}, "rp_nonce": "A".repeat(43)});
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    assert_eq!(r.status, 201, "{}", r.text);
    r.json
}

fn copy(from: &std::path::Path, to: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["store", "copy", "--from"])
        .arg(format!("sqlite:{}", from.display()))
        .args(["--to", to])
        .env_remove("PUSHAUTHD_STORE_URL")
        .output()
        .unwrap()
}

#[test]
fn issue13_store_copy_moves_a_site_and_the_copied_device_logs_in() {
    if !PgCluster::available() && std::env::var_os(pushauth_testkit::REQUIRE_ENV).is_none() {
        eprintln!("SKIPPED issue13_store_copy: PostgreSQL is not installed");
        return;
    }
    // A site on SQLite: a relying party, alice's phone, one approved login, one open challenge.
    let mut srv = TestServer::start_with(|c| c.store = StoreConfig::DataDir);
    let key = srv.api_key();
    let phone = srv.enroll("alice", "phone");
    let done = create(&srv, &key);
    let status = phone.approve(done["id"].as_str().unwrap(), done["code"].as_str().unwrap());
    assert_eq!(status.state, ChallengeState::Approved);
    let open = create(&srv, &key);
    let events_before = srv.admin("GET", "/v1/admin/audit?limit=500", None).json["events"]
        .as_array()
        .unwrap()
        .len();
    srv.stop();

    let url = pushauth_testkit::test_database();
    let out = copy(&srv.data_dir(), &url);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("devices: 1"), "{text}");
    assert!(text.contains("relying_parties: 1"), "{text}");
    assert!(text.contains("challenges: 2"), "{text}");
    // The fingerprints of the site's two keys: the replicas on PostgreSQL are checked against
    // the keys of the SQLite host (the restart below, with its data directory, passes).
    assert!(text.contains("site_keys: 2"), "{text}");
    // Again: the target holds data now, and nothing is overwritten.
    let again = copy(&srv.data_dir(), &url);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The same site on PostgreSQL (same data directory: the keys).
    srv.config.store =
        StoreConfig::Postgres(Box::new(PgSettings::parse(&url, None, None).unwrap()));
    srv.restart();
    // The open challenge is still there and answerable.
    let status = phone.approve(open["id"].as_str().unwrap(), open["code"].as_str().unwrap());
    assert_eq!(status.state, ChallengeState::Approved);
    // A new login with the copied device and relying party key.
    let next = create(&srv, &key);
    let status = phone.approve(next["id"].as_str().unwrap(), next["code"].as_str().unwrap());
    assert_eq!(status.state, ChallengeState::Approved);
    // The audit log came along and goes on after the copied ids.
    let events = srv.admin("GET", "/v1/admin/audit?limit=500", None).json["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(events.len() > events_before, "{events:?}");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(ids, sorted, "ids unique and newest first");
}
