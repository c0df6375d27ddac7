//! Helpers of the Web Push tests: a subscription's keys as a browser holds them, a push service
//! on loopback that records what it receives and answers as told, and checks of the VAPID JWT.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use pushauth_proto::b64;
use pushauth_server::config::AllowList;
use pushauth_server::store::PushSubscriptionRecord;
use pushauth_server::ServerConfig;
use pushauth_testkit::TestServer;
use serde_json::{json, Value};
use web_push_native::{p256 as wp256, Auth};

/// A subscription's private side, as the browser keeps it.
pub struct SubKeys {
    secret: wp256::SecretKey,
    auth: [u8; 16],
}

impl SubKeys {
    pub fn new() -> SubKeys {
        let bytes = pushauth_proto::random::bytes::<32>().unwrap();
        SubKeys {
            secret: wp256::SecretKey::from_slice(&bytes).unwrap(),
            auth: pushauth_proto::random::bytes::<16>().unwrap(),
        }
    }

    pub fn p256dh(&self) -> String {
        b64::encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    pub fn public_compressed(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec()
    }

    pub fn auth_b64(&self) -> String {
        b64::encode(self.auth)
    }

    /// Decrypts an `aes128gcm` push body (RFC 8291) with this subscription's keys.
    pub fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        web_push_native::decrypt(
            body.to_vec(),
            &self.secret,
            &Auth::clone_from_slice(&self.auth),
        )
        .unwrap()
    }
}

/// The subscriptions stored for these devices (read from the store directly).
pub fn subscriptions(srv: &TestServer, devices: &[&str]) -> Vec<PushSubscriptionRecord> {
    let store = srv.open_store();
    let ids: Vec<String> = devices.iter().map(|d| (*d).to_owned()).collect();
    store.push_subscriptions(&ids).unwrap()
}

/// Allows `origin` besides the defaults.
pub fn allow(config: &mut ServerConfig, origin: &str) {
    let mut entries: Vec<String> = pushauth_server::config::DEFAULT_ORIGINS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    entries.push(origin.to_owned());
    config.web_push.allow = AllowList::parse(&entries).unwrap();
}

/// How the test push service answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status, empty body.
    Status(u16),
    /// This 3xx status with this location.
    Redirect(u16, String),
    /// Never answers (the connection stays open).
    Hang,
}

/// One request the push service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A push service on 127.0.0.1.
pub struct PushService {
    pub port: u16,
    received: Mutex<mpsc::Receiver<Received>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl PushService {
    pub fn start(answer: Answer) -> PushService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let tx = tx.clone();
                let answer = answer.clone();
                let keep = Arc::clone(&keep);
                std::thread::spawn(move || serve(stream, &answer, &tx, &keep));
            }
        });
        PushService {
            port,
            received: Mutex::new(rx),
            held,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next request, waiting up to `within`.
    pub fn next(&self, within: Duration) -> Option<Received> {
        self.received.lock().unwrap().recv_timeout(within).ok()
    }

    /// Connections held open unanswered.
    pub fn hung(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

fn serve(
    stream: TcpStream,
    answer: &Answer,
    tx: &mpsc::Sender<Received>,
    held: &Mutex<Vec<TcpStream>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let _ = tx.send(Received {
        method,
        path,
        headers,
        body,
    });
    let mut stream = stream;
    let response = match answer {
        Answer::Status(code) => {
            format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        Answer::Redirect(status, to) => format!(
            "HTTP/1.1 {status} Moved\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Answer::Hang => {
            held.lock().unwrap().push(stream);
            return;
        }
    };
    let _ = stream.write_all(response.as_bytes());
}

/// A new challenge for `user` (number matching on), its id.
pub fn create_challenge(srv: &TestServer, key: &str, user: &str, ttl_secs: u64) -> String {
    let body = json!({
        "user": user,
        "ttl_secs": ttl_secs,
        "rp_nonce": b64::encode([7u8; 32]),
        "context": {"service": "sshd"},
    });
    let r = srv.rp(key, "POST", "/v1/challenges", Some(body));
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().unwrap().to_owned()
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Checks `vapid t=JWT, k=KEY` (RFC 8292 §3): `k` is the served key and the JWT's ES256
/// signature verifies with it. Returns the claims.
pub fn check_vapid(header: &str, served_key: &str) -> Value {
    let rest = header.strip_prefix("vapid t=").expect(header);
    let (jwt, k) = rest.split_once(", k=").expect(header);
    assert_eq!(k, served_key);
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let (head, claims) = input.split_once('.').unwrap();
    let head: Value = serde_json::from_slice(&b64::decode(head, "h").unwrap()).unwrap();
    assert_eq!(head["alg"], "ES256");
    let sig = Signature::from_slice(&b64::decode(sig, "sig").unwrap()).unwrap();
    let public = VerifyingKey::from_sec1_bytes(&b64::decode(k, "k").unwrap()).unwrap();
    public
        .verify(input.as_bytes(), &sig)
        .expect("the VAPID JWT verifies");
    serde_json::from_slice(&b64::decode(claims, "c").unwrap()).unwrap()
}

/// `pushauth_web_push_total{outcome=...}` from `/metrics`.
pub fn metric(srv: &TestServer, outcome: &str) -> u64 {
    let text = srv.call("GET", "/metrics", None, None).text;
    let prefix = format!("pushauth_web_push_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
}

/// `pushauth_web_push_queued` from `/metrics`.
pub fn queued(srv: &TestServer) -> u64 {
    let text = srv.call("GET", "/metrics", None, None).text;
    text.lines()
        .find_map(|l| l.strip_prefix("pushauth_web_push_queued "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no queue gauge in {text}"))
}

/// Threads of this process whose name starts with `prefix` (Linux `/proc/self/task`).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// Waits (up to 10 s) until the `outcome` counter reaches `n`; its last value.
pub fn wait_metric(srv: &TestServer, outcome: &str, n: u64) -> u64 {
    let started = std::time::Instant::now();
    loop {
        let v = metric(srv, outcome);
        if v >= n || started.elapsed() > Duration::from_secs(10) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
