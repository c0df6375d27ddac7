//! The sidecar against a real pushauthd (in process, on 127.0.0.1) with simulated devices
//! (the `pushauth-device` library): logins approved, denied, mismatched, cancelled; enrollment;
//! devices; the CIBA channel with a stand-in Keycloak callback; auth and input errors; realm
//! mapping, TLS and deadlines (issue 9).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pushauth_device::{Decision, DeviceClient};
use pushauth_idp_sidecar::config::CibaSettings;
use pushauth_idp_sidecar::realms::{Realm, Realms};
use pushauth_idp_sidecar::{ResultToken, RunningSidecar, Settings};
use pushauth_proto::{b64, DevicePublicKey, DeviceSigningKey};
use pushauth_testkit::{find_challenge, TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};
use zeroize::Zeroizing;

const SECRET: &str = "shim-shared-secret-0123456789";
const CIBA_KEY: &str = "ciba-channel-key-0123456789";

struct Env {
    /// pushauthd (the shared test kit's); `None` once a test has stopped it.
    server: Option<TestServer>,
    sidecar: RunningSidecar,
    agent: ureq::Agent,
}

/// An admin call to the pushauthd at `server_url`; its JSON answer (`Null` when not JSON).
fn admin(server_url: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string().into_bytes());
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = pushauth_testkit::call(
        method,
        &format!("{server_url}{path}"),
        Some(&auth),
        body.as_deref(),
    );
    // An unknown user's device list (404): the caller sees no devices.
    assert!(
        (200..300).contains(&r.status) || r.status == 404,
        "{method} {path}: {} {}",
        r.status,
        r.text
    );
    r.json
}

impl Env {
    fn start() -> Env {
        Self::start_with(None)
    }

    fn start_with(ciba_keycloak: Option<String>) -> Env {
        Self::start_full(ciba_keycloak, Duration::from_secs(30))
    }

    fn start_full(ciba_keycloak: Option<String>, login_ttl: Duration) -> Env {
        Self::start_custom(ciba_keycloak, login_ttl, |_| {})
    }

    /// The test realms: `demo` shares user names with pushauthd (and lets users enroll their
    /// first device), `other` maps to `other/<name>` and does not.
    fn realms() -> Realms {
        Realms::new([
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
        .unwrap()
    }

    fn start_custom(
        ciba_keycloak: Option<String>,
        login_ttl: Duration,
        tweak: impl FnOnce(&mut Settings),
    ) -> Env {
        let server = TestServer::start();
        let rp = server.add_rp(json!({"name": "sidecar", "enroll": true, "bootstrap": true}));
        let mut settings = Settings::new(
            vec![server.url()],
            Zeroizing::new(rp.api_key),
            Zeroizing::new(SECRET.into()),
            DeviceSigningKey::generate().unwrap(),
        );
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.realms = Self::realms();
        settings.login_ttl = login_ttl;
        settings.ciba = ciba_keycloak.map(|url| CibaSettings {
            key: Zeroizing::new(CIBA_KEY.into()),
            keycloak_url: url,
            ttl: Duration::from_secs(30),
        });
        tweak(&mut settings);
        let sidecar = RunningSidecar::start(settings).unwrap();
        Env {
            server: Some(server),
            sidecar,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(40))
                .build(),
        }
    }

    fn server_url(&self) -> String {
        self.server.as_ref().unwrap().url()
    }

    /// A shim call: (status, body).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(Some(SECRET), method, path, body)
    }

    fn call_as(
        &self,
        secret: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.sidecar.url()));
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

    /// Enrolls a device for a pushauthd user as an administrator would (`pushauthd enroll`).
    fn enroll(&self, user: &str, name: &str) -> DeviceClient {
        self.server.as_ref().unwrap().enroll(user, name).client
    }

    /// The pushauthd user's active devices, as the administrator sees them.
    fn admin_devices(&self, user: &str) -> Vec<Value> {
        let list = admin(
            &self.server_url(),
            "GET",
            &format!("/v1/admin/users/{}/devices", user.replace('/', "%2F")),
            None,
        );
        list["devices"].as_array().cloned().unwrap_or_default()
    }

    fn start_login(&self, user: &str, nonce: &str) -> Value {
        let (status, body) = self.call("POST", "/v1/logins", Some(login_body("demo", user, nonce)));
        assert_eq!(status, 201, "{body}");
        body
    }

    fn state(&self, id: &str, wait: u64) -> Value {
        let (status, body) = self.call("GET", &format!("/v1/logins/{id}?wait={wait}"), None);
        assert_eq!(status, 200, "{body}");
        body
    }

    fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey::from_wire("ed25519", self.sidecar.public_key()).unwrap()
    }
}

