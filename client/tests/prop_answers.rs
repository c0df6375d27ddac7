//! Issue 9 item 21: property tests for what the relying-party client parses from a server's
//! answers (a server can be broken into, or a man in the middle can answer): `Client::start`
//! and `Client::devices` against a stand-in HTTP server on 127.0.0.1 that answers with
//! arbitrary statuses and bodies.
//!
//! Properties: arbitrary bytes under any status never panic and give a typed error with a
//! message; only a well-formed answer gives a login, and then exactly what was sent (id, devices,
//! code); near-misses of a valid answer (an id that is not URL-safe, another user, no device, a
//! device without its key, a code that is not 2 to 8 digits, a field of the
//! wrong type, trailing garbage) are refused; a 64 KiB answer is handled quickly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pushauth_client::{Client, ClientConfig, Context, StartOptions};
use serde_json::{json, Value};

/// A one-thread HTTP server answering every request with the current canned answer.
struct FakeServer {
    url: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
}

impl FakeServer {
    fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new((200u16, b"{}".to_vec())));
        let shared = Arc::clone(&answer);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let (status, bytes) = shared.lock().expect("lock").clone();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&bytes);
            }
        });
        FakeServer { url, answer }
    }

    fn answer(&self, status: u16, body: &[u8]) {
        *self.answer.lock().expect("lock") = (status, body.to_vec());
    }

    fn client(&self) -> Client {
        let mut cfg = ClientConfig::new(vec![self.url.clone()], "rp.secret");
        cfg.connect_timeout = Duration::from_secs(2);
        Client::new(cfg).expect("client")
    }
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(err) = runner.run(&strategy, test) {
        panic!("{err}");
    }
}

const KEY: &str = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik";

fn device(id: &str) -> Value {
    json!({"id": id, "name": "phone", "alg": "ed25519", "public_key": KEY,
           "created_at": "2026-01-01T00:00:00Z", "last_seen_at": null})
}

fn created(id: &str, user: &str, code: Option<&str>) -> Value {
    json!({"id": id, "user": user, "devices": ["d1"], "device_info": [device("d1")],
           "code": code, "expires_at": "2026-01-01T00:01:00Z", "state": "pending"})
}

fn start(client: &Client) -> Result<pushauth_client::PendingLogin, pushauth_client::ClientError> {
    let mut context = Context::new();
    context.insert("service".into(), "sshd".into());
    let opts = StartOptions {
        number_matching: true,
        ..StartOptions::default()
    };
    client.start("alice", &context, &opts)
}

#[test]
fn issue9_item21_client_arbitrary_answers_never_panic() {
    let server = FakeServer::start();
    let client = server.client();
    let statuses = prop::sample::select(vec![
        200u16, 201, 204, 301, 400, 401, 404, 409, 429, 500, 502, 503,
    ]);
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "[{}\\[\\]\":,0-9a-z_ ]{0,80}".prop_map(String::into_bytes),
        (
            prop::sample::select(vec![
                "malformed_request",
                "no_device",
                "unknown_user",
                "user_locked",
                "nope"
            ]),
            "\\PC{0,30}"
        )
            .prop_map(|(code, message)| json!({"error": code, "message": message})
                .to_string()
                .into_bytes()),
    ];
    run(96, (statuses, bodies), |(status, body)| {
        server.answer(status, &body);
        match start(&client) {
            Ok(login) => {
                prop_assert!((200..300).contains(&status));
                let sent: Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(login.id.as_str(), sent["id"].as_str().unwrap_or("?"));
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
        if let Err(err) = client.devices("alice") {
            prop_assert!(!err.to_string().is_empty());
        }
        Ok(())
    });
}

#[test]
fn issue9_item21_client_valid_answers_give_what_was_sent_and_near_misses_are_refused() {
    let server = FakeServer::start();
    let client = server.client();
    let strategy = (
        "[A-Za-z0-9_-]{1,32}",
        10u32..100,
        0usize..9,
        prop::sample::select(vec![
            '\u{202E}', '\u{200B}', '\u{FEFF}', '/', '?', ' ', '\n', '.', '%',
        ]),
    );
    run(96, strategy, |(id, code, mangle, c)| {
        let code = code.to_string();
        let valid = created(&id, "alice", Some(&code));
        server.answer(201, valid.to_string().as_bytes());
        let login = start(&client).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&login.id, &id);
        prop_assert_eq!(login.code.as_deref(), Some(code.as_str()));
        prop_assert_eq!(login.devices.len(), 1);
        prop_assert_eq!(login.devices[0].public_key.as_str(), KEY);

        let mut bad = valid.clone();
        let text = match mangle {
            0 => {
                bad["id"] = json!(format!("{id}{c}"));
                bad.to_string()
            }
            1 => {
                bad["user"] = json!(format!("alice{c}"));
                bad.to_string()
            }
            2 => {
                bad["devices"] = json!([]);
                bad.to_string()
            }
            3 => {
                bad["device_info"] = json!([]);
                bad.to_string()
            }
            4 => {
                bad["code"] = json!(format!("{}{c}", &code[..1]));
                bad.to_string()
            }
            5 => {
                bad["code"] = json!(null);
                bad.to_string()
            }
            6 => {
                bad["devices"] = json!("d1");
                bad.to_string()
            }
            7 => format!("{valid}{c}x"),
            _ => {
                // Ten digits: longer than the eight the protocol allows.
                bad["code"] = json!(code.repeat(5));
                bad.to_string()
            }
        };
        server.answer(201, text.as_bytes());
        match start(&client) {
            Ok(login) => prop_assert!(false, "{} accepted as {:?}", text, login),
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
        Ok(())
    });
}

#[test]
fn issue9_item21_client_64k_answers_are_handled_quickly() {
    let server = FakeServer::start();
    let client = server.client();
    let started = Instant::now();
    let deep = format!("{}{}", "[".repeat(32 * 1024), "]".repeat(32 * 1024));
    let mut long = created("c1", "alice", Some("42"));
    long["expires_at"] = json!("x".repeat(64 * 1024 - 300));
    for (status, body) in [
        (201, deep.clone().into_bytes()),
        (500, deep.into_bytes()),
        (201, vec![b'{'; 64 * 1024]),
        (201, vec![b' '; 70 * 1024]),
        (201, long.to_string().into_bytes()),
    ] {
        server.answer(status, &body);
        let _ = start(&client);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
