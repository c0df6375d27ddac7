//! Issue 11, Web Push: the VAPID key route, a device's push subscription (set, replace,
//! validate, allow-list, remove, revoke), and the sender against push services written here on
//! loopback: what a push carries, 404/410, redirects, a hung service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common_push;

use std::time::{Duration, Instant};

use common_push::*;
use pushauth_proto::b64;
use pushauth_testkit::{assert_error, TestServer};
use serde_json::json;

#[test]
fn issue11_vapid_key_is_made_once_0600_and_served() {
    let mut srv = TestServer::start();
    let r = srv.call("GET", "/v1/push/vapid", None, None);
    assert_eq!(r.status, 200, "{}", r.text);
    let key = r.json["public_key"].as_str().unwrap().to_owned();
    let point = b64::decode(&key, "k").unwrap();
    assert_eq!(point.len(), 65);
    assert_eq!(point[0], 4);
    let path = srv.data_dir().join("vapid-key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    srv.restart();
    let again = srv.call("GET", "/v1/push/vapid", None, None);
    assert_eq!(
        again.json["public_key"],
        key.as_str(),
        "kept across restarts"
    );
}

#[test]
fn issue11_a_group_readable_vapid_key_refuses_to_start() {
    let mut srv = TestServer::start();
    let path = srv.data_dir().join("vapid-key");
    srv.stop();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = pushauth_server::RunningServer::start(srv.config.clone()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("vapid-key") && text.contains("chmod"),
        "{text}"
    );
}

#[test]
fn issue11_subscription_is_set_replaced_removed_and_audited_without_secrets() {
    let srv = TestServer::start();
    let dev = srv.enroll("alice", "phone");
    let a = SubKeys::new();
    let endpoint = "https://fcm.googleapis.com/fcm/send/SECRET-TOKEN-PATH";
    let set = dev
        .client
        .set_push_subscription(endpoint, &a.p256dh(), &a.auth_b64())
        .unwrap();
    assert_eq!(set.origin, "https://fcm.googleapis.com");
    assert!(!set.replaced);
    let b = SubKeys::new();
    let set = dev
        .client
        .set_push_subscription(
            "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
            &b.p256dh(),
            &b.auth_b64(),
        )
        .unwrap();
    assert!(
        set.replaced,
        "one subscription per device: the new one replaces the old"
    );
    assert_eq!(subscriptions(&srv, &[dev.id()]).len(), 1);
    assert!(dev.client.remove_push_subscription().unwrap());
    assert!(!dev.client.remove_push_subscription().unwrap());
    assert!(subscriptions(&srv, &[dev.id()]).is_empty());
    let audit = srv.admin("GET", "/v1/admin/audit?user=alice", None);
    let text = audit.text.clone();
    assert_eq!(text.matches("push_subscription_set").count(), 2, "{text}");
    assert_eq!(
        text.matches("push_subscription_removed").count(),
        1,
        "{text}"
    );
    assert!(text.contains("https://fcm.googleapis.com"), "{text}");
    for secret in ["SECRET-TOKEN-PATH", "gAAAA", &a.auth_b64(), &b.auth_b64()] {
        assert!(!text.contains(secret), "{secret} in the audit log: {text}");
    }
}

#[test]
fn issue11_bad_subscriptions_are_refused_and_change_nothing() {
    let srv = TestServer::start();
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    let good = "https://fcm.googleapis.com/fcm/send/x";
    let compressed = b64::encode(k.public_compressed());
    let not_on_curve = {
        let mut p = b64::decode(&k.p256dh(), "p").unwrap();
        p[64] ^= 1;
        b64::encode(p)
    };
    let long = format!("{good}{}", "a".repeat(2100));
    let cases: Vec<(String, String, String, &str)> = vec![
        (good.into(), compressed, k.auth_b64(), "malformed_request"),
        (good.into(), not_on_curve, k.auth_b64(), "malformed_request"),
        (
            good.into(),
            k.p256dh(),
            b64::encode([0u8; 15]),
            "malformed_request",
        ),
        (
            good.into(),
            k.p256dh(),
            "not base64!".into(),
            "malformed_request",
        ),
        (long, k.p256dh(), k.auth_b64(), "malformed_request"),
        (
            "http://fcm.googleapis.com/x".into(),
            k.p256dh(),
            k.auth_b64(),
            "push_origin_not_allowed",
        ),
        (
            "https://127.0.0.1/x".into(),
            k.p256dh(),
            k.auth_b64(),
            "push_origin_not_allowed",
        ),
        (
            "http://169.254.169.254/latest".into(),
            k.p256dh(),
            k.auth_b64(),
            "push_origin_not_allowed",
        ),
        (
            "https://fcm.googleapis.com.evil.example/x".into(),
            k.p256dh(),
            k.auth_b64(),
            "push_origin_not_allowed",
        ),
        (
            "https://a.b.notify.windows.com/x".into(),
            k.p256dh(),
            k.auth_b64(),
            "push_origin_not_allowed",
        ),
    ];
    for (endpoint, p256dh, auth, code) in cases {
        let err = dev
            .client
            .set_push_subscription(&endpoint, &p256dh, &auth)
            .unwrap_err();
        assert_eq!(
            err.code().map(|c| c.as_str()),
            Some(code),
            "{endpoint}: {err}"
        );
        if code == "push_origin_not_allowed" {
            let origin = url::Url::parse(&endpoint)
                .unwrap()
                .origin()
                .ascii_serialization();
            assert!(err.to_string().contains(&origin), "{err}");
        }
    }
    assert!(subscriptions(&srv, &[dev.id()]).is_empty());
    // Unsigned, or signed with an unknown device: nothing is read from the body.
    let body = json!({"endpoint": good, "keys": {"p256dh": k.p256dh(), "auth": k.auth_b64()}});
    let r = srv.call(
        "PUT",
        "/v1/device/push-subscription",
        None,
        Some(body.to_string().as_bytes()),
    );
    assert_error(&r, 401, "unauthorized");
    let audit = srv.admin("GET", "/v1/admin/audit?user=alice", None);
    assert!(!audit.text.contains("push_subscription"), "{}", audit.text);
}

#[test]
fn issue11_a_revoked_devices_subscription_is_gone() {
    let srv = TestServer::start();
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    dev.client
        .set_push_subscription(
            "https://web.push.apple.com/QGhZ",
            &k.p256dh(),
            &k.auth_b64(),
        )
        .unwrap();
    assert_eq!(subscriptions(&srv, &[dev.id()]).len(), 1);
    let r = srv.admin("DELETE", &format!("/v1/admin/devices/{}", dev.id()), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(subscriptions(&srv, &[dev.id()]).is_empty());
    let err = dev
        .client
        .set_push_subscription(
            "https://web.push.apple.com/QGhZ",
            &k.p256dh(),
            &k.auth_b64(),
        )
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.as_str()), Some("device_revoked"));
}