const NONCE: &str = "shim-nonce-0123456789abcdef";

fn login_body(realm: &str, username: &str, nonce: &str) -> Value {
    json!({"realm": realm, "username": username, "nonce": nonce, "context": {"client": "app", "ip": "192.0.2.9", "user_agent": "Test/1.0"}})
}

#[test]
fn approved_login_carries_a_verifiable_result_token() {
    let env = Env::start();
    let device = env.enroll("alice", "alice-phone");
    let login = env.start_login("alice", NONCE);
    let id = login["id"].as_str().unwrap();
    let code = login["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6, "pushauthd's default code_digits");
    assert_eq!(login["state"], "pending");
    assert_eq!(login["devices"][0]["name"], "alice-phone");
    assert!(login.get("result").is_none());

    // Still pending: a short poll says so without a token.
    assert_eq!(env.state(id, 0)["state"], "pending");

    let challenge = find_challenge(&device, id);
    assert_eq!(challenge.context["realm"], "demo");
    assert_eq!(challenge.context["service"], "keycloak");
    assert!(challenge.code_required);
    let approver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        device
            .respond(&challenge, Decision::Approve, &code)
            .unwrap();
    });
    // The long-poll returns as soon as the answer arrives.
    let started = Instant::now();
    let state = env.state(id, 20);
    assert!(started.elapsed() < Duration::from_secs(10));
    approver.join().unwrap();
    assert_eq!(state["state"], "approved", "{state}");
    assert_eq!(state["device_name"], "alice-phone");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.challenge_id, id);
    assert_eq!(token.user, "alice");
    assert_eq!(token.nonce, NONCE);
    assert_eq!(token.outcome, "approved");
    assert!(token.verify(&env.public_key()).is_ok());
    // A token from another key does not verify.
    let other = DeviceSigningKey::generate().unwrap().public_key();
    assert!(token.verify(&other).is_err());

    // The public key is published.
    let (_, pk) = env.call_as(None, "GET", "/v1/public-key", None);
    assert_eq!(pk["public_key"], env.sidecar.public_key());

    // Metrics count it.
    let metrics = env
        .agent
        .get(&format!("{}/metrics", env.sidecar.url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("pushauth_sidecar_logins_started_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pushauth_sidecar_login_outcomes_total{outcome=\"approved\"} 1"),
        "{metrics}"
    );
}

