//! Issue 12, backup codes, over HTTP against a real server: issue and void, one-time use with a
//! replacement, throttling and the lock (and `unlock`), the relying party's scope, another
//! user's code, two uses of one code at once, nothing written on bad input, the device's and
//! the relying party's own sets, and enrollment of a new phone with a code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::time::Instant;

use common::*;
use serde_json::{json, Value};

fn issue(srv: &Srv, user: &str, body: Option<Value>) -> Resp {
    srv.admin(
        "POST",
        &format!("/v1/admin/users/{user}/backup-codes"),
        body,
    )
}

fn codes(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn verify(srv: &Srv, key: &str, user: &str, code: &str) -> Resp {
    srv.rp(
        key,
        "POST",
        &format!("/v1/users/{user}/backup-codes/verify"),
        Some(json!({"code": code, "context": {"service": "sshd", "host": "web01", "rhost": "192.0.2.7"}})),
    )
}

fn kinds(srv: &Srv, kind: &str) -> usize {
    srv.audit_kinds().iter().filter(|k| *k == kind).count()
}

/// Every row of the audit log, to compare before and after a request that must write nothing.
fn audit_len(srv: &Srv) -> usize {
    srv.audit().len()
}

#[test]
fn issue12_admin_set_is_shown_once_grouped_and_a_new_set_voids_the_old() {
    let srv = start();
    // Unknown user: refused, nothing written.
    let before = audit_len(&srv);
    assert_error(&issue(&srv, "alice", None), 404, "unknown_user");
    assert_eq!(audit_len(&srv), before);
    let _phone = srv.device("alice");
    let first = codes(&issue(&srv, "alice", None));
    assert_eq!(first.len(), 10, "default count");
    for c in &first {
        assert_eq!(c.len(), 19, "{c}");
        assert_eq!(c.split('-').count(), 4, "{c}");
        assert!(
            c.chars()
                .all(|ch| ch == '-' || "23456789ABCDEFGHJKMNPQRSTVWXYZ".contains(ch)),
            "{c}"
        );
    }
    let mut tags: Vec<&str> = first.iter().map(|c| &c[..2]).collect();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), 10, "tags are distinct within a set");
    // Bad counts: refused before anything is written.
    let before = audit_len(&srv);
    assert_error(
        &issue(&srv, "alice", Some(json!({"count": 0}))),
        400,
        "malformed_request",
    );
    assert_error(
        &issue(&srv, "alice", Some(json!({"count": 51}))),
        400,
        "malformed_request",
    );
    assert_error(
        &issue(&srv, "alice", Some(json!({"cuont": 3}))),
        400,
        "malformed_request",
    );
    assert_eq!(audit_len(&srv), before);
    let key = srv.rp_key();
    // A new set of 3 voids the first set entirely.
    let second = codes(&issue(&srv, "alice", Some(json!({"count": 3}))));
    assert_eq!(second.len(), 3);
    for old in &first {
        assert_error(
            &verify(&srv, &key, "alice", old),
            403,
            "backup_code_invalid",
        );
        // (unlock between, so the void set does not lock the user)
        srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    }
    let r = verify(&srv, &key, "alice", &second[0]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["remaining"], 3);
    // The audit names the issues, never a code.
    assert_eq!(kinds(&srv, "backup_codes_issued"), 2);
    let text = serde_json::to_string(&srv.audit()).unwrap();
    for c in first.iter().chain(&second) {
        assert!(!text.contains(c.as_str()) && !text.contains(&c.replace('-', "")));
    }
}

