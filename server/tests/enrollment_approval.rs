//! Enrollment through a relying party with approval by an existing device (issue 9 item 1),
//! over HTTP against a real server.
//!
//! The scenario it replays: the account `alice` has a phone enrolled by the admin for SSH.
//! Whoever holds only alice's password logs in through the IdP and asks for an enrollment link
//! for `alice`, to bind their own phone and from then on approve every push.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use pushauth_proto::Decision;
use serde_json::{json, Value};

/// An `add_device` challenge for `user` from the relying party with `key`.
fn add_device(srv: &Srv, key: &str, user: &str, extra: Value) -> (Resp, Option<Challenge>) {
    let mut body = json!({"context": {"action": "add_device", "device_name": "new phone"}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    create_with_context(srv, key, user, body)
}

/// Like `Srv::create`, but with exactly the given context (the digest must match it).
fn create_with_context(
    srv: &Srv,
    key: &str,
    user: &str,
    extra: Value,
) -> (Resp, Option<Challenge>) {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let mut body = json!({"user": user, "rp_nonce": pushauth_proto::b64::encode(nonce)});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let context: pushauth_proto::Context =
        serde_json::from_value(body["context"].clone()).unwrap_or_default();
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    let c = (r.status == 201).then(|| Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: user.to_owned(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: pushauth_proto::context_digest(&context),
    });
    (r, c)
}

fn enroll_req(srv: &Srv, key: &str, user: &str, approval: Option<&str>) -> Resp {
    let mut body = json!({"user": user});
    if let Some(a) = approval {
        body["approval"] = json!(a);
    }
    srv.rp(key, "POST", "/v1/enrollments", Some(body))
}

fn approved_add_device(srv: &Srv, key: &str, phone: &Device) -> Challenge {
    let (r, c) = add_device(srv, key, &phone.user, json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let c = c.unwrap();
    assert!(c.code.is_some(), "number matching is forced on");
    let r = phone.approve(srv, &c);
    assert_eq!(r.status, 200, "{}", r.text);
    c
}

/// Item 1, scenario: the password holder asks for a link for `alice`, who has a phone. Without
/// an approval from that phone it is refused (`approval_required`); an approval that is a
/// plain login push is refused too (`approval_invalid`).
#[test]
fn issue9_item1_user_with_a_device_needs_an_add_device_approval() {
    let srv = start();
    let phone = srv.device("alice");
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true, "bootstrap": true}));
    let r = enroll_req(&srv, &key, "alice", None);
    assert_error(&r, 403, "approval_required");
    // A login push that the owner approved to log in is not consent to add a device.
    let login = srv.challenge(&key, "alice");
    phone.approve(&srv, &login);
    let r = enroll_req(&srv, &key, "alice", Some(&login.id));
    assert_error(&r, 403, "approval_invalid");
    let r = enroll_req(&srv, &key, "alice", Some("no-such-challenge"));
    assert_error(&r, 403, "approval_invalid");
    // Each refusal is audited with its code and the relying party.
    let refused: Vec<String> = srv
        .audit()
        .iter()
        .filter(|e| e["kind"] == "enrollment_refused" && e["user"] == "alice")
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|d| d.starts_with("approval_required (rp ")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|d| d.starts_with("approval_invalid (rp ")),
        "{refused:?}"
    );
    // Nothing was issued.
    assert!(!srv
        .audit()
        .iter()
        .any(|e| e["kind"] == "enrollment_created"
            && e["detail"].as_str().unwrap().contains("via rp:")));
}