#[test]
fn denied_reported_and_mismatched_logins_end_without_approval() {
    let env = Env::start();
    let device = env.enroll("bob", "bob-phone");
    for (decision, typed, expected) in [
        (Decision::Deny, None, "denied"),
        (Decision::Approve, Some("wrong"), "code_mismatch"),
    ] {
        let login = env.start_login("bob", NONCE);
        let id = login["id"].as_str().unwrap();
        let challenge = find_challenge(&device, id);
        let code = login["code"].as_str().unwrap();
        let typed = match typed {
            // A wrong code of the right length: each digit moved by one.
            Some(_) => code
                .bytes()
                .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
                .collect(),
            None => String::new(),
        };
        device.respond(&challenge, decision, &typed).unwrap();
        let state = env.state(id, 10);
        assert_eq!(state["state"], expected, "{state}");
        let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
        assert_eq!(token.outcome, expected);
        assert!(token.verify(&env.public_key()).is_ok());
    }
    // A report ends it as reported and locks further pushes from that source (429
    // user_locked); since issue 9 item 13 a login from another address is not locked out.
    let login = env.start_login("bob", NONCE);
    let id = login["id"].as_str().unwrap();
    let challenge = find_challenge(&device, id);
    device.respond(&challenge, Decision::Report, "").unwrap();
    assert_eq!(env.state(id, 10)["state"], "reported");
    let (status, body) = env.call("POST", "/v1/logins", Some(login_body("demo", "bob", NONCE)));
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("user_locked")),
        "{body}"
    );
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(json!({"realm": "demo", "username": "bob", "nonce": NONCE, "context": {"client": "app", "ip": "198.51.100.4"}})),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn cancel_ends_a_login_once() {
    let env = Env::start();
    let _device = env.enroll("carol", "carol-phone");
    let login = env.start_login("carol", NONCE);
    let id = login["id"].as_str().unwrap();
    let (status, body) = env.call("DELETE", &format!("/v1/logins/{id}"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert_eq!(env.state(id, 5)["state"], "cancelled");
    let (status, body) = env.call("DELETE", &format!("/v1/logins/{id}"), None);
    assert_eq!((status, body["error"].as_str()), (409, Some("wrong_state")));
}

#[test]
fn users_without_devices_get_a_clear_404() {
    let env = Env::start();
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "nobody", NONCE)),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_user");
    // A known user whose only device was removed.
    let device = env.enroll("dave", "dave-phone");
    admin(
        &env.server_url(),
        "DELETE",
        &format!("/v1/admin/devices/{}", device.device_id()),
        None,
    );
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "dave", NONCE)),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"] == "no_device" || body["error"] == "unknown_user",
        "{body}"
    );
}

