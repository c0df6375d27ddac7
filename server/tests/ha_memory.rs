//! Issue 13 review: what pushauthd remembers to bound a relying party or a device holds across
//! replicas and restarts (it is in the database, not in one replica's memory). Two replicas
//! (the built binary) over one PostgreSQL database: wrong offline-code reports, the one batch
//! of offline values per approval, and the cap on push subscription changes each hold however
//! the requests are spread over the replicas. Skips without PostgreSQL binaries
//! (`PUSHAUTH_REQUIRE_POSTGRES=1` makes that a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common_push;
mod ha;

use common_push::SubKeys;
use std::time::{Duration, Instant};

use ha::{client, device_on, Replica, Site};
use pushauth_client::StartOptions;
use pushauth_proto::Context;
use pushauth_testkit::{call_with, PgCluster, TestDevice};
use serde_json::{json, Value};

/// Offline values are 5 a device, so a batch is quick to hash.
const CONFIG: &str = "[offline]\nwindow = 5\n";

fn rp_call(replica: &Replica, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let text = body.to_string();
    let r = call_with(
        &pushauth_testkit::agent(),
        method,
        &format!("{}{path}", replica.url),
        Some(&format!("Bearer {key}")),
        Some(text.as_bytes()),
    );
    (r.status, r.json)
}

/// A login for `device`'s user started on `replica` and approved there: the challenge id.
fn approved_login(replica: &Replica, key: &str, device: &TestDevice) -> String {
    let context: Context = [("service".to_string(), "sshd".to_string())].into();
    let login = client(&[replica], key)
        .start(&device.profile.user, &context, &StartOptions::default())
        .unwrap();
    let status = device.approve(&login.id, login.code.as_deref().unwrap_or(""));
    assert_eq!(status.state, pushauth_proto::ChallengeState::Approved);
    login.id
}

/// `POST /v1/challenges/{id}/offline` with nothing cached.
fn offline_values(replica: &Replica, key: &str, id: &str) -> (u16, Value) {
    rp_call(
        replica,
        key,
        "POST",
        &format!("/v1/challenges/{id}/offline"),
        json!({"have": {}}),
    )
}

/// `POST /v1/users/{user}/offline-used` for `device` with `code` at `counter`.
fn report(
    replica: &Replica,
    key: &str,
    device: &TestDevice,
    counter: u64,
    code: &str,
) -> (u16, Value) {
    rp_call(
        replica,
        key,
        "POST",
        &format!("/v1/users/{}/offline-used", device.profile.user),
        json!({"device_id": device.id(), "counter": counter, "code": code,
               "used_at": "2026-11-30T12:00:00Z"}),
    )
}

/// `pushauth_slow_hash_jobs_total` of `replica`: the Argon2id jobs it ran.
fn slow_hash_jobs(replica: &Replica) -> u64 {
    replica.counter("pushauth_slow_hash_jobs")
}

/// A code of the right length that is not `device`'s value at `counter`.
fn wrong_code(device: &TestDevice, counter: u64) -> String {
    let right = device
        .profile
        .offline
        .as_ref()
        .unwrap()
        .code(counter)
        .unwrap()
        .to_string();
    let wrong = if right.starts_with('1') { "2" } else { "1" };
    format!("{wrong}{}", &right[1..])
}

/// Attack: a hostile host guesses a device's offline value by reporting wrong codes, spreading
/// its reports over the replicas (each replica counted its own ten) and waiting for a restart
/// (which forgot the count). The eleventh wrong report is now refused unchecked wherever it
/// lands, and after the replica it was counted on restarts, until the user is unlocked.
#[test]
fn ha_wrong_offline_reports_are_counted_across_replicas_and_restarts() {
    let Some(pg) = PgCluster::start_or_skip("ha wrong offline reports") else {
        return;
    };
    let site = Site::on(&pg, "wrongreports", CONFIG);
    let mut a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");
    let id = approved_login(&a, &key, &phone);
    let (status, body) = offline_values(&a, &key, &id);
    assert_eq!(status, 200, "{body}");
    let guess = wrong_code(&phone, 1);
    for n in 0..10 {
        let on = if n % 2 == 0 { &a } else { &b };
        let (status, body) = report(on, &key, &phone, 1, &guess);
        assert_eq!(status, 403, "{body}");
        assert!(
            body.to_string().contains("not the device's"),
            "report {n}: {body}"
        );
    }
    for on in [&a, &b] {
        let (status, body) = report(on, &key, &phone, 1, &guess);
        assert_eq!(status, 403, "{body}");
        assert!(body.to_string().contains("too many"), "11th report: {body}");
    }
    a.kill9();
    let a = site.spawn("a2");
    let right = phone
        .profile
        .offline
        .as_ref()
        .unwrap()
        .code(1)
        .unwrap()
        .to_string();
    let (status, body) = report(&a, &key, &phone, 1, &right);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.to_string().contains("too many"),
        "after a restart: {body}"
    );
    // An administrator's unlock of the user lifts it, on every replica.
    let (status, body) = ha::admin(&b, "POST", "/v1/admin/users/alice/unlock", json!({}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = report(&a, &key, &phone, 1, &right);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counter"], 1);
}

/// Attack: a relying party fetches offline values for one approval on replica A, then again on
/// B: each replica hashed a batch (seconds of a core each). The second fetch is now refused on
/// B before any hashing.
#[test]
fn ha_one_approval_has_one_batch_of_offline_values_across_replicas() {
    let Some(pg) = PgCluster::start_or_skip("ha offline batch") else {
        return;
    };
    let site = Site::on(&pg, "offlinebatch", CONFIG);
    let a = site.spawn("a");
    let b = site.spawn("b");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");
    let id = approved_login(&a, &key, &phone);
    let (status, body) = offline_values(&a, &key, &id);
    assert_eq!(status, 200, "{body}");
    let before = slow_hash_jobs(&b);
    let (status, body) = offline_values(&b, &key, &id);
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("already"), "{body}");
    assert_eq!(slow_hash_jobs(&b), before, "B hashed a second batch");
}

