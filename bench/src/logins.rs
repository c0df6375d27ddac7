//! Complete push logins: each pair is a relying-party thread (pushauth-client) and a device thread
//! (pushauth-device) that answers the code the relying party shows, as a person would.
//!
//! Each pair logs its users in by turns (`users_per_pair` of them, each with a device of their
//! own), as a site's logins come from many people: with one user a pair, each user logged in
//! dozens of times a second, and the database walked that user's history on every login
//! (PostgreSQL's dead index entries until a vacuum, which no real user's rate comes near).

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

/// `pairs` relying-party/device pairs, their users enrolled, ready to [`Pairs::run`]: the
/// enrollments come before a phase's clock and CPU count start.
pub struct Pairs {
    run: u64,
    clients: Vec<Arc<Client>>,
    devices: Vec<Arc<Vec<DeviceClient>>>,
    /// The devices acknowledge each challenge before answering ([`pairs`]).
    acknowledge: bool,
}

/// Enrolls `pairs` relying-party/device pairs of `users_per_pair` users each (at least one).
///
/// With several `servers` (replicas of one site) pair `i` starts and waits on replica
/// `i mod n` and its device answers on replica `i + 1 mod n`, so every login crosses replicas.
/// With `acknowledge` each device acknowledges a challenge once it has it and before it
/// answers, as the phone app and `pushauth-device watch` do (without: poll, then answer, as
/// `pushauth-device pending` and `approve` do).
pub fn pairs(
    servers: &[&Server],
    rp_key: &Zeroizing<String>,
    pairs: usize,
    users_per_pair: usize,
    acknowledge: bool,
) -> Result<Pairs> {
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
    let devices = enroll(servers, admin, run, pairs, users_per_pair.max(1))?
        .into_iter()
        .map(Arc::new)
        .collect();
    Ok(Pairs {
        run,
        clients,
        devices,
        acknowledge,
    })
}

impl Pairs {
    /// Runs the pairs' logins; the device waits `answer_delay` before answering so that, when
    /// it is non-zero, the client is already long-polling when the answer lands. The same
    /// pairs may run again (a warm-up, then the measured run).
    pub fn run(&self, mode: Mode, answer_delay: Duration) -> Result<LoginStats> {
        let Pairs {
            run,
            clients,
            devices,
            acknowledge,
        } = self;
        let (run, acknowledge) = (*run, *acknowledge);
        let epoch = Instant::now();
        let until = match mode {
            Mode::Seconds(s) => Some(epoch + Duration::from_secs(s)),
            Mode::Count(_) => None,
        };
        let count = match mode {
            Mode::Count(n) => n,
            Mode::Seconds(_) => usize::MAX,
        };
        let mut handles = Vec::with_capacity(devices.len());
        for (i, devices) in devices.iter().enumerate() {
            let devices = Arc::clone(devices);
            let client = Arc::clone(&clients[i % clients.len()]);
            let users = (0..devices.len())
                .map(|k| user_name(run, i, k))
                .collect::<Vec<_>>();
            handles.push(thread::spawn(move || {
                let device = Device {
                    devices,
                    answer_delay,
                    acknowledge,
                };
                pair(&client, device, &users, epoch, until, count)
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
}

/// The name of pair `pair`'s user `k` in bench run `run`.
fn user_name(run: u64, pair: usize, k: usize) -> String {
    format!("r{run}u{pair}k{k}")
}

/// Enrolls every pair's users (a device each, answering on the replica after the pair's own),
/// on four threads: a phase of 64 pairs enrolls a thousand devices.
fn enroll(
    servers: &[&Server],
    admin: &Server,
    run: u64,
    pairs: usize,
    users_per_pair: usize,
) -> Result<Vec<Vec<DeviceClient>>> {
    let one = |i: usize, k: usize| -> Result<DeviceClient> {
        let mut profile = admin.enroll_profile(&user_name(run, i, k))?;
        profile.server = servers[(i + 1) % servers.len()].url.clone();
        Ok(DeviceClient::new(&profile)?)
    };
    let all: Vec<(usize, usize)> = (0..pairs)
        .flat_map(|i| (0..users_per_pair).map(move |k| (i, k)))
        .collect();
    let enrolled = thread::scope(|scope| {
        let workers = all
            .chunks(all.len().div_ceil(4).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&(i, k)| one(i, k))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect::<Vec<_>>();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow!("an enrolling thread panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut devices = enrolled.into_iter().flatten();
    Ok((0..pairs)
        .map(|_| devices.by_ref().take(users_per_pair).collect())
        .collect())
}

/// How a pair's devices answer.
struct Device {
    /// The pair's users' devices, one each.
    devices: Arc<Vec<DeviceClient>>,
    /// Waited before answering (see [`Pairs::run`]).
    answer_delay: Duration,
    /// Acknowledge before answering (see [`pairs`]).
    acknowledge: bool,
}

/// Longest a device looks for a challenge its relying party started before the bench fails
/// (the relying party's own wait is as long).
const FIND_WITHIN: Duration = Duration::from_secs(20);

fn pair(
    client: &Client,
    device: Device,
    users: &[String],
    epoch: Instant,
    until: Option<Instant>,
    count: usize,
) -> Result<(u64, Samples)> {
    let answered_at = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<(String, String, usize)>();
    let device_answered_at = Arc::clone(&answered_at);
    let Device {
        devices,
        answer_delay,
        acknowledge,
    } = device;
    let device_thread = thread::spawn(move || -> Result<()> {
        for (id, code, k) in rx {
            let device = devices
                .get(k)
                .ok_or_else(|| anyhow!("no device {k} in this pair"))?;
            thread::sleep(answer_delay);
            let looking = Instant::now();
            let challenge = loop {
                let list = device.pending(5)?;
                if let Some(found) = list.into_iter().find(|c| c.id == id) {
                    break found;
                }
                if looking.elapsed() >= FIND_WITHIN {
                    bail!("challenge {id} was not listed to its device within {FIND_WITHIN:?}");
                }
            };
            if acknowledge {
                device.ack(&id)?;
            }
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
            let k = logins as usize % users.len();
            let login = client.start(&users[k], &context, &options)?;
            let code = login.code.clone().unwrap_or_default();
            tx.send((login.id.clone(), code, k))?;
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
