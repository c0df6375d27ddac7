//! pushauthd after the service layer (issue 10): the user-name rule on every path that names a
//! user, and refusals in the same order now that a relying party's key is checked in the
//! handler's own store job.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

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

/// Item 6: the store is data access only (so a second backend implements no policy): no
/// source file under `server/src/store/` names the rule modules, the job threads or the
/// known-source period.
#[test]
fn issue10_item6_store_holds_no_policy() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files = Vec::new();
    sources(&root, &mut files);
    // The walk found the store (mod.rs, records.rs, error.rs, the SQLite backend and its tests).
    assert!(files.len() >= 20, "only {files:?}");
    let forbidden = [
        "crate::enrollment",
        "crate::rights",
        "crate::auth",
        "crate::jobs",
        "KNOWN_SOURCE_DAYS",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in forbidden {
            if text.contains(name) {
                found.push(format!("{} names {name}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// A store with relying party `idp` (may enroll, not bootstrap) and `alice`'s phone `d1`.
fn race_store() -> (
    tempfile::TempDir,
    pushauth_server::store::sqlite::SqliteStore,
) {
    use pushauth_server::store::{NewDevice, Redeem, RelyingPartyRecord, Store};
    let dir = tempfile::tempdir().unwrap();
    let store = pushauth_server::store::sqlite::SqliteStore::open(dir.path()).unwrap();
    let rp = RelyingPartyRecord {
        id: "idp".into(),
        name: "idp".into(),
        key_hash: [7; 32],
        users: vec!["*".into()],
        enroll: true,
        bootstrap: false,
        created_at: 0,
        revoked_at: None,
    };
    store.create_relying_party(&rp, 0).unwrap();
    store
        .create_enrollment("alice", &[1; 32], 0, 60_000)
        .unwrap();
    let phone = NewDevice {
        id: "d1".into(),
        name: "phone".into(),
        alg: "ed25519".into(),
        public_key: "k".into(),
    };
    let redeemed = store.redeem_enrollment(&[1; 32], &phone, None, 1).unwrap();
    assert!(matches!(redeemed, Redeem::Enrolled(_)), "{redeemed:?}");
    (dir, store)
}

/// An `add_device` challenge of `idp` for alice, approved on `d1` at `now`.
fn approved_add_device(store: &dyn pushauth_server::store::Store, id: &str, now: i64) {
    use pushauth_proto::{ChallengeState, Context, Decision};
    use pushauth_server::store::{AnswerRecord, Cas, CodeTally, Create, NewChallenge};
    let mut context = Context::new();
    context.insert("action".into(), "add_device".into());
    let new = NewChallenge {
        id: id.into(),
        user: "alice".into(),
        rp_id: "idp".into(),
        rp_key: None,
        context_digest: pushauth_proto::context_digest(&context),
        context,
        rp_nonce: vec![1; 32],
        code: Some("123456".into()),
        requested_devices: None,
        created_at: now,
        expires_at: now + 60_000,
        window_start: now - 600_000,
        known_since: pushauth_server::limits::known_since(now),
        source: String::new(),
    };
    let created = store
        .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
        .unwrap();
    assert!(matches!(created, Create::Created { .. }), "{created:?}");
    let answer = AnswerRecord {
        device_id: "d1".into(),
        state: ChallengeState::Approved,
        decision: Decision::Approve,
        reason: None,
        typed_code: "123456".into(),
        responded_at: "2026-01-01T00:00:00Z".into(),
        signature: "sig".into(),
        lock_user_until: None,
        code_tally: CodeTally::Keep,
    };
    let cas = store.answer(id, &answer, now).unwrap();
    assert!(matches!(cas, Cas::Changed(_)), "{cas:?}");
}

/// Item 1: the rule "an approval serves one enrollment" is decided in the service now, over
/// facts the store reads; requests racing with one approval on separate threads (no job thread
/// to serialize them) still get exactly one link, and every other one `approval_used`.
#[test]
fn issue10_item1_approval_used_once_under_race() {
    use pushauth_proto::wire::CreateRpEnrollment;
    use pushauth_server::enrollment::Refusal;
    use pushauth_server::service::{enrollments, keys::RpCaller, Error};
    use pushauth_server::store::Store;
    const RACERS: usize = 8;
    let (_dir, store) = race_store();
    let rp = RpCaller {
        rp_id: "idp".into(),
        users: vec!["*".into()],
        enroll: true,
        bootstrap: false,
        key_hash: None,
    };
    for round in 0..5 {
        let now = 10_000 + round * 1_000;
        let approval = format!("approval{round}");
        approved_add_device(&store, &approval, now);
        let start = std::sync::Barrier::new(RACERS);
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let req = CreateRpEnrollment {
                            user: "alice".into(),
                            ttl_secs: None,
                            approval: Some(approval.clone()),
                            backup_code: None,
                        };
                        enrollments::issue_for_rp(&store, &rp, req, 600, now + 1)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let issued = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(issued, 1, "round {round}: {outcomes:?}");
        for outcome in outcomes.iter().filter(|o| o.is_err()) {
            assert!(
                matches!(outcome, Err(Error::Enrollment(Refusal::ApprovalUsed))),
                "round {round}: {outcome:?}"
            );
        }
        let events = store.list_audit(1000, Some("alice")).unwrap();
        let created = events
            .iter()
            .filter(|e| {
                e.kind == "enrollment_created"
                    && e.detail.as_deref().unwrap_or("").contains(&approval)
            })
            .count();
        assert_eq!(created, 1, "round {round}");
    }
}

/// Item 1: a relying party's link checked and redeemed in one unit: devices racing to redeem
/// one link get exactly one binding, and a link whose relying party was revoked is refused
/// at redemption (and nothing is bound).
#[test]
fn issue10_item1_link_redeemed_once_under_race() {
    use pushauth_proto::wire::CreateRpEnrollment;
    use pushauth_server::enrollment::Refusal;
    use pushauth_server::service::{enrollments, keys::RpCaller, Error};
    use pushauth_server::store::{NewDevice, Store};
    const RACERS: usize = 8;
    let (_dir, store) = race_store();
    let rp = RpCaller {
        rp_id: "idp".into(),
        users: vec!["*".into()],
        enroll: true,
        bootstrap: false,
        key_hash: None,
    };
    let link = |approval: &str, now: i64| {
        approved_add_device(&store, approval, now);
        let req = CreateRpEnrollment {
            user: "alice".into(),
            ttl_secs: None,
            approval: Some(approval.into()),
            backup_code: None,
        };
        enrollments::issue_for_rp(&store, &rp, req, 600, now + 1)
            .unwrap()
            .token
    };
    let token = link("a1", 10_000);
    let start = std::sync::Barrier::new(RACERS);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (store, start, token) = (&store, &start, &token);
                scope.spawn(move || {
                    let device = NewDevice {
                        id: format!("new{i}"),
                        name: format!("phone {i}"),
                        alg: "ed25519".into(),
                        public_key: "k".into(),
                    };
                    start.wait();
                    enrollments::redeem(store, token, &device, None, 12_000)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| matches!(o, Err(Error::EnrollmentUsed))),
        "{outcomes:?}"
    );
    let devices = store.user_devices("alice").unwrap().unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    // The relying party loses its right before the next link is redeemed: refused, audited.
    let token = link("a2", 20_000);
    store.revoke_relying_party("idp", 20_500).unwrap();
    let device = NewDevice {
        id: "late".into(),
        name: "late phone".into(),
        alg: "ed25519".into(),
        public_key: "k".into(),
    };
    let refused = enrollments::redeem(&store, &token, &device, None, 21_000);
    assert!(
        matches!(
            refused,
            Err(Error::Enrollment(Refusal::RelyingPartyRevoked))
        ),
        "{refused:?}"
    );
    assert!(store.get_device("late").unwrap().is_none());
    let events = store.list_audit(1000, Some("alice")).unwrap();
    assert!(events.iter().any(|e| e.kind == "enrollment_refused"
        && e.detail.as_deref() == Some("forbidden at redemption (via rp:idp)")));
}

/// Item 1, over HTTP against a running pushauthd: requests racing with one approval get
/// exactly one link; every other one is `approval_used`.
#[test]
fn issue10_item1_approval_used_once_under_race_over_http() {
    const RACERS: usize = 8;
    let srv = start();
    let phone = srv.device("alice");
    let (_, key) = srv.rp_with(json!({"name": "idp", "enroll": true}));
    let mut context = pushauth_proto::Context::new();
    context.insert("action".into(), "add_device".into());
    let (r, c) = srv.create(&key, "alice", json!({ "context": context }));
    assert_eq!(r.status, 201, "{}", r.text);
    let mut c = c.unwrap();
    c.digest = pushauth_proto::context_digest(&context);
    let r = phone.approve(&srv, &c);
    assert_eq!(r.status, 200, "{}", r.text);
    let start = std::sync::Barrier::new(RACERS);
    let body = json!({"user": "alice", "approval": c.id});
    let answers: Vec<Resp> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    srv.rp(&key, "POST", "/v1/enrollments", Some(body.clone()))
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let issued = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        issued,
        1,
        "{:?}",
        answers.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != 201) {
        assert_error(r, 409, "approval_used");
    }
}

/// Issue 10 item 1: no module of `server/src` imports a module that imports it back (the layers
/// `api` → `state` → `service` → `store` hold), read from the source.
#[test]
fn issue10_item1_no_module_cycle_in_server_src() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = pushauth_testkit::module_graph(&src);
    assert!(graph.len() >= 20, "{graph:?}");
    assert!(graph["api"].contains("service"), "{graph:?}");
    assert!(!graph["store"].contains("service"), "{graph:?}");
    assert_eq!(
        pushauth_testkit::module_cycles(&graph),
        vec![],
        "{graph:#?}"
    );
}