#[test]
fn issue11_a_push_carries_only_the_challenge_id_encrypted_with_vapid_ttl_urgency_topic() {
    let service = PushService::start(Answer::Status(201));
    let srv = TestServer::start_with(|c| allow(c, &service.origin()));
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    let endpoint = format!("{}/push/abc", service.origin());
    dev.client
        .set_push_subscription(&endpoint, &k.p256dh(), &k.auth_b64())
        .unwrap();
    let key = srv.api_key();
    let started = Instant::now();
    let id = create_challenge(&srv, &key, "alice", 60);
    let push = service
        .next(Duration::from_secs(10))
        .expect("a push arrives");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(push.path, "/push/abc");
    assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(push.header("urgency"), Some("high"));
    let ttl: u64 = push.header("ttl").unwrap().parse().unwrap();
    // The challenge expires on a whole second, so up to one more.
    assert!((55..=61).contains(&ttl), "TTL {ttl}");
    let topic = push.header("topic").unwrap();
    assert!(topic.len() <= 32 && !topic.contains("alice"), "{topic}");
    let vapid_key = srv.call("GET", "/v1/push/vapid", None, None).json["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = check_vapid(push.header("authorization").unwrap(), &vapid_key);
    assert_eq!(claims["aud"], service.origin().as_str());
    let exp = claims["exp"].as_i64().unwrap();
    let now = unix_now();
    assert!(exp > now && exp <= now + 24 * 3600, "exp {exp}, now {now}");
    assert!(claims["sub"].as_str().unwrap().starts_with("mailto:"));
    let plain = k.decrypt(&push.body);
    let payload: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(payload, json!({"challenge_id": id}));
    // A second challenge for the same user carries the same topic (a newer push replaces).
    create_challenge(&srv, &key, "alice", 60);
    let second = service
        .next(Duration::from_secs(10))
        .expect("a second push");
    assert_eq!(second.header("topic"), Some(topic));
    assert_eq!(wait_metric(&srv, "sent", 2), 2);
}

#[test]
fn issue11_410_and_404_delete_the_subscription_and_are_counted() {
    for status in [410u16, 404] {
        let service = PushService::start(Answer::Status(status));
        let srv = TestServer::start_with(|c| allow(c, &service.origin()));
        let dev = srv.enroll("alice", "phone");
        let k = SubKeys::new();
        let endpoint = format!("{}/gone", service.origin());
        dev.client
            .set_push_subscription(&endpoint, &k.p256dh(), &k.auth_b64())
            .unwrap();
        let key = srv.api_key();
        create_challenge(&srv, &key, "alice", 60);
        service
            .next(Duration::from_secs(10))
            .expect("a push arrives");
        assert_eq!(wait_metric(&srv, "gone", 1), 1, "{status}");
        let started = Instant::now();
        while !subscriptions(&srv, &[dev.id()]).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{status}: not deleted"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let audit = srv.admin("GET", "/v1/admin/audit?user=alice", None).text;
        assert!(audit.contains("push_subscription_removed"), "{audit}");
        assert!(audit.contains(&format!("answered {status}")), "{audit}");
        assert!(
            !audit.contains("/gone"),
            "the endpoint's path is not logged: {audit}"
        );
        // No subscription, no more pushes.
        create_challenge(&srv, &key, "alice", 60);
        assert!(service.next(Duration::from_millis(500)).is_none());
    }
}

#[test]
fn issue11_a_failed_push_keeps_the_subscription() {
    let service = PushService::start(Answer::Status(500));
    let srv = TestServer::start_with(|c| allow(c, &service.origin()));
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    dev.client
        .set_push_subscription(
            &format!("{}/x", service.origin()),
            &k.p256dh(),
            &k.auth_b64(),
        )
        .unwrap();
    create_challenge(&srv, &srv.api_key(), "alice", 60);
    service
        .next(Duration::from_secs(10))
        .expect("a push arrives");
    assert_eq!(wait_metric(&srv, "failed", 1), 1);
    assert_eq!(metric(&srv, "gone"), 0);
    assert_eq!(subscriptions(&srv, &[dev.id()]).len(), 1);
}

#[test]
fn issue11_a_redirect_from_an_allowed_origin_is_not_followed() {
    // 301-303 would turn the POST into a GET elsewhere, 307/308 repeat it elsewhere.
    for status in [301u16, 302, 303, 307, 308] {
        let elsewhere = PushService::start(Answer::Status(201));
        let to = format!("{}/stolen", elsewhere.origin());
        let service = PushService::start(Answer::Redirect(status, to));
        // Only the redirecting service is allowed; the target stands for an internal address.
        let srv = TestServer::start_with(|c| allow(c, &service.origin()));
        let dev = srv.enroll("alice", "phone");
        let k = SubKeys::new();
        dev.client
            .set_push_subscription(
                &format!("{}/x", service.origin()),
                &k.p256dh(),
                &k.auth_b64(),
            )
            .unwrap();
        create_challenge(&srv, &srv.api_key(), "alice", 60);
        service
            .next(Duration::from_secs(10))
            .expect("a push arrives");
        assert_eq!(wait_metric(&srv, "failed", 1), 1, "{status}");
        assert!(
            elsewhere.next(Duration::from_millis(300)).is_none(),
            "pushauthd followed a {status} redirect"
        );
        assert_eq!(metric(&srv, "sent"), 0);
    }
}

#[test]
fn issue11_an_origin_dropped_from_the_config_gets_no_more_pushes() {
    let service = PushService::start(Answer::Status(201));
    let mut srv = TestServer::start_with(|c| allow(c, &service.origin()));
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    dev.client
        .set_push_subscription(
            &format!("{}/x", service.origin()),
            &k.p256dh(),
            &k.auth_b64(),
        )
        .unwrap();
    // The administrator narrows the allow-list and restarts.
    srv.config.web_push.allow = pushauth_server::config::AllowList::defaults();
    srv.restart();
    create_challenge(&srv, &srv.api_key(), "alice", 60);
    assert_eq!(wait_metric(&srv, "failed", 1), 1);
    assert!(
        service.next(Duration::from_millis(500)).is_none(),
        "pushed to an origin no longer allowed"
    );
}

#[test]
fn issue11_pushes_go_to_each_target_device_and_never_to_a_revoked_one() {
    let service = PushService::start(Answer::Status(201));
    let srv = TestServer::start_with(|c| allow(c, &service.origin()));
    let phone = srv.enroll("alice", "phone");
    let laptop = srv.enroll("alice", "laptop");
    let (kp, kl) = (SubKeys::new(), SubKeys::new());
    phone
        .client
        .set_push_subscription(
            &format!("{}/phone", service.origin()),
            &kp.p256dh(),
            &kp.auth_b64(),
        )
        .unwrap();
    laptop
        .client
        .set_push_subscription(
            &format!("{}/laptop", service.origin()),
            &kl.p256dh(),
            &kl.auth_b64(),
        )
        .unwrap();
    let key = srv.api_key();
    create_challenge(&srv, &key, "alice", 60);
    let mut paths: Vec<String> = (0..2)
        .map(|_| service.next(Duration::from_secs(10)).expect("a push").path)
        .collect();
    paths.sort();
    assert_eq!(paths, ["/laptop", "/phone"]);
    // A challenge the relying party sends to one device pushes to that device only.
    let body = json!({
        "user": "alice",
        "devices": [laptop.id()],
        "rp_nonce": b64::encode([9u8; 32]),
        "context": {"service": "sshd"},
    });
    let r = srv.rp(&key, "POST", "/v1/challenges", Some(body));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        service.next(Duration::from_secs(10)).expect("a push").path,
        "/laptop"
    );
    assert!(service.next(Duration::from_millis(300)).is_none());
    let r = srv.admin(
        "DELETE",
        &format!("/v1/admin/devices/{}", laptop.id()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    create_challenge(&srv, &key, "alice", 60);
    assert_eq!(
        service.next(Duration::from_secs(10)).expect("a push").path,
        "/phone"
    );
    assert!(service.next(Duration::from_millis(500)).is_none());
}

#[test]
fn issue11_web_push_turned_off_sends_nothing() {
    let service = PushService::start(Answer::Status(201));
    let srv = TestServer::start_with(|c| {
        allow(c, &service.origin());
        c.web_push.enabled = false;
    });
    let dev = srv.enroll("alice", "phone");
    let k = SubKeys::new();
    dev.client
        .set_push_subscription(
            &format!("{}/x", service.origin()),
            &k.p256dh(),
            &k.auth_b64(),
        )
        .unwrap();
    let id = create_challenge(&srv, &srv.api_key(), "alice", 60);
    // The device still finds it by its long-poll: a push only ever wakes it sooner.
    assert_eq!(dev.find(&id).id, id);
    assert!(service.next(Duration::from_millis(500)).is_none());
    assert_eq!(metric(&srv, "sent") + metric(&srv, "failed"), 0);
}
