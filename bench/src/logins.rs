//! Complete push logins: each pair is a relying-party thread (pushauth-client) and a device thread
//! (pushauth-device) that answers the code the relying party shows, as a person would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use pushauth_client::{Client, ClientConfig, Context, Outcome, StartOptions};
use pushauth_device::{Decision, DeviceClient};
use zeroize::Zeroizing;

use crate::server::Server;
use crate::stats::Samples;

pub enum Mode {
    /// This many logins per pair.
    Count(usize),
    /// Run for this many seconds.
    Seconds(u64),
}

pub struct LoginStats {
    pub logins: u64,
    pub elapsed: Duration,
    /// From just before the device sends its answer to the client's verified return.
    pub latency: Samples,
}

impl LoginStats {
    pub fn per_second(&self) -> f64 {
        self.logins as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

static RUN: AtomicU64 = AtomicU64::new(0);

/// Runs `pairs` relying-party/device pairs; the device waits `answer_delay` before answering so
/// that, when it is non-zero, the client is already long-polling when the answer lands.
///
/// With several `servers` (replicas of one site) pair `i` starts and waits on replica
/// `i mod n` and its device answers on replica `i + 1 mod n`, so every login crosses replicas.
pub fn run(
    servers: &[&Server],
    rp_key: &Zeroizing<String>,
    pairs: usize,
    mode: Mode,
    answer_delay: Duration,
) -> Result<LoginStats> {
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let admin = servers.first().context("no server to bench")?;
    let clients = servers
        .iter()
        .map(|server| {
            Ok(Arc::new(Client::new(ClientConfig::new(
                vec![server.url.clone()],
                rp_key.as_str(),
            ))?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut devices = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let mut profile = admin.enroll_profile(&format!("r{run}u{i}"))?;
        profile.server = servers[(i + 1) % servers.len()].url.clone();
        devices.push(DeviceClient::new(&profile)?);
    }

    let epoch = Instant::now();
    let until = match mode {
        Mode::Seconds(s) => Some(epoch + Duration::from_secs(s)),
        Mode::Count(_) => None,
    };
    let count = match mode {
        Mode::Count(n) => n,
        Mode::Seconds(_) => usize::MAX,
    };
    let mut handles = Vec::with_capacity(pairs);
    for (i, device) in devices.into_iter().enumerate() {
        let client = Arc::clone(&clients[i % clients.len()]);
        let user = format!("r{run}u{i}");
        handles.push(thread::spawn(move || {
            pair(&client, device, &user, epoch, until, count, answer_delay)
        }));
    }
    let mut stats = LoginStats {
        logins: 0,
        elapsed: Duration::ZERO,
        latency: Samples::default(),
    };
    for handle in handles {
        let (logins, latency) = handle
            .join()
            .map_err(|_| anyhow!("a bench thread panicked"))??;
        stats.logins += logins;
        stats.latency.extend(latency);
    }
    stats.elapsed = epoch.elapsed();
    Ok(stats)
}

fn pair(
    client: &Client,
    device: DeviceClient,
    user: &str,
    epoch: Instant,
    until: Option<Instant>,
    count: usize,
    answer_delay: Duration,
) -> Result<(u64, Samples)> {
    let answered_at = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<(String, String)>();
    let device_answered_at = Arc::clone(&answered_at);
    let device_thread = thread::spawn(move || -> Result<()> {
        for (id, code) in rx {
            thread::sleep(answer_delay);
            let challenge = loop {
                let list = device.pending(5)?;
                if let Some(found) = list.into_iter().find(|c| c.id == id) {
                    break found;
                }
            };
            device_answered_at.store(epoch.elapsed().as_nanos() as u64, Ordering::SeqCst);
            device.respond(&challenge, Decision::Approve, &code)?;
        }
        Ok(())
    });

    let context: Context = [("service", "bench"), ("host", "localhost")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let options = StartOptions::default();
    let mut latency = Samples::default();
    let mut logins = 0u64;
    let result = (|| -> Result<()> {
        while (logins as usize) < count && until.is_none_or(|t| Instant::now() < t) {
            let login = client.start(user, &context, &options)?;
            let code = login.code.clone().unwrap_or_default();
            tx.send((login.id.clone(), code))?;
            let outcome = client.wait(&login, Instant::now() + Duration::from_secs(20))?;
            let returned = epoch.elapsed().as_nanos() as u64;
            if !matches!(outcome, Outcome::Approved { .. }) {
                bail!("login {} ended {outcome:?}", login.id);
            }
            let answered = answered_at.load(Ordering::SeqCst);
            latency.push(Duration::from_nanos(returned.saturating_sub(answered)));
            logins += 1;
        }
        Ok(())
    })();
    drop(tx);
    device_thread
        .join()
        .map_err(|_| anyhow!("a device thread panicked"))??;
    result?;
    Ok((logins, latency))
}
