//! Where time goes in the store (issue 10 item 6, step 5): an opt-in timing run, not a test of
//! speed (it asserts outcomes only, never a time). Run it with
//! `cargo test -p pushauth-server --lib store_timing -- --ignored --nocapture`.
//!
//! Each login makes the store calls the handlers make for it (relying-party key look-ups, the
//! create with the real limit check, the device's signed fetch, acknowledge and answer, the
//! relying party's read of the outcome), spread over twelve users as `scripts/bench` spreads
//! them over twelve pairs. It runs once with a commit per write and once with the calls of 16
//! logins in one group per step, as the store thread batches them under load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pushauth_proto::{ChallengeState, Context, Decision};

use super::super::connection::Db;
use super::super::limits;
use super::{answer, store};
use crate::config::Limits;
use crate::store::{Cas, Create, NewChallenge, NewDevice, Redeem, Store};

const USERS: usize = 12;
const LOGINS: usize = 1_536;

/// CPU time this thread has run, in nanoseconds (Linux schedstat; unlike wall time it does not
/// count waiting for a core, so the figures hold on a busy machine).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wall time, CPU time (ns) and calls per operation.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, (Duration, u64, u32)>);

impl Tally {
    fn time<T>(&mut self, op: &'static str, f: impl FnOnce() -> T) -> T {
        let cpu = cpu_ns();
        let start = Instant::now();
        let value = f();
        let wall = start.elapsed();
        let cpu = cpu_ns().saturating_sub(cpu);
        let entry = self.0.entry(op).or_default();
        entry.0 += wall;
        entry.1 += cpu;
        entry.2 += 1;
        value
    }

    /// Mean wall and CPU microseconds per login, less the cost of reading the CPU clock.
    fn per_login(&self, op: &str, overhead_ns: f64) -> (f64, f64) {
        self.0.get(op).map_or((0.0, 0.0), |(wall, cpu, calls)| {
            let cpu = (*cpu as f64 - overhead_ns * f64::from(*calls)).max(0.0);
            (
                wall.as_secs_f64() * 1e6 / LOGINS as f64,
                cpu / 1e3 / LOGINS as f64,
            )
        })
    }
}

fn setup(store: &dyn Store) {
    crate::store::tests::relying_party(store, [7; 32]);
    for u in 0..USERS {
        let hash = [u8::try_from(u).unwrap(); 32];
        store
            .create_enrollment(&format!("u{u}"), &hash, 0, 10_000)
            .unwrap();
        let device = NewDevice {
            id: format!("d{u}"),
            name: "phone".into(),
            alg: "ed25519".into(),
            public_key: "k".into(),
        };
        let redeemed = store.redeem_enrollment(&hash, &device, None, 1).unwrap();
        assert!(matches!(redeemed, Redeem::Enrolled(_)));
    }
}

/// One step of login `i` (0: relying party creates; 1: device fetches and acknowledges; 2:
/// device answers; 3: relying party reads the outcome).
fn step(s: &dyn Store, tally: &mut Tally, i: usize, phase: u8) {
    let limits = Limits::default();
    let user = format!("u{}", i % USERS);
    let device = format!("d{}", i % USERS);
    let id = format!("c{i}");
    let now = 1_000_000 + i64::try_from(i).unwrap() * 10;
    match phase {
        0 => {
            tally.time("get_relying_party", || s.get_relying_party("rp").unwrap());
            let new = NewChallenge {
                id: id.clone(),
                user,
                rp_id: "rp".into(),
                rp_key: None,
                context: Context::new(),
                context_digest: [0; 32],
                rp_nonce: vec![1; 32],
                code: Some("123456".into()),
                requested_devices: None,
                created_at: now,
                expires_at: now + 60_000,
                window_start: now - 600_000,
                known_since: crate::limits::known_since(now),
                source: format!("10.0.0.{}", i % USERS),
            };
            let created = tally.time("create_challenge", || {
                s.create_challenge(
                    &new,
                    std::sync::Arc::new(move |state| crate::limits::check(&limits, state, now)),
                )
                .unwrap()
            });
            assert!(matches!(created, Create::Created { .. }), "{created:?}");
        }
        1 | 2 => {
            tally.time("get_device", || s.get_device(&device).unwrap());
            let nonce = format!("{id}-{phase}");
            let spent = tally.time("spend_device_nonce", || {
                s.spend_device_nonce(&device, &nonce, now + 1, now + 300_000)
                    .unwrap()
            });
            assert!(spent.is_fresh());
            if phase == 1 {
                tally.time("get_challenge", || s.get_challenge(&id, now + 1).unwrap());
                let acked = tally.time("acknowledge", || s.acknowledge(&id, now + 1).unwrap());
                assert!(matches!(acked, Cas::Changed(_)));
            } else {
                let mut approve = answer(Decision::Approve, ChallengeState::Approved);
                approve.device_id = device.clone();
                let answered = tally.time("answer", || s.answer(&id, &approve, now + 2).unwrap());
                assert!(matches!(answered, Cas::Changed(_)));
            }
        }
        _ => {
            tally.time("get_relying_party", || s.get_relying_party("rp").unwrap());
            let (c, _) = tally
                .time("get_challenge", || s.get_challenge(&id, now + 3).unwrap())
                .unwrap();
            assert_eq!(c.state, ChallengeState::Approved);
        }
    }
}

