//! pushauth-client against a scripted HTTP server on 127.0.0.1: oversized bodies, server errors
//! while waiting, and a server that forges answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pushauth_client::{Client, ClientConfig, ClientError, Outcome, StartOptions};
use pushauth_proto::signing::{response_message, ResponseFields};
use pushauth_proto::wire::{ChallengeCreated, ChallengeStatus, CreateChallenge, DeviceInfo};
use pushauth_proto::{b64, context_digest, ChallengeState, Context, Decision, DeviceSigningKey};

/// What the fake server does with one request: answer `(status, body)` or drop the connection.
type Handler = dyn Fn(&str, &str, &[u8]) -> Option<(u16, String)> + Send + Sync;

/// Reads one request: method, target, body. `None` at end of stream.
fn read_request(reader: &mut impl BufRead) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, target, body))
}

fn respond(stream: &mut impl Write, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Serves requests on its own thread until the test ends; every answer closes the connection.
fn fake_server(handler: Arc<Handler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((method, path, body)) = read_request(&mut reader) else {
                continue;
            };
            if let Some((status, body)) = handler(&method, &path, &body) {
                respond(&mut stream, status, &body);
            }
        }
    });
    url
}

fn client(url: String) -> Client {
    Client::new(ClientConfig::new(vec![url], "fake-api-key")).unwrap()
}

fn context() -> Context {
    [("service".to_string(), "sudo".to_string())].into()
}

#[test]
fn oversized_answers_are_refused() {
    let url = fake_server(Arc::new(|_, _, _| {
        let big = "x".repeat(70 * 1024);
        Some((200, format!("{{\"devices\":[],\"pad\":\"{big}\"}}")))
    }));
    match client(url).devices("alice") {
        Err(ClientError::BadAnswer(msg)) => assert!(msg.contains("larger"), "{msg}"),
        other => panic!("expected BadAnswer, got {other:?}"),
    }

    // Without a Content-Length, the body is cut off while reading.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if read_request(&mut reader).is_none() {
                continue;
            }
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(
                format!("{{\"devices\":[],\"pad\":\"{}", "y".repeat(100 * 1024)).as_bytes(),
            );
        }
    });
    match client(url).devices("alice") {
        Err(ClientError::BadAnswer(msg)) => assert!(msg.contains("larger"), "{msg}"),
        other => panic!("expected BadAnswer, got {other:?}"),
    }
}

/// A fake pushauthd holding one challenge whose answers come from `answer`.
struct Script {
    key: DeviceSigningKey,
    sent: Mutex<Option<CreateChallenge>>,
    polls: Mutex<u32>,
}

impl Script {
    fn created(&self, body: &[u8]) -> String {
        let request: CreateChallenge = serde_json::from_slice(body).unwrap();
        let user = request.user.clone();
        *self.sent.lock().unwrap() = Some(request);
        serde_json::to_string(&ChallengeCreated {
            id: "chal1".into(),
            user,
            devices: vec!["dev1".into()],
            device_info: vec![DeviceInfo {
                id: "dev1".into(),
                name: "phone".into(),
                alg: "ed25519".into(),
                public_key: self.key.public_key().to_b64(),
                created_at: "2026-01-01T00:00:00Z".into(),
                last_seen_at: None,
            }],
            code: Some("42".into()),
            expires_at: "2026-01-01T00:01:00Z".into(),
            state: ChallengeState::Pending,
            grace: None,
        })
        .unwrap()
    }

    /// An approval signed by `signer` over what the client sent, with `code` typed.
    fn approved(&self, signer: &DeviceSigningKey, code: &str) -> String {
        let sent = self.sent.lock().unwrap().clone().unwrap();
        let nonce = b64::decode(&sent.rp_nonce, "rp_nonce").unwrap();
        let responded_at = "2026-01-01T00:00:10Z";
        let signature = signer.sign_b64(&response_message(&ResponseFields {
            challenge_id: "chal1",
            user: &sent.user,
            device_id: "dev1",
            rp_nonce: &nonce,
            context_digest: &context_digest(&sent.context),
            decision: Decision::Approve,
            code,
            responded_at,
        }));
        serde_json::to_string(&ChallengeStatus {
            id: "chal1".into(),
            state: ChallengeState::Approved,
            expires_at: "2026-01-01T00:01:00Z".into(),
            device_id: Some("dev1".into()),
            decision: Some(Decision::Approve),
            reason: None,
            responded_at: Some(responded_at.into()),
            signature: Some(signature),
            typed_code: Some(code.into()),
        })
        .unwrap()
    }
}

