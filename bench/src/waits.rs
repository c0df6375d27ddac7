//! Many challenges waited on at once: each has a relying-party client long-polling it, and the
//! bench reads pushauthd's memory while all of them wait, then cancels them all.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pushauth_client::{Client, ClientConfig, Context, Outcome, PendingLogin, StartOptions};
use zeroize::Zeroizing;

use crate::server::Server;

pub struct WaitStats {
    pub waiting: usize,
    /// pushauthd's RSS just before the challenges are created, in MiB: what the waits add is
    /// `rss_mib - rss_before_mib`.
    pub rss_before_mib: f64,
    pub rss_mib: f64,
    /// pushauthd's thread count at the same moment.
    pub threads: u64,
}

const USERS: usize = 10;
const WORKERS: usize = 8;

pub fn run(server: &Server, rp_key: &Zeroizing<String>, n: usize) -> Result<WaitStats> {
    let client = Arc::new(Client::new(ClientConfig::new(
        vec![server.url.clone()],
        rp_key.as_str(),
    ))?);
    for u in 0..USERS {
        server.enroll(&format!("wait{u}"))?;
    }
    let rss_before_mib = server.rss_mib()?;
    let context: Context = [("service".to_owned(), "bench-wait".to_owned())].into();
    let options = StartOptions {
        ttl: Some(Duration::from_secs(120)),
        ..StartOptions::default()
    };

    // Create the challenges from a few threads.
    let logins: Vec<PendingLogin> = parallel(WORKERS, n, |i| {
        Ok(client.start(&format!("wait{}", i % USERS), &context, &options)?)
    })?;

    // One long-poll per challenge, each on its own small thread and connection.
    let deadline = Instant::now() + Duration::from_secs(100);
    let logins = Arc::new(logins);
    let mut waiters = Vec::with_capacity(n);
    for i in 0..n {
        let client = Arc::clone(&client);
        let logins = Arc::clone(&logins);
        waiters.push(
            thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || client.wait(&logins[i], deadline))?,
        );
    }
    let settle = Instant::now() + Duration::from_secs(60);
    let waiting = loop {
        let waiting = server.metric("pushauth_waiting_long_polls")? as usize;
        if waiting >= n {
            break waiting;
        }
        if Instant::now() > settle {
            bail!("only {waiting} of {n} long-polls reached pushauthd within 60 s");
        }
        thread::sleep(Duration::from_millis(200));
    };
    let rss_mib = server.rss_mib()?;
    let threads = server.threads()?;

    parallel(WORKERS, n, |i| Ok(client.cancel(&logins[i])?))?;
    let mut cancelled = 0;
    for waiter in waiters {
        if let Outcome::Cancelled = waiter.join().map_err(|_| anyhow!("a waiter panicked"))?? {
            cancelled += 1;
        }
    }
    if cancelled != n {
        bail!("{cancelled} of {n} waits saw the cancellation");
    }
    Ok(WaitStats {
        waiting,
        rss_before_mib,
        rss_mib,
        threads,
    })
}

/// Runs `f(0..n)` on `workers` threads and collects the results in order.
fn parallel<T: Send>(
    workers: usize,
    n: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let chunks: Vec<Result<Vec<T>>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let f = &f;
                scope.spawn(move || (w..n).step_by(workers).map(f).collect::<Result<Vec<T>>>())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a worker panicked")))
            })
            .collect()
    });
    let mut columns = Vec::with_capacity(workers);
    for chunk in chunks {
        columns.push(chunk?.into_iter());
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            columns[i % workers]
                .next()
                .ok_or_else(|| anyhow!("worker result missing"))?,
        );
    }
    Ok(out)
}