#[test]
fn enrollment_is_seen_and_devices_are_managed() {
    let env = Env::start();
    // erin has no device; realm demo allows bootstrap: the link comes at once.
    let (status, created) = env.call(
        "POST",
        "/v1/enrollments",
        Some(json!({"realm": "demo", "username": "erin"})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "pending", "{created}");
    let url = created["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/enroll?token=", env.server_url())),
        "{url}"
    );
    assert!(created["qr_svg"].as_str().unwrap().contains("<svg"));
    let enroll_id = created["id"].as_str().unwrap();
    let (_, state) = env.call("GET", &format!("/v1/enrollments/{enroll_id}?wait=0"), None);
    assert_eq!(state["state"], "pending");

    let link = url.to_string();
    let enroller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        DeviceClient::enroll(&link, "erin-laptop", None).unwrap()
    });
    let (status, state) = env.call("GET", &format!("/v1/enrollments/{enroll_id}?wait=10"), None);
    let profile = enroller.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(state["state"], "enrolled", "{state}");
    assert_eq!(state["device"]["name"], "erin-laptop");
    let device_id = DeviceClient::new(&profile).unwrap().device_id().to_string();
    assert_eq!(state["device"]["id"], device_id.as_str());

    let (_, list) = env.call("GET", "/v1/realms/demo/users/erin/devices", None);
    assert_eq!(list["user"], "erin");
    assert_eq!(list["devices"].as_array().unwrap().len(), 1);
    assert_eq!(list["devices"][0]["name"], "erin-laptop");

    // Someone else's device id is not removable through erin.
    let other = env.enroll("frank", "frank-phone");
    let (status, body) = env.call(
        "DELETE",
        &format!("/v1/realms/demo/users/erin/devices/{}", other.device_id()),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_device"))
    );
    let (status, body) = env.call(
        "DELETE",
        &format!("/v1/realms/demo/users/erin/devices/{device_id}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["device"]["id"], device_id.as_str());
    let (_, list) = env.call("GET", "/v1/realms/demo/users/erin/devices", None);
    assert!(list["devices"].as_array().unwrap().is_empty());
    let (_, list) = env.call("GET", "/v1/realms/demo/users/frank/devices", None);
    assert_eq!(list["devices"].as_array().unwrap().len(), 1);
}

/// Issue 9 item 1, scenario (a): alice has a phone (enrolled by the administrator, for SSH).
/// Whoever holds her IdP password asks for an enrollment link: the sidecar first pushes
/// "Add a new device?" to her phone; denied → no link and no new device in pushauthd; approved
/// with the shown code → the link comes, and the new device is hers.
#[test]
fn issue9_item1_adding_a_device_needs_the_existing_device_to_approve() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");
    let start = json!({"realm": "demo", "username": "alice", "device_name": "attacker-phone",
        "session": "keycloak-session-0123456789", "context": {"ip": "198.51.100.7"}});

    let (status, created) = env.call("POST", "/v1/enrollments", Some(start.clone()));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "approval_pending", "{created}");
    assert!(
        created.get("url").is_none(),
        "a link before approval: {created}"
    );
    assert_eq!(created["devices"][0], "alice-phone");
    let code = created["code"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();

    // The push on the existing device says what it is.
    let pending = phone.pending(10).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let challenge = pending.into_iter().next().unwrap();
    assert_eq!(challenge.context["action"], "add_device");
    assert_eq!(challenge.context["device_name"], "attacker-phone");
    assert_eq!(challenge.context["realm"], "demo");
    assert!(challenge.code_required);
    // An add-device push is not a login: the login API does not show or cancel it.
    let (status, _) = env.call("GET", &format!("/v1/logins/{}", challenge.id), None);
    assert_eq!(status, 404);

    phone.respond(&challenge, Decision::Deny, "").unwrap();
    let (_, state) = env.call("GET", &format!("/v1/enrollments/{id}?wait=10"), None);
    assert_eq!(state["state"], "approval_refused", "{state}");
    assert_eq!(state["outcome"], "denied");
    assert!(state.get("url").is_none(), "{state}");
    assert_eq!(env.admin_devices("alice").len(), 1);

    // The owner approves with the code shown: now the link comes.
    let (status, created) = env.call("POST", "/v1/enrollments", Some(start));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let code2 = created["code"].as_str().unwrap().to_string();
    let _ = code;
    let challenge = find_challenge(&phone, &phone.pending(10).unwrap()[0].id.clone());
    phone
        .respond(&challenge, Decision::Approve, &code2)
        .unwrap();
    let (_, state) = env.call("GET", &format!("/v1/enrollments/{id}?wait=10"), None);
    assert_eq!(state["state"], "pending", "{state}");
    let url = state["url"].as_str().unwrap().to_string();
    let profile = DeviceClient::enroll(&url, "new-phone", None).unwrap();
    let (_, state) = env.call("GET", &format!("/v1/enrollments/{id}?wait=10"), None);
    assert_eq!(state["state"], "enrolled", "{state}");
    assert_eq!(
        state["device"]["id"],
        DeviceClient::new(&profile).unwrap().device_id()
    );
    assert_eq!(env.admin_devices("alice").len(), 2);
}

/// Issue 9 item 1, scenario (b): a second realm with a user `alice` maps to `other/alice`, never
/// to pushauthd's `alice`; with bootstrap off there it cannot enroll at all; a realm with no
/// rule is refused outright.
#[test]
fn issue9_item1_other_realms_never_reach_the_user_of_another() {
    let env = Env::start();
    let phone = env.enroll("alice", "alice-phone");

    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("other", "alice", NONCE)),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_user");
    let (_, list) = env.call("GET", "/v1/realms/other/users/alice/devices", None);
    assert_eq!(list["user"], "other/alice");
    assert!(list["devices"].as_array().unwrap().is_empty(), "{list}");
    let (status, body) = env.call(
        "POST",
        "/v1/enrollments",
        Some(json!({"realm": "other", "username": "alice"})),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("bootstrap_not_allowed")),
        "{body}"
    );
    assert!(env.admin_devices("other/alice").is_empty());

    for (method, path, body) in [
        (
            "POST",
            "/v1/logins".to_string(),
            Some(login_body("selfservice", "alice", NONCE)),
        ),
        (
            "POST",
            "/v1/enrollments".to_string(),
            Some(json!({"realm": "selfservice", "username": "alice"})),
        ),
        (
            "GET",
            "/v1/realms/selfservice/users/alice/devices".to_string(),
            None,
        ),
        (
            "DELETE",
            format!(
                "/v1/realms/selfservice/users/alice/devices/{}",
                phone.device_id()
            ),
            None,
        ),
    ] {
        let (status, answer) = env.call(method, &path, body);
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("realm_not_configured")),
            "{method} {path}: {answer}"
        );
    }
    // A user name that would reach into another realm's namespace is refused.
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "other/alice", NONCE)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_request")),
        "{body}"
    );
    // And a login context cannot pass for an add-device approval.
    let mut login = login_body("demo", "alice", NONCE);
    login["context"]["action"] = json!("add_device");
    let (status, body) = env.call("POST", "/v1/logins", Some(login));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_context")),
        "{body}"
    );
    // Nothing reached alice's phone.
    assert!(phone.pending(0).unwrap().is_empty());
}