#[test]
fn wait_rides_out_server_errors_and_dropped_connections() {
    let script = Arc::new(Script {
        key: DeviceSigningKey::from_seed(&[3; 32]),
        sent: Mutex::new(None),
        polls: Mutex::new(0),
    });
    let s = script.clone();
    let url = fake_server(Arc::new(move |method, path, body| {
        if method == "POST" {
            return Some((201, s.created(body)));
        }
        assert!(path.starts_with("/v1/challenges/chal1?wait="), "{path}");
        let mut polls = s.polls.lock().unwrap();
        *polls += 1;
        match *polls {
            1 => Some((503, r#"{"error":"internal","message":"restarting"}"#.into())),
            2 => None,
            3 => Some((502, "<html>bad gateway</html>".into())),
            _ => Some((200, s.approved(&s.key, "42"))),
        }
    }));
    let client = client(url);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    assert_eq!(login.code.as_deref(), Some("42"));
    let outcome = client
        .wait(&login, Instant::now() + Duration::from_secs(20))
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Approved {
            device_id: "dev1".into(),
            device_name: "phone".into()
        }
    );
    assert_eq!(*script.polls.lock().unwrap(), 4);
}

#[test]
fn a_server_that_forges_approvals_is_not_believed() {
    let script = Arc::new(Script {
        key: DeviceSigningKey::from_seed(&[3; 32]),
        sent: Mutex::new(None),
        polls: Mutex::new(0),
    });
    let s = script.clone();
    let url = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s.created(body)));
        }
        // Signed with the server's own key, not the device's.
        let forger = DeviceSigningKey::from_seed(&[4; 32]);
        Some((200, s.approved(&forger, "42")))
    }));
    let client = client(url);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let result = client.wait(&login, Instant::now() + Duration::from_secs(5));
    assert!(
        matches!(result, Err(ClientError::BadAnswer(_))),
        "{result:?}"
    );

    // The device's key but the wrong code, presented as approved.
    let s = script.clone();
    let url = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s.created(body)));
        }
        Some((200, s.approved(&s.key, "17")))
    }));
    let client2 = self::client(url);
    let login = client2
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let result = client2.wait(&login, Instant::now() + Duration::from_secs(5));
    assert!(
        matches!(result, Err(ClientError::BadAnswer(_))),
        "{result:?}"
    );
}

