//! Issue 12, offline codes on the server: a device's HOTP secret at enrollment, the values a
//! host may cache (only for its own approved, recent challenges; only the missing ones; never a
//! revoked device), and the reports that move a device's counter (forward only). Every attack
//! here is a request a relying party or a stranger could send.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use common::*;
use pushauth_device::offline::OfflineSecret;
use pushauth_testkit::TestDevice;
use serde_json::{json, Value};

fn secret(dev: &TestDevice) -> OfflineSecret {
    dev.profile
        .offline
        .clone()
        .expect("the device got an offline secret")
}

fn verifies(hash: &str, code: &str) -> bool {
    let parsed = PasswordHash::new(hash).unwrap();
    Argon2::default()
        .verify_password(code.as_bytes(), &parsed)
        .is_ok()
}

fn counters(device: &Value) -> Vec<u64> {
    device["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["counter"].as_u64().unwrap())
        .collect()
}

#[test]
fn issue12_enrollment_hands_out_a_sha256_secret_sealed_at_rest() {
    let srv = start();
    let dev = srv.enroll("alice", "phone");
    let s = secret(&dev);
    assert_eq!(
        (s.algorithm.as_str(), s.digits, s.counter),
        ("sha256", 6, 0)
    );
    let raw = pushauth_proto::b64::decode(&s.secret, "secret").unwrap();
    assert_eq!(raw.len(), 32);
    // Not in the database in the clear (sealed with AES-256-GCM under <data_dir>/offline-key).
    let stored: Vec<Vec<u8>> = if pushauth_testkit::on_postgres() {
        // What the database holds of it: the sealed column.
        let store = srv.open_store();
        let rows = store.offline_secrets("alice").unwrap();
        assert_eq!(rows.len(), 1);
        rows.into_iter().map(|r| r.sealed).collect()
    } else {
        let db = std::fs::read(srv.data_dir().join("pushauthd.sqlite3")).unwrap();
        let wal = std::fs::read(srv.data_dir().join("pushauthd.sqlite3-wal")).unwrap_or_default();
        vec![db, wal]
    };
    for bytes in &stored {
        assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_slice()));
        assert!(!bytes
            .windows(s.secret.len())
            .any(|w| w == s.secret.as_bytes()));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(srv.data_dir().join("offline-key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A SHA-1 server hands out 20-byte secrets, 8 digits as configured.
    let srv1 = start_with(|c| {
        c.offline.algorithm = pushauth_proto::hotp::HotpAlg::Sha1;
        c.offline.digits = 8;
    });
    let s1 = secret(&srv1.enroll("bob", "phone"));
    assert_eq!((s1.algorithm.as_str(), s1.digits), ("sha1", 8));
    assert_eq!(
        pushauth_proto::b64::decode(&s1.secret, "s").unwrap().len(),
        20
    );
}

#[test]
fn issue12_values_only_for_the_relying_partys_own_approved_challenge() {
    let srv = start();
    let key = srv.rp_key();
    let other = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    let s = secret(&dev);

    // Pending: not yet.
    let c = srv.challenge(&key, "alice");
    assert_error(
        &offline_values(&srv, &key, &c.id, json!({})),
        409,
        "wrong_state",
    );
    // Denied: never.
    dev.deny(&c.id);
    assert_error(
        &offline_values(&srv, &key, &c.id, json!({})),
        409,
        "wrong_state",
    );

    let id = approved_login(&srv, &key, &dev);
    // Another relying party cannot tell it from a challenge that does not exist.
    let theirs = offline_values(&srv, &other, &id, json!({}));
    assert_error(&theirs, 404, "not_found");
    let none = offline_values(
        &srv,
        &other,
        "bm8tc3VjaC1jaGFsbGVuZ2UtaWQtYXQtYWxs",
        json!({}),
    );
    assert_eq!(theirs.text, none.text);
    // No key, a wrong key: 401, and nothing written.
    let before = srv.audit();
    let r = srv.call(
        "POST",
        &format!("/v1/challenges/{id}/offline"),
        None,
        Some(b"{}"),
    );
    assert_error(&r, 401, "unauthorized");
    assert_error(
        &offline_values(&srv, "test-rp.wrong", &id, json!({})),
        401,
        "unauthorized",
    );
    assert_eq!(srv.audit(), before);

    let started = Instant::now();
    let r = offline_values(&srv, &key, &id, json!({}));
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text);
    eprintln!("issue12: 20 offline values hashed and returned in {took:?}");
    assert_eq!(r.json["user"], "alice");
    assert_eq!(r.json["digits"], 6);
    let devices = r.json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["device_id"], dev.id());
    assert_eq!(devices[0]["last_used"], 0);
    assert_eq!(counters(&devices[0]), (1..=20).collect::<Vec<_>>());
    // Each value is an Argon2id hash of the device's code for that counter, salted apart.
    let first = devices[0]["values"][0]["hash"].as_str().unwrap();
    let last = devices[0]["values"][19]["hash"].as_str().unwrap();
    assert!(first.starts_with("$argon2id$"), "{first}");
    assert!(verifies(first, &s.code(1).unwrap()));
    assert!(!verifies(first, &s.code(2).unwrap()));
    assert!(verifies(last, &s.code(20).unwrap()));
    // No plain code in the answer.
    for counter in 1..=20 {
        assert!(!r.text.contains(s.code(counter).unwrap().as_str()));
    }
    assert!(srv
        .audit_kinds()
        .contains(&"offline_values_issued".to_owned()));
}