/// Issue 9 item 3: removing the device through the shim revokes it in pushauthd, and the next
/// push login has no device.
#[test]
fn issue9_item3_removing_a_device_revokes_it_in_pushauthd() {
    let env = Env::start();
    let phone = env.enroll("ruth", "ruth-phone");
    let (status, body) = env.call(
        "DELETE",
        &format!("/v1/realms/demo/users/ruth/devices/{}", phone.device_id()),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(env.admin_devices("ruth").is_empty());
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "ruth", NONCE)),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"] == "no_device" || body["error"] == "unknown_user",
        "{body}"
    );
}

/// Issue 9 item 13: re-entering the push step (reload, back, "send again") with the same login
/// session cancels the earlier challenge instead of opening another.
#[test]
fn issue9_item13_reentering_the_push_step_cancels_the_earlier_challenge() {
    let env = Env::start();
    let phone = env.enroll("paul", "paul-phone");
    let mut body = login_body("demo", "paul", NONCE);
    body["session"] = json!("keycloak-tab-0123456789abcdef");
    let (status, first) = env.call("POST", "/v1/logins", Some(body.clone()));
    assert_eq!(status, 201, "{first}");
    let (status, second) = env.call("POST", "/v1/logins", Some(body.clone()));
    assert_eq!(status, 201, "{second}");
    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    assert_ne!(first_id, second_id);
    assert_eq!(env.state(first_id, 0)["state"], "cancelled");
    let open: Vec<String> = phone
        .pending(2)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        open,
        vec![second_id.to_string()],
        "only the new push is open"
    );
    // Another session of the same user is a different login: both stay open.
    body["session"] = json!("another-tab-0123456789abcdef");
    let (status, third) = env.call("POST", "/v1/logins", Some(body));
    assert_eq!(status, 201, "{third}");
    assert_eq!(env.state(second_id, 0)["state"], "pending");
}

/// Issue 9 item 8 (sidecar part): a pushauthd that accepts connections and never answers does
/// not hold a shim request beyond `call_timeout`.
#[test]
fn issue9_item8_a_hung_pushauthd_is_bounded_by_the_call_deadline() {
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in hung.incoming().take(4) {
            conns.push(conn);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let env = Env::start_custom(None, Duration::from_secs(30), |s| {
        s.servers = vec![hung_url.clone()];
        s.call_timeout = Duration::from_secs(2);
    });
    let started = Instant::now();
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "alice", NONCE)),
    );
    let took = started.elapsed();
    assert_eq!(
        (status, body["error"].as_str()),
        (504, Some("upstream_timeout")),
        "{body}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    drop(held);
}