#[test]
fn wait_reports_unreachable_when_the_server_never_comes_back() {
    let script = Arc::new(Script {
        key: DeviceSigningKey::from_seed(&[3; 32]),
        sent: Mutex::new(None),
        polls: Mutex::new(0),
    });
    let s = script.clone();
    let url = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s.created(body)));
        }
        None
    }));
    let client = client(url);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let started = Instant::now();
    let result = client.wait(&login, started + Duration::from_secs(2));
    // The server accepts connections and drops them: it was reached, so this is a server error
    // (issue 9 item 6: only refused, connect timeout and DNS are "unreachable").
    assert!(
        matches!(result, Err(ClientError::ServerError(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn requests_go_through_the_configured_proxy() {
    // A proxy that accepts CONNECT (or absolute-form requests) and answers as the server itself.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((method, target, _)) = read_request(&mut reader) else {
                continue;
            };
            log.lock().unwrap().push(format!("{method} {target}"));
            if method == "CONNECT" {
                let _ = write!(stream, "HTTP/1.1 200 Connection established\r\n\r\n");
                let Some((method, target, _)) = read_request(&mut reader) else {
                    continue;
                };
                log.lock().unwrap().push(format!("{method} {target}"));
            }
            respond(&mut stream, 200, r#"{"devices":[]}"#);
        }
    });
    let mut cfg = ClientConfig::new(vec!["http://push.invalid:8443".into()], "fake-api-key");
    cfg.proxy = Some(proxy);
    // Plain HTTP to another machine needs the explicit opt-in (issue 9 item 7).
    cfg.allow_insecure_http = true;
    let client = Client::new(cfg).unwrap();
    assert_eq!(client.devices("alice").unwrap(), vec![]);
    let seen = seen.lock().unwrap().join("\n");
    assert!(seen.contains("push.invalid:8443"), "{seen}");
    assert!(seen.contains("/v1/users/alice/devices"), "{seen}");
}

// ---------------------------------------------------------------- issue 9

fn script() -> Arc<Script> {
    Arc::new(Script {
        key: DeviceSigningKey::from_seed(&[3; 32]),
        sent: Mutex::new(None),
        polls: Mutex::new(0),
    })
}

/// A socket that accepts connections and never answers (the connections are kept open).
fn hung_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A reached server's 500 is a server error, never "unreachable": a "safe" policy must not
/// let anyone in on it. Same for 502 from a gateway (failover is allowed, the verdict is not).
#[test]
fn issue9_item6_server_errors_are_not_unreachable() {
    let url = fake_server(Arc::new(|_, _, _| {
        Some((500, r#"{"error":"internal","message":"boom"}"#.into()))
    }));
    let result = client(url).start("alice", &context(), &StartOptions::default());
    assert!(
        matches!(result, Err(ClientError::ServerError(ref m)) if m.contains("500")),
        "{result:?}"
    );

    let gateway = fake_server(Arc::new(|_, _, _| {
        Some((502, "<html>bad gateway</html>".into()))
    }));
    let cfg = ClientConfig::new(vec![gateway, dead_url()], "fake-api-key");
    let result = Client::new(cfg)
        .unwrap()
        .start("alice", &context(), &StartOptions::default());
    assert!(
        matches!(result, Err(ClientError::ServerError(_))),
        "a 502 then a refused connection: {result:?}"
    );

    // A malformed HTTP answer is a server error too.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ = read_request(&mut reader);
            let _ = stream.write_all(b"NOT HTTP AT ALL\r\n\r\n");
        }
    });
    let result = client(garbage).devices("alice");
    assert!(
        matches!(result, Err(ClientError::ServerError(_))),
        "{result:?}"
    );

    // Only nothing listening anywhere is "unreachable".
    let cfg = ClientConfig::new(vec![dead_url(), dead_url()], "fake-api-key");
    let result = Client::new(cfg).unwrap().devices("alice");
    assert!(
        matches!(result, Err(ClientError::Unreachable(_))),
        "{result:?}"
    );
}

/// A server that accepts and never answers: `start_until` returns by its deadline (not after
/// ureq's 30 s or the old 15 s call bound), as a server error.
#[test]
fn issue9_item8_hung_server_returns_by_the_deadline() {
    let client = client(hung_server());
    let started = Instant::now();
    let result = client.start_until(
        "alice",
        &context(),
        &StartOptions::default(),
        started + Duration::from_secs(3),
    );
    let took = started.elapsed();
    assert!(
        matches!(result, Err(ClientError::ServerError(_))),
        "{result:?}"
    );
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    assert!(took >= Duration::from_millis(2500), "took {took:?}");

    // devices() has the same bound when given one.
    let started = Instant::now();
    let _ = client.devices_until("alice", started + Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_millis(1500));
}

/// servers = [hung, good]: the hung one gets at most its share (and connect_timeout), so the
/// good one is reached in time and the whole login fits the deadline.
#[test]
fn issue9_item8_hung_first_server_fails_over_in_time() {
    let script = script();
    let s = script.clone();
    let good = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s.created(body)));
        }
        Some((200, s.approved(&s.key, "42")))
    }));
    let mut cfg = ClientConfig::new(vec![hung_server(), good], "fake-api-key");
    cfg.connect_timeout = Duration::from_secs(2);
    let client = Client::new(cfg).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    let login = client
        .start_until("alice", &context(), &StartOptions::default(), deadline)
        .unwrap();
    let outcome = client.wait(&login, deadline).unwrap();
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3000), "took {took:?}");

    // Without a connect_timeout of its own, the hung server still gets only its share.
    let s = script.clone();
    let good = fake_server(Arc::new(move |method, _, body| {
        (method == "POST").then(|| (201, s.created(body)))
    }));
    let cfg = ClientConfig::new(vec![hung_server(), hung_server(), good], "fake-api-key");
    let client = Client::new(cfg).unwrap();
    let started = Instant::now();
    client
        .start_until(
            "alice",
            &context(),
            &StartOptions::default(),
            started + Duration::from_secs(6),
        )
        .unwrap();
    // 6/3 = 2 s for the first, 4/2 = 2 s for the second.
    let took = started.elapsed();
    assert!(took < Duration::from_millis(4600), "took {took:?}");
}

