//! Attacks on the issue 9 implementation, each a scenario that should be refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use common::*;
use serde_json::json;

fn enroll_req(srv: &Srv, key: &str, user: &str, approval: Option<&str>) -> Resp {
    let mut body = json!({"user": user});
    if let Some(a) = approval {
        body["approval"] = json!(a);
    }
    srv.rp(key, "POST", "/v1/enrollments", Some(body))
}

/// Tries to redeem a token with a fresh key; the raw response.
fn try_redeem(srv: &Srv, token: &str, name: &str) -> Resp {
    let key = pushauth_proto::DeviceSigningKey::generate().unwrap();
    srv.call(
        "POST",
        "/v1/device/enroll",
        None,
        Some(&enroll_body(token, &key, name)),
    )
}

/// Creates a challenge with exactly this context (it must succeed); what a device needs to
/// answer it.
fn challenge_with(srv: &Srv, key: &str, user: &str, pairs: &[(&str, &str)]) -> Challenge {
    let nonce = pushauth_proto::random::rp_nonce().unwrap();
    let context: pushauth_proto::Context = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let r = srv.rp(
        key,
        "POST",
        "/v1/challenges",
        Some(json!({"user": user, "rp_nonce": pushauth_proto::b64::encode(nonce), "context": context})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    Challenge {
        id: r.json["id"].as_str().unwrap().to_owned(),
        user: user.into(),
        code: r.json["code"].as_str().map(str::to_owned),
        rp_nonce: nonce,
        digest: pushauth_proto::context_digest(&context),
    }
}

fn active_devices(srv: &Srv, user: &str) -> usize {
    let r = srv.admin("GET", &format!("/v1/admin/users/{user}/devices"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["devices"].as_array().unwrap().len()
}

/// Scenario: the sidecar's relying-party key leaks; the attacker asks for enrollment links
/// (7 days' life) for users it may bootstrap, the admin notices and revokes the relying party
/// ("a revoked key is refused at once"). The links it already issued still bind the attacker's
/// phone afterwards.
#[test]
fn attack_link_of_a_revoked_relying_party_still_enrolls() {
    let srv = start();
    let (rp_id, key) = srv.rp_with(json!({"name": "idp", "enroll": true, "bootstrap": true}));
    let r = enroll_req(&srv, &key, "dave", None);
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_owned();
    let r = srv.admin(
        "DELETE",
        &format!("/v1/admin/relying-parties/{rp_id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // The revoked key itself is refused...
    assert_error(&enroll_req(&srv, &key, "dave", None), 401, "unauthorized");
    // ...but what it issued before is not.
    let r = try_redeem(&srv, &token, "attacker phone");
    assert_ne!(
        r.status, 200,
        "a link issued by a since-revoked relying party enrolled a device: {}",
        r.text
    );
}

/// Scenario (item 1, bootstrap realm): whoever holds alice's password logs in to the realm that
/// may bootstrap before alice has any device and takes an enrollment link (valid up to 7 days)
/// without redeeming it. The admin then enrolls alice's own phone. The held link now adds the
/// attacker's phone to an account that HAS a device, with no approval from it.
#[test]
fn attack_bootstrap_link_redeemed_after_the_owner_enrolled_skips_approval() {
    let srv = start();
    let (_, key) = srv.rp_with(json!({"name": "realm", "enroll": true, "bootstrap": true}));
    let r = enroll_req(&srv, &key, "alice", None);
    assert_eq!(r.status, 201, "{}", r.text);
    let held = r.json["token"].as_str().unwrap().to_owned();
    // The owner's phone, enrolled by the admin.
    let _phone = srv.device("alice");
    // A link asked for now is refused: approval required.
    assert_error(
        &enroll_req(&srv, &key, "alice", None),
        403,
        "approval_required",
    );
    // The held one must be refused the same way.
    let r = try_redeem(&srv, &held, "attacker phone");
    assert_ne!(
        r.status, 200,
        "a bootstrap link enrolled a second device without approval: {}",
        r.text
    );
    assert_eq!(active_devices(&srv, "alice"), 1);
}

/// Scenario: a stolen phone approves an add_device push for the thief's link; the owner notices
/// and revokes the stolen phone. An approval from a revoked device "does not count" when the link
/// is asked for, but the link issued on it before the revocation still enrolls the thief's
/// second device, which survives the revocation.
#[test]
fn attack_link_approved_by_a_since_revoked_device_still_enrolls() {
    let srv = start();
    let stolen = srv.device("alice");
    let _kept = srv.device("alice");
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true}));
    let c = challenge_with(
        &srv,
        &key,
        "alice",
        &[("action", "add_device"), ("device_name", "new phone")],
    );
    assert_eq!(stolen.approve(&srv, &c).status, 200);
    let r = enroll_req(&srv, &key, "alice", Some(&c.id));
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_owned();
    srv.admin("DELETE", &format!("/v1/admin/devices/{}", stolen.id), None);
    let r = try_redeem(&srv, &token, "thief laptop");
    assert_ne!(
        r.status, 200,
        "a link approved by a now-revoked device enrolled: {}",
        r.text
    );
    assert_eq!(active_devices(&srv, "alice"), 1);
}

/// Scenario (item 13): whoever holds alice's password opens pushes from ten source addresses
/// (ten IPv4 hosts, or any ten addresses of an IPv6 prefix as PAM_RHOST), three each, never
/// answered. The per-user ceiling (30 open, 100 unapproved a window) counts every source, so
/// alice's own login from her own address was refused: the limits were still a lockout weapon,
/// held by the password alone. Now the per-user ceilings spare a source the user approved a
/// login from in the last 30 days, which the attacker cannot make.
#[test]
fn attack_push_spray_from_many_sources_locks_out_the_owner() {
    let srv = start();
    let phone = srv.device("alice");
    let key = srv.rp_key();
    // Yesterday alice logged in from her usual address.
    let usual = challenge_with(
        &srv,
        &key,
        "alice",
        &[("service", "sshd"), ("rhost", "192.0.2.10")],
    );
    assert_eq!(phone.approve(&srv, &usual).status, 200);
    let push = |rhost: &str| {
        let nonce = pushauth_proto::random::rp_nonce().unwrap();
        srv.rp(
            &key,
            "POST",
            "/v1/challenges",
            Some(json!({
                "user": "alice",
                "rp_nonce": pushauth_proto::b64::encode(nonce),
                "context": {"service": "sshd", "rhost": rhost},
            })),
        )
    };
    for n in 0..10 {
        for _ in 0..3 {
            let r = push(&format!("2001:db8:{n}::1"));
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
    // Alice, from her own address.
    let r = push("192.0.2.10");
    assert_eq!(
        r.status, 201,
        "the owner's login from her own address is refused after a spray from other \
         sources: {}",
        r.text
    );
    // The spray itself, from yet another address, meets the per-user ceiling, with a message
    // that says so.
    let r = push("2001:db8:77::1");
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error(), "too_many_open_challenges");
    assert!(r.text.contains("from all sources"), "{}", r.text);
}

/// Scenario (item 12): a device id is no secret (relying parties list it; every device of a user
/// sees its siblings' ids in its notices). An attacker with an IPv6 /64, which one host usually
/// holds, sends requests naming that device with garbage signatures, each from another address
/// of the prefix. The aggregation is per full address, so every request writes an audit row
/// (kept 400 days): about 10,000 rows a minute, unauthenticated, until `[retention] max_db_mb`
/// (1 GiB) is reached, when every new challenge, so every login, is refused (`storage_full`).
/// The connection caps already count IPv6 clients by /64; the failure aggregation does not.
#[test]
fn attack_bad_signatures_from_one_ipv6_prefix_write_a_row_per_address() {
    use axum::body::Bytes;
    use axum::http::{header::AUTHORIZATION, HeaderMap, Method, Uri};
    use pushauth_server::api::extract::DeviceRequest;
    use pushauth_server::bounds::SignatureFailures;
    use pushauth_server::store::Store;

    let srv = start();
    let phone = srv.device("alice");
    // The same data directory the server uses (as `pushauthd` subcommands do while it runs).
    let store = srv.open_store();
    let store: &dyn Store = &*store;
    let failures = SignatureFailures::default();
    let forger = Device {
        id: phone.id.clone(),
        user: "alice".into(),
        key: pushauth_proto::DeviceSigningKey::generate().unwrap(),
    };
    let path = "/v1/device/challenges";
    let uri: Uri = path.parse().unwrap();
    for n in 1..=300u32 {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            forger.header("GET", path, b"", now_secs()).parse().unwrap(),
        );
        let peer: std::net::SocketAddr = format!("[2001:db8::{n:x}]:40000").parse().unwrap();
        let request = DeviceRequest::parse(&Method::GET, &uri, &headers, &Bytes::new(), peer)
            .expect("a well-formed header");
        assert!(request.verify(store, &failures).is_err());
    }
    let rows = store
        .list_audit(1000, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "signature_rejected")
        .count();
    assert!(
        rows <= 2,
        "300 forged requests from one /64 wrote {rows} audit rows (one per address)"
    );
}

/// Scenario (item 13): a local user who knows alice's password runs `su - alice` three times on
/// the shared host and leaves the pushes open (or alice reports one). pam_push sends no `rhost`
/// for su, sudo or a console login, so all of them are one "source" (the empty one) of the
/// host's relying party, and alice's own `sudo` is refused until they expire (or for the 15
/// minutes of the report lock): per-source limits do not separate local logins.
#[test]
fn attack_local_su_pushes_lock_out_the_owners_sudo() {
    let srv = start();
    let _phone = srv.device("alice");
    let key = srv.rp_key();
    let push = |context: serde_json::Value| {
        let nonce = pushauth_proto::random::rp_nonce().unwrap();
        srv.rp(
            &key,
            "POST",
            "/v1/challenges",
            Some(json!({
                "user": "alice",
                "rp_nonce": pushauth_proto::b64::encode(nonce),
                "context": context,
            })),
        )
    };
    for _ in 0..3 {
        let r = push(json!({"service": "su", "host": "shared01", "tty": "pts/7"}));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = push(json!({"service": "sudo", "host": "shared01", "tty": "pts/2", "command": "id"}));
    assert_eq!(
        r.status, 201,
        "alice's sudo is refused because someone else's su pushes are open: {}",
        r.text
    );
}

/// Scenario (items 1 and 3 together): the identity provider's relying party has the rights the
/// issue asks of it: enroll (for the "remove credential" of item 3 and for enrollment) and
/// bootstrap (its own realm). Whoever holds only alice's password removes alice's push
/// credential in the account console (the sidecar revokes her phone through the relying-party
/// API), and alice now has no active device: the bootstrap rule lets them enroll their own phone
/// with no approval. The approval requirement is undone by one revocation that needs no device.
#[test]
fn attack_rp_revoke_then_bootstrap_takes_over_a_user_with_a_device() {
    let srv = start();
    let phone = srv.device("alice");
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true, "bootstrap": true}));
    // Adding a device directly is refused, as it should be.
    assert_error(
        &enroll_req(&srv, &key, "alice", None),
        403,
        "approval_required",
    );
    // Revoking needs no approval...
    let r = srv.rp(
        &key,
        "DELETE",
        &format!("/v1/users/alice/devices/{}", phone.id),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // ...and then a link is a bootstrap.
    let r = enroll_req(&srv, &key, "alice", None);
    assert_ne!(
        r.status, 201,
        "after revoking alice's phone, the relying party enrolls a new one with no approval: {}",
        r.text
    );
}

/// The admin token used as a relying party (`POST /v1/enrollments`) is the administrator's own
/// approval: its links stay redeemable (the redemption check is for relying parties).
#[test]
fn attack_guard_admin_token_links_still_redeem() {
    let srv = start();
    let r = enroll_req(&srv, ADMIN, "erin", None);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = try_redeem(&srv, r.json["token"].as_str().unwrap(), "second");
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Scenario (item 12 from a relying party): every host's `pam_push.conf` holds that host's
/// relying-party key (push rights only). Root on one web server takes it and asks for pushes to
/// one user in a loop. Once the limits refuse them, each refusal still writes a `rate_limited`
/// audit row (kept 400 days): the writes are unbounded, and at `max_db_mb` (1 GiB) every new
/// challenge on every host is refused (`storage_full`). One host's key becomes a lockout of all.
#[test]
fn attack_refused_pushes_write_an_audit_row_each() {
    let srv = start();
    let _phone = srv.device("alice");
    let key = srv.rp_key();
    let mut refused = 0;
    for _ in 0..60 {
        let nonce = pushauth_proto::random::rp_nonce().unwrap();
        let r = srv.rp(
            &key,
            "POST",
            "/v1/challenges",
            Some(json!({
                "user": "alice",
                "rp_nonce": pushauth_proto::b64::encode(nonce),
                "context": {"service": "sshd", "rhost": "198.51.100.9"},
            })),
        );
        if r.status == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 50, "{refused}");
    let rows = srv
        .audit()
        .iter()
        .filter(|e| e["kind"] == "rate_limited")
        .count();
    assert!(
        rows <= 5,
        "{refused} refused pushes wrote {rows} rate_limited audit rows (one each)"
    );
}

/// Scenario (item 1): a relying party asks for a week-long link for a bootstrap user (or right
/// after the owner approved an add-device push). The link must live minutes, not days: the
/// server's `enrollment_ttl_secs` (600 s here) bounds a relying party's links.
#[test]
fn attack_a_relying_partys_link_lives_minutes_not_days() {
    let srv = start();
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true, "bootstrap": true}));
    let r = srv.rp(
        &key,
        "POST",
        "/v1/enrollments",
        Some(json!({"user": "newbie", "ttl_secs": 7 * 24 * 3600})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let expires = time::OffsetDateTime::parse(
        r.json["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left <= time::Duration::seconds(601),
        "a relying party's link lives {left}"
    );
}
