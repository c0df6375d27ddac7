//! The kit against itself: what it makes goes through pushauthd's real API and behaves as the
//! product does (issue 10 item 8).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use pushauth_device::DeviceClient;
use pushauth_proto::{b64, random, ChallengeState, Reason};
use pushauth_testkit::{assert_error, call, dead_url, TestServer};
use serde_json::json;

/// Starts a challenge for `user` with relying-party key `key`; its id and code.
fn challenge(server: &TestServer, key: &str, user: &str) -> (String, String) {
    let body = json!({
        "user": user,
        "context": {"service": "sshd", "host": "web01"},
        "rp_nonce": b64::encode(random::rp_nonce().unwrap()),
    });
    let r = server.rp(key, "POST", "/v1/challenges", Some(body));
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["code"].as_str().unwrap().to_owned(),
    )
}

fn audit_kinds(server: &TestServer) -> Vec<String> {
    let r = server.admin("GET", "/v1/admin/audit?limit=1000", None).ok();
    r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// `enroll` is the enrollment API, not a row written behind the server's back: the server
/// audits a link and its redemption, lists the device with the key the kit holds, and the link
/// the kit used is spent (a second redemption is refused).
#[test]
fn issue10_item8_enroll_goes_through_the_enrollment_api() {
    let server = TestServer::start();
    let link = server.enrollment("alice", None);
    let profile = DeviceClient::enroll(&link.url, "first", None).unwrap();
    // The link is single use, as for any device.
    assert!(DeviceClient::enroll(&link.url, "again", None).is_err());

    // alice has a device now: only an administrator (or that device) can add another, and the
    // kit's `enroll` is the administrator's link.
    let phone = server.enroll("alice", "phone");
    assert_eq!(phone.user(), "alice");
    let kinds = audit_kinds(&server);
    assert_eq!(
        kinds.iter().filter(|k| *k == "enrollment_created").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "device_enrolled").count(),
        2,
        "{kinds:?}"
    );

    let list = server
        .admin("GET", "/v1/admin/users/alice/devices", None)
        .ok();
    let devices = list.json["devices"].as_array().unwrap();
    let ids: Vec<&str> = devices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{list:?}");
    assert!(ids.contains(&profile.device_id.as_str()));
    let listed = devices
        .iter()
        .find(|d| d["id"] == phone.id())
        .unwrap_or_else(|| panic!("{} not listed: {list:?}", phone.id()));
    assert_eq!(
        listed["public_key"].as_str().unwrap(),
        phone.signing_key().public_key().to_b64()
    );
}

/// A relying party from `add_rp` has exactly the rights asked for: scoped to `kc/*`, it cannot
/// push to `alice`; `api_key` pushes to anyone.
#[test]
fn issue10_item8_relying_parties_have_the_rights_asked_for() {
    let server = TestServer::start();
    let _phone = server.enroll("alice", "phone");
    let scoped = server.add_rp(json!({"name": "scoped", "users": ["kc/*"]}));
    let body = json!({
        "user": "alice",
        "context": {"service": "sshd"},
        "rp_nonce": b64::encode(random::rp_nonce().unwrap()),
    });
    let r = server.rp(&scoped.api_key, "POST", "/v1/challenges", Some(body));
    assert_error(&r, 403, "forbidden");
    let key = server.api_key();
    challenge(&server, &key, "alice");
    // Without the admin token the admin API is closed.
    let r = call(
        "GET",
        &format!("{}/v1/admin/audit", server.url),
        Some("Bearer not-the-admin-token"),
        None,
    );
    assert_eq!(r.status, 401, "{}", r.text);
}

/// A `TestDevice` answers as a device does: the right code approves, a wrong one ends the
/// challenge denied with `code_mismatch`, deny denies.
#[test]
fn issue10_item8_devices_approve_deny_and_mismatch_for_real() {
    let server = TestServer::start();
    let key = server.api_key();
    let phone = server.enroll("alice", "phone");

    let (id, code) = challenge(&server, &key, "alice");
    let status = phone.approve(&id, &code);
    assert_eq!(status.state, ChallengeState::Approved);

    let (id, code) = challenge(&server, &key, "alice");
    let wrong = if code.starts_with('0') { "1" } else { "0" }.repeat(code.len());
    let status = phone.approve(&id, &wrong);
    assert_eq!(status.state, ChallengeState::Denied);
    assert_eq!(status.reason, Some(Reason::CodeMismatch));

    let (id, _) = challenge(&server, &key, "alice");
    let status = phone.deny(&id);
    assert_eq!(status.state, ChallengeState::Denied);

    // The relying party sees the device's answer, as the server recorded it.
    let r = server.rp(&key, "GET", &format!("/v1/challenges/{id}"), None);
    assert_eq!(r.json["state"], "denied", "{}", r.text);
}

/// `restart` keeps the address and the store (the device still answers); dropping the kit's
/// server stops it (its address refuses connections, like a URL where nothing listens).
#[test]
fn issue10_item8_restart_keeps_the_store_and_drop_stops_the_server() {
    let mut server = TestServer::start();
    let key = server.api_key();
    let phone = server.enroll("alice", "phone");
    let url = server.url.clone();
    server.restart();
    assert_eq!(server.url, url);
    let (id, code) = challenge(&server, &key, "alice");
    assert_eq!(phone.approve(&id, &code).state, ChallengeState::Approved);

    let data = server.data_dir();
    assert!(data.exists());
    drop(server);
    assert!(
        !data.exists(),
        "the temporary directory outlived the server"
    );
    let refused = ureq::get(&format!("{url}/healthz")).call();
    assert!(
        matches!(refused, Err(ureq::Error::Transport(_))),
        "{refused:?}"
    );
    let nothing = ureq::get(&format!("{}/healthz", dead_url())).call();
    assert!(matches!(nothing, Err(ureq::Error::Transport(_))));
}