/// The wait and the cancel stop at the deadline against a server that stops answering.
#[test]
fn issue9_item8_wait_and_cancel_keep_the_deadline() {
    let script = script();
    let s = script.clone();
    let url = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s.created(body)));
        }
        // Never answers the poll or the cancel: sleeps past any deadline of the test.
        thread::sleep(Duration::from_secs(20));
        None
    }));
    let client = client(url);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let started = Instant::now();
    let outcome = client.wait(&login, started + Duration::from_secs(2));
    let took = started.elapsed();
    assert!(matches!(outcome, Ok(Outcome::TimedOut)), "{outcome:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let started = Instant::now();
    let result = client.cancel_until(&login, started + Duration::from_millis(500));
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_millis(1500));
}

/// A code that is not 2–8 ASCII digits (bidi controls, escapes) is refused before anyone sees it.
#[test]
fn issue9_item14_code_with_hidden_characters_is_refused() {
    for code in ["4\u{202E}2", "\u{1b}[2J42", "4", "123456789", "4a"] {
        let script = script();
        let s = script.clone();
        let url = fake_server(Arc::new(move |_, _, body| {
            let mut created: serde_json::Value = serde_json::from_str(&s.created(body)).unwrap();
            created["code"] = serde_json::Value::String(code.into());
            Some((201, created.to_string()))
        }));
        let result = client(url).start("alice", &context(), &StartOptions::default());
        match result {
            Err(ClientError::BadAnswer(msg)) => {
                assert!(msg.contains("digits"), "{msg}");
                assert!(
                    !msg.contains('\u{202E}') && !msg.contains('\u{1b}'),
                    "{msg:?}"
                );
            }
            other => panic!("{code:?}: expected BadAnswer, got {other:?}"),
        }
    }
}

/// An API key with a byte-order mark, a no-break space or a zero-width space is a config error
/// when the client is built, never a failed request (which counted as "unreachable").
#[test]
fn issue9_item17_api_key_not_printable_ascii_is_a_config_error() {
    for key in [
        "\u{feff}key",
        "key\u{a0}",
        "ke\u{200b}y",
        "key with space",
        "ключ",
    ] {
        let result = Client::new(ClientConfig::new(vec![dead_url()], key));
        assert!(
            matches!(result, Err(ClientError::Config(ref m)) if m.contains("printable ASCII")),
            "{key:?}: {result:?}"
        );
        assert!(!pushauth_client::api_key_is_printable_ascii(key));
    }
    assert!(pushauth_client::api_key_is_printable_ascii("rp1.AbC-_~!"));
}

/// Plain http:// only to this machine, unless explicitly allowed.
#[test]
fn issue9_item7_remote_plain_http_is_refused() {
    for url in [
        "http://push.example.com",
        "http://192.0.2.1:8443",
        "http://[2001:db8::1]:80",
        "http://127.0.0.1.example.com",
        "http://user@127.0.0.1",
    ] {
        let result = Client::new(ClientConfig::new(vec![url.into()], "k"));
        assert!(
            matches!(result, Err(ClientError::Config(_))),
            "{url}: {result:?}"
        );
    }
    for url in [
        "http://127.0.0.1:1",
        "http://127.8.9.10",
        "http://localhost:8443/",
        "http://[::1]:8443",
        "https://push.example.com",
    ] {
        assert!(
            Client::new(ClientConfig::new(vec![url.into()], "k")).is_ok(),
            "{url}"
        );
    }
    let mut cfg = ClientConfig::new(vec!["http://push.example.com".into()], "k");
    cfg.allow_insecure_http = true;
    assert!(Client::new(cfg).is_ok());
}

// ---------------------------------------------------------------- issue 13

const STORE_DOWN: &str =
    r#"{"error":"store_unavailable","message":"the server cannot reach its database"}"#;

/// A status of challenge `id` in `state` that no device answered.
fn undecided(id: &str, state: ChallengeState) -> ChallengeStatus {
    ChallengeStatus {
        id: id.into(),
        state,
        expires_at: "2026-01-01T00:01:00Z".into(),
        device_id: None,
        decision: None,
        reason: None,
        responded_at: None,
        signature: None,
        typed_code: None,
    }
}

