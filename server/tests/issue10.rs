//! pushauthd after the service layer (issue 10): the user-name rule on every path that names a
//! user, and refusals in the same order now that a relying party's key is checked in the
//! handler's own store job.

mod common;

use common::*;
use serde_json::json;

const USER_RULE: &str = "user must be 1 to 256 printable characters";

#[test]
fn issue10_item4_challenge_user_name_rule() {
    let srv = start();
    let key = srv.rp_key();
    let _alice = srv.device("alice");
    // A hidden character: `alice\u{200B}` must not be another name for alice.
    for user in ["alice\u{200B}".to_owned(), "a".repeat(257), String::new()] {
        let (r, _) = srv.create(&key, &user, json!({}));
        assert_error(&r, 400, "malformed_request");
        assert_eq!(r.json["message"], USER_RULE, "{user:?}: {}", r.text);
        // The admin token acting as a relying party is held to the same rule.
        let (r, _) = srv.create(ADMIN, &user, json!({}));
        assert_error(&r, 400, "malformed_request");
        // And so are enrollment links.
        let r = srv.admin(
            "POST",
            "/v1/admin/enrollments",
            Some(json!({ "user": user })),
        );
        assert_error(&r, 400, "malformed_request");
        assert_eq!(r.json["message"], USER_RULE);
    }
    // 256 characters is a name: it passes the rule and is then simply unknown.
    let (r, _) = srv.create(&key, &"a".repeat(256), json!({}));
    assert_error(&r, 404, "unknown_user");
    // Nothing was created by the refused requests.
    assert!(!srv.audit_kinds().iter().any(|k| k == "challenge_created"));
    let (r, _) = srv.create(&key, "alice", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn issue10_item1_refusals_keep_their_order() {
    let srv = start();
    let _alice = srv.device("alice");
    let (_, scoped) = srv.rp_with(json!({"name": "scoped", "users": ["bob"]}));
    let key = srv.rp_key();
    let wrong = format!("{key}x");
    // A wrong key is refused before anything about the request is looked at.
    let r = srv.call(
        "POST",
        "/v1/challenges",
        Some(&format!("Bearer {wrong}")),
        Some(b"{\"user\": "),
    );
    assert_error(&r, 401, "unauthorized");
    let (r, _) = srv.create(
        &wrong,
        "alice\u{200B}",
        json!({"context": {"Bad Key": "x"}}),
    );
    assert_error(&r, 401, "unauthorized");
    let r = srv.rp(&wrong, "GET", "/v1/challenges/nope?wait=x", None);
    assert_error(&r, 401, "unauthorized");
    let r = srv.rp(&wrong, "POST", "/v1/enrollments", Some(json!({"user": 1})));
    assert_error(&r, 401, "unauthorized");
    // A user out of scope is refused before the request's own faults are named.
    let (r, _) = srv.create(&scoped, "alice", json!({"context": {"Bad Key": "x"}}));
    assert_error(&r, 403, "forbidden");
    // With a good key, the faults of the request itself.
    let (r, _) = srv.create(&key, "alice", json!({"context": {"Bad Key": "x"}}));
    assert_error(&r, 400, "invalid_context");
    let r = srv.rp(&key, "GET", "/v1/challenges/nope?wait=x", None);
    assert_error(&r, 400, "malformed_request");
    let r = srv.rp(&key, "GET", "/v1/challenges/nope", None);
    assert_error(&r, 404, "not_found");
    // A revoked relying party is refused at once, on every relying-party route.
    let (id, doomed) = srv.rp_with(json!({"name": "doomed", "enroll": true}));
    let c = srv.challenge(&doomed, "alice");
    let r = srv.admin("DELETE", &format!("/v1/admin/relying-parties/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    for (method, path) in [
        ("GET", format!("/v1/challenges/{}", c.id)),
        ("DELETE", format!("/v1/challenges/{}", c.id)),
        ("GET", "/v1/users/alice/devices".to_owned()),
    ] {
        let r = srv.rp(&doomed, method, &path, None);
        assert_error(&r, 401, "unauthorized");
    }
    let (r, _) = srv.create(&doomed, "alice", json!({}));
    assert_error(&r, 401, "unauthorized");
}