/// Attack: an enrolled device changes its push subscription in a loop, alternating replicas
/// (each allowed its own 24 a day), each change a stored row and an audit row. The cap now
/// holds across the replicas.
#[test]
fn ha_push_subscription_change_cap_holds_across_replicas() {
    let Some(pg) = PgCluster::start_or_skip("ha push changes") else {
        return;
    };
    let site = Site::on(&pg, "pushchanges", "");
    let a = site.spawn("a");
    let b = site.spawn("b");
    let phone = site.enroll(&a, "alice");
    let phone_b = device_on(&phone, &b);
    let keys = SubKeys::new();
    let set = |device: &TestDevice, n: usize| {
        device.client.set_push_subscription(
            &format!("https://fcm.googleapis.com/fcm/send/change-{n}"),
            &keys.p256dh(),
            &keys.auth_b64(),
        )
    };
    for n in 0..24 {
        let device = if n % 2 == 0 { &phone } else { &phone_b };
        set(device, n).unwrap_or_else(|e| panic!("change {n}: {e}"));
    }
    for (n, device) in [(24, &phone), (25, &phone_b)] {
        let err = set(device, n).expect_err("a 25th change in a day");
        assert!(err.to_string().contains("rate_limited"), "{err}");
    }
}

/// Waits until `replica` exits (it must not become ready, nor exit with success); its log.
fn refused_to_start(mut replica: Replica) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let child = replica.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "{}", replica.log_text());
            return replica.log_text();
        }
        assert!(
            replica.health().0 != 200,
            "a replica with another key started: {}",
            replica.log_text()
        );
        assert!(Instant::now() < deadline, "{}", replica.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A misconfigured site: a replica with a VAPID key or offline-code key of its own served
/// quietly, and pushes for subscriptions made through another replica failed, offline values
/// hashed elsewhere could not be checked. Such a replica now refuses to start, naming the
/// key, its file and the fix; with the site's keys copied over it starts.
#[test]
fn ha_a_replica_with_another_key_refuses_to_start() {
    let Some(pg) = PgCluster::start_or_skip("ha site keys") else {
        return;
    };
    let site = Site::on(&pg, "sitekeys", "");
    let a = site.spawn("a");
    let data = site.dir.path().join("data");
    let other = site.dir.path().join("other-data");
    // Its own keys, made on its first start: the VAPID key is named first.
    let log = refused_to_start(site.launch_with_data("b1", &other));
    assert!(
        log.contains("VAPID key") && log.contains("other-data/vapid-key") && log.contains("copy"),
        "{log}"
    );
    // The site's VAPID key, its own offline-code key.
    std::fs::copy(data.join("vapid-key"), other.join("vapid-key")).unwrap();
    let log = refused_to_start(site.launch_with_data("b2", &other));
    assert!(
        log.contains("offline-code key")
            && log.contains("other-data/offline-key")
            && log.contains("copy"),
        "{log}"
    );
    // Both of the site's keys: it starts, and A still serves.
    std::fs::copy(data.join("offline-key"), other.join("offline-key")).unwrap();
    let b = site.launch_with_data("b3", &other);
    b.wait_ready(Duration::from_secs(30));
    assert_eq!(a.health().0, 200);
}

/// Session 22 (a newcomer following README "High availability"): a new replica started
/// without the site's keys, once devices held offline secrets, refused to start for the
/// missing offline-code key, but made a VAPID key of its own first, which then refused its
/// next start too; and the message said to restore a backup, not to copy the first replica's
/// keys. It now makes no key, and says to copy both.
#[test]
fn ha_a_new_replica_without_the_sites_keys_makes_none_and_says_to_copy_them() {
    let Some(pg) = PgCluster::start_or_skip("ha new replica without keys") else {
        return;
    };
    let site = Site::on(&pg, "newreplica", CONFIG);
    let a = site.spawn("a");
    let key = site.api_key(&a);
    let phone = site.enroll(&a, "alice");
    let id = approved_login(&a, &key, &phone);
    let (status, body) = offline_values(&a, &key, &id);
    assert_eq!(status, 200, "{body}");
    let data = site.dir.path().join("data");
    let new = site.dir.path().join("new-data");
    let log = refused_to_start(site.launch_with_data("b1", &new));
    assert!(
        log.contains("new-data/offline-key")
            && log.contains("first replica")
            && log.contains("vapid-key"),
        "{log}"
    );
    assert!(
        !new.join("vapid-key").exists(),
        "a VAPID key of its own was made before the start was refused"
    );
    // The site's two keys copied: it starts.
    for file in ["vapid-key", "offline-key"] {
        std::fs::copy(data.join(file), new.join(file)).unwrap();
    }
    let b = site.launch_with_data("b2", &new);
    b.wait_ready(Duration::from_secs(30));
    assert_eq!(a.health().0, 200);
    // Session 22: a log written to a file held the terminal's colour codes.
    let log = b.log_text();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file: {log}");
}