#[test]
fn issue12_a_code_works_once_and_its_replacement_is_returned_and_announced() {
    let srv = start();
    let phone = srv.device("alice");
    let key = srv.rp_key();
    let set = codes(&issue(&srv, "alice", None));
    // Typed loosely: lower case, spaces instead of dashes.
    let typed = set[3].to_lowercase().replace('-', " ");
    let t = Instant::now();
    let r = verify(&srv, &key, "alice", &typed);
    eprintln!("issue12: one verify + replacement took {:?}", t.elapsed());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"], "alice");
    assert_eq!(
        r.json["remaining"], 10,
        "the replacement keeps the set full"
    );
    let replacement = r.json["replacement"].as_str().unwrap().to_owned();
    assert!(!set.contains(&replacement));
    assert_eq!(
        &replacement[..2],
        &set[3][..2],
        "it takes the used code's slot"
    );
    // The same code again: refused.
    assert_error(
        &verify(&srv, &key, "alice", &set[3]),
        403,
        "backup_code_invalid",
    );
    // The replacement works, once.
    assert_eq!(verify(&srv, &key, "alice", &replacement).status, 200);
    assert_error(
        &verify(&srv, &key, "alice", &replacement),
        403,
        "backup_code_invalid",
    );
    assert_eq!(kinds(&srv, "backup_code_used"), 2);
    let used = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "backup_code_used")
        .unwrap();
    let detail = used["detail"].as_str().unwrap();
    assert!(
        detail.contains("host=web01") && detail.contains("rhost=192.0.2.7"),
        "{detail}"
    );
    assert!(detail.contains("service=sshd"), "{detail}");
    // Announced to the phone (kinds=all), not to clients that ask only for device_added.
    let r = phone.send(&srv, "GET", "/v1/device/notices?kinds=all", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    let notices = r.json["notices"].as_array().unwrap();
    let used: Vec<&Value> = notices
        .iter()
        .filter(|n| n["kind"] == "backup_code_used")
        .collect();
    assert_eq!(used.len(), 2, "{}", r.text);
    assert_eq!(used[0]["context"]["host"], "web01");
    assert!(used[0]["via"].as_str().unwrap().starts_with("rp:"));
    assert!(notices
        .iter()
        .any(|n| n["kind"] == "backup_codes_issued" && n["count"] == 10));
    let r = phone.send(&srv, "GET", "/v1/device/notices", b"");
    assert_eq!(r.json["notices"], json!([]), "{}", r.text);
    let r = phone.send(&srv, "GET", "/v1/device/notices?kinds=some", b"");
    assert_error(&r, 400, "malformed_request");
}

#[test]
fn issue12_wrong_codes_lock_the_user_until_unlock_and_a_right_code_resets_the_count() {
    let srv = start_with(|c| c.limits.max_backup_code_failures = 3);
    let _phone = srv.device("alice");
    let key = srv.rp_key();
    let set = codes(&issue(&srv, "alice", None));
    let wrong = "2222-2222-2222-2222";
    // Two wrong, then a right one resets the count.
    for _ in 0..2 {
        assert_error(
            &verify(&srv, &key, "alice", wrong),
            403,
            "backup_code_invalid",
        );
    }
    assert_eq!(verify(&srv, &key, "alice", &set[0]).status, 200);
    for _ in 0..2 {
        assert_error(
            &verify(&srv, &key, "alice", wrong),
            403,
            "backup_code_invalid",
        );
    }
    // Also a wrong code with a real tag (a guess at the secret part) counts.
    let guess = format!("{}22-2222-2222-2222", &set[1][..2]);
    let r = verify(&srv, &key, "alice", &guess);
    assert_error(&r, 403, "backup_code_invalid");
    assert_eq!(kinds(&srv, "backup_codes_locked"), 1);
    // Locked: even the right code is refused, with user_locked, and nothing is used.
    let r = verify(&srv, &key, "alice", &set[1]);
    assert_error(&r, 429, "user_locked");
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("pushauthd unlock"));
    let refused = kinds(&srv, "backup_code_refused");
    assert_eq!(refused, 6, "every refusal is audited");
    // Unlock lifts it.
    let r = srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let unlocked = srv
        .audit()
        .into_iter()
        .find(|e| e["kind"] == "user_unlocked")
        .unwrap();
    assert!(unlocked["detail"]
        .as_str()
        .unwrap()
        .contains("3 wrong backup code(s) forgotten"));
    assert_eq!(verify(&srv, &key, "alice", &set[1]).status, 200);
}

