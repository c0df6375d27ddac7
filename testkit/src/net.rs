//! Loopback addresses that never answer, for failure-policy and deadline tests.

use std::net::TcpListener;

/// `http://127.0.0.1:PORT` where nothing listens (the port was free a moment ago): connections
/// are refused.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    drop(listener);
    format!("http://{addr}")
}

/// `http://127.0.0.1:PORT` that accepts connections and never answers (a hung server); the
/// connections stay open until the test process ends.
pub fn hung_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}
