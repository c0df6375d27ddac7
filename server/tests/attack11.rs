//! Attacks on what issue 11 added (reviewer r1): answers that carry secrets kept out of the
//! browser's HTTP cache, and `[web] app_dir` read only from where its owner put files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common_push;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use p256::elliptic_curve::sec1::ToEncodedPoint;
use pushauth_proto::auth::DeviceAuth;
use pushauth_testkit::{write_file, TestServer};
use serde_json::json;

/// Status, `Cache-Control` and body of one request (no redirects followed).
fn fetch(method: &str, url: &str, auth: Option<&str>, body: Option<&str>) -> (u16, String, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut request = agent.request(method, url);
    if let Some(auth) = auth {
        request = request.set("Authorization", auth);
    }
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = response.status();
    let cache = response.header("cache-control").unwrap_or("").to_owned();
    let mut text = String::new();
    response.into_reader().read_to_string(&mut text).unwrap();
    (status, cache, text)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The enrollment page's address holds the token, and device answers hold the login context
/// (host, remote address, sudo command): a phone's browser must not write either to its disk
/// cache, where they outlive the session. `no-cache` allows storing; only `no-store` forbids it.
#[test]
fn attack11_no_answer_that_carries_a_secret_is_stored_by_the_browser() {
    let server = TestServer::start();
    let device = server.enroll("alice", "phone");
    let key = server.api_key();
    let nonce = pushauth_proto::b64::encode([7u8; 32]);
    let created = server.rp(
        &key,
        "POST",
        "/v1/challenges",
        Some(
            json!({"user": "alice", "context": {"service": "sudo", "command": "/usr/bin/id"},
                    "rp_nonce": nonce}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text);

    let enrollment = server.enrollment("bob", None);
    let (status, cache, _) = fetch("GET", &enrollment.url, None, None);
    assert_eq!(status, 200);
    assert!(cache.contains("no-store"), "/enroll?token=…: {cache:?}");

    let path = "/v1/device/challenges?wait=0";
    let auth = DeviceAuth::sign(
        &device.signing_key(),
        device.id(),
        "GET",
        path,
        b"",
        now_secs(),
    )
    .unwrap()
    .to_string();
    let (status, cache, text) = fetch("GET", &format!("{}{path}", server.url), Some(&auth), None);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("/usr/bin/id"), "{text}");
    assert!(cache.contains("no-store"), "device challenges: {cache:?}");

    let admin = format!("Bearer {}", pushauth_testkit::ADMIN_TOKEN);
    let (status, cache, text) = fetch(
        "POST",
        &format!("{}/v1/admin/enrollments", server.url),
        Some(&admin),
        Some(r#"{"user":"carol"}"#),
    );
    assert_eq!(status, 201, "{text}");
    assert!(cache.contains("no-store"), "admin enrollments: {cache:?}");

    for path in ["/v1/push/vapid", "/healthz", "/openapi.json"] {
        let (status, cache, _) = fetch("GET", &format!("{}{path}", server.url), None, None);
        assert_eq!(status, 200, "{path}");
        assert!(cache.contains("no-store"), "{path}: {cache:?}");
    }
}

fn private_dir(path: &std::path::Path) {
    std::fs::create_dir(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory symlink inside `app_dir` must not lead pushauthd out of it: only the file's own
/// last component was opened with `O_NOFOLLOW`, so `app_dir/x -> /` served any readable file of
/// an app type (`.json`, `.txt`, `.js`, `.html`…) anywhere on the host.
#[test]
fn attack11_a_symlinked_directory_in_app_dir_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    private_dir(&dir);
    write_file(&dir, "index.html", "<p>ok</p>", 0o644);
    let outside = tmp.path().join("outside");
    private_dir(&outside);
    write_file(&outside, "secret.json", "{\"secret\":\"OUTSIDE\"}", 0o644);
    std::os::unix::fs::symlink(&outside, dir.join("x")).unwrap();
    let served = dir.clone();
    let server = TestServer::start_with(move |c| c.web.app_dir = Some(served));
    let (status, _, body) = fetch(
        "GET",
        &format!("{}/app/x/secret.json", server.url),
        None,
        None,
    );
    assert!(!body.contains("OUTSIDE"), "{status}: {body}");
    assert_ne!(status, 200);
    // The files of the directory itself still are served.
    let (status, _, body) = fetch("GET", &format!("{}/app/", server.url), None, None);
    assert_eq!((status, body.as_str()), (200, "<p>ok</p>"));
}

/// Whoever owns a file of the app can change the app that approves logins, so (as sshd's
/// StrictModes for `authorized_keys`) `app_dir`, its directories and files must belong to root
/// or to the user pushauthd runs as; a mode check alone let any other user's tree be served.
#[test]
fn attack11_app_dir_files_of_another_user_are_not_served() {
    if pushauth_testkit::euid() != 0 {
        eprintln!("skipped: needs root to give files to another user");
        return;
    }
    let nobody = 65534;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("app");
    private_dir(&dir);
    write_file(&dir, "index.html", "<p>ok</p>", 0o644);
    write_file(&dir, "app.js", "theirs()", 0o644);
    std::os::unix::fs::chown(dir.join("app.js"), Some(nobody), None).unwrap();
    let sub = dir.join("sub");
    private_dir(&sub);
    write_file(&sub, "a.js", "mine()", 0o644);
    std::os::unix::fs::chown(&sub, Some(nobody), None).unwrap();
    let served = dir.clone();
    let server = TestServer::start_with(move |c| c.web.app_dir = Some(served));
    for path in ["app.js", "sub/a.js"] {
        let (status, _, body) = fetch("GET", &format!("{}/app/{path}", server.url), None, None);
        assert_eq!(status, 500, "{path}: {body}");
        assert!(!body.contains("()"), "{path}: {body}");
    }
    let (status, _, _) = fetch("GET", &format!("{}/app/", server.url), None, None);
    assert_eq!(status, 200);
    // The directory itself: refused in the config, and on each request.
    let text = format!("[web]\napp_dir = {:?}\n", dir.display().to_string());
    let file =
        pushauth_server::config::FileConfig::parse(&text, &tmp.path().join("c.toml")).unwrap();
    assert!(file.web_config().is_ok());
    std::os::unix::fs::chown(&dir, Some(nobody), None).unwrap();
    let err = file.web_config().unwrap_err().to_string();
    assert!(err.contains("app_dir"), "{err}");
    let (status, _, _) = fetch("GET", &format!("{}/app/", server.url), None, None);
    assert_eq!(status, 500);
}

/// A signed `PUT /v1/device/push-subscription` with this endpoint; the status and body.
fn put_subscription(
    server: &TestServer,
    device: &pushauth_testkit::TestDevice,
    endpoint: &str,
) -> (u16, String) {
    let point = p256::SecretKey::from_slice(&[1u8; 32])
        .unwrap()
        .public_key()
        .to_encoded_point(false);
    let body = json!({
        "endpoint": endpoint,
        "keys": {
            "p256dh": pushauth_proto::b64::encode(point.as_bytes()),
            "auth": pushauth_proto::b64::encode([9u8; 16]),
        }
    })
    .to_string();
    let path = "/v1/device/push-subscription";
    let auth = DeviceAuth::sign(
        &device.signing_key(),
        device.id(),
        "PUT",
        path,
        body.as_bytes(),
        now_secs(),
    )
    .unwrap()
    .to_string();
    let (status, _, text) = fetch(
        "PUT",
        &format!("{}{path}", server.url),
        Some(&auth),
        Some(&body),
    );
    (status, text)
}

fn audit_count(server: &TestServer, kind: &str) -> usize {
    let r = server.admin("GET", "/v1/admin/audit?limit=1000", None).ok();
    r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

/// Every subscription change wrote an audit row, with no bound: one enrolled device (any user's)
/// re-registering in a loop grew the database until `[retention] max_db_mb` refused new
/// challenges for everyone (`storage_full`), so a device could suppress every user's logins.
/// The same subscription again writes nothing; changes are bounded per device.
#[test]
fn attack11_a_device_cannot_grow_the_database_by_re_registering_its_subscription() {
    let server = TestServer::start();
    let device = server.enroll("mallory", "phone");
    let first = "https://fcm.googleapis.com/fcm/send/one";
    assert_eq!(put_subscription(&server, &device, first).0, 200);
    let base = audit_count(&server, "push_subscription_set");
    assert_eq!(base, 1);
    // The app registering the same subscription on each start: nothing written.
    for _ in 0..20 {
        let (status, text) = put_subscription(&server, &device, first);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("\"replaced\":false"), "{text}");
    }
    assert_eq!(audit_count(&server, "push_subscription_set"), 1);
    // Changing endpoints in a loop: refused after a few, and nothing more is written.
    let mut refused = 0;
    for i in 0..200 {
        let (status, text) = put_subscription(
            &server,
            &device,
            &format!("https://fcm.googleapis.com/fcm/send/{i}"),
        );
        match status {
            200 => {}
            429 => {
                assert!(text.contains("rate_limited"), "{text}");
                refused += 1;
            }
            other => panic!("{other}: {text}"),
        }
    }
    assert!(refused >= 150, "refused {refused} of 200");
    assert!(
        audit_count(&server, "push_subscription_set") <= 1 + 50,
        "{}",
        audit_count(&server, "push_subscription_set")
    );
    // Another device is not held back by this one.
    let other = server.enroll("alice", "phone");
    assert_eq!(put_subscription(&server, &other, first).0, 200);
}

/// A push service that never answers cost a sender thread the whole timeout on every push to it,
/// and the queue is first come, first served: one device subscribed at a dead endpoint (an
/// allowed origin that blackholes, a UnifiedPush server that is down), pushed to on each failed
/// login its owner triggers, held up every other user's pushes by a timeout each. A subscription
/// whose push failed is now left alone for a while, so it costs one timeout, not one per push.
#[test]
fn attack11_a_dead_push_endpoint_does_not_hold_up_other_users_pushes() {
    use common_push::{create_challenge, Answer, PushService, SubKeys};
    let hung = PushService::start(Answer::Hang);
    let good = PushService::start(Answer::Status(201));
    let (hung_origin, good_origin) = (hung.origin(), good.origin());
    let srv = TestServer::start_with(move |c| {
        c.web_push.allow =
            pushauth_server::config::AllowList::parse(&[hung_origin, good_origin]).unwrap();
        c.web_push.senders = 1;
        c.web_push.queue = 64;
        c.web_push.timeout_ms = 1_500;
        c.limits.max_open_per_source = 1000;
        c.limits.max_open_per_user = 1000;
        c.limits.max_new_per_window = 1000;
        c.limits.max_new_per_user_window = 1000;
    });
    let mallory = srv.enroll("mallory", "phone");
    let alice = srv.enroll("alice", "phone");
    let (km, ka) = (SubKeys::new(), SubKeys::new());
    mallory
        .client
        .set_push_subscription(
            &format!("{}/dead", hung.origin()),
            &km.p256dh(),
            &km.auth_b64(),
        )
        .unwrap();
    alice
        .client
        .set_push_subscription(
            &format!("{}/alice", good.origin()),
            &ka.p256dh(),
            &ka.auth_b64(),
        )
        .unwrap();
    let key = srv.api_key();
    for _ in 0..6 {
        create_challenge(&srv, &key, "mallory", 120);
    }
    let started = Instant::now();
    let id = create_challenge(&srv, &key, "alice", 120);
    let got = good
        .next(Duration::from_secs(20))
        .expect("alice's push arrives");
    let took = started.elapsed();
    assert_eq!(got.path, "/alice");
    let payload = String::from_utf8(ka.decrypt(&got.body)).unwrap();
    assert!(payload.contains(&id), "{payload}");
    // One timeout (1.5 s) for mallory's first push, not six (9 s).
    assert!(
        took < Duration::from_millis(4_000),
        "alice's push took {took:?}"
    );
}
