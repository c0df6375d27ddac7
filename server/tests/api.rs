//! HTTP API tests against a real server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use pushauth_proto::signing::{response_message, ResponseFields};
use pushauth_proto::{b64, Decision, DevicePublicKey, DeviceSigningKey};
use serde_json::json;

fn device_count(srv: &Srv, user: &str) -> usize {
    let r = srv.admin("GET", &format!("/v1/admin/users/{user}/devices"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["devices"].as_array().unwrap().len()
}

fn state_of(srv: &Srv, key: &str, id: &str) -> String {
    let r = srv.status(key, id);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["state"].as_str().unwrap().to_owned()
}

#[test]
fn enrollment_ok_used_expired_unknown_and_bad_proof() {
    let srv = start();
    // ok
    let token = srv.enrollment("alice", None);
    let key = DeviceSigningKey::generate().unwrap();
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(&token, &key, "phone")),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"], "alice");
    assert_eq!(device_count(&srv, "alice"), 1);
    // used twice
    let other = DeviceSigningKey::generate().unwrap();
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(&token, &other, "x")),
    );
    assert_error(&r, 409, "enrollment_used");
    assert_eq!(device_count(&srv, "alice"), 1);
    // unknown
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body("nope", &other, "x")),
    );
    assert_error(&r, 404, "unknown_enrollment");
    // bad proof: signed for another token; the token stays usable
    let token = srv.enrollment("bob", None);
    let mut body: serde_json::Value =
        serde_json::from_slice(&enroll_body("another-token", &other, "x")).unwrap();
    body["token"] = json!(token);
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(body.to_string().as_bytes()),
    );
    assert_error(&r, 401, "bad_signature");
    assert_eq!(device_count(&srv, "bob"), 0);
    // bad key and bad name are malformed
    let mut bad_key = body.clone();
    bad_key["public_key"] = json!("AAAA");
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(bad_key.to_string().as_bytes()),
    );
    assert_error(&r, 400, "malformed_request");
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(&token, &other, &"n".repeat(65))),
    );
    assert_error(&r, 400, "malformed_request");
    assert_eq!(device_count(&srv, "bob"), 0);
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(&token, &other, "ok")),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(device_count(&srv, "bob"), 1);
    // expired
    let token = srv.enrollment("carol", Some(1));
    std::thread::sleep(Duration::from_millis(2100));
    let r = srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(&token, &other, "x")),
    );
    assert_error(&r, 410, "enrollment_expired");
    assert_eq!(device_count(&srv, "carol"), 0);
    assert!(
        srv.audit_kinds()
            .iter()
            .filter(|k| *k == "device_enrolled")
            .count()
            == 2
    );
}