#[test]
fn issue12_refusals_do_not_tell_no_codes_from_wrong_codes_and_bad_input_writes_nothing() {
    let srv = start();
    let _alice = srv.device("alice");
    let _bob = srv.device("bob");
    let key = srv.rp_key();
    let set = codes(&issue(&srv, "alice", None));
    let wrong = verify(&srv, &key, "alice", "2222-3333-4444-5555");
    let none = verify(&srv, &key, "bob", "2222-3333-4444-5555");
    let unknown = verify(&srv, &key, "nobody", "2222-3333-4444-5555");
    let others = verify(&srv, &key, "bob", &set[0]);
    for r in [&wrong, &none, &unknown, &others] {
        assert_error(r, 403, "backup_code_invalid");
        assert_eq!(r.json["message"], wrong.json["message"]);
    }
    // Alice's code was not used by the attempt on bob.
    assert_eq!(verify(&srv, &key, "alice", &set[0]).status, 200);
    // Malformed input: 400, nothing written (no audit, no failure counted).
    let before = audit_len(&srv);
    for bad in [
        "",
        "2222-3333-4444",
        "O000-1111-IIII-LLLL",
        &"2".repeat(100),
    ] {
        assert_error(&verify(&srv, &key, "alice", bad), 400, "malformed_request");
    }
    let r = srv.rp(
        &key,
        "POST",
        "/v1/users/alice/backup-codes/verify",
        Some(json!({"code": set[1], "extra": 1})),
    );
    assert_error(&r, 400, "malformed_request");
    let r = srv.rp(
        &key,
        "POST",
        "/v1/users/alice/backup-codes/verify",
        Some(json!({"code": set[1], "context": {"bad key": "x"}})),
    );
    assert_error(&r, 400, "invalid_context");
    // Unauthenticated: 401 and nothing written.
    let r = srv.call(
        "POST",
        "/v1/users/alice/backup-codes/verify",
        None,
        Some(json!({"code": set[1]}).to_string().as_bytes()),
    );
    assert_error(&r, 401, "unauthorized");
    let r = srv.call(
        "POST",
        "/v1/admin/users/alice/backup-codes",
        Some("Bearer nope"),
        None,
    );
    assert_error(&r, 401, "unauthorized");
    assert_eq!(audit_len(&srv), before);
    assert_eq!(verify(&srv, &key, "alice", &set[1]).status, 200);
}

#[test]
fn issue12_only_a_relying_party_that_may_push_to_the_user_may_check_a_code() {
    let srv = start();
    let _alice = srv.device("alice");
    let set = codes(&issue(&srv, "alice", None));
    let (_, bob_only) = srv.rp_with(json!({"name": "bob's host", "users": ["bob"]}));
    let before = audit_len(&srv);
    assert_error(&verify(&srv, &bob_only, "alice", &set[0]), 403, "forbidden");
    assert_eq!(audit_len(&srv), before, "nothing written");
    // A revoked relying party is refused too.
    let (id, revoked) = srv.rp_with(json!({"name": "old host"}));
    let r = srv.admin("DELETE", &format!("/v1/admin/relying-parties/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_error(
        &verify(&srv, &revoked, "alice", &set[0]),
        401,
        "unauthorized",
    );
    let (_, alice_rp) = srv.rp_with(json!({"name": "alice's host", "users": ["alice"]}));
    assert_eq!(verify(&srv, &alice_rp, "alice", &set[0]).status, 200);
}

#[test]
fn issue12_two_uses_of_one_code_at_once_one_wins() {
    let srv = start();
    let _alice = srv.device("alice");
    let key = srv.rp_key();
    let set = codes(&issue(&srv, "alice", None));
    for code in &set[..3] {
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| verify(&srv, &key, "alice", code).status))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 403),
            "{statuses:?}"
        );
        srv.admin("POST", "/v1/admin/users/alice/unlock", None);
    }
    assert_eq!(kinds(&srv, "backup_code_used"), 3);
}