fn two_servers(a: String, b: String) -> Client {
    Client::new(ClientConfig::new(vec![a, b], "fake-api-key")).unwrap()
}

/// A new challenge goes to the next server when the first cannot reach its database; when
/// every server says so, the caller hears a server error (a refusal), never "unreachable".
#[test]
fn issue13_store_unavailable_fails_over_and_is_never_unreachable() {
    let s = script();
    let posted_to_b = Arc::new(Mutex::new(0));
    let a = fake_server(Arc::new(|_, _, _| Some((503, STORE_DOWN.into()))));
    let (s2, seen) = (s.clone(), posted_to_b.clone());
    let b = fake_server(Arc::new(move |method, _, body| {
        assert_eq!(method, "POST");
        *seen.lock().unwrap() += 1;
        Some((201, s2.created(body)))
    }));
    let login = two_servers(a.clone(), b)
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    assert_eq!(login.id, "chal1");
    assert_eq!(*posted_to_b.lock().unwrap(), 1);

    let also_down = fake_server(Arc::new(|_, _, _| Some((503, STORE_DOWN.into()))));
    let result = two_servers(a, also_down).start("alice", &context(), &StartOptions::default());
    match result {
        Err(ClientError::ServerError(text)) => assert!(text.contains("database"), "{text}"),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The server that started the challenge cannot reach its database (or died): the wait asks
/// the next replica, which answers, and the answer is verified like any other.
#[test]
fn issue13_wait_fails_over_to_the_next_replica() {
    let s = script();
    let s_a = s.clone();
    let a = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s_a.created(body)));
        }
        Some((503, STORE_DOWN.into()))
    }));
    let s_b = s.clone();
    let b = fake_server(Arc::new(move |method, path, _| {
        assert_eq!(method, "GET");
        assert!(path.starts_with("/v1/challenges/chal1?wait="), "{path}");
        *s_b.polls.lock().unwrap() += 1;
        Some((200, s_b.approved(&s_b.key, "42")))
    }));
    let client = two_servers(a, b);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let started = Instant::now();
    let outcome = client
        .wait(&login, started + Duration::from_secs(10))
        .unwrap();
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
    assert_eq!(*s.polls.lock().unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));

    // A replica's forged answer is refused just the same.
    let s_a = s.clone();
    let a = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s_a.created(body)));
        }
        None
    }));
    let s_b = s.clone();
    let b = fake_server(Arc::new(move |_, _, _| {
        Some((
            200,
            s_b.approved(&DeviceSigningKey::from_seed(&[9; 32]), "42"),
        ))
    }));
    let client = two_servers(a, b);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let result = client.wait(&login, Instant::now() + Duration::from_secs(5));
    assert!(
        matches!(result, Err(ClientError::BadAnswer(_))),
        "{result:?}"
    );
}

/// A second server that is not a replica (it does not know the challenge, or the key) only
/// sends the wait back: the starting server's answer decides. When the starting server is
/// gone, the wait ends "unreachable" only if no other server was reached either: a reached
/// server's refusal or 503 is a refusal, never what a `safe` policy lets in on.
#[test]
fn issue13_a_server_that_does_not_know_the_challenge_does_not_end_the_wait() {
    let s = script();
    let s_a = s.clone();
    let a = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s_a.created(body)));
        }
        let mut polls = s_a.polls.lock().unwrap();
        *polls += 1;
        match *polls {
            1 => None,
            _ => Some((200, s_a.approved(&s_a.key, "42"))),
        }
    }));
    let asked_b = Arc::new(Mutex::new(0));
    let seen = asked_b.clone();
    let b = fake_server(Arc::new(move |_, _, _| {
        *seen.lock().unwrap() += 1;
        Some((
            404,
            r#"{"error":"not_found","message":"no such challenge"}"#.into(),
        ))
    }));
    let client = two_servers(a, b);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    let outcome = client
        .wait(&login, Instant::now() + Duration::from_secs(10))
        .unwrap();
    assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
    assert_eq!(
        *asked_b.lock().unwrap(),
        1,
        "the other server was asked once"
    );

    // The starting server went away for good.
    let gone = |s: Arc<Script>, other: String| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a_url = format!("http://{}", listener.local_addr().unwrap());
        let a_thread = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (_, _, body) = read_request(&mut reader).unwrap();
            respond(&mut &stream, 201, &s.created(&body));
            // The listener is dropped: connections are refused from now on.
        });
        let client = two_servers(a_url, other);
        let login = client
            .start("alice", &context(), &StartOptions::default())
            .unwrap();
        a_thread.join().unwrap();
        client.wait(&login, Instant::now() + Duration::from_secs(2))
    };
    // The other server is gone too: nothing was reached.
    let result = gone(s.clone(), dead_url());
    assert!(
        matches!(result, Err(ClientError::Unreachable(_))),
        "{result:?}"
    );
    // The other server answers that it cannot reach its database: a server error.
    let down = fake_server(Arc::new(|_, _, _| Some((503, STORE_DOWN.into()))));
    let result = gone(s.clone(), down);
    assert!(
        matches!(result, Err(ClientError::ServerError(_))),
        "{result:?}"
    );
    // The other server does not know the challenge: refused, not unreachable.
    let stranger = fake_server(Arc::new(|_, _, _| {
        Some((
            404,
            r#"{"error":"not_found","message":"no such challenge"}"#.into(),
        ))
    }));
    let result = gone(s, stranger);
    assert!(
        matches!(result, Err(ClientError::Rejected { status: 404, .. })),
        "{result:?}"
    );
}

