//! Helpers for the server's integration tests, on the shared test kit (`pushauth-testkit`):
//! a server on 127.0.0.1:0 with the sweeper off, relying-party calls, and a device double that
//! signs its requests with proto.

#![allow(dead_code, unused_imports)]

use std::ops::{Deref, DerefMut};

use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::signing::{enroll_message, response_message, ResponseFields};
use pushauth_proto::{b64, context_digest, Context, Decision, DeviceSigningKey};
use pushauth_server::ServerConfig;
use pushauth_testkit::TestServer;
use serde_json::{json, Value};

pub use pushauth_testkit::{agent, assert_error, call, Resp};

pub const ADMIN: &str = pushauth_testkit::ADMIN_TOKEN;

/// The kit's server; `Deref` gives its fields (`url`, `dir`, `server`, `config`) and calls
/// (`call`, `admin`, `rp`, `data_dir`, `restart`).
pub struct Srv(pub TestServer);

impl Deref for Srv {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl DerefMut for Srv {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.0
    }
}

pub fn start() -> Srv {
    start_with(|_| {})
}

pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Srv {
    Srv(TestServer::start_with(|config| {
        // Tests that need the sweeper turn it on; expiry must work without it.
        config.sweep_interval_secs = 0;
        tweak(config);
    }))
}

impl Srv {
    /// A new relying party's API key.
    pub fn rp_key(&self) -> String {
        self.api_key()
    }

    /// A new relying party with rights (`body` is the admin API's request); its id and key.
    pub fn rp_with(&self, body: Value) -> (String, String) {
        let rp = self.add_rp(body);
        (rp.id, rp.api_key)
    }