/// Issue 9 item 2: the shim API over HTTPS (`[tls]`), checked with a real TLS client that
/// trusts only the test CA; plain HTTP to the TLS port gets no answer.
#[test]
fn issue9_item2_the_shim_api_serves_tls() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tls = pushauth_idp_sidecar::config::TlsSettings {
        cert: cert_path.clone(),
        key: key_path.clone(),
    };
    // A key others can read is refused.
    let mut settings = Settings::new(
        vec!["http://127.0.0.1:1".into()],
        Zeroizing::new("k".into()),
        Zeroizing::new(SECRET.into()),
        DeviceSigningKey::generate().unwrap(),
    );
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.tls = Some(tls.clone());
    let err = RunningSidecar::start(settings).unwrap_err().to_string();
    assert!(err.contains("chmod"), "{err}");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let env = Env::start_custom(None, Duration::from_secs(30), |s| s.tls = Some(tls));
    assert!(env.sidecar.url().starts_with("https://"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(Arc::new(client))
        .timeout(Duration::from_secs(10))
        .build();
    let url = format!("https://127.0.0.1:{}", env.sidecar.addr().port());
    let health: Value = serde_json::from_str(
        &agent
            .get(&format!("{url}/healthz"))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(health["status"], "ok");
    let resp = agent
        .get(&format!("{url}/v1/realms/demo/users/alice/devices"))
        .call();
    assert!(matches!(resp, Err(ureq::Error::Status(401, _))), "{resp:?}");
    // Plain HTTP to the TLS listener gets no HTTP answer.
    let plain = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build()
        .get(&format!(
            "http://127.0.0.1:{}/healthz",
            env.sidecar.addr().port()
        ))
        .call();
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn bad_credentials_and_bad_input_get_clear_4xx() {
    let env = Env::start();
    let login = json!({"realm": "demo", "username": "alice", "nonce": NONCE});
    let (status, body) = env.call_as(None, "POST", "/v1/logins", Some(login.clone()));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = env.call_as(
        Some("shim-shared-secret-012345678X"),
        "POST",
        "/v1/logins",
        Some(login),
    );
    assert_eq!(status, 401);
    let (status, _) = env.call_as(
        Some("wrong"),
        "GET",
        "/v1/realms/demo/users/alice/devices",
        None,
    );
    assert_eq!(status, 401);

    let cases = [
        (
            json!({"realm": "demo", "username": "alice"}),
            "malformed_request",
        ),
        (
            json!({"realm": "demo", "username": "alice", "nonce": "short"}),
            "malformed_request",
        ),
        (
            json!({"realm": "demo", "username": "", "nonce": NONCE}),
            "malformed_request",
        ),
        (
            json!({"user": "alice", "nonce": NONCE}),
            "malformed_request",
        ),
        (
            json!({"realm": "demo", "username": "alice", "nonce": NONCE, "extra": 1}),
            "malformed_request",
        ),
        (
            json!({"realm": "demo", "username": "alice", "nonce": NONCE, "session": "short"}),
            "malformed_request",
        ),
        (
            json!({"realm": "demo", "username": "alice", "nonce": NONCE, "context": {"Bad Key": "x"}}),
            "invalid_context",
        ),
        (
            json!({"realm": "demo", "username": "alice", "nonce": NONCE, "context": {"ip": "1\n2"}}),
            "invalid_context",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = env.call("POST", "/v1/logins", Some(body.clone()));
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{body} -> {answer}"
        );
    }
    let (status, body) = env.call("GET", "/v1/logins/nope", None);
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = env.call("GET", "/v1/logins/nope?wait=99", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_request"))
    );
    let big = "x".repeat(70 * 1024);
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(json!({"realm": "demo", "username": big, "nonce": NONCE})),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    // The CIBA channel is not there without [ciba].
    let (status, _) = env.call_as(
        None,
        "POST",
        &format!("/ciba/{CIBA_KEY}"),
        Some(json!({"login_hint": "alice"})),
    );
    assert_eq!(status, 404);
    let (status, health) = env.call_as(None, "GET", "/healthz", None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

#[test]
fn pushauthd_down_fails_closed_with_502() {
    let mut env = Env::start();
    let _device = env.enroll("gina", "gina-phone");
    env.server.take().unwrap().shutdown();
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "gina", NONCE)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_unreachable")),
        "{body}"
    );
}

/// A stand-in for Keycloak's CIBA callback endpoint: records one request.
fn fake_keycloak() -> (String, mpsc::Receiver<(String, String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut auth = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if lower.starts_with("authorization:") {
                auth = line["authorization:".len()..].trim().to_string();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        tx.send((request_line, auth, String::from_utf8(body).unwrap()))
            .unwrap();
    });
    (url, rx)
}

#[test]
fn ciba_channel_pushes_and_calls_keycloak_back() {
    let (keycloak, callbacks) = fake_keycloak();
    let env = Env::start_with(Some(keycloak.clone()));
    let device = env.enroll("hank", "hank-phone");
    let claims = json!({"iss": format!("{keycloak}/realms/demo"), "azp": "ciba-app", "sub": "x"});
    let bearer = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
        b64::encode(claims.to_string())
    );
    let post = |key: &str, auth: Option<&str>, body: Value| {
        let mut req = env.agent.post(&format!("{}/ciba/{key}", env.sidecar.url()));
        if let Some(auth) = auth {
            req = req.set("Authorization", &format!("Bearer {auth}"));
        }
        match req.send_string(&body.to_string()) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    let request = json!({"login_hint": "hank", "binding_message": "Pay 10 EUR", "is_consent_required": false, "scope": "openid"});
    assert_eq!(
        post("wrong-key-0123456789", Some(&bearer), request.clone()),
        404
    );
    assert_eq!(post(CIBA_KEY, None, request.clone()), 401);
    let evil = format!(
        "x.{}.y",
        b64::encode(json!({"iss": "http://evil.example/realms/demo"}).to_string())
    );
    assert_eq!(post(CIBA_KEY, Some(&evil), request.clone()), 401);
    assert_eq!(post(CIBA_KEY, Some(&bearer), request), 201);

    let pending = device.pending(10).unwrap();
    let challenge = pending.into_iter().next().expect("a CIBA push");
    assert_eq!(challenge.context["message"], "Pay 10 EUR");
    assert_eq!(challenge.context["realm"], "demo");
    assert!(!challenge.code_required);
    device.respond(&challenge, Decision::Approve, "").unwrap();

    let (line, auth, body) = callbacks.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(
        line.trim(),
        "POST /realms/demo/protocol/openid-connect/ext/ciba/auth/callback HTTP/1.1"
    );
    assert_eq!(auth, format!("Bearer {bearer}"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "SUCCEED"})
    );
}

#[test]
fn unanswered_logins_expire_with_a_signed_expired_result() {
    let env = Env::start_full(None, Duration::from_secs(2));
    let _device = env.enroll("ivan", "ivan-phone");
    let login = env.start_login("ivan", NONCE);
    let id = login["id"].as_str().unwrap();
    let started = Instant::now();
    let mut state = env.state(id, 10);
    while state["state"] == "pending" && started.elapsed() < Duration::from_secs(20) {
        state = env.state(id, 5);
    }
    assert_eq!(state["state"], "expired", "{state}");
    let token: ResultToken = serde_json::from_value(state["result"].clone()).unwrap();
    assert_eq!(token.outcome, "expired");
    assert!(token.verify(&env.public_key()).is_ok());
}

/// Issue 9 item 2: the sidecar's key is a relying-party key whose rights pushauthd enforces:
/// scoped to `kc/*` it cannot push to `alice`, and without pushauthd's bootstrap right a realm
/// that allows bootstrap still gets no link for a user with no device.
#[test]
fn issue9_item2_the_sidecar_key_has_only_its_rights() {
    let env = Env::start_custom(None, Duration::from_secs(30), |s| {
        let rp = admin(
            &s.servers[0],
            "POST",
            "/v1/admin/relying-parties",
            Some(json!({"name": "scoped", "users": ["kc/*"], "enroll": true})),
        );
        s.api_key = Zeroizing::new(rp["api_key"].as_str().unwrap().to_string());
        s.realms = Realms::new([
            Realm {
                name: "demo".into(),
                template: "{username}".into(),
                bootstrap: true,
            },
            Realm {
                name: "kc".into(),
                template: "kc/{username}".into(),
                bootstrap: true,
            },
        ])
        .unwrap();
    });
    let phone = env.enroll("alice", "alice-phone");
    let (status, body) = env.call(
        "POST",
        "/v1/logins",
        Some(login_body("demo", "alice", NONCE)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(phone.pending(0).unwrap().is_empty());
    let (status, body) = env.call(
        "POST",
        "/v1/enrollments",
        Some(json!({"realm": "kc", "username": "newcomer"})),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("bootstrap_not_allowed")),
        "{body}"
    );
    assert!(env.admin_devices("kc/newcomer").is_empty());
}
