//! Issue 9 item 11: clients that never authenticate cannot exhaust pushauthd. Idle sockets
//! and half-sent request heads are closed within the header timeout, connections over the
//! global or per-address cap are closed at once, and a push login still goes through.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// Lifts this process's soft descriptor limit to the hard one (the server runs in-process).
fn raise_fd_limit(wanted: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // `None` is "unlimited".
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < wanted) {
        limit.current = match limit.maximum {
            Some(max) => Some(max.min(wanted.max(limit.current.unwrap_or(0)))),
            None => Some(wanted),
        };
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.current,
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
    assert!(
        limit.current.is_none_or(|current| current >= wanted),
        "need {wanted} descriptors, the hard limit is {:?}",
        limit.maximum
    );
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all loopback).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Whether the server closed the connection: a read ends (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // A response (408 or 400) before the close is fine; keep reading.
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// `GET /healthz` over a raw connection; the status code, or `None` if the server closed it.
fn healthz(stream: &mut TcpStream) -> Option<u16> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: pushauthd\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(buf.get(..n)?).into_owned();
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

const HEADER_TIMEOUT_SECS: u64 = 3;

#[test]
fn issue9_item11_idle_connections_do_not_stop_logins() {
    raise_fd_limit(4096);
    let srv = start_with(|c| c.limits.header_timeout_secs = HEADER_TIMEOUT_SECS);
    let addr = srv.server.as_ref().unwrap().addr();
    let key = srv.rp_key();
    let dev = srv.device("alice");

    // 1,100 sockets that never send a byte, from several loopback addresses (each under its
    // per-address cap), and sockets that send half a request head and stop.
    let mut idle = Vec::new();
    for i in 0..1_100 {
        idle.push(connect_from(&format!("127.0.0.{}", 10 + i / 200), addr));
    }
    let mut half = Vec::new();
    for _ in 0..50 {
        let mut s = connect_from("127.0.0.20", addr);
        s.write_all(b"POST /v1/challenges HTTP/1.1\r\nHost: x\r\nContent-Le")
            .unwrap();
        half.push(s);
    }
    // A kept-alive connection that sent one request and then idles.
    let mut kept = connect_from("127.0.0.21", addr);
    assert_eq!(healthz(&mut kept), Some(200));
    let opened = Instant::now();

    // A whole push login, as usual: push, the device approves, the relying party sees it.
    let started = Instant::now();
    let c = srv.challenge(&key, "alice");
    let r = dev.approve(&srv, &c);
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    let r = srv.rp(
        &key,
        "GET",
        &format!("/v1/challenges/{}?wait=5", c.id),
        None,
    );
    assert_eq!(r.json["state"], "approved", "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the login took {:?}",
        started.elapsed()
    );

    // Every idle, half-sent and kept-alive-idle connection is closed by the server within
    // the header timeout (plus scheduling slack).
    let deadline = opened + Duration::from_secs(HEADER_TIMEOUT_SECS + 3);
    let mut open_left = 0;
    for s in idle.iter_mut().chain(half.iter_mut()).chain([&mut kept]) {
        let left = deadline.saturating_duration_since(Instant::now());
        if !closed_within(s, left.max(Duration::from_millis(1))) {
            open_left += 1;
        }
    }
    assert_eq!(open_left, 0, "connections the server left open");
    // And the server is fine afterwards.
    let c = srv.challenge(&key, "alice");
    assert_eq!(dev.approve(&srv, &c).json["state"], "approved");
}

#[test]
fn issue9_item11_one_address_over_its_cap_is_refused_while_another_gets_in() {
    let srv = start_with(|c| c.limits.max_connections_per_address = 5);
    let addr = srv.server.as_ref().unwrap().addr();
    let mut held: Vec<TcpStream> = (0..5).map(|_| connect_from("127.0.0.1", addr)).collect();
    // Give the server time to count them (accepting runs on its own tasks).
    std::thread::sleep(Duration::from_millis(300));
    let mut over = connect_from("127.0.0.1", addr);
    let refused_at = Instant::now();
    assert!(
        closed_within(&mut over, Duration::from_secs(2)),
        "the sixth connection from 127.0.0.1 was kept"
    );
    assert!(
        refused_at.elapsed() < Duration::from_secs(1),
        "closed at once"
    );
    // Another address is unaffected.
    let mut other = connect_from("127.0.0.2", addr);
    assert_eq!(healthz(&mut other), Some(200));
    // Operators see it.
    let mut m = connect_from("127.0.0.3", addr);
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut metrics = String::new();
    m.read_to_string(&mut metrics).unwrap();
    assert!(
        metrics
            .contains("pushauth_connections_refused_total{cap=\"max_connections_per_address\"} 1"),
        "{metrics}"
    );
    // The held connections still work: the cap refuses only what is over it.
    assert_eq!(healthz(&mut held[0]), Some(200));
    // A freed place is usable again.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect_from("127.0.0.1", addr);
    assert_eq!(healthz(&mut again), Some(200));
}

#[test]
fn issue9_item11_the_global_cap_closes_connections_over_it() {
    let srv = start_with(|c| c.limits.max_connections = 4);
    let addr = srv.server.as_ref().unwrap().addr();
    let _held: Vec<TcpStream> = (0..4)
        .map(|i| connect_from(&format!("127.0.0.{}", 30 + i), addr))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = connect_from("127.0.0.40", addr);
    assert!(closed_within(&mut over, Duration::from_secs(2)));
    assert_eq!(healthz(&mut over), None);
}

#[test]
fn issue9_item11_http2_prior_knowledge_is_not_served() {
    let srv = start_with(|c| c.limits.header_timeout_secs = 30);
    let addr = srv.server.as_ref().unwrap().addr();
    let mut h2 = connect_from("127.0.0.1", addr);
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // Closed at once, not left to idle outside the HTTP/1 timeouts.
    assert!(closed_within(&mut h2, Duration::from_secs(2)));
}

#[test]
fn issue9_item11_a_trickled_body_is_cut_off() {
    let srv = start_with(|c| c.limits.body_timeout_secs = 2);
    let addr = srv.server.as_ref().unwrap().addr();
    let mut slow = connect_from("127.0.0.1", addr);
    slow.write_all(
        b"POST /v1/device/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tok",
    )
    .unwrap();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut text = String::new();
    let _ = slow.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    assert!(text.contains("did not arrive within 2 seconds"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