    /// Redeems an enrollment token with a fresh key; the device (panics unless it worked).
    pub fn redeem(&self, token: &str, user: &str, name: &str) -> Device {
        let key = DeviceSigningKey::generate().unwrap();
        let r = self.call(
            "POST",
            "/v1/device/enroll",
            None,
            Some(&enroll_body(token, &key, name)),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        Device {
            id: r.json["device_id"].as_str().unwrap().to_owned(),
            user: user.to_owned(),
            key,
        }
    }

    /// An enrollment token for `user`.
    pub fn enrollment(&self, user: &str, ttl: Option<u64>) -> String {
        self.0.enrollment(user, ttl).token
    }

    /// Enrolls a fresh device for `user` (the kit's enrollment), as a double holding its key.
    pub fn device(&self, user: &str) -> Device {
        let device = self.enroll(user, "test phone");
        Device {
            id: device.id().to_owned(),
            user: user.to_owned(),
            key: device.signing_key(),
        }
    }

    /// Creates a challenge; returns the response and what a device needs to answer it.
    pub fn create(&self, key: &str, user: &str, extra: Value) -> (Resp, Option<Challenge>) {
        let nonce = pushauth_proto::random::rp_nonce().unwrap();
        let mut context = Context::new();
        context.insert("service".into(), "sshd".into());
        context.insert("host".into(), "web01".into());
        let mut body = json!({
            "user": user,
            "context": context,
            "rp_nonce": b64::encode(nonce),
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        let r = self.rp(key, "POST", "/v1/challenges", Some(body));
        let challenge = (r.status == 201).then(|| Challenge {
            id: r.json["id"].as_str().unwrap().to_owned(),
            user: user.to_owned(),
            code: r.json["code"].as_str().map(str::to_owned),
            rp_nonce: nonce,
            digest: context_digest(&context),
        });
        (r, challenge)
    }

    /// Creates a challenge that must succeed.
    pub fn challenge(&self, key: &str, user: &str) -> Challenge {
        let (r, c) = self.create(key, user, json!({}));
        assert_eq!(r.status, 201, "{}", r.text);
        c.unwrap()
    }

    pub fn status(&self, key: &str, id: &str) -> Resp {
        self.rp(key, "GET", &format!("/v1/challenges/{id}"), None)
    }

    pub fn audit(&self) -> Vec<Value> {
        let r = self.admin("GET", "/v1/admin/audit?limit=1000", None);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["events"].as_array().unwrap().clone()
    }

    pub fn audit_kinds(&self) -> Vec<String> {
        self.audit()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub fn enroll_body(token: &str, key: &DeviceSigningKey, name: &str) -> Vec<u8> {
    let public = key.public_key();
    let alg = public.alg().as_str();
    let proof = key.sign_b64(&enroll_message(token, alg, &public.to_bytes()));
    serde_json::to_vec(&json!({
        "token": token,
        "name": name,
        "alg": alg,
        "public_key": public.to_b64(),
        "proof": proof,
    }))
    .unwrap()
}

pub struct Challenge {
    pub id: String,
    pub user: String,
    pub code: Option<String>,
    pub rp_nonce: [u8; 32],
    pub digest: [u8; 32],
}

pub struct Device {
    pub id: String,
    pub user: String,
    pub key: DeviceSigningKey,
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Device {
    /// The Authorization header for a request.
    pub fn header(&self, method: &str, path: &str, body: &[u8], ts: i64) -> String {
        DeviceAuth::sign(&self.key, &self.id, method, path, body, ts)
            .unwrap()
            .to_string()
    }

    pub fn send(&self, srv: &Srv, method: &str, path: &str, body: &[u8]) -> Resp {
        let header = self.header(method, path, body, now_secs());
        srv.call(method, path, Some(&header), Some(body))
    }

    pub fn pending(&self, srv: &Srv, wait: u64) -> Resp {
        self.send(
            srv,
            "GET",
            &format!("/v1/device/challenges?wait={wait}"),
            b"",
        )
    }

    pub fn ack(&self, srv: &Srv, id: &str) -> Resp {
        self.send(srv, "POST", &format!("/v1/device/challenges/{id}/ack"), b"")
    }

    /// The signed answer body for a challenge.
    pub fn answer_body(&self, c: &Challenge, decision: Decision, code: &str) -> Vec<u8> {
        let responded_at = "2026-01-01T00:00:00Z";
        let signature = self.key.sign_b64(&response_message(&ResponseFields {
            challenge_id: &c.id,
            user: &c.user,
            device_id: &self.id,
            rp_nonce: &c.rp_nonce,
            context_digest: &c.digest,
            decision,
            code,
            responded_at,
        }));
        serde_json::to_vec(&json!({
            "decision": decision,
            "code": code,
            "responded_at": responded_at,
            "signature": signature,
        }))
        .unwrap()
    }

    pub fn answer(&self, srv: &Srv, c: &Challenge, decision: Decision, code: &str) -> Resp {
        let body = self.answer_body(c, decision, code);
        self.send(
            srv,
            "POST",
            &format!("/v1/device/challenges/{}/response", c.id),
            &body,
        )
    }

    /// Approves with the right code.
    pub fn approve(&self, srv: &Srv, c: &Challenge) -> Resp {
        let code = c.code.clone().unwrap_or_default();
        self.answer(srv, c, Decision::Approve, &code)
    }
}

/// The offline code `dev` shows for `counter` (its enrollment's HOTP secret).
pub fn offline_code(dev: &pushauth_testkit::TestDevice, counter: u64) -> String {
    let secret = dev.profile.offline.as_ref().expect("an offline secret");
    secret.code(counter).unwrap().to_string()
}

/// `POST /v1/users/{user}/offline-used` for `dev`'s code `counter`, with its right value.
pub fn report(
    srv: &Srv,
    key: &str,
    user: &str,
    dev: &pushauth_testkit::TestDevice,
    counter: u64,
) -> Resp {
    report_with(
        srv,
        key,
        user,
        dev.id(),
        counter,
        &offline_code(dev, counter),
    )
}

/// `POST /v1/users/{user}/offline-used` with any `code`.
pub fn report_with(
    srv: &Srv,
    key: &str,
    user: &str,
    device: &str,
    counter: u64,
    code: &str,
) -> Resp {
    srv.rp(
        key,
        "POST",
        &format!("/v1/users/{user}/offline-used"),
        Some(
            json!({"device_id": device, "counter": counter, "code": code,
                    "used_at": "2026-11-30T12:00:00Z"}),
        ),
    )
}

/// Refusals of `kind` the audit log holds: rows counted with their `count` (coalesced rows).
pub fn audit_count(srv: &Srv, kind: &str) -> u64 {
    srv.audit()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["count"].as_u64().unwrap_or(1))
        .sum()
}

/// Waits (10 s at most, for the sweeper to write coalesced counts) until [`audit_count`] of
/// `kind` is `want`.
pub fn wait_audit_count(srv: &Srv, kind: &str, want: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = audit_count(srv, kind);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{kind}: {got} counted, want {want}: {:?}",
            srv.audit()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// An approved challenge of `key`'s relying party for `dev`'s user (approved with its code).
pub fn approved_login(srv: &Srv, key: &str, dev: &pushauth_testkit::TestDevice) -> String {
    let c = srv.challenge(key, &dev.profile.user);
    let status = dev.approve(&c.id, c.code.as_deref().unwrap_or(""));
    assert_eq!(status.state.as_str(), "approved");
    c.id
}

/// `POST /v1/challenges/{id}/offline` with `have`.
pub fn offline_values(srv: &Srv, key: &str, id: &str, have: Value) -> Resp {
    srv.rp(
        key,
        "POST",
        &format!("/v1/challenges/{id}/offline"),
        Some(json!({ "have": have })),
    )
}

/// `pushauth_slow_hash_jobs_total` from `/metrics`: Argon2id jobs the server has run.
pub fn slow_hash_jobs(srv: &Srv) -> u64 {
    let text = srv.call("GET", "/metrics", None, None).text;
    text.lines()
        .find_map(|l| l.strip_prefix("pushauth_slow_hash_jobs_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pushauth_slow_hash_jobs_total in {text}"))
}