/// A cancel goes to the next replica when the starting server cannot reach its database.
#[test]
fn issue13_cancel_fails_over_to_the_next_replica() {
    let s = script();
    let s_a = s.clone();
    let a = fake_server(Arc::new(move |method, _, body| {
        if method == "POST" {
            return Some((201, s_a.created(body)));
        }
        Some((503, STORE_DOWN.into()))
    }));
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let seen = cancelled.clone();
    let b = fake_server(Arc::new(move |method, path, _| {
        seen.lock().unwrap().push(format!("{method} {path}"));
        let status = undecided("chal1", ChallengeState::Cancelled);
        Some((200, serde_json::to_string(&status).unwrap()))
    }));
    let client = two_servers(a, b);
    let login = client
        .start("alice", &context(), &StartOptions::default())
        .unwrap();
    client.cancel(&login).unwrap();
    assert_eq!(
        *cancelled.lock().unwrap(),
        vec!["DELETE /v1/challenges/chal1"]
    );
}

// ---------------------------------------------------------------- issue 14 attack review

/// A fake pushauthd for an approval of two approvers: alice (challenge `chal-a`, device `dev-a`)
/// and carol (`chal-c`, `dev-c`), each device with a key of its own. It keeps what the client
/// sent for each (nonce, context) so it can sign genuine answers, and answers the multi-wait
/// with whatever `statuses` makes of them.
struct Pair {
    keys: [(String, DeviceSigningKey); 2],
    sent: Mutex<Vec<CreateChallenge>>,
}

impl Pair {
    fn new() -> Arc<Pair> {
        Arc::new(Pair {
            keys: [
                ("alice".into(), DeviceSigningKey::from_seed(&[5; 32])),
                ("carol".into(), DeviceSigningKey::from_seed(&[6; 32])),
            ],
            sent: Mutex::new(Vec::new()),
        })
    }

