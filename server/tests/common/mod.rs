//! Helpers for the server's integration tests: a server on 127.0.0.1:0, a tiny HTTP client, and
//! a device double that signs its requests with proto.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use pushauth_proto::auth::DeviceAuth;
use pushauth_proto::signing::{enroll_message, response_message, ResponseFields};
use pushauth_proto::{b64, context_digest, Context, Decision, DeviceSigningKey};
use pushauth_server::{RunningServer, ServerConfig};
use serde_json::{json, Value};

pub const ADMIN: &str = "test-admin-token-0123456789";

pub struct Srv {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub config: ServerConfig,
}

pub fn config_for(dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.join("data"),
        ADMIN.to_owned(),
    );
    // Tests that need the sweeper turn it on; expiry must work without it.
    config.sweep_interval_secs = 0;
    config
}

pub fn start() -> Srv {
    start_with(|_| {})
}

pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    tweak(&mut config);
    let server = RunningServer::start(config.clone()).unwrap();
    // Restarts reuse the port.
    config.listen = server.addr();
    Srv {
        url: server.url(),
        server: Some(server),
        dir,
        config,
    }
}

impl Srv {
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Stops the server and starts it again on the same data dir and address.
    pub fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        let server = RunningServer::start(self.config.clone()).unwrap();
        assert_eq!(server.url(), self.url);
        self.server = Some(server);
    }

    pub fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&[u8]>) -> Resp {
        call(method, &format!("{}{}", self.url, path), auth, body)
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.call(
            method,
            path,
            Some(&format!("Bearer {ADMIN}")),
            bytes.as_deref(),
        )
    }

    pub fn rp(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.call(
            method,
            path,
            Some(&format!("Bearer {key}")),
            bytes.as_deref(),
        )
    }

    /// A new relying party's API key.
    pub fn rp_key(&self) -> String {
        let r = self.admin(
            "POST",
            "/v1/admin/relying-parties",
            Some(json!({"name": "test rp"})),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["api_key"].as_str().unwrap().to_owned()
    }

    /// A new relying party with rights (`body` is the admin API's request); its id and key.
    pub fn rp_with(&self, body: Value) -> (String, String) {
        let r = self.admin("POST", "/v1/admin/relying-parties", Some(body));
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.json["id"].as_str().unwrap().to_owned(),
            r.json["api_key"].as_str().unwrap().to_owned(),
        )
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
        let mut body = json!({"user": user});
        if let Some(ttl) = ttl {
            body["ttl_secs"] = json!(ttl);
        }
        let r = self.admin("POST", "/v1/admin/enrollments", Some(body));
        assert_eq!(r.status, 201, "{}", r.text);
        let url = r.json["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/enroll?token=", self.url)),
            "{url}"
        );
        r.json["token"].as_str().unwrap().to_owned()
    }

    /// Enrolls a fresh device for `user`.
    pub fn device(&self, user: &str) -> Device {
        let token = self.enrollment(user, None);
        let key = DeviceSigningKey::generate().unwrap();
        let r = self.call(
            "POST",
            "/v1/device/enroll",
            None,
            Some(&enroll_body(&token, &key, "test phone")),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["user"], user);
        Device {
            id: r.json["device_id"].as_str().unwrap().to_owned(),
            user: user.to_owned(),
            key,
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
    let proof = key.sign_b64(&enroll_message(token, "ed25519", &public.to_bytes()));
    serde_json::to_vec(&json!({
        "token": token,
        "name": name,
        "alg": "ed25519",
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

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub text: String,
    pub json: Value,
    pub content_type: String,
}

impl Resp {
    /// The API error code of an error response.
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("<none>")
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

pub fn call(method: &str, url: &str, auth: Option<&str>, body: Option<&[u8]>) -> Resp {
    let mut req = agent().request(method, url);
    if let Some(auth) = auth {
        req = req.set("Authorization", auth);
    }
    let result = match body {
        Some(body) => req.set("Content-Type", "application/json").send_bytes(body),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_owned();
    let text = response.into_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        text,
        json,
        content_type,
    }
}

/// Asserts an error response: status, code, and a JSON body.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.error(), code, "{}", r.text);
    assert!(r.json["message"].is_string(), "{}", r.text);
}