#[test]
fn rp_auth_bad_key_and_admin_token() {
    let srv = start();
    let dev = srv.device("alice");
    let key = srv.rp_key();
    let r = srv.call("GET", "/v1/users/alice/devices", None, None);
    assert_error(&r, 401, "unauthorized");
    for bad in ["nonsense", "abc.def", &format!("{key}x"), "Bearer"] {
        let r = srv.rp(bad, "GET", "/v1/users/alice/devices", None);
        assert_error(&r, 401, "unauthorized");
    }
    let r = srv.rp(&key, "GET", "/v1/users/alice/devices", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["devices"][0]["id"], dev.id.as_str());
    // the admin token acts as relying party "admin"
    let c = srv.challenge(ADMIN, "alice");
    assert_eq!(state_of(&srv, ADMIN, &c.id), "pending");
    // another RP does not see it
    let r = srv.status(&key, &c.id);
    assert_error(&r, 404, "not_found");
    let r = srv.rp(&key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
    assert_error(&r, 404, "not_found");
    assert_eq!(state_of(&srv, ADMIN, &c.id), "pending");
    // admin endpoints refuse RP keys
    let r = srv.rp(&key, "GET", "/v1/admin/audit", None);
    assert_error(&r, 401, "unauthorized");
    let r = srv.rp(&key, "GET", "/v1/users/nobody/devices", None);
    assert_error(&r, 404, "unknown_user");
}

#[test]
fn create_refuses_bad_requests_and_changes_nothing() {
    let srv = start();
    let key = srv.rp_key();
    let alice = srv.device("alice");
    let _bob = srv.device("bob");
    srv.enrollment("nodev", None);
    let (r, _) = srv.create(&key, "nobody", json!({}));
    assert_error(&r, 404, "unknown_user");
    let (r, _) = srv.create(&key, "nodev", json!({}));
    assert_error(&r, 404, "no_device");
    let (r, _) = srv.create(&key, "bob", json!({"devices": [alice.id]}));
    assert_error(&r, 404, "no_device");
    let (r, _) = srv.create(&key, "alice", json!({"context": {"Bad Key": "x"}}));
    assert_error(&r, 400, "invalid_context");
    let (r, _) = srv.create(&key, "alice", json!({"context": {"message": "a\u{1b}[2J"}}));
    assert_error(&r, 400, "invalid_context");
    let (r, _) = srv.create(&key, "alice", json!({"rp_nonce": b64::encode([1u8; 16])}));
    assert_error(&r, 400, "malformed_request");
    let (r, _) = srv.create(&key, "alice", json!({"rp_nonce": "!!"}));
    assert_error(&r, 400, "malformed_request");
    let (r, _) = srv.create(&key, "alice", json!({"cod": false}));
    assert_error(&r, 400, "malformed_request");
    let (r, _) = srv.create(&key, "alice", json!({"ttl_secs": 0}));
    assert_error(&r, 400, "malformed_request");
    let (r, _) = srv.create(&key, "alice", json!({"ttl_secs": 301}));
    assert_error(&r, 400, "malformed_request");
    let (r, _) = srv.create(&key, "alice", json!({"ttl_secs": "60"}));
    assert_error(&r, 400, "malformed_request");
    let auth = format!("Bearer {key}");
    let r = srv.call("POST", "/v1/challenges", Some(&auth), Some(b"{\"user\": "));
    assert_error(&r, 400, "malformed_request");
    let big = json!({"user": "alice", "rp_nonce": "x", "context": {"message": "x".repeat(70_000)}});
    let r = srv.call(
        "POST",
        "/v1/challenges",
        Some(&auth),
        Some(big.to_string().as_bytes()),
    );
    assert_error(&r, 413, "payload_too_large");
    // nothing was created
    assert!(!srv.audit_kinds().iter().any(|k| k == "challenge_created"));
    let r = alice.pending(&srv, 0);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["challenges"].as_array().unwrap().len(), 0);
    // and a good request works, targeted at the named device only
    let (r, _) = srv.create(&key, "alice", json!({"devices": [alice.id], "code": false}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["code"], serde_json::Value::Null);
    assert_eq!(r.json["state"], "pending");
    assert_eq!(r.json["device_info"][0]["id"], alice.id.as_str());
}

#[test]
fn device_auth_failures() {
    let mut srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let ack_path = format!("/v1/device/challenges/{}/ack", c.id);
    // forged signature: signed by another key
    let intruder = Device {
        id: dev.id.clone(),
        user: dev.user.clone(),
        key: DeviceSigningKey::generate().unwrap(),
    };
    let r = intruder.send(&srv, "POST", &ack_path, b"");
    assert_error(&r, 401, "bad_signature");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    let events = srv.audit();
    let rejected = events
        .iter()
        .find(|e| e["kind"] == "signature_rejected")
        .expect("signature_rejected audited");
    assert_eq!(rejected["device_id"], dev.id.as_str());
    // signature over another path
    let header = dev.header("POST", "/v1/device/challenges/other/ack", b"", now_secs());
    let r = srv.call("POST", &ack_path, Some(&header), Some(b""));
    assert_error(&r, 401, "bad_signature");
    // replayed nonce, also after a restart
    let path = "/v1/device/challenges?wait=0";
    let header = dev.header("GET", path, b"", now_secs());
    let r = srv.call("GET", path, Some(&header), None);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = srv.call("GET", path, Some(&header), None);
    assert_error(&r, 401, "replayed_nonce");
    srv.restart();
    let r = srv.call("GET", path, Some(&header), None);
    assert_error(&r, 401, "replayed_nonce");
    // stale timestamp
    let header = dev.header("POST", &ack_path, b"", now_secs() - 200);
    let r = srv.call("POST", &ack_path, Some(&header), Some(b""));
    assert_error(&r, 401, "stale_timestamp");
    let header = dev.header("POST", &ack_path, b"", now_secs() + 200);
    let r = srv.call("POST", &ack_path, Some(&header), Some(b""));
    assert_error(&r, 401, "stale_timestamp");
    // unknown device
    let ghost = Device {
        id: "ghost".into(),
        user: "alice".into(),
        key: DeviceSigningKey::generate().unwrap(),
    };
    let r = ghost.send(&srv, "POST", &ack_path, b"");
    assert_error(&r, 401, "unknown_device");
    // no header at all
    let r = srv.call("POST", &ack_path, None, Some(b""));
    assert_error(&r, 401, "unauthorized");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    // revoked
    let r = srv.admin("DELETE", &format!("/v1/admin/devices/{}", dev.id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = dev.send(&srv, "POST", &ack_path, b"");
    assert_error(&r, 403, "device_revoked");
    let r = dev.approve(&srv, &c);
    assert_error(&r, 403, "device_revoked");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    assert_eq!(device_count(&srv, "alice"), 0);
    assert!(srv.audit_kinds().iter().any(|k| k == "revoked"));
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_error(&r, 404, "no_device");
}

#[test]
fn approve_reaches_a_waiting_rp_with_a_verifiable_signature() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let (r, c) = srv.create(&key, "alice", json!({}));
    let c = c.unwrap();
    let public = DevicePublicKey::from_wire(
        r.json["device_info"][0]["alg"].as_str().unwrap(),
        r.json["device_info"][0]["public_key"].as_str().unwrap(),
    )
    .unwrap();
    let code = c.code.clone().unwrap();
    assert_eq!(code.len(), 6);
    // the device sees it without the code, with its length
    let r = dev.pending(&srv, 0);
    let listed = &r.json["challenges"][0];
    assert_eq!(listed["id"], c.id.as_str());
    assert_eq!(listed["code_required"], true);
    assert_eq!(listed["code_length"], 6);
    assert!(listed.get("code").is_none());
    assert_eq!(listed["rp_nonce"], b64::encode(c.rp_nonce).as_str());
    assert_eq!(listed["context_digest"], b64::encode(c.digest).as_str());
    assert_eq!(listed["context"]["service"], "sshd");
    // ack: pending -> acknowledged, twice is fine
    let r = dev.ack(&srv, &c.id);
    assert_eq!(r.json["state"], "acknowledged", "{}", r.text);
    let r = dev.ack(&srv, &c.id);
    assert_eq!(r.json["state"], "acknowledged", "{}", r.text);
    // the RP long-polls while the device answers
    let url = format!("{}/v1/challenges/{}?wait=30", srv.url, c.id);
    let auth = format!("Bearer {key}");
    let waiter = std::thread::spawn(move || {
        let r = call("GET", &url, Some(&auth), None);
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(400));
    let answered = Instant::now();
    let r = dev.approve(&srv, &c);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "approved");
    let (r, returned) = waiter.join().unwrap();
    assert!(
        returned.duration_since(answered) < Duration::from_millis(500),
        "long-poll took {:?}",
        returned.duration_since(answered)
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "approved");
    assert_eq!(r.json["device_id"], dev.id.as_str());
    assert_eq!(r.json["decision"], "approve");
    assert_eq!(r.json["typed_code"], code.as_str());
    assert!(r.json.get("reason").is_none());
    let message = response_message(&ResponseFields {
        challenge_id: &c.id,
        user: "alice",
        device_id: &dev.id,
        rp_nonce: &c.rp_nonce,
        context_digest: &c.digest,
        decision: Decision::Approve,
        code: r.json["typed_code"].as_str().unwrap(),
        responded_at: r.json["responded_at"].as_str().unwrap(),
    });
    public
        .verify_b64(&message, r.json["signature"].as_str().unwrap())
        .unwrap();
    // the device list no longer shows it
    let r = dev.pending(&srv, 0);
    assert_eq!(r.json["challenges"].as_array().unwrap().len(), 0);
    // and a terminal challenge answers a long-poll at once
    let started = Instant::now();
    let r = srv.rp(
        &key,
        "GET",
        &format!("/v1/challenges/{}?wait=30", c.id),
        None,
    );
    assert_eq!(r.json["state"], "approved");
    assert!(started.elapsed() < Duration::from_secs(1));
    let kinds = srv.audit_kinds();
    assert!(kinds.iter().any(|k| k == "challenge_answered"));
}

#[test]
fn wrong_code_denies_once_and_for_all() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let wrong = if c.code.as_deref() == Some("11") {
        "12"
    } else {
        "11"
    };
    let r = dev.answer(&srv, &c, Decision::Approve, wrong);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "denied");
    assert_eq!(r.json["reason"], "code_mismatch");
    let r = dev.approve(&srv, &c);
    assert_error(&r, 409, "wrong_state");
    let r = srv.status(&key, &c.id);
    assert_eq!(r.json["state"], "denied");
    assert_eq!(r.json["typed_code"], wrong);
}