    fn tag(user: &str) -> &'static str {
        if user == "alice" {
            "a"
        } else {
            "c"
        }
    }

    fn created(&self, body: &[u8]) -> String {
        let request: CreateChallenge = serde_json::from_slice(body).unwrap();
        let user = request.user.clone();
        let (_, key) = self.keys.iter().find(|(u, _)| *u == user).unwrap();
        let tag = Self::tag(&user);
        self.sent.lock().unwrap().push(request);
        serde_json::to_string(&ChallengeCreated {
            id: format!("chal-{tag}"),
            user,
            devices: vec![format!("dev-{tag}")],
            device_info: vec![DeviceInfo {
                id: format!("dev-{tag}"),
                name: format!("phone {tag}"),
                alg: "ed25519".into(),
                public_key: key.public_key().to_b64(),
                created_at: "2026-01-01T00:00:00Z".into(),
                last_seen_at: None,
            }],
            code: None,
            expires_at: "2026-01-01T00:01:00Z".into(),
            state: ChallengeState::Pending,
            grace: None,
        })
        .unwrap()
    }

    fn pending(id: &str) -> ChallengeStatus {
        undecided(id, ChallengeState::Pending)
    }

    /// `user`'s device's genuine `decision` of `user`'s challenge, signed over what the client
    /// sent (or over `nonce` instead: another relying party's challenge).
    fn answered(&self, user: &str, decision: Decision, nonce: Option<[u8; 32]>) -> ChallengeStatus {
        let sent = self.sent.lock().unwrap();
        let request = sent.iter().find(|r| r.user == user).unwrap();
        let (_, key) = self.keys.iter().find(|(u, _)| *u == user).unwrap();
        let tag = Self::tag(user);
        let sent_nonce = b64::decode(&request.rp_nonce, "rp_nonce").unwrap();
        let nonce = nonce.map_or(sent_nonce, |n| n.to_vec());
        let responded_at = "2026-01-01T00:00:10Z";
        let signature = key.sign_b64(&response_message(&ResponseFields {
            challenge_id: &format!("chal-{tag}"),
            user,
            device_id: &format!("dev-{tag}"),
            rp_nonce: &nonce,
            context_digest: &context_digest(&request.context),
            decision,
            code: "",
            responded_at,
        }));
        let (state, reason) = match decision {
            Decision::Approve => (ChallengeState::Approved, None),
            Decision::Deny => (ChallengeState::Denied, Some(pushauth_proto::Reason::Denied)),
            Decision::Report => (
                ChallengeState::Denied,
                Some(pushauth_proto::Reason::Reported),
            ),
        };
        ChallengeStatus {
            id: format!("chal-{tag}"),
            state,
            expires_at: "2026-01-01T00:01:00Z".into(),
            device_id: Some(format!("dev-{tag}")),
            decision: Some(decision),
            reason,
            responded_at: Some(responded_at.into()),
            signature: Some(signature),
            typed_code: Some(String::new()),
        }
    }
}

/// What one multi-wait answer holds, made from the genuine pieces of [`Pair`].
type Statuses = dyn Fn(&Pair) -> Vec<ChallengeStatus> + Send + Sync;

