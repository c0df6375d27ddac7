//! Attacks on what issue 11 added (reviewer r1): answers that carry secrets kept out of the
//! browser's HTTP cache.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::io::Read;

use pushauth_proto::auth::DeviceAuth;
use pushauth_testkit::TestServer;
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
