//! Issue 12: the sidecar's backup-code routes against a real pushauthd (in process) and a
//! simulated device. The codes come from the sidecar's own issuance route (a push approved on
//! the device), so each test drives the whole path a Keycloak page takes. The attacks first:
//! reuse, another user's or realm's code, no shared secret, a denied issuance, the push left open.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::time::Duration;

use pushauth_device::{Decision, DeviceClient};
use pushauth_idp_sidecar::realms::{Realm, Realms};
use pushauth_idp_sidecar::{ResultToken, RunningSidecar, Settings};
use pushauth_proto::{DevicePublicKey, DeviceSigningKey};
use pushauth_testkit::{find_challenge, TestServer};
use serde_json::{json, Value};
use zeroize::Zeroizing;

const SECRET: &str = "shim-shared-secret-0123456789";
const NONCE: &str = "shim-nonce-0123456789abcdef";
const SESSION: &str = "c2Vzc2lvbi1kaWdlc3QtMDEyMzQ1Njc4OQ";

struct Env {
    server: TestServer,
    sidecar: RunningSidecar,
    agent: ureq::Agent,
}

impl Env {
    fn start() -> Env {
        let server = TestServer::start();
        let rp = server.add_rp(json!({"name": "sidecar", "enroll": true, "bootstrap": true}));
        let mut settings = Settings::new(
            vec![server.url()],
            Zeroizing::new(rp.api_key),
            Zeroizing::new(SECRET.into()),
            DeviceSigningKey::generate().unwrap(),
        );
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.realms = Realms::new([
            Realm {
                name: "demo".into(),
                template: "{username}".into(),
                bootstrap: true,
            },
            Realm {
                name: "other".into(),
                template: "{realm}/{username}".into(),
                bootstrap: false,
            },
        ])
        .unwrap();
        settings.login_ttl = Duration::from_secs(30);
        let sidecar = RunningSidecar::start(settings).unwrap();
        Env {
            server,
            sidecar,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(40))
                .build(),
        }
    }

    fn call_as(
        &self,
        secret: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        // A refused request may leave its connection closed (the body unread): never put it back
        // in the shared pool.
        let agent = if secret == Some(SECRET) {
            self.agent.clone()
        } else {
            ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(40))
                .build()
        };
        let mut req = agent.request(method, &format!("{}{path}", self.sidecar.url()));
        if let Some(secret) = secret {
            req = req.set("Authorization", &format!("Bearer {secret}"));
        }
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let (status, resp) = match result {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(s, r)) => (s, r),
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let text = resp.into_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(Some(SECRET), method, path, body)
    }

    fn enroll(&self, user: &str, name: &str) -> DeviceClient {
        self.server.enroll(user, name).client
    }

    /// A new set for `user` of realm `demo`, approved on `device`.
    fn issue(&self, user: &str, device: &DeviceClient) -> Vec<String> {
        let started = self.start_issue(user);
        let id = started["id"].as_str().unwrap().to_owned();
        let challenge = find_challenge(device, &id_of_push(device, &started));
        device
            .respond(
                &challenge,
                Decision::Approve,
                started["code"].as_str().unwrap(),
            )
            .unwrap();
        let (status, issued) = self.call("GET", &format!("/v1/backup-codes/{id}?wait=10"), None);
        assert_eq!(status, 200, "{issued}");
        assert_eq!(issued["state"], "issued", "{issued}");
        issued["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    fn start_issue(&self, user: &str) -> Value {
        let (status, started) = self.call(
            "POST",
            "/v1/backup-codes",
            Some(json!({"realm": "demo", "username": user, "session": SESSION, "context": {"client": "account-console"}})),
        );
        assert_eq!(status, 201, "{started}");
        assert_eq!(started["state"], "approval_pending", "{started}");
        started
    }

    fn verify(&self, realm: &str, user: &str, code: &str, session: Option<&str>) -> (u16, Value) {
        let mut body = json!({"realm": realm, "username": user, "code": code, "nonce": NONCE, "context": {"client": "app", "ip": "192.0.2.9"}});
        if let Some(session) = session {
            body["session"] = json!(session);
        }
        self.call("POST", "/v1/backup-codes/verify", Some(body))
    }

    fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey::from_wire("ed25519", self.sidecar.public_key()).unwrap()
    }
}

/// The challenge id of the issuance's push: the one pending challenge with that action.
fn id_of_push(device: &DeviceClient, started: &Value) -> String {
    for _ in 0..20 {
        let pending = device.pending(1).unwrap();
        if let Some(c) = pending
            .iter()
            .find(|c| c.context.get("action").map(String::as_str) == Some("issue_backup_codes"))
        {
            assert_eq!(c.context["realm"], "demo");
            assert!(c.code_required, "{started}");
            return c.id.clone();
        }
    }
    panic!("no issue_backup_codes push reached the device");
}