#[test]
fn deny_and_report() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let r = dev.answer(&srv, &c, Decision::Deny, "");
    assert_eq!(r.json["state"], "denied", "{}", r.text);
    assert_eq!(r.json["reason"], "denied");
    assert_eq!(r.json["decision"], "deny");
    let c = srv.challenge(&key, "alice");
    let r = dev.answer(&srv, &c, Decision::Report, "");
    assert_eq!(r.json["state"], "denied", "{}", r.text);
    assert_eq!(r.json["reason"], "reported");
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_error(&r, 429, "user_locked");
    let events = srv.audit();
    assert!(events.iter().any(|e| e["kind"] == "user_locked"));
    assert!(events
        .iter()
        .any(|e| e["kind"] == "rate_limited"
            && e["detail"].as_str().unwrap().contains("user_locked")));
    // other users are unaffected
    srv.device("bob");
    srv.challenge(&key, "bob");
}

#[test]
fn forged_or_misdirected_answers_change_nothing() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let other = srv.challenge(&key, "alice");
    let path = format!("/v1/device/challenges/{}/response", c.id);
    // forged: the request is signed by the device, the answer by another key
    let forger = Device {
        id: dev.id.clone(),
        user: dev.user.clone(),
        key: DeviceSigningKey::generate().unwrap(),
    };
    let body = forger.answer_body(&c, Decision::Approve, c.code.as_deref().unwrap());
    let r = dev.send(&srv, "POST", &path, &body);
    assert_error(&r, 401, "bad_signature");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    // an answer signed for another challenge
    let mut body = dev.answer_body(&other, Decision::Approve, other.code.as_deref().unwrap());
    let r = dev.send(&srv, "POST", &path, &body);
    assert_error(&r, 401, "bad_signature");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    // tampered decision
    body = dev.answer_body(&c, Decision::Deny, "");
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["decision"] = json!("approve");
    let r = dev.send(&srv, "POST", &path, v.to_string().as_bytes());
    assert_error(&r, 401, "bad_signature");
    // malformed answers
    let r = dev.send(&srv, "POST", &path, b"{\"decision\":\"maybe\"}");
    assert_error(&r, 400, "malformed_request");
    let mut v: serde_json::Value =
        serde_json::from_slice(&dev.answer_body(&c, Decision::Deny, "")).unwrap();
    v["responded_at"] = json!("yesterday");
    let r = dev.send(&srv, "POST", &path, v.to_string().as_bytes());
    assert_error(&r, 400, "malformed_request");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    assert!(srv
        .audit()
        .iter()
        .any(|e| e["kind"] == "signature_rejected" && e["challenge_id"] == c.id.as_str()));
    // a device the challenge was not sent to
    let bob = srv.device("bob");
    let r = bob.approve(&srv, &c);
    assert_error(&r, 403, "forbidden");
    let r = bob.ack(&srv, &c.id);
    assert_error(&r, 403, "forbidden");
    // unknown challenge
    let ghost = Challenge {
        id: "nope".into(),
        user: "alice".into(),
        code: None,
        rp_nonce: [0; 32],
        digest: [0; 32],
    };
    let r = dev.approve(&srv, &ghost);
    assert_error(&r, 404, "not_found");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    // the valid answer still wins
    let r = dev.approve(&srv, &c);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
}