/// Item 1: an add_device challenge approved on the existing phone (with the number shown to
/// the person) gets one link; the same approval a second time is `approval_used`. The new device
/// is recorded with its source address, via and approving device, announced to the old phone
/// (`GET /v1/device/notices`) and audited as `device_enrolled`.
#[test]
fn issue9_item1_approved_add_device_enrolls_once_and_is_recorded_and_announced() {
    let srv = start();
    let phone = srv.device("alice");
    let (rp_id, key) = srv.rp_with(json!({"name": "idp", "enroll": true}));
    let approval = approved_add_device(&srv, &key, &phone);
    let r = enroll_req(&srv, &key, "alice", Some(&approval.id));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json["url"].as_str().unwrap().contains("/enroll?token="));
    assert!(r.json["expires_at"].is_string());
    let token = r.json["token"].as_str().unwrap().to_owned();
    let r = enroll_req(&srv, &key, "alice", Some(&approval.id));
    assert_error(&r, 409, "approval_used");
    let laptop = srv.redeem(&token, "alice", "laptop");
    // The record of the binding.
    let r = srv.admin("GET", "/v1/admin/users/alice/devices?all=true", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let devices = r.json["devices"].as_array().unwrap();
    let new = devices
        .iter()
        .find(|d| d["id"] == laptop.id.as_str())
        .unwrap();
    assert!(
        new["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{new}"
    );
    assert_eq!(new["via"], format!("rp:{rp_id}"));
    assert_eq!(new["approved_by"], phone.id.as_str());
    let old = devices
        .iter()
        .find(|d| d["id"] == phone.id.as_str())
        .unwrap();
    assert_eq!(old["via"], "admin");
    assert!(old["approved_by"].is_null());
    // The old phone is told.
    let r = phone.send(&srv, "GET", "/v1/device/notices", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    let notices = r.json["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{}", r.text);
    assert_eq!(notices[0]["kind"], "device_added");
    assert_eq!(notices[0]["device_id"], laptop.id.as_str());
    assert_eq!(notices[0]["device_name"], "laptop");
    assert!(notices[0]["source"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(notices[0]["via"], format!("rp:{rp_id}"));
    // The new device sees the old one, never itself.
    let r = laptop.send(&srv, "GET", "/v1/device/notices", b"");
    let notices = r.json["notices"].as_array().unwrap();
    assert!(
        notices.iter().all(|n| n["device_id"] != laptop.id.as_str()),
        "{}",
        r.text
    );
    // Unsigned or badly signed requests get nothing.
    let r = srv.call("GET", "/v1/device/notices", None, None);
    assert_error(&r, 401, "unauthorized");
    // Audited with source, via and approver.
    let ev = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "device_enrolled" && e["device_id"] == laptop.id.as_str())
        .unwrap();
    let detail = ev["detail"].as_str().unwrap();
    assert!(detail.contains("source 127.0.0.1:"), "{detail}");
    assert!(detail.contains(&format!("via rp:{rp_id}")), "{detail}");
    assert!(
        detail.contains(&format!("approved_by {}", phone.id)),
        "{detail}"
    );
    // A revoked device stays on record (all=true) but leaves the default list.
    srv.admin("DELETE", &format!("/v1/admin/devices/{}", laptop.id), None);
    let r = srv.admin("GET", "/v1/admin/users/alice/devices", None);
    assert_eq!(r.json["devices"].as_array().unwrap().len(), 1);
    let r = srv.admin("GET", "/v1/admin/users/alice/devices?all=true", None);
    let all = r.json["devices"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .any(|d| d["id"] == laptop.id.as_str() && d["revoked_at"].is_string()));
}

/// Item 1: only an approved add_device challenge of THIS relying party for THIS user counts:
/// denied, reported, pending, another relying party's and another user's are refused.
#[test]
fn issue9_item1_denied_pending_foreign_approvals_are_refused() {
    let srv = start();
    let phone = srv.device("alice");
    let bob_phone = srv.device("bob");
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true}));
    let (_, other_key) = srv.rp_with(json!({"name": "other", "enroll": true}));
    // denied
    let (_, c) = add_device(&srv, &key, "alice", json!({}));
    let c = c.unwrap();
    phone.answer(&srv, &c, Decision::Deny, c.code.as_deref().unwrap());
    assert_error(
        &enroll_req(&srv, &key, "alice", Some(&c.id)),
        403,
        "approval_invalid",
    );
    // wrong code typed: denied as code_mismatch
    let (_, c) = add_device(&srv, &key, "alice", json!({}));
    let c = c.unwrap();
    let right = c.code.clone().unwrap();
    let wrong: String = right
        .chars()
        .map(|d| if d == '0' { '1' } else { '0' })
        .collect();
    let r = phone.answer(&srv, &c, Decision::Approve, &wrong);
    assert_eq!(r.json["reason"], "code_mismatch", "{}", r.text);
    assert_error(
        &enroll_req(&srv, &key, "alice", Some(&c.id)),
        403,
        "approval_invalid",
    );
    // pending
    let (_, pending) = add_device(&srv, &key, "alice", json!({}));
    let pending = pending.unwrap();
    assert_error(
        &enroll_req(&srv, &key, "alice", Some(&pending.id)),
        403,
        "approval_invalid",
    );
    // another relying party's approval
    let theirs = approved_add_device(&srv, &other_key, &phone);
    assert_error(
        &enroll_req(&srv, &key, "alice", Some(&theirs.id)),
        403,
        "approval_invalid",
    );
    // another user's approval
    let bobs = approved_add_device(&srv, &key, &bob_phone);
    assert_error(
        &enroll_req(&srv, &key, "alice", Some(&bobs.id)),
        403,
        "approval_invalid",
    );
    // ...each of which would have worked for its own owner
    assert_eq!(enroll_req(&srv, &key, "bob", Some(&bobs.id)).status, 201);
    assert_eq!(
        enroll_req(&srv, &other_key, "alice", Some(&theirs.id)).status,
        201
    );
}

