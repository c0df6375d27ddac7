//! Sidecar benchmark: start and state calls per second with many logins pending, and the time
//! from a device's answer to the sidecar reporting it. A real pushauthd (in process, loopback)
//! and simulated devices; bounded in count and time.
//!
//! `cargo run --release -p pushauth-idp-sidecar --example sidecar_bench [USERS] [PER_USER] [STATE_SECS]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench harness fails loudly on what it did not expect

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushauth_device::{Decision, DeviceClient};
use pushauth_idp_sidecar::realms::{Realm, Realms};
use pushauth_idp_sidecar::{RunningSidecar, Settings};
use pushauth_proto::DeviceSigningKey;
use pushauth_testkit::TestServer;
use serde_json::{json, Value};
use zeroize::Zeroizing;

const SECRET: &str = "bench-shared-secret-0123456789";
const NONCE: &str = "bench-nonce-0123456789abcdef";
const THREADS: usize = 8;

fn pct(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(4)
        .build()
}

fn shim(agent: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Value {
    let req = agent
        .request(method, url)
        .set("Authorization", &format!("Bearer {SECRET}"));
    let resp = match body {
        Some(b) => req.send_string(&b.to_string()),
        None => req.call(),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    serde_json::from_str(&resp.into_string().unwrap()).unwrap()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = args.first().copied().unwrap_or(100);
    let per_user = args.get(1).copied().unwrap_or(5);
    let state_secs = args.get(2).copied().unwrap_or(5) as u64;

    let server = TestServer::start_with(|cfg| {
        cfg.limits.max_open_per_user = 50;
        cfg.limits.max_open_per_source = 50;
        cfg.limits.max_new_per_window = 10_000;
        cfg.limits.max_new_per_user_window = 10_000;
        // Every client of the bench is 127.0.0.1.
        cfg.limits.max_connections_per_address = 60_000;
        cfg.max_ttl_secs = 300;
    });
    let api_key = server.add_rp(json!({"name": "bench"})).api_key;
    let mut settings = Settings::new(
        vec![server.url()],
        Zeroizing::new(api_key),
        Zeroizing::new(SECRET.into()),
        DeviceSigningKey::generate().unwrap(),
    );
    settings.listen = "127.0.0.1:0".parse().unwrap();
    // The shim API names a realm and a user; realm `bench` maps `userN` to pushauthd's `userN`.
    settings.realms = Realms::new([Realm {
        name: "bench".into(),
        template: "{username}".into(),
        bootstrap: false,
    }])
    .unwrap();
    settings.login_ttl = Duration::from_secs(240);
    settings.max_pending = users * per_user + 200;
    let sidecar = RunningSidecar::start(settings).unwrap();
    let base = sidecar.url();

    eprintln!("enrolling {users} devices…");
    let devices: Vec<DeviceClient> = (0..users)
        .map(|i| {
            server
                .enroll(&format!("user{i}"), &format!("phone{i}"))
                .client
        })
        .collect();

    // ---- start calls
    let total = users * per_user;
    let started = Instant::now();
    let results: Vec<(Vec<String>, Vec<Duration>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let base = base.clone();
                s.spawn(move || {
                    let agent = agent();
                    let mut ids = Vec::new();
                    let mut lat = Vec::new();
                    for n in (t..total).step_by(THREADS) {
                        let t0 = Instant::now();
                        let login = shim(&agent, "POST", &format!("{base}/v1/logins"),
                            Some(json!({"realm": "bench", "username": format!("user{}", n % users), "nonce": NONCE})));
                        lat.push(t0.elapsed());
                        ids.push(login["id"].as_str().unwrap().to_string());
                    }
                    (ids, lat)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start_elapsed = started.elapsed();
    let mut ids = Vec::new();
    let mut start_lat = Vec::new();
    for (i, l) in results {
        ids.extend(i);
        start_lat.extend(l);
    }
    println!(
        "start:  {total} logins in {:.2} s = {:.0}/s; p50 {}, p99 {}",
        start_elapsed.as_secs_f64(),
        total as f64 / start_elapsed.as_secs_f64(),
        ms(pct(&mut start_lat, 50.0)),
        ms(pct(&mut start_lat, 99.0))
    );

    // ---- state calls with every login pending
    let ids = Arc::new(ids);
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let lats: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ids, stop, base) = (ids.clone(), stop.clone(), base.clone());
                s.spawn(move || {
                    let agent = agent();
                    let mut lat = Vec::with_capacity(100_000);
                    let mut n = t;
                    while !stop.load(Ordering::Relaxed) {
                        let id = &ids[n % ids.len()];
                        let t0 = Instant::now();
                        let state = shim(
                            &agent,
                            "GET",
                            &format!("{base}/v1/logins/{id}?wait=0"),
                            None,
                        );
                        lat.push(t0.elapsed());
                        debug_assert_eq!(state["state"], "pending");
                        n += THREADS;
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(state_secs));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let state_elapsed = began.elapsed();
    let mut state_lat: Vec<Duration> = lats.into_iter().flatten().collect();
    println!(
        "state:  {} calls in {:.2} s = {:.0}/s with {} logins pending; p50 {}, p99 {}",
        state_lat.len(),
        state_elapsed.as_secs_f64(),
        state_lat.len() as f64 / state_elapsed.as_secs_f64(),
        ids.len(),
        ms(pct(&mut state_lat, 50.0)),
        ms(pct(&mut state_lat, 99.0))
    );

    // ---- answer → sidecar: a shim long-polls while the device answers
    let rounds = users.min(50);
    let mut answer_lat = Vec::new();
    let mut full_lat = Vec::new();
    let agent = agent();
    for (i, device) in devices.iter().take(rounds).enumerate() {
        let login = shim(
            &agent,
            "POST",
            &format!("{base}/v1/logins"),
            Some(json!({"realm": "bench", "username": format!("user{i}"), "nonce": NONCE})),
        );
        let id = login["id"].as_str().unwrap().to_string();
        let code = login["code"].as_str().unwrap().to_string();
        let pending = device.pending(0).unwrap();
        let challenge = pending.into_iter().find(|c| c.id == id).unwrap();
        let poller = {
            let (base, id) = (base.clone(), id.clone());
            std::thread::spawn(move || {
                let value = shim(
                    &agent_for_poll(),
                    "GET",
                    &format!("{base}/v1/logins/{id}?wait=20"),
                    None,
                );
                (Instant::now(), value)
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let sent = Instant::now();
        device
            .respond(&challenge, Decision::Approve, &code)
            .unwrap();
        let answered = Instant::now();
        let (seen, value) = poller.join().unwrap();
        assert_eq!(value["state"], "approved");
        answer_lat.push(seen.saturating_duration_since(answered));
        full_lat.push(seen.saturating_duration_since(sent));
    }
    println!(
        "answer: device answer accepted → sidecar long-poll returns: p50 {}, p99 {}, max {} ({rounds} logins)",
        ms(pct(&mut answer_lat, 50.0)),
        ms(pct(&mut answer_lat, 99.0)),
        ms(pct(&mut answer_lat, 100.0))
    );
    println!(
        "answer: device sends its answer → sidecar long-poll returns: p50 {}, p99 {}",
        ms(pct(&mut full_lat, 50.0)),
        ms(pct(&mut full_lat, 99.0))
    );
    sidecar.shutdown();
    server.shutdown();
}

fn agent_for_poll() -> ureq::Agent {
    agent()
}