#[test]
fn untargeted_device_of_the_same_user_is_forbidden() {
    let srv = start();
    let key = srv.rp_key();
    let first = srv.device("alice");
    let second = srv.device("alice");
    let (r, c) = srv.create(&key, "alice", json!({"devices": [first.id]}));
    assert_eq!(r.json["devices"], json!([first.id]));
    let c = c.unwrap();
    let r = second.approve(&srv, &c);
    assert_error(&r, 403, "forbidden");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    let r = second.pending(&srv, 0);
    assert_eq!(r.json["challenges"].as_array().unwrap().len(), 0);
}

#[test]
fn expiry_is_enforced_on_read_and_answer() {
    let srv = start(); // no sweeper
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let late = srv.challenge(&key, "alice");
    let (r, _) = srv.create(&key, "alice", json!({"ttl_secs": 1}));
    let short_id = r.json["id"].as_str().unwrap().to_owned();
    // a waiting RP wakes when the expiry arrives
    let started = Instant::now();
    let r = srv.rp(
        &key,
        "GET",
        &format!("/v1/challenges/{short_id}?wait=10"),
        None,
    );
    assert_eq!(r.json["state"], "expired", "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(srv
        .audit()
        .iter()
        .any(|e| e["kind"] == "challenge_expired" && e["challenge_id"] == short_id.as_str()));
    // answering an expired challenge
    let (r, short) = srv.create(&key, "alice", json!({"ttl_secs": 1}));
    assert_eq!(r.status, 201);
    let short = short.unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let r = dev.approve(&srv, &short);
    assert_error(&r, 410, "expired");
    assert_eq!(state_of(&srv, &key, &short.id), "expired");
    let r = dev.approve(&srv, &short);
    assert_error(&r, 410, "expired");
    let r = srv.rp(
        &key,
        "DELETE",
        &format!("/v1/challenges/{}", short.id),
        None,
    );
    assert_error(&r, 409, "wrong_state");
    // cancel, then answer
    let r = srv.rp(&key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["state"], "cancelled");
    let r = dev.approve(&srv, &c);
    assert_error(&r, 409, "wrong_state");
    let r = srv.rp(&key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
    assert_error(&r, 409, "wrong_state");
    assert!(srv.audit_kinds().iter().any(|k| k == "challenge_cancelled"));
    // the other one is still fine
    let r = dev.approve(&srv, &late);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
}

#[test]
fn device_long_poll_wakes_on_a_new_challenge() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let path = "/v1/device/challenges?wait=30";
    let header = dev.header("GET", path, b"", now_secs());
    let url = format!("{}{}", srv.url, path);
    let waiter = std::thread::spawn(move || {
        let r = call("GET", &url, Some(&header), None);
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(400));
    let created = Instant::now();
    let c = srv.challenge(&key, "alice");
    let (r, returned) = waiter.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["challenges"][0]["id"], c.id.as_str());
    assert!(returned.duration_since(created) < Duration::from_millis(800));
    // with only acknowledged challenges, the long-poll waits; a cancel wakes it
    dev.ack(&srv, &c.id);
    let path = "/v1/device/challenges?wait=30";
    let header = dev.header("GET", path, b"", now_secs());
    let url = format!("{}{}", srv.url, path);
    let waiter = std::thread::spawn(move || {
        let r = call("GET", &url, Some(&header), None);
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(400));
    let cancelled = Instant::now();
    let r = srv.rp(&key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
    assert_eq!(r.status, 200);
    let (r, returned) = waiter.join().unwrap();
    assert_eq!(
        r.json["challenges"].as_array().unwrap().len(),
        0,
        "{}",
        r.text
    );
    assert!(returned.duration_since(cancelled) < Duration::from_millis(800));
}

#[test]
fn push_fatigue_limits() {
    let srv = start();
    let key = srv.rp_key();
    srv.device("alice");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(srv.challenge(&key, "alice").id);
    }
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_error(&r, 429, "too_many_open_challenges");
    for id in &ids {
        let r = srv.rp(&key, "DELETE", &format!("/v1/challenges/{id}"), None);
        assert_eq!(r.status, 200);
    }
    // 3 so far; 7 more fit in the window
    for _ in 0..7 {
        let c = srv.challenge(&key, "alice");
        let r = srv.rp(&key, "DELETE", &format!("/v1/challenges/{}", c.id), None);
        assert_eq!(r.status, 200);
    }
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_error(&r, 429, "rate_limited");
    let limited: Vec<_> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "rate_limited")
        .collect();
    assert_eq!(limited.len(), 2);
    assert!(limited[0]["detail"]
        .as_str()
        .unwrap()
        .contains("rate_limited"));
    assert!(limited[1]["detail"]
        .as_str()
        .unwrap()
        .contains("too_many_open_challenges"));
    assert_eq!(
        srv.audit_kinds()
            .iter()
            .filter(|k| *k == "challenge_created")
            .count(),
        10
    );
}

