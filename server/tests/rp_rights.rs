//! Relying-party rights and lifecycle over HTTP (issue 9 items 2 and 4): scoped pushes and
//! listings, the enroll right, revocation and rotation through the admin API, all audited.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use serde_json::json;

/// Item 2, scenario: a relying party meant for Keycloak users (`kc/*`) is stolen and used to
/// push to, and list the devices of, `root`. Both are refused; its own users still work.
#[test]
fn issue9_item2_scoped_rp_cannot_push_to_or_list_users_outside_its_scope() {
    let srv = start();
    srv.device("root");
    srv.device("kc/alice");
    let (_, key) = srv.rp_with(json!({"name": "sidecar", "users": ["kc/*"]}));
    let (r, _) = srv.create(&key, "root", json!({}));
    assert_error(&r, 403, "forbidden");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("may not push to user \"root\""),
        "{}",
        r.text
    );
    let r = srv.rp(&key, "GET", "/v1/users/root/devices", None);
    assert_error(&r, 403, "forbidden");
    // An unknown user outside the scope is refused the same way (no user probing).
    let r = srv.rp(&key, "GET", "/v1/users/nobody/devices", None);
    assert_error(&r, 403, "forbidden");
    // Nothing was pushed to root.
    assert!(!srv
        .audit()
        .iter()
        .any(|e| e["kind"] == "challenge_created" && e["user"] == "root"));
    // Its own users work.
    let (r, _) = srv.create(&key, "kc/alice", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = srv.rp(&key, "GET", "/v1/users/kc%2Falice/devices", None);
    assert_eq!(r.status, 200, "{}", r.text);
    // An exact-name scope is exact.
    let (_, exact) = srv.rp_with(json!({"name": "one", "users": ["kc/alice"]}));
    let (r, _) = srv.create(&exact, "kc/alice2", json!({}));
    assert_error(&r, 403, "forbidden");
    // The admin token as relying party keeps every right.
    let (r, _) = srv.create(ADMIN, "root", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Item 2, scenario: a relying party without the enroll right (what `rp add NAME` makes) asks
/// for an enrollment link and revokes the user's phone. Both are refused; the phone stays.
#[test]
fn issue9_item2_rp_without_enroll_cannot_enroll_or_revoke() {
    let srv = start();
    let phone = srv.device("alice");
    let key = srv.rp_key();
    let r = srv.rp(
        &key,
        "POST",
        "/v1/enrollments",
        Some(json!({"user": "alice"})),
    );
    assert_error(&r, 403, "forbidden");
    let r = srv.rp(
        &key,
        "POST",
        "/v1/enrollments",
        Some(json!({"user": "newbie"})),
    );
    assert_error(&r, 403, "forbidden");
    let path = format!("/v1/users/alice/devices/{}", phone.id);
    let r = srv.rp(&key, "DELETE", &path, None);
    assert_error(&r, 403, "forbidden");
    let r = srv.admin("GET", "/v1/admin/users/alice/devices", None);
    assert_eq!(r.json["devices"].as_array().unwrap().len(), 1, "{}", r.text);
    // With enroll but the user out of scope: refused too.
    let (_, scoped) = srv.rp_with(json!({"name": "kc", "users": ["kc/*"], "enroll": true}));
    let r = srv.rp(&scoped, "DELETE", &path, None);
    assert_error(&r, 403, "forbidden");
    let r = srv.rp(
        &scoped,
        "POST",
        "/v1/enrollments",
        Some(json!({"user": "alice"})),
    );
    assert_error(&r, 403, "forbidden");
    // Bad rights are refused when the relying party is made.
    for body in [
        json!({"name": "x", "users": []}),
        json!({"name": "x", "users": ["a*b"]}),
        json!({"name": "x", "bootstrap": true}),
        json!({"name": "x", "enrol": true}),
    ] {
        let r = srv.admin("POST", "/v1/admin/relying-parties", Some(body));
        assert_error(&r, 400, "malformed_request");
    }
}

/// Item 2: a relying party with enroll revokes a device of a user in scope; the answer is the
/// revoked device, the audit names the relying party, and another user's device is not found.
#[test]
fn issue9_item2_rp_with_enroll_revokes_a_device_of_its_user() {
    let srv = start();
    let phone = srv.device("kc/alice");
    let other = srv.device("kc/bob");
    let (rp_id, key) = srv.rp_with(json!({"name": "kc", "users": ["kc/*"], "enroll": true}));
    let r = srv.rp(
        &key,
        "DELETE",
        &format!("/v1/users/kc%2Falice/devices/{}", other.id),
        None,
    );
    assert_error(&r, 404, "not_found");
    let r = srv.rp(
        &key,
        "DELETE",
        &format!("/v1/users/kc%2Falice/devices/{}", phone.id),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], phone.id.as_str());
    let (r, _) = srv.create(&key, "kc/alice", json!({}));
    assert_error(&r, 404, "no_device");
    let revoked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "revoked")
        .expect("revoked audited");
    assert_eq!(revoked["device_id"], phone.id.as_str());
    assert!(
        revoked["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("rp:{rp_id}")),
        "{revoked}"
    );
    // kc/bob's device is untouched.
    let (r, _) = srv.create(&key, "kc/bob", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Session 16, attack (review): a long-poll begun with a key that is revoked, or rotated out,
/// while it waits gets no answer from then on. The wait checked the key only when it began: the
/// user's approval (the device's signature and the typed code) reached the revoked key for as
/// long as the wait lasted (up to 30 s). The same for a wait on several challenges.
#[test]
fn session16_a_wait_under_way_when_its_key_is_revoked_or_rotated_gets_no_answer() {
    let srv = start();
    let dev = srv.device("alice");
    for (change, path) in [
        ("DELETE", "/v1/challenges/{id}?wait=30"),
        ("POST", "/v1/challenges/{id}?wait=30"),
        ("DELETE", "/v1/challenges?ids={id}&wait=30"),
        ("POST", "/v1/challenges?ids={id}&wait=30"),
    ] {
        let (rp_id, key) = srv.rp_with(json!({"name": "leaked"}));
        let (r, c) = srv.create(&key, "alice", json!({}));
        assert_eq!(r.status, 201, "{}", r.text);
        let c = c.unwrap();
        let url = format!("{}{}", srv.url, path.replace("{id}", &c.id));
        let auth = format!("Bearer {key}");
        let waiter = std::thread::spawn(move || call("GET", &url, Some(&auth), None));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let admin_path = match change {
            "DELETE" => format!("/v1/admin/relying-parties/{rp_id}"),
            _ => format!("/v1/admin/relying-parties/{rp_id}/rotate"),
        };
        let r = srv.admin(change, &admin_path, None);
        assert_eq!(r.status, 200, "{}", r.text);
        let r = dev.approve(&srv, &c);
        assert_eq!(r.json["state"], "approved", "{}", r.text);
        let r = waiter.join().unwrap();
        assert_error(&r, 401, "unauthorized");
        assert!(!r.text.contains("approved"), "{path}: {}", r.text);
    }
}

/// Item 4, scenario: a leaked relying-party key. The admin revokes it over HTTP: the very next
/// request with it is refused; rotation gives a new key and refuses the old one at once; the
/// list shows the rights and the revocation; every step is audited.
#[test]
fn issue9_item4_admin_api_revokes_and_rotates_keys_at_once() {
    let srv = start();
    srv.device("alice");
    let (id, key) = srv.rp_with(json!({"name": "web", "users": ["alice"], "enroll": true}));
    let r = srv.rp(&key, "GET", "/v1/users/alice/devices", None);
    assert_eq!(r.status, 200, "{}", r.text);
    // rotate
    let r = srv.admin(
        "POST",
        &format!("/v1/admin/relying-parties/{id}/rotate"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    let new_key = r.json["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    let r = srv.rp(&key, "GET", "/v1/users/alice/devices", None);
    assert_error(&r, 401, "unauthorized");
    let r = srv.rp(&new_key, "GET", "/v1/users/alice/devices", None);
    assert_eq!(r.status, 200, "{}", r.text);
    // list
    let r = srv.admin("GET", "/v1/admin/relying-parties", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = r.json["relying_parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["users"], json!(["alice"]));
    assert_eq!(listed["enroll"], true);
    assert_eq!(listed["bootstrap"], false);
    assert!(listed["revoked_at"].is_null());
    assert!(
        !r.text.contains(new_key.split('.').nth(1).unwrap()),
        "no secrets listed"
    );
    // revoke
    let r = srv.admin("DELETE", &format!("/v1/admin/relying-parties/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["revoked_at"].is_string(), "{}", r.text);
    let r = srv.rp(&new_key, "GET", "/v1/users/alice/devices", None);
    assert_error(&r, 401, "unauthorized");
    let (r, _) = srv.create(&new_key, "alice", json!({}));
    assert_error(&r, 401, "unauthorized");
    // a revoked relying party cannot be brought back by rotation
    let r = srv.admin(
        "POST",
        &format!("/v1/admin/relying-parties/{id}/rotate"),
        None,
    );
    assert_error(&r, 409, "wrong_state");
    let r = srv.admin("DELETE", "/v1/admin/relying-parties/nope", None);
    assert_error(&r, 404, "not_found");
    let kinds = srv.audit_kinds();
    for kind in ["rp_created", "rp_rotated", "rp_revoked"] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            1,
            "{kind} in {kinds:?}"
        );
    }
}