#[test]
#[ignore = "timing run: prints figures, asserts no speed"]
fn store_timing() {
    // What an empty timed call costs in CPU (the clock reads themselves).
    let mut calibrate = Tally::default();
    for _ in 0..2_000 {
        calibrate.time("empty", || ());
    }
    let overhead_ns = calibrate.0["empty"].1 as f64 / 2_000.0;

    println!("\nstore time per login in us (wall / CPU), {LOGINS} logins over {USERS} users");
    println!(
        "{:<20} {:>18} {:>18}",
        "operation", "own commits", "groups of 16"
    );
    let mut tallies = Vec::new();
    let mut kept = Vec::new();
    for group in [1usize, 16] {
        let (dir, store) = store();
        setup(&store);
        let mut tally = Tally::default();
        let cpu = cpu_ns();
        let start = Instant::now();
        for first in (0..LOGINS).step_by(group) {
            for phase in 0..4 {
                if group == 1 {
                    step(&store, &mut tally, first, phase);
                    continue;
                }
                let (started, started_cpu) = (Instant::now(), cpu_ns());
                let (mut inside, mut inside_cpu) = (Duration::ZERO, 0);
                store
                    .group(&mut |g| {
                        let (before, before_cpu) = (Instant::now(), cpu_ns());
                        for i in first..first + group {
                            step(g, &mut tally, i, phase);
                        }
                        inside += before.elapsed();
                        inside_cpu += cpu_ns() - before_cpu;
                    })
                    .unwrap();
                let entry = tally.0.entry("(group commit)").or_default();
                entry.0 += started.elapsed() - inside;
                entry.1 += (cpu_ns() - started_cpu).saturating_sub(inside_cpu);
                entry.2 += 1;
            }
        }
        let total = tally.0.entry("total").or_default();
        total.0 = start.elapsed();
        total.1 = cpu_ns() - cpu;
        total.2 = 0;
        tallies.push(tally);
        kept.push((dir, store));
    }
    let mut ops: Vec<&str> = tallies.iter().flat_map(|t| t.0.keys().copied()).collect();
    ops.sort_unstable();
    ops.dedup();
    ops.retain(|op| *op != "total");
    ops.push("total");
    for op in ops {
        let cell = |t: &Tally| {
            let (wall, cpu) = t.per_login(op, overhead_ns);
            format!("{wall:>8.1} / {cpu:>7.1}")
        };
        println!(
            "{op:<20} {:>18} {:>18}",
            cell(&tallies[0]),
            cell(&tallies[1])
        );
    }

    // The parts of create_challenge, per call, on the store the first run left behind.
    let store = &kept[0].1;
    let mut parts = Tally::default();
    const CALLS: u32 = 1_000;
    for k in 0..CALLS {
        let i = LOGINS + usize::try_from(k).unwrap();
        let now = 2_000_000 + i64::from(k) * 10;
        let new = NewChallenge {
            id: format!("p{k}"),
            user: format!("u{}", i % USERS),
            rp_id: "rp".into(),
            rp_key: None,
            context: Context::new(),
            context_digest: [0; 32],
            rp_nonce: vec![1; 32],
            code: None,
            requested_devices: None,
            created_at: now,
            expires_at: now + 60_000,
            window_start: now - 600_000,
            known_since: crate::limits::known_since(now),
            source: format!("10.0.0.{}", i % USERS),
        };
        parts.time("push_state (reads)", || {
            Db::read(store, |c| limits::push_state(c, &new)).unwrap()
        });
        parts.time("audit (1 insert+commit)", || {
            store.audit(&super::note("bench"), now).unwrap()
        });
        let created = parts.time("create_challenge", || {
            store
                .create_challenge(&new, std::sync::Arc::new(move |_| Ok(())))
                .unwrap()
        });
        assert!(matches!(created, Create::Created { .. }));
        let approve = answer(Decision::Approve, ChallengeState::Approved);
        parts.time("answer", || {
            store.answer(&new.id, &approve, now + 1).unwrap()
        });
    }
    println!("\ncreate_challenge's parts, us per call (wall / CPU)");
    for (op, (wall, cpu, calls)) in &parts.0 {
        let n = f64::from(*calls);
        let cpu = (*cpu as f64 - overhead_ns * n).max(0.0);
        println!(
            "{op:<24} {:>8.1} / {:>7.1}",
            wall.as_secs_f64() * 1e6 / n,
            cpu / 1e3 / n
        );
    }
}