#[test]
fn challenges_survive_a_restart() {
    let mut srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    srv.restart();
    let r = dev.approve(&srv, &c);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = srv.status(&key, &c.id);
    assert_eq!(r.json["state"], "approved");
    assert_eq!(r.json["device_id"], dev.id.as_str());
}

#[test]
fn admin_audit_lists_events_newest_first() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    srv.device("bob");
    let c = srv.challenge(&key, "alice");
    dev.approve(&srv, &c);
    let events = srv.audit();
    let kinds: Vec<_> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "rp_created",
        "device_enrolled",
        "challenge_created",
        "challenge_answered",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(kinds[0], "challenge_answered");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    let r = srv.admin("GET", "/v1/admin/audit?limit=2&user=bob", None);
    let events = r.json["events"].as_array().unwrap();
    assert!(!events.is_empty() && events.len() <= 2);
    assert!(events.iter().all(|e| e["user"] == "bob"));
    let r = srv.admin("GET", "/v1/admin/audit?limit=lots", None);
    assert_error(&r, 400, "malformed_request");
    let r = srv.call("GET", "/v1/admin/audit", Some("Bearer wrong"), None);
    assert_error(&r, 401, "unauthorized");
}

#[test]
fn ops_endpoints_and_error_bodies() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    srv.challenge(&key, "alice");
    dev.approve(&srv, &c);
    let r = srv.call("GET", "/healthz", None, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ready");
    let r = srv.call("GET", "/metrics", None, None);
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    for series in [
        "pushauth_challenges_total{outcome=\"approved\"} 1",
        "pushauth_challenges_total{outcome=\"created\"} 2",
        "pushauth_open_challenges 1",
        "pushauth_waiting_long_polls 0",
        "pushauth_http_request_duration_seconds_bucket",
    ] {
        assert!(r.text.contains(series), "{series} missing from\n{}", r.text);
    }
    // errors are JSON everywhere
    let r = srv.call("GET", "/nope", None, None);
    assert_error(&r, 404, "not_found");
    let r = srv.call("PUT", "/v1/challenges", None, Some(b"{}"));
    assert_error(&r, 405, "method_not_allowed");
    let r = srv.rp(
        &key,
        "GET",
        &format!("/v1/challenges/{}?wait=soon", c.id),
        None,
    );
    assert_error(&r, 400, "malformed_request");
    let r = srv.rp(
        &key,
        "GET",
        &format!("/v1/challenges/{}?wait=1000", c.id),
        None,
    );
    assert_eq!(
        r.status, 200,
        "terminal: returns at once despite a clamped wait"
    );
    let r = srv.call("GET", "/openapi.json", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["openapi"], "3.1.0");
}