#[test]
fn issue12_issued_codes_are_shown_once_and_each_logs_in_once() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let started = env.start_issue("alice");
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["devices"][0], "alice-phone");
    assert!(started.get("codes").is_none());
    let push = find_challenge(&phone, &id_of_push(&phone, &started));
    phone
        .respond(&push, Decision::Approve, started["code"].as_str().unwrap())
        .unwrap();
    let (_, issued) = env.call("GET", &format!("/v1/backup-codes/{id}?wait=10"), None);
    assert_eq!(issued["state"], "issued", "{issued}");
    let codes: Vec<String> = issued["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(codes.len() >= 10, "{issued}");
    // Shown once: the next read has no codes.
    let (_, again) = env.call("GET", &format!("/v1/backup-codes/{id}"), None);
    assert_eq!(again["state"], "issued");
    assert!(again.get("codes").is_none(), "{again}");

    let started = std::time::Instant::now();
    let (status, used) = env.verify("demo", "alice", &codes[0], None);
    assert_eq!(status, 200, "{used}");
    // For the record (README): a code checked end to end through the sidecar.
    eprintln!(
        "backup code verified through the sidecar in {:?}",
        started.elapsed()
    );
    assert_eq!(used["user"], "alice");
    let replacement = used["replacement"].as_str().unwrap();
    assert!(!codes.contains(&replacement.to_owned()));
    let token: ResultToken = serde_json::from_value(used["result"].clone()).unwrap();
    assert_eq!(token.outcome, "backup_code");
    assert_eq!(token.nonce, NONCE);
    assert_eq!(token.user, "alice");
    assert_eq!(token.challenge_id, used["id"].as_str().unwrap());
    assert!(token.verify(&env.public_key()).is_ok());

    // Reused: refused with the one code that tells nothing.
    let (status, body) = env.verify("demo", "alice", &codes[0], None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("backup_code_invalid")),
        "{body}"
    );
    // The replacement works, once.
    let (status, body) = env.verify("demo", "alice", replacement, None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = env.verify("demo", "alice", replacement, None);
    assert_eq!(status, 403);
}

#[test]
fn issue12_a_code_is_not_another_users_nor_another_realms() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let _bob_phone = env.enroll("bob", "bob-phone");
    let codes = env.issue("alice", &phone);
    // bob, and realm "other"'s alice (pushauthd's other/alice), cannot use alice's code.
    for (realm, user) in [("demo", "bob"), ("other", "alice"), ("demo", "nobody")] {
        let (status, body) = env.verify(realm, user, &codes[1], None);
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("backup_code_invalid")),
            "{realm}/{user}: {body}"
        );
    }
    // Still good for alice afterwards: nothing above consumed it.
    let (status, body) = env.verify("demo", "alice", &codes[1], None);
    assert_eq!(status, 200, "{body}");
    // A realm without a rule is refused before pushauthd is asked.
    let (status, body) = env.verify("nowhere", "alice", &codes[2], None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("realm_not_configured"))
    );
}

#[test]
fn issue12_unauthenticated_or_malformed_requests_consume_nothing() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let codes = env.issue("alice", &phone);
    let body = json!({"realm": "demo", "username": "alice", "code": codes[0], "nonce": NONCE});
    for secret in [None, Some("wrong-secret-0123456789")] {
        for (method, path, body) in [
            ("POST", "/v1/backup-codes/verify", Some(body.clone())),
            (
                "POST",
                "/v1/backup-codes",
                Some(json!({"realm": "demo", "username": "alice"})),
            ),
            (
                "POST",
                "/v1/enrollments",
                Some(json!({"realm": "demo", "username": "alice", "backup_code": codes[0]})),
            ),
        ] {
            let (status, answer) = env.call_as(secret, method, path, body);
            assert_eq!(status, 401, "{path}: {answer}");
        }
    }
    // Bad shapes: no nonce, an empty or overlong code, a control character, an unknown field.
    for bad in [
        json!({"realm": "demo", "username": "alice", "code": codes[0]}),
        json!({"realm": "demo", "username": "alice", "code": "", "nonce": NONCE}),
        json!({"realm": "demo", "username": "alice", "code": "A".repeat(65), "nonce": NONCE}),
        json!({"realm": "demo", "username": "alice", "code": "AB\nCD", "nonce": NONCE}),
        json!({"realm": "demo", "username": "alice", "code": codes[0], "nonce": NONCE, "user": "bob"}),
    ] {
        let (status, answer) = env.call("POST", "/v1/backup-codes/verify", Some(bad));
        assert!(status == 400 || status == 422, "{status} {answer}");
    }
    // The shim may not set the action of a login's context.
    let (status, answer) = env.call(
        "POST",
        "/v1/backup-codes",
        Some(json!({"realm": "demo", "username": "alice", "context": {"action": "add_device"}})),
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_context"))
    );
    // Nothing above used the code.
    let (status, answer) = env.verify("demo", "alice", &codes[0], None);
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn issue12_a_denied_issuance_gives_no_codes_and_keeps_the_old_set() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let codes = env.issue("alice", &phone);
    let started = env.start_issue("alice");
    let id = started["id"].as_str().unwrap().to_owned();
    let push = find_challenge(&phone, &id_of_push(&phone, &started));
    phone.respond(&push, Decision::Deny, "").unwrap();
    let (_, state) = env.call("GET", &format!("/v1/backup-codes/{id}?wait=10"), None);
    assert_eq!(state["state"], "approval_refused", "{state}");
    assert_eq!(state["outcome"], "denied");
    assert!(state.get("codes").is_none());
    let (status, body) = env.verify("demo", "alice", &codes[0], None);
    assert_eq!(
        status, 200,
        "the old set was voided by a denied issuance: {body}"
    );
}