#[test]
fn issue12_only_the_missing_values_are_hashed() {
    let srv = start_with(|c| c.offline.window = 5);
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    let id = approved_login(&srv, &key, &dev);
    let have = |n: u64| json!({ dev.id(): n });
    let r = offline_values(&srv, &key, &id, have(3)).ok();
    assert_eq!(counters(&r.json["devices"][0]), vec![4, 5]);
    let issued = srv
        .audit_kinds()
        .iter()
        .filter(|k| *k == "offline_values_issued")
        .count();
    let r = offline_values(&srv, &key, &id, have(5)).ok();
    assert_eq!(counters(&r.json["devices"][0]), Vec::<u64>::new());
    let r = offline_values(&srv, &key, &id, have(900)).ok();
    assert_eq!(counters(&r.json["devices"][0]), Vec::<u64>::new());
    // Nothing issued, nothing audited as issued.
    let after = srv
        .audit_kinds()
        .iter()
        .filter(|k| *k == "offline_values_issued")
        .count();
    assert_eq!(after, issued);
}

#[test]
fn issue12_reports_move_the_counter_forward_never_back() {
    let srv = start_with(|c| c.offline.window = 5);
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    // A host holds values 1..=5 (only values handed out can be reported, attack12).
    let id = approved_login(&srv, &key, &dev);
    offline_values(&srv, &key, &id, json!({})).ok();
    let r = report(&srv, &key, "alice", &dev, 3);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["counter"], 3);
    // Back: the counter stays, the repeat is audited.
    let r = report(&srv, &key, "alice", &dev, 2).ok();
    assert_eq!(r.json["counter"], 3);
    let id = approved_login(&srv, &key, &dev);
    let r = offline_values(&srv, &key, &id, json!({})).ok();
    assert_eq!(r.json["devices"][0]["last_used"], 3);
    assert_eq!(counters(&r.json["devices"][0]), vec![4, 5, 6, 7, 8]);
    let used: Vec<Value> = srv
        .audit()
        .into_iter()
        .filter(|e| e["kind"] == "offline_code_used")
        .collect();
    assert_eq!(used.len(), 2);
    let detail = used
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("|");
    assert!(
        detail.contains("test rp") || detail.contains("test-rp"),
        "{detail}"
    );
    assert!(detail.contains("moved from 0 to 3"), "{detail}");
    assert!(detail.contains("already at 3"), "{detail}");
    // The device is told, with the host.
    let notices = dev.notices().unwrap();
    let used: Vec<_> = notices
        .iter()
        .filter(|n| n.kind == "offline_code_used")
        .collect();
    assert_eq!(used.len(), 2, "{notices:?}");
    assert_eq!(
        used[0].context.get("host").map(String::as_str),
        Some("test rp")
    );
    assert!(used
        .iter()
        .any(|n| n.context.get("counter").map(String::as_str) == Some("3")));
    // Far beyond any cache: refused, nothing moved.
    assert_error(
        &report(&srv, &key, "alice", &dev, 3 + 101),
        400,
        "malformed_request",
    );
    let id = approved_login(&srv, &key, &dev);
    let r = offline_values(&srv, &key, &id, json!({})).ok();
    assert_eq!(r.json["devices"][0]["last_used"], 3);
}

