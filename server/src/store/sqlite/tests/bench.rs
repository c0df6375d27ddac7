//! Where time goes in the store (issue 10 item 6, step 5): an opt-in timing run, not a test of
//! speed (it asserts outcomes only). Run it with
//! `cargo test -p pushauth-server --lib store_timing -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use pushauth_proto::{ChallengeState, Decision};

use super::{answer, challenge_in, enrolled, store};
use crate::store::{Cas, Create, Store};

/// Times `f` over `n` runs and prints the mean per run in microseconds.
fn timed(label: &str, n: u32, mut f: impl FnMut(u32)) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    let spent = start.elapsed();
    println!(
        "{label:<40} {n:>6} runs {:>9.1} us/op",
        spent.as_secs_f64() * 1e6 / f64::from(n)
    );
    spent
}

#[test]
#[ignore = "timing run: prints figures, asserts no speed"]
fn store_timing() {
    const N: u32 = 2_000;
    let (_dir, store) = store();
    enrolled(&store, "alice", "d1");
    let approve = answer(Decision::Approve, ChallengeState::Approved);
    let id = |prefix: &str, i: u32| format!("{prefix}{i}");

    timed("create_challenge (own commit)", N, |i| {
        let created = challenge_in(&store, &id("a", i), 1_000, 1_000_000);
        assert!(matches!(created, Create::Created { .. }));
    });
    timed("get_challenge (reader)", N, |i| {
        assert!(store.get_challenge(&id("a", i), 2_000).unwrap().is_some());
    });
    timed("acknowledge (own commit)", N, |i| {
        assert!(matches!(
            store.acknowledge(&id("a", i), 3_000).unwrap(),
            Cas::Changed(_)
        ));
    });
    timed("answer (own commit)", N, |i| {
        assert!(matches!(
            store.answer(&id("a", i), &approve, 4_000).unwrap(),
            Cas::Changed(_)
        ));
    });
    timed("use_device_nonce (own commit)", N, |i| {
        assert!(store
            .use_device_nonce("d1", &id("n", i), 5_000, 900_000)
            .unwrap());
    });
    timed("get_device (reader)", N, |_| {
        assert!(store.get_device("d1").unwrap().is_some());
    });
    timed("device_challenges (reader)", N / 10, |_| {
        store.device_challenges("d1", 6_000).unwrap();
    });
    timed("audit (own commit)", N, |i| {
        let entry = super::note("bench");
        store.audit(&entry, i64::from(i)).unwrap();
    });

    // The login path as the server runs it: create, then the device's nonce, acknowledge and
    // answer, then the relying party's read; each step in a group of 16 as the store threads
    // batch them under load.
    for group in [1u32, 16] {
        let label = format!("full login cycle, groups of {group}");
        timed(&label, N / group, |g| {
            let run = |prefix: &str, step: &dyn Fn(&dyn Store, &str)| {
                store
                    .group(&mut |s| {
                        for k in 0..group {
                            step(s, &format!("{prefix}{group}-{g}-{k}"));
                        }
                    })
                    .unwrap();
            };
            run("c", &|s, c| {
                assert!(matches!(
                    challenge_in(s, c, 10_000, 1_000_000),
                    Create::Created { .. }
                ));
            });
            run("c", &|s, c| {
                assert!(s.use_device_nonce("d1", c, 10_001, 900_000).unwrap());
                assert!(matches!(s.acknowledge(c, 10_001).unwrap(), Cas::Changed(_)));
                assert!(matches!(
                    s.answer(c, &approve, 10_002).unwrap(),
                    Cas::Changed(_)
                ));
            });
            run("c", &|s, c| {
                assert!(s.get_challenge(c, 10_003).unwrap().is_some());
            });
        });
    }
}