#[test]
fn issue12_a_code_used_instead_of_the_push_cancels_that_push() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let codes = env.issue("alice", &phone);
    let (status, login) = env.call(
        "POST",
        "/v1/logins",
        Some(json!({"realm": "demo", "username": "alice", "nonce": NONCE, "session": SESSION, "context": {"client": "app"}})),
    );
    assert_eq!(status, 201, "{login}");
    let id = login["id"].as_str().unwrap();
    // A wrong code leaves the push as it is.
    let (status, _) = env.verify("demo", "alice", "ZZZZ-ZZZZ-ZZZZ-ZZZZ", Some(SESSION));
    assert_eq!(status, 403);
    let (_, state) = env.call("GET", &format!("/v1/logins/{id}"), None);
    assert_eq!(state["state"], "pending");
    let (status, body) = env.verify("demo", "alice", &codes[0], Some(SESSION));
    assert_eq!(status, 200, "{body}");
    let (_, state) = env.call("GET", &format!("/v1/logins/{id}?wait=5"), None);
    assert_eq!(state["state"], "cancelled", "{state}");
    assert!(
        phone.pending(0).unwrap().is_empty(),
        "the push is still open on the device"
    );
}

#[test]
fn issue12_a_backup_code_approves_adding_a_device_once() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let codes = env.issue("alice", &phone);
    let enroll = |code: &str| {
        env.call(
            "POST",
            "/v1/enrollments",
            Some(json!({"realm": "demo", "username": "alice", "session": SESSION, "backup_code": code})),
        )
    };
    let (status, body) = enroll("ZZZZ-ZZZZ-ZZZZ-ZZZZ");
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("backup_code_invalid")),
        "{body}"
    );
    let (status, created) = enroll(&codes[0]);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "pending", "{created}");
    assert!(created["url"].as_str().unwrap().contains("/enroll?token="));
    let replacement = created["replacement"].as_str().unwrap();
    assert!(!codes.contains(&replacement.to_owned()));
    // No push went to the (lost) phone, and the code is used up.
    assert!(phone.pending(0).unwrap().is_empty());
    let (status, _) = enroll(&codes[0]);
    assert_eq!(status, 403);
    // The state call never repeats the replacement.
    let id = created["id"].as_str().unwrap();
    let (_, state) = env.call("GET", &format!("/v1/enrollments/{id}"), None);
    assert_eq!(state["state"], "pending");
    assert!(state.get("replacement").is_none(), "{state}");
}

#[test]
fn issue12_guessing_is_limited_and_a_locked_user_is_told_so() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let codes = env.issue("alice", &phone);
    // Not a code at all: the same "not valid" (no 502 for a typo).
    let (status, body) = env.verify("demo", "alice", "abc", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("backup_code_invalid")),
        "{body}"
    );
    let mut locked = None;
    for i in 0..12 {
        let (status, body) = env.verify("demo", "alice", "ZZZZ-ZZZZ-ZZZZ-ZZZZ", None);
        if status == 429 {
            locked = Some(i);
            assert_eq!(body["error"], "user_locked", "{body}");
            break;
        }
        assert_eq!(status, 403, "{body}");
    }
    assert!(locked.is_some(), "twelve wrong codes and no lock");
    // Locked: even a right code is refused, and says so.
    let (status, body) = env.verify("demo", "alice", &codes[0], None);
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("user_locked")),
        "{body}"
    );
}