#[test]
fn issue12_reports_are_refused_for_other_users_scopes_and_strangers() {
    let srv = start();
    let key = srv.rp_key();
    let (_, narrow) = srv.rp_with(json!({"name": "bob only", "users": ["bob"]}));
    let alice = srv.enroll("alice", "phone");
    let bob = srv.enroll("bob", "phone");
    let before = srv.audit();
    // Another user's device, a relying party without alice in scope, no key, bad fields.
    assert_error(&report(&srv, &key, "bob", &alice, 1), 404, "not_found");
    assert_error(&report(&srv, &narrow, "alice", &alice, 1), 403, "forbidden");
    let r = srv.call(
        "POST",
        "/v1/users/alice/offline-used",
        None,
        Some(br#"{"device_id":"x","counter":1,"used_at":"2026-11-30T12:00:00Z"}"#),
    );
    assert_error(&r, 401, "unauthorized");
    assert_error(
        &report(&srv, &key, "alice", &alice, 0),
        400,
        "malformed_request",
    );
    let bad_time = srv.rp(
        &key,
        "POST",
        "/v1/users/alice/offline-used",
        Some(json!({"device_id": alice.id(), "counter": 1, "code": "123456", "used_at": "yesterday"})),
    );
    assert_error(&bad_time, 400, "malformed_request");
    let extra = srv.rp(
        &key,
        "POST",
        "/v1/users/alice/offline-used",
        Some(json!({"device_id": alice.id(), "counter": 1, "code": "123456", "used_at": "2026-11-30T12:00:00Z", "x": 1})),
    );
    assert_error(&extra, 400, "malformed_request");
    let r = srv.call(
        "POST",
        "/v1/users/alice/offline-used",
        Some(&format!("Bearer {key}")),
        Some(b"{not json"),
    );
    assert_error(&r, 400, "malformed_request");
    // Nothing was written by any of them.
    assert_eq!(srv.audit(), before);
    let id = approved_login(&srv, &key, &alice);
    let r = offline_values(&srv, &key, &id, json!({})).ok();
    assert_eq!(r.json["devices"][0]["last_used"], 0);
    drop(bob);
}

#[test]
fn issue12_a_revoked_device_is_dropped_and_its_secret_deleted() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.enroll("alice", "phone");
    // The second device needs an approval from the first; the admin link is one.
    let laptop = srv.enroll("alice", "laptop");
    let id = approved_login(&srv, &key, &phone);
    let r = offline_values(&srv, &key, &id, json!({})).ok();
    assert_eq!(r.json["devices"].as_array().unwrap().len(), 2);
    let r = srv.admin(
        "DELETE",
        &format!("/v1/admin/devices/{}", laptop.id()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // The next approved login (one batch of values per approval, attack12).
    let id = approved_login(&srv, &key, &phone);
    let r = offline_values(&srv, &key, &id, json!({})).ok();
    let devices = r.json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["device_id"], phone.id());
    assert_error(&report(&srv, &key, "alice", &laptop, 1), 404, "not_found");
}

#[test]
fn issue12_offline_codes_off_means_no_secret_and_no_values() {
    let srv = start_with(|c| c.offline.enabled = false);
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    assert!(dev.profile.offline.is_none());
    let id = approved_login(&srv, &key, &dev);
    assert_error(
        &offline_values(&srv, &key, &id, json!({})),
        403,
        "forbidden",
    );
}

#[test]
fn issue12_bad_have_maps_are_refused_before_anything_is_read() {
    let srv = start();
    let key = srv.rp_key();
    let dev = srv.enroll("alice", "phone");
    let id = approved_login(&srv, &key, &dev);
    let before = srv.audit();
    assert_error(
        &offline_values(&srv, &key, &id, json!({"../x": 1})),
        400,
        "malformed_request",
    );
    assert_error(
        &offline_values(&srv, &key, &id, json!({ dev.id(): -1 })),
        400,
        "malformed_request",
    );
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("d{i}"), json!(1))).collect();
    assert_error(
        &offline_values(&srv, &key, &id, Value::Object(many)),
        400,
        "malformed_request",
    );
    let r = srv.rp(
        &key,
        "POST",
        &format!("/v1/challenges/{id}/offline"),
        Some(json!({"have": {}, "more": 1})),
    );
    assert_error(&r, 400, "malformed_request");
    assert_eq!(srv.audit(), before);
}

#[test]
fn issue12_values_only_within_five_minutes_of_the_challenge() {
    use pushauth_proto::offline::OfflineRequest;
    use pushauth_server::offline::{OfflineConfig, OfflineKey};
    use pushauth_server::service::keys::RpCaller;
    use pushauth_server::service::offline::plan_values;

    let srv = start();
    let rp = srv.add_rp(json!({"name": "host a"}));
    let dev = srv.enroll("alice", "phone");
    let id = approved_login(&srv, &rp.api_key, &dev);
    // The rule itself, at chosen times, on the server's own store and key.
    let store = srv.open_store();
    let store: &dyn pushauth_server::store::Store = &*store;
    let key = OfflineKey::load(&srv.data_dir().join("offline-key")).unwrap();
    let caller = RpCaller {
        rp_id: rp.id.clone(),
        users: vec!["*".into()],
        enroll: false,
        bootstrap: false,
        key_hash: None,
    };
    let now = pushauth_server::clock::now_ms();
    let req = OfflineRequest::default();
    let cfg = OfflineConfig::default();
    let refusals = pushauth_server::bounds::SignatureFailures::default();
    let off = |key| pushauth_server::service::offline::Offline {
        config: &cfg,
        key,
        refusals: &refusals,
    };
    let fresh = plan_values(store, &caller, off(&key), &id, &req, now + 4 * 60 * 1000).unwrap();
    assert_eq!(fresh.count(), 20);
    let late = plan_values(store, &caller, off(&key), &id, &req, now + 6 * 60 * 1000);
    assert!(
        matches!(late, Err(pushauth_server::service::Error::Expired)),
        "{:?}",
        late.err()
    );
    // Another relying party, even with every user in scope: no such challenge.
    let other = RpCaller {
        rp_id: "someone-else".into(),
        ..caller.clone()
    };
    let theirs = plan_values(store, &other, off(&key), &id, &req, now);
    assert!(matches!(
        theirs,
        Err(pushauth_server::service::Error::NotFound(_))
    ));
    // A key that is not the server's opens no secret.
    let wrong = OfflineKey::from_bytes(&[1; 32]);
    assert!(plan_values(store, &caller, off(&wrong), &id, &req, now).is_err());
}