#[test]
fn openapi_document_matches_the_router() {
    let doc: serde_json::Value = serde_json::from_str(pushauth_server::api::ops::OPENAPI).unwrap();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let mut routed: Vec<String> = pushauth_server::api::route_list()
        .into_iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    // every error code is documented
    let text = pushauth_server::api::ops::OPENAPI;
    for code in [
        "malformed_request",
        "replayed_nonce",
        "too_many_open_challenges",
        "enrollment_expired",
        "payload_too_large",
        "store_unavailable",
    ] {
        assert!(text.contains(code), "{code} not in openapi.json");
    }
}

/// Reads one HTTP request (headers and a Content-Length body) and answers 200.
fn read_request(stream: &mut std::net::TcpStream) -> (Vec<String>, Vec<u8>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let length: usize = headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    (headers, body)
}

#[test]
fn webhook_posts_signed_notifications() {
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let srv = start_with(|c| {
        c.webhook = Some(pushauth_server::WebhookConfig {
            url: hook_url,
            secret: zeroize::Zeroizing::new("hook-secret".into()),
            timeout_ms: 2000,
            include_user: false,
        })
    });
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    hook.set_nonblocking(false).unwrap();
    let (mut stream, _) = hook.accept().unwrap();
    let (headers, body) = read_request(&mut stream);
    assert!(headers[0].starts_with("POST /hook "), "{headers:?}");
    let signature = headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("x-pushauth-signature")
                .then(|| value.trim().to_owned())
        })
        .expect("signature header");
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(signature, expected);
    let note: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(note["challenge_id"], c.id.as_str());
    assert_eq!(note["device_id"], dev.id.as_str());
    // Issue 9 item 15: only what wakes the right phone; the user name only when opted in.
    assert_eq!(
        note.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["challenge_id", "device_id"]
    );
}