fn approve_with(statuses: Arc<Statuses>) -> Result<pushauth_client::ActionOutcome, ClientError> {
    let pair = Pair::new();
    let p = pair.clone();
    let url = fake_server(Arc::new(move |method, path, body| {
        if method == "POST" {
            return Some((201, p.created(body)));
        }
        if method == "DELETE" {
            return Some((409, r#"{"error":"wrong_state","message":"x"}"#.into()));
        }
        assert!(
            path.starts_with("/v1/challenges?ids=chal-a,chal-c&wait="),
            "{path}"
        );
        let list = pushauth_proto::wire::ChallengeStatuses {
            challenges: statuses(&p),
        };
        Some((200, serde_json::to_string(&list).unwrap()))
    }));
    let request = pushauth_client::ActionRequest {
        approvers: vec!["alice".into(), "carol".into()],
        message: "Deploy 2.3 to prod".into(),
        context: context(),
        ttl: None,
    };
    client(url).approve_action(&request, Instant::now() + Duration::from_secs(5))
}

/// Issue 14 attack review: a server (or what it passes on from another relying party) cannot
/// make the multi-wait take an approval that is not this request's approver's answer to this
/// request's challenge: a reordered list, one approver's signed approval put in the other's
/// place, a genuine approval of the same challenge id made for another relying party (another
/// nonce), a list of the wrong length. A genuine approval is taken, with who gave it; a denial
/// given with it in the same answer wins.
#[test]
fn issue14_attack_a_server_cannot_reorder_or_replace_statuses_in_a_multi_wait() {
    let refused: [(&str, Arc<Statuses>); 5] = [
        (
            "reordered",
            Arc::new(|p: &Pair| {
                vec![
                    p.answered("carol", Decision::Approve, None),
                    Pair::pending("chal-a"),
                ]
            }),
        ),
        (
            "carol's approval in alice's place",
            Arc::new(|p: &Pair| {
                let mut forged = p.answered("carol", Decision::Approve, None);
                forged.id = "chal-a".into();
                vec![forged, Pair::pending("chal-c")]
            }),
        ),
        (
            "carol's signature with alice's device id",
            Arc::new(|p: &Pair| {
                let mut forged = p.answered("carol", Decision::Approve, None);
                forged.id = "chal-a".into();
                forged.device_id = Some("dev-a".into());
                vec![forged, Pair::pending("chal-c")]
            }),
        ),
        (
            "another relying party's approval",
            Arc::new(|p: &Pair| {
                vec![
                    p.answered("alice", Decision::Approve, Some([9; 32])),
                    Pair::pending("chal-c"),
                ]
            }),
        ),
        (
            "one status for two",
            Arc::new(|p: &Pair| vec![p.answered("alice", Decision::Approve, None)]),
        ),
    ];
    for (what, statuses) in refused {
        let result = approve_with(statuses);
        assert!(
            matches!(result, Err(ClientError::BadAnswer(_))),
            "{what}: {result:?}"
        );
    }
    let genuine = approve_with(Arc::new(|p: &Pair| {
        vec![
            Pair::pending("chal-a"),
            p.answered("carol", Decision::Approve, None),
        ]
    }))
    .unwrap();
    assert_eq!(genuine.approver.as_deref(), Some("carol"));
    assert!(matches!(genuine.outcome, Outcome::Approved { .. }));
    let both = approve_with(Arc::new(|p: &Pair| {
        vec![
            p.answered("alice", Decision::Approve, None),
            p.answered("carol", Decision::Deny, None),
        ]
    }))
    .unwrap();
    assert_eq!(both.approver.as_deref(), Some("carol"));
    assert!(matches!(both.outcome, Outcome::Denied { .. }), "{both:?}");
}

// ---------------------------------------------------------------- session 23

/// Session 23: a long-poll that returns because a device acknowledged the challenge is asked
/// again at once. The client paused 50 ms after every open answer, so every login from the
/// phone app (which acknowledges, then answers) waited up to 50 ms more for its answer (the
/// bench with acknowledgements: answer → return p50 49 ms). The pause still holds against a
/// server that answers again with nothing new.
#[test]
fn an_acknowledgement_is_followed_by_a_poll_at_once_and_nothing_new_by_a_pause() {
    /// Runs a wait against polls answered in `states` order (then approved); returns the
    /// time from the first poll's answer to the last poll's arrival.
    fn wait_through(states: &'static [ChallengeState]) -> Duration {
        let s = script();
        let first_answered = Arc::new(Mutex::new(None::<Instant>));
        let last_asked = Arc::new(Mutex::new(None::<Instant>));
        let (s2, first, last) = (s.clone(), first_answered.clone(), last_asked.clone());
        let url = fake_server(Arc::new(move |method, _, body| {
            if method == "POST" {
                return Some((201, s2.created(body)));
            }
            *last.lock().unwrap() = Some(Instant::now());
            let mut polls = s2.polls.lock().unwrap();
            let answer = match states.get(*polls as usize) {
                Some(&state) => serde_json::to_string(&undecided("chal1", state)).unwrap(),
                None => s2.approved(&s2.key, "42"),
            };
            if *polls == 0 {
                *first.lock().unwrap() = Some(Instant::now());
            }
            *polls += 1;
            Some((200, answer))
        }));
        let client = client(url);
        let login = client
            .start("alice", &context(), &StartOptions::default())
            .unwrap();
        let outcome = client
            .wait(&login, Instant::now() + Duration::from_secs(10))
            .unwrap();
        assert!(matches!(outcome, Outcome::Approved { .. }), "{outcome:?}");
        assert_eq!(*s.polls.lock().unwrap() as usize, states.len() + 1);
        let (first, last) = (first_answered.lock().unwrap(), last_asked.lock().unwrap());
        last.unwrap().duration_since(first.unwrap())
    }

    // Pending → acknowledged: progress, asked again at once (it was 50 ms less the poll's own
    // time, so never under 45 ms here).
    let after_ack = wait_through(&[ChallengeState::Acknowledged]);
    assert!(after_ack < Duration::from_millis(40), "{after_ack:?}");
    // Acknowledged twice: the second is nothing new, so the client pauses before the third
    // poll (at least 50 ms after the second poll started, which was after the first's answer).
    let repeated = wait_through(&[ChallengeState::Acknowledged, ChallengeState::Acknowledged]);
    assert!(repeated >= Duration::from_millis(50), "{repeated:?}");
    // A server that says "pending" again and again cannot make the client spin either.
    let pending = wait_through(&[ChallengeState::Pending, ChallengeState::Pending]);
    assert!(pending >= Duration::from_millis(100), "{pending:?}");
}
