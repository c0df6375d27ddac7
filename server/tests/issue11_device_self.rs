//! Issue 11: the web authenticator's two device routes. The enrollment-link lookup is
//! unauthenticated, so it must read only and say the same about every link it will not show;
//! self-removal is signed, so only the device's own key removes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;

fn lookup(srv: &Srv, token: &str) -> Resp {
    srv.call(
        "GET",
        &format!("/v1/device/enrollment?token={token}"),
        None,
        None,
    )
}

#[test]
fn issue11_enrollment_lookup_shows_the_link_and_writes_nothing() {
    let srv = start();
    let token = srv.enrollment("alice", Some(600));
    let before = srv.audit();
    let r = lookup(&srv, &token);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"], "alice");
    assert_eq!(r.json["server"], srv.url());
    assert!(r.json["expires_at"].as_str().unwrap().ends_with('Z'));
    // Looking twice changes nothing: no audit row, and the link still enrolls.
    assert_eq!(lookup(&srv, &token).status, 200);
    assert_eq!(srv.audit(), before);
    srv.redeem(&token, "alice", "phone");
}

#[test]
fn issue11_enrollment_lookup_is_the_same_404_for_unknown_used_and_expired_links() {
    let srv = start();
    let used = srv.enrollment("alice", Some(600));
    srv.redeem(&used, "alice", "phone");
    let expired = srv.enrollment("bob", Some(1));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let unknown = "ZW5yb2xsbWVudC10b2tlbi0wMDAwMDAwMDAwMDAwMDA";
    let long = "A".repeat(5000);
    let answers: Vec<Resp> = [used.as_str(), expired.as_str(), unknown, "", long.as_str()]
        .iter()
        .map(|t| lookup(&srv, t))
        .collect();
    for r in &answers {
        assert_error(r, 404, "unknown_enrollment");
        // Same body for each: nothing tells which tokens once existed, nor whose they were.
        assert_eq!(r.text, answers[0].text);
        assert!(
            !r.text.contains("alice") && !r.text.contains("bob"),
            "{}",
            r.text
        );
    }
    let r = srv.call("GET", "/v1/device/enrollment", None, None);
    assert_error(&r, 404, "unknown_enrollment");
}

#[test]
fn issue11_a_device_removes_itself_and_only_with_its_own_key() {
    let srv = start();
    let key = srv.rp_key();
    let phone = srv.device("alice");
    let laptop = srv.device("alice");
    let c = srv.challenge(&key, "alice");
    // The laptop cannot remove the phone: a request claiming the phone's id signed with the
    // laptop's key is refused, and the phone stays.
    let forged = pushauth_proto::auth::DeviceAuth::sign(
        &laptop.key,
        &phone.id,
        "DELETE",
        "/v1/device",
        b"",
        now_secs(),
    )
    .unwrap()
    .to_string();
    let r = srv.call("DELETE", "/v1/device", Some(&forged), Some(b""));
    assert_error(&r, 401, "bad_signature");
    let r = srv.call("DELETE", "/v1/device", None, Some(b""));
    assert_error(&r, 401, "unauthorized");
    assert_eq!(phone.pending(&srv, 0).status, 200);

    let header = phone.header("DELETE", "/v1/device", b"", now_secs());
    let r = srv.call("DELETE", "/v1/device", Some(&header), Some(b""));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["device_id"], phone.id.as_str());
    assert_eq!(r.json["user"], "alice");
    // Gone: refused from now on, its answer to the open challenge too.
    assert_error(&phone.pending(&srv, 0), 403, "device_revoked");
    assert_error(&phone.approve(&srv, &c), 403, "device_revoked");
    // The same signed request again is refused (revoked before the nonce is even looked at).
    let r = srv.call("DELETE", "/v1/device", Some(&header), Some(b""));
    assert_eq!(r.status, 403, "{}", r.text);
    // The audit names the device and says it removed itself.
    let audit = srv.audit();
    let row = audit
        .iter()
        .find(|e| e["kind"] == "revoked" && e["device_id"] == phone.id.as_str())
        .expect("a revoked event for the phone");
    assert_eq!(row["detail"], "by self");
    // The admin's list no longer has it active; the laptop still works and still sees the challenge.
    let r = srv.admin("GET", "/v1/admin/users/alice/devices", None);
    let devices = r.json["devices"].as_array().unwrap();
    let active = devices
        .iter()
        .filter(|d| d["revoked_at"].is_null())
        .map(|d| d["id"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(active, [laptop.id.as_str()]);
    let r = laptop.pending(&srv, 0);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["challenges"][0]["id"], c.id.as_str());
    assert_eq!(laptop.approve(&srv, &c).status, 200);
}