#[test]
fn a_dead_webhook_does_not_block_challenges() {
    // A listener that accepts and never answers.
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let srv = start_with(|c| {
        c.webhook = Some(pushauth_server::WebhookConfig {
            url: hook_url,
            secret: zeroize::Zeroizing::new("s".into()),
            timeout_ms: 10_000,
            include_user: false,
        })
    });
    let key = srv.rp_key();
    srv.device("alice");
    let started = Instant::now();
    for _ in 0..3 {
        srv.challenge(&key, "alice");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(hook);
}

#[test]
fn sweeper_expires_overdue_challenges() {
    let srv = start_with(|c| c.sweep_interval_secs = 1);
    let key = srv.rp_key();
    srv.device("alice");
    let (r, _) = srv.create(&key, "alice", json!({"ttl_secs": 1}));
    let id = r.json["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(3200));
    // the audit shows it expired without anyone reading it
    assert!(srv
        .audit()
        .iter()
        .any(|e| e["kind"] == "challenge_expired" && e["challenge_id"] == id.as_str()));
    let r = srv.call("GET", "/metrics", None, None);
    assert!(
        r.text
            .contains("pushauth_challenges_total{outcome=\"expired\"} 1"),
        "{}",
        r.text
    );
}

#[test]
fn concurrent_answers_have_exactly_one_winner() {
    let srv = std::sync::Arc::new(start());
    let key = srv.rp_key();
    let devices: Vec<Device> = (0..4).map(|_| srv.device("alice")).collect();
    let c = std::sync::Arc::new(srv.challenge(&key, "alice"));
    let handles: Vec<_> = devices
        .into_iter()
        .map(|dev| {
            let (srv, c) = (srv.clone(), c.clone());
            std::thread::spawn(move || dev.approve(&srv, &c).status)
        })
        .collect();
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 409, 409, 409]);
    let r = srv.status(&key, &c.id);
    assert_eq!(r.json["state"], "approved");
    let answered = srv
        .audit()
        .iter()
        .filter(|e| e["kind"] == "challenge_answered")
        .count();
    assert_eq!(answered, 1);
}

#[test]
fn rp_long_poll_returns_on_acknowledgement() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let url = format!("{}/v1/challenges/{}?wait=30", srv.url, c.id);
    let auth = format!("Bearer {key}");
    let waiter = std::thread::spawn(move || call("GET", &url, Some(&auth), None));
    std::thread::sleep(Duration::from_millis(300));
    let acked = Instant::now();
    assert_eq!(dev.ack(&srv, &c.id).status, 200);
    let r = waiter.join().unwrap();
    assert!(acked.elapsed() < Duration::from_secs(1));
    assert_eq!(r.json["state"], "acknowledged", "{}", r.text);
}