/// Item 1: an add_device challenge always uses number matching.
#[test]
fn issue9_item1_add_device_challenges_force_number_matching() {
    let srv = start();
    srv.device("alice");
    let key = srv.rp_key();
    let (r, _) = add_device(&srv, &key, "alice", json!({"code": false}));
    assert_error(&r, 400, "malformed_request");
    let (r, _) = add_device(&srv, &key, "alice", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json["code"].is_string());
}

/// Item 1, scenario (the second realm): a user with no device at all. A relying party without
/// the bootstrap right cannot enroll one (`bootstrap_not_allowed`); one with it can, and the
/// admin's own path stays open to everyone.
#[test]
fn issue9_item1_first_device_needs_the_bootstrap_right() {
    let srv = start();
    let (_, key) = srv.rp_with(json!({"name": "realm2", "enroll": true}));
    assert_error(
        &enroll_req(&srv, &key, "mallory", None),
        403,
        "bootstrap_not_allowed",
    );
    // A user whose only device was revoked counts as having none.
    let gone = srv.device("carol");
    srv.admin("DELETE", &format!("/v1/admin/devices/{}", gone.id), None);
    assert_error(
        &enroll_req(&srv, &key, "carol", None),
        403,
        "bootstrap_not_allowed",
    );
    let (rp_id, boot) = srv.rp_with(json!({"name": "realm1", "enroll": true, "bootstrap": true}));
    let r = enroll_req(&srv, &boot, "mallory", None);
    assert_eq!(r.status, 201, "{}", r.text);
    let d = srv.redeem(r.json["token"].as_str().unwrap(), "mallory", "phone");
    let r = srv.admin("GET", "/v1/admin/users/mallory/devices", None);
    let listed = &r.json["devices"][0];
    assert_eq!(listed["id"], d.id.as_str());
    assert_eq!(listed["via"], format!("rp:{rp_id}"));
    assert!(listed["approved_by"].is_null());
    // Now mallory has a device: even the bootstrap relying party needs an approval.
    assert_error(
        &enroll_req(&srv, &boot, "mallory", None),
        403,
        "approval_required",
    );
    // A user whose devices were all revoked is not a first enrollment: the bootstrap relying
    // party cannot tell the owner who lost a phone from whoever removed it, so only the
    // administrator re-enrolls (the attack: remove the owner's phone, then bootstrap your own).
    let r = enroll_req(&srv, &boot, "carol", None);
    assert_error(&r, 403, "bootstrap_not_allowed");
    assert!(r.text.contains("only the administrator"), "{}", r.text);
    // The admin path stays open.
    srv.enrollment("mallory", None);
    srv.enrollment("carol", None);
}

/// Item 1: a new binding wakes the user's other devices through the webhook (when one is
/// configured), so the phone fetches its notices without waiting for a login.
#[test]
fn issue9_item1_a_new_device_wakes_the_other_devices_through_the_webhook() {
    use std::io::{BufRead, BufReader, Read, Write};
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let srv = start_with(|c| {
        c.webhook = Some(pushauth_server::WebhookConfig {
            url: hook_url,
            secret: zeroize::Zeroizing::new("hook-secret".into()),
            timeout_ms: 2000,
            include_user: false,
        })
    });
    let phone = srv.device("alice");
    // The first device's own enrollment wakes nobody; the second one wakes the first.
    let token = srv.enrollment("alice", None);
    let laptop = srv.redeem(&token, "alice", "laptop");
    // Wait at most 10 s for the notification (no notification must fail, not hang).
    hook.set_nonblocking(true).unwrap();
    let started = std::time::Instant::now();
    let mut stream = loop {
        match hook.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "no webhook call for the new device"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let note: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(note["device_id"], phone.id.as_str(), "{note}");
    assert_ne!(note["device_id"], laptop.id.as_str());
    assert!(
        note.get("user").is_none(),
        "no user name by default: {note}"
    );
}

/// Item 1: an approval from a device that has since been revoked (a stolen phone the owner
/// just revoked) does not count.
#[test]
fn issue9_item1_an_approval_from_a_revoked_device_is_refused() {
    let srv = start();
    let stolen = srv.device("alice");
    srv.device("alice");
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true}));
    let approval = approved_add_device(&srv, &key, &stolen);
    srv.admin("DELETE", &format!("/v1/admin/devices/{}", stolen.id), None);
    assert_error(
        &enroll_req(&srv, &key, "alice", Some(&approval.id)),
        403,
        "approval_invalid",
    );
}