#[test]
fn issue12_a_user_without_an_active_device_may_still_use_a_code() {
    let srv = start();
    let phone = srv.device("alice");
    let key = srv.rp_key();
    let set = codes(&issue(&srv, "alice", None));
    let r = srv.admin("DELETE", &format!("/v1/admin/devices/{}", phone.id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = verify(&srv, &key, "alice", &set[0]);
    assert_eq!(
        r.status, 200,
        "a lost phone is what backup codes are for: {}",
        r.text
    );
}

#[test]
fn issue12_a_device_issues_a_set_for_its_own_user_and_the_others_are_told() {
    let srv = start();
    let phone = srv.device("alice");
    let laptop = srv.device("alice");
    let key = srv.rp_key();
    let old = codes(&issue(&srv, "alice", None));
    let r = phone.send(&srv, "POST", "/v1/device/backup-codes", b"{\"count\": 4}");
    let set = codes(&r);
    assert_eq!(set.len(), 4);
    assert_eq!(r.json["user"], "alice");
    assert_error(
        &verify(&srv, &key, "alice", &old[0]),
        403,
        "backup_code_invalid",
    );
    assert_eq!(verify(&srv, &key, "alice", &set[0]).status, 200);
    // An empty body takes the default count.
    assert_eq!(
        codes(&laptop.send(&srv, "POST", "/v1/device/backup-codes", b"")).len(),
        10
    );
    let r = laptop.send(&srv, "GET", "/v1/device/notices?kinds=all", b"");
    let issued: Vec<&Value> = r.json["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "backup_codes_issued")
        .collect();
    assert_eq!(issued.len(), 3, "{}", r.text);
    assert!(issued
        .iter()
        .any(|n| n["via"] == format!("device:{}", phone.id) && n["count"] == 4));
    // Unsigned: refused; a revoked device: refused; nothing issued.
    let before = kinds(&srv, "backup_codes_issued");
    let r = srv.call("POST", "/v1/device/backup-codes", None, Some(b"{}"));
    assert_error(&r, 401, "unauthorized");
    srv.admin("DELETE", &format!("/v1/admin/devices/{}", phone.id), None);
    let r = phone.send(&srv, "POST", "/v1/device/backup-codes", b"{}");
    assert_error(&r, 403, "device_revoked");
    assert_eq!(kinds(&srv, "backup_codes_issued"), before);
}

/// A challenge with context `action` for `user` from the relying party `key`, approved on
/// `phone` with the code.
fn approved(srv: &Srv, key: &str, phone: &Device, action: &str) -> String {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let mut context = pushauth_proto::Context::new();
    context.insert("action".into(), action.into());
    let body = json!({"user": phone.user, "context": context,
        "rp_nonce": pushauth_proto::b64::encode(nonce)});
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    assert_eq!(r.status, 201, "{}", r.text);
    let c = Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: phone.user.clone(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: pushauth_proto::context_digest(&context),
    };
    assert_eq!(phone.approve(srv, &c).status, 200);
    c.id
}

#[test]
fn issue12_a_relying_party_issues_a_set_on_a_fresh_issue_backup_codes_approval_once() {
    let srv = start();
    let phone = srv.device("alice");
    let _bob = srv.device("bob");
    let (_, key) = srv.rp_with(json!({"name": "idp"}));
    let (_, other) = srv.rp_with(json!({"name": "other idp"}));
    let rp_issue = |key: &str, user: &str, approval: &str| {
        srv.rp(
            key,
            "POST",
            &format!("/v1/users/{user}/backup-codes"),
            Some(json!({"approval": approval})),
        )
    };
    let login = approved(&srv, &key, &phone, "login");
    assert_error(&rp_issue(&key, "alice", &login), 403, "approval_invalid");
    let ok = approved(&srv, &key, &phone, "issue_backup_codes");
    assert_error(&rp_issue(&other, "alice", &ok), 403, "approval_invalid");
    assert_error(&rp_issue(&key, "bob", &ok), 403, "approval_invalid");
    assert_error(&rp_issue(&key, "alice", "no-such"), 403, "approval_invalid");
    assert_eq!(
        kinds(&srv, "backup_codes_issued"),
        0,
        "nothing issued on a refusal"
    );
    let set = codes(&rp_issue(&key, "alice", &ok));
    assert_eq!(set.len(), 10);
    assert_error(&rp_issue(&key, "alice", &ok), 409, "approval_used");
    assert_eq!(kinds(&srv, "backup_codes_issued"), 1);
    // An approval for adding a device is not one for backup codes, and vice versa.
    let add = approved(&srv, &key, &phone, "add_device");
    assert_error(&rp_issue(&key, "alice", &add), 403, "approval_invalid");
}

#[test]
fn issue12_a_backup_code_approves_enrolling_a_new_phone_when_every_device_is_lost() {
    let srv = start();
    let phone = srv.device("alice");
    let set = codes(&issue(&srv, "alice", None));
    srv.admin("DELETE", &format!("/v1/admin/devices/{}", phone.id), None);
    let (_, idp) = srv.rp_with(json!({"name": "idp", "enroll": true}));
    let (_, no_enroll) = srv.rp_with(json!({"name": "host"}));
    let enroll = |key: &str, code: &str| {
        srv.rp(
            key,
            "POST",
            "/v1/enrollments",
            Some(json!({"user": "alice", "backup_code": code})),
        )
    };
    // Without a code the non-bootstrap relying party may not enroll a user whose devices were
    // all revoked.
    let r = srv.rp(
        &idp,
        "POST",
        "/v1/enrollments",
        Some(json!({"user": "alice"})),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    // No enroll right: refused before the code is looked at, nothing used.
    assert_error(&enroll(&no_enroll, &set[0]), 403, "forbidden");
    // A wrong code: no link.
    assert_error(
        &enroll(&idp, "2222-3333-4444-5555"),
        403,
        "backup_code_invalid",
    );
    // Both approval and code: refused.
    let r = srv.rp(
        &idp,
        "POST",
        "/v1/enrollments",
        Some(json!({"user": "alice", "backup_code": set[0], "approval": "x"})),
    );
    assert_error(&r, 400, "malformed_request");
    let created_before = kinds(&srv, "enrollment_created");
    let r = enroll(&idp, &set[0]);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(kinds(&srv, "enrollment_created"), created_before + 1);
    let replacement = r.json["replacement"].as_str().unwrap().to_owned();
    assert_eq!(r.json["remaining"], 10);
    let token = r.json["token"].as_str().unwrap().to_owned();
    // The link works: the new phone is bound, approved by the backup code.
    let new_phone = srv.redeem(&token, "alice", "new phone");
    let r = srv.admin("GET", "/v1/admin/users/alice/devices", None);
    let devices = r.json["devices"].as_array().unwrap();
    let bound = devices
        .iter()
        .find(|d| d["id"] == new_phone.id.as_str())
        .unwrap();
    assert_eq!(bound["approved_by"], "backup_code");
    // The code is used up; its replacement is one of alice's codes now.
    assert_error(&enroll(&idp, &set[0]), 403, "backup_code_invalid");
    let key = srv.rp_key();
    assert_eq!(verify(&srv, &key, "alice", &replacement).status, 200);
    // The new phone hears about it.
    let r = new_phone.send(&srv, "GET", "/v1/device/notices?kinds=all", b"");
    assert!(
        r.json["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "backup_code_used"),
        "{}",
        r.text
    );
}

#[test]
fn issue12_the_cli_issues_and_prints_a_set_once() {
    let srv = start();
    let _phone = srv.device("alice");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["backup-codes", "alice", "--count", "5"])
        .args(srv.store_args())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("keep them offline"), "{text}");
    let printed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().split_once(". ").map(|(_, c)| c))
        .filter(|c| c.len() == 19)
        .collect();
    assert_eq!(printed.len(), 5, "{text}");
    let key = srv.rp_key();
    assert_eq!(verify(&srv, &key, "alice", printed[0]).status, 200);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pushauthd"))
        .args(["backup-codes", "nobody"])
        .args(srv.store_args())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user"));
}