/// Session 13: an answer's nonce is spent with its compare-and-set, and a device's poll spends
/// its nonce in the read (one statement on PostgreSQL). Whatever refused a request the first
/// time, sent again word for word it is refused as a replay, and a replayed approval is never
/// a second answer. (Runs on SQLite and, with `PUSHAUTH_TEST_STORE=postgresql`, on
/// PostgreSQL.)
#[test]
fn every_answer_and_poll_spends_its_nonce_whatever_refused_it() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    let path = format!("/v1/device/challenges/{}/response", c.id);
    let send_twice = |path: &str, body: &[u8]| {
        let header = dev.header("POST", path, body, now_secs());
        let first = srv.call("POST", path, Some(&header), Some(body));
        let again = srv.call("POST", path, Some(&header), Some(body));
        (first, again)
    };

    // Refused before the compare-and-set, each a different way: sent again, a replay.
    let (first, again) = send_twice(&path, b"{");
    assert_error(&first, 400, "malformed_request");
    assert_error(&again, 401, "replayed_nonce");
    let mut late: serde_json::Value =
        serde_json::from_slice(&dev.answer_body(&c, Decision::Deny, "")).unwrap();
    late["responded_at"] = json!("yesterday");
    let (first, again) = send_twice(&path, late.to_string().as_bytes());
    assert_error(&first, 400, "malformed_request");
    assert_error(&again, 401, "replayed_nonce");
    let mut forged: serde_json::Value =
        serde_json::from_slice(&dev.answer_body(&c, Decision::Deny, "")).unwrap();
    forged["decision"] = json!("approve");
    let (first, again) = send_twice(&path, forged.to_string().as_bytes());
    assert_error(&first, 401, "bad_signature");
    assert_error(&again, 401, "replayed_nonce");
    let ghost = Challenge {
        id: "no-such-challenge".into(),
        user: "alice".into(),
        code: None,
        rp_nonce: [0; 32],
        digest: [0; 32],
    };
    let ghost_path = "/v1/device/challenges/no-such-challenge/response";
    let (first, again) = send_twice(ghost_path, &dev.answer_body(&ghost, Decision::Deny, ""));
    assert_error(&first, 404, "not_found");
    assert_error(&again, 401, "replayed_nonce");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");

    // The approval itself, sent twice: approved once, then a replay (not a second answer, not
    // a wrong state).
    let code = c.code.clone().unwrap();
    let (first, again) = send_twice(&path, &dev.answer_body(&c, Decision::Approve, &code));
    assert_eq!(first.json["state"], "approved", "{}", first.text);
    assert_error(&again, 401, "replayed_nonce");
    let answered = srv
        .audit()
        .iter()
        .filter(|e| e["kind"] == "challenge_answered" && e["challenge_id"] == c.id.as_str())
        .count();
    assert_eq!(answered, 1);

    // A deny replayed against a newer challenge cannot land there either: its signature names
    // the old one, and its nonce is spent.
    let d = srv.challenge(&key, "alice");
    let deny = dev.answer_body(&d, Decision::Deny, "");
    let d_path = format!("/v1/device/challenges/{}/response", d.id);
    let header = dev.header("POST", &d_path, &deny, now_secs());
    let r = srv.call("POST", &d_path, Some(&header), Some(&deny));
    assert_eq!(r.json["state"], "denied", "{}", r.text);
    let e = srv.challenge(&key, "alice");
    let e_path = format!("/v1/device/challenges/{}/response", e.id);
    let r = srv.call("POST", &e_path, Some(&header), Some(&deny));
    assert_error(&r, 401, "bad_signature");
    assert_eq!(state_of(&srv, &key, &e.id), "pending");

    // A poll, twice: the second is a replay and lists nothing.
    let poll = "/v1/device/challenges?wait=0";
    let header = dev.header("GET", poll, b"", now_secs());
    let r = srv.call("GET", poll, Some(&header), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(&e.id), "{}", r.text);
    let r = srv.call("GET", poll, Some(&header), None);
    assert_error(&r, 401, "replayed_nonce");
    assert!(!r.text.contains(&e.id), "{}", r.text);
}

/// Session 13: an approval refused by the compare-and-set itself (the user locked after
/// wrong codes) spent its nonce: sent again after the unlock, word for word, it is a replay
/// and approves nothing; the device's new request does.
#[test]
fn an_approval_refused_by_the_lock_cannot_be_replayed_after_the_unlock() {
    let srv = start_with(|config| config.limits.max_code_failures = 1);
    let key = srv.rp_key();
    let dev = srv.device("alice");
    let first = srv.challenge(&key, "alice");
    let c = srv.challenge(&key, "alice");
    let code = first.code.clone().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = dev.answer(&srv, &first, Decision::Approve, wrong);
    assert_eq!(r.json["reason"], "code_mismatch", "{}", r.text);
    let path = format!("/v1/device/challenges/{}/response", c.id);
    let body = dev.answer_body(&c, Decision::Approve, c.code.as_deref().unwrap());
    let header = dev.header("POST", &path, &body, now_secs());
    let r = srv.call("POST", &path, Some(&header), Some(&body));
    assert_error(&r, 429, "user_locked");
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = srv.call("POST", &path, Some(&header), Some(&body));
    assert_error(&r, 401, "replayed_nonce");
    assert_eq!(state_of(&srv, &key, &c.id), "pending");
    let r = dev.approve(&srv, &c);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
}
