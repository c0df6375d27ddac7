//! Issue 9 item 21: property tests for what the device parses from a server's answers (a
//! broken-into server or a man in the middle can answer anything): enrollment answers, pending
//! lists, and the challenges it is asked to sign, against a stand-in HTTP server on 127.0.0.1.
//!
//! Properties: arbitrary bytes under any status never panic and give a typed error with a
//! message; a valid pending list gives back exactly its challenges; an enrollment answer whose
//! device id is not URL-safe or whose user has hidden characters is refused (it would be stored
//! in the profile and shown); the device never signs an approval of a context the protocol
//! forbids (hidden characters), even when the digest matches; a 64 KiB answer is quick.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pushauth_device::{Decision, DeviceClient, DeviceError, PendingChallenge, Profile};
use pushauth_proto::{b64, context_digest, Context};
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// A one-thread HTTP server answering every request with the current canned answer.
struct FakeServer {
    url: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
    requests: Arc<Mutex<usize>>,
}

impl FakeServer {
    fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new((200u16, b"{}".to_vec())));
        let requests = Arc::new(Mutex::new(0usize));
        let (shared, count) = (Arc::clone(&answer), Arc::clone(&requests));
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
                *count.lock().expect("lock") += 1;
                let (status, bytes) = shared.lock().expect("lock").clone();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&bytes);
            }
        });
        FakeServer {
            url,
            answer,
            requests,
        }
    }

    fn answer(&self, status: u16, body: &[u8]) {
        *self.answer.lock().expect("lock") = (status, body.to_vec());
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("lock")
    }

    fn profile(&self) -> Profile {
        Profile {
            server: self.url.clone(),
            user: "alice".into(),
            device_id: "dev1".into(),
            name: "phone".into(),
            alg: pushauth_proto::Alg::Ed25519,
            key_seed: Zeroizing::new(b64::encode([4u8; 32])),
            ca_file: None,
            offline: None,
        }
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

fn pending_json(id: &str, context: &Context) -> Value {
    json!({
        "id": id, "user": "alice", "state": "pending", "context": context,
        "context_digest": b64::encode(context_digest(context)),
        "rp_nonce": b64::encode([7u8; 32]),
        "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T00:01:00Z",
        "code_required": true,
    })
}

#[test]
fn issue9_item21_device_arbitrary_answers_never_panic() {
    let server = FakeServer::start();
    let client = DeviceClient::new(&server.profile()).expect("client");
    let statuses = prop::sample::select(vec![200u16, 201, 204, 400, 401, 404, 409, 500, 502]);
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "[{}\\[\\]\":,0-9a-z_ ]{0,80}".prop_map(String::into_bytes),
        Just(br#"{"challenges":[{"id":"x"}]}"#.to_vec()),
        Just(br#"{"challenges":null}"#.to_vec()),
    ];
    run(96, (statuses, bodies), |(status, body)| {
        server.answer(status, &body);
        match client.pending(0) {
            Ok(list) => {
                prop_assert!((200..300).contains(&status));
                let sent: Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    list.len(),
                    sent["challenges"].as_array().map_or(0, Vec::len)
                );
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
        let link = format!("{}/enroll?token=abc", server.url);
        if let Err(err) = DeviceClient::enroll(&link, "phone", None) {
            prop_assert!(!err.to_string().is_empty());
        }
        Ok(())
    });
}

#[test]
fn issue9_item21_device_valid_pending_lists_round_trip() {
    let server = FakeServer::start();
    let client = DeviceClient::new(&server.profile()).expect("client");
    let contexts = prop::collection::vec(
        (
            "[A-Za-z0-9_-]{1,22}",
            prop::collection::btree_map("[a-z_]{1,8}", "[ -~]{0,20}", 0..4),
        ),
        0..4,
    );
    run(64, contexts, |items| {
        let list: Vec<Value> = items.iter().map(|(id, c)| pending_json(id, c)).collect();
        server.answer(200, json!({ "challenges": list }).to_string().as_bytes());
        let got = client
            .pending(0)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<PendingChallenge> = list
            .iter()
            .map(|v| serde_json::from_value(v.clone()).expect("pending"))
            .collect();
        prop_assert_eq!(got, expected);
        Ok(())
    });
}

#[test]
fn issue9_item21_device_enrollment_answers_with_mangled_ids_or_users_are_refused() {
    let server = FakeServer::start();
    let link = format!("{}/enroll?token=abc", server.url);
    let strategy = (
        "[A-Za-z0-9_-]{1,22}",
        prop::sample::select(vec![
            '\u{202E}', '\u{200B}', '\u{FEFF}', '\u{0}', '\u{1B}', '/', '?', ' ', '"', ',',
        ]),
        any::<bool>(),
    );
    run(64, strategy, |(id, c, in_id)| {
        server.answer(
            200,
            json!({"device_id": id, "user": "alice"})
                .to_string()
                .as_bytes(),
        );
        let profile = DeviceClient::enroll(&link, "phone", None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&profile.device_id, &id);
        prop_assert_eq!(profile.user.as_str(), "alice");
        let body = if in_id {
            json!({"device_id": format!("{id}{c}"), "user": "alice"})
        } else if c.is_ascii() {
            // Any printable ASCII is a possible user name; only hidden characters are refused.
            return Ok(());
        } else {
            json!({"device_id": id, "user": format!("ali{c}ce")})
        };
        server.answer(200, body.to_string().as_bytes());
        match DeviceClient::enroll(&link, "phone", None) {
            Ok(profile) => prop_assert!(false, "{} stored as {:?}", body, profile),
            Err(err) => prop_assert!(matches!(err, DeviceError::BadAnswer(_)), "{:?}", err),
        }
        Ok(())
    });
}

#[test]
fn issue9_item21_device_never_approves_a_context_with_hidden_characters() {
    let server = FakeServer::start();
    let client = DeviceClient::new(&server.profile()).expect("client");
    let strategy = (
        "[a-z ]{0,10}",
        prop::sample::select(vec![
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', '\u{00AD}', '\u{1B}', '\u{2028}',
        ]),
        "[a-z ]{0,10}",
    );
    run(64, strategy, |(a, c, b)| {
        let mut context = Context::new();
        context.insert("command".into(), format!("{a}{c}{b}"));
        // The digest matches what is shown: only the context itself is wrong.
        let challenge: PendingChallenge =
            serde_json::from_value(pending_json("c1", &context)).expect("pending");
        server.answer(200, b"{}");
        let before = server.requests();
        match client.respond(&challenge, Decision::Approve, "42") {
            Ok(status) => prop_assert!(false, "approved {:?}: {:?}", context, status),
            Err(err) => prop_assert!(matches!(err, DeviceError::BadChallenge(_)), "{:?}", err),
        }
        prop_assert_eq!(server.requests(), before, "an answer was sent");
        Ok(())
    });
}

#[test]
fn issue9_item21_device_64k_answers_are_handled_quickly() {
    let server = FakeServer::start();
    let client = DeviceClient::new(&server.profile()).expect("client");
    let started = Instant::now();
    let deep = format!("{}{}", "[".repeat(32 * 1024), "]".repeat(32 * 1024));
    for (status, body) in [
        (200, deep.clone().into_bytes()),
        (500, deep.into_bytes()),
        (200, vec![b'{'; 64 * 1024]),
        (200, vec![b' '; 70 * 1024]),
    ] {
        server.answer(status, &body);
        assert!(client.pending(0).is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
