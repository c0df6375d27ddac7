//! pushauth-bench: starts a real pushauthd on SQLite (or replicas on PostgreSQL) and measures it
//! from the outside.
//!
//! It prints complete push logins per second (challenge created → device fetches it → signed
//! answer → relying-party client holds the verified outcome), the latency from the device's answer
//! to the client's return, pushauthd's CPU time per login, and its memory with many challenges
//! waiting at once. Run it with `scripts/bench` (which builds pushauthd and this binary in release).

mod logins;
mod postgres;
mod server;
mod stats;
mod waits;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Parser, ValueEnum};
use zeroize::Zeroizing;

/// How long the pairs log in before a PostgreSQL phase's tables are analyzed and its clock
/// starts (see [`measure`]), in seconds.
const WARM_UP_SECONDS: u64 = 2;

/// Where pushauthd keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// SQLite in a temporary data directory (the default).
    Sqlite,
    /// A temporary PostgreSQL cluster: one replica, then two replicas with every login answered
    /// on the other replica than the one the relying party waits on. Skips the memory phase.
    Postgresql,
}

/// Benchmark a local pushauthd.
#[derive(Debug, Parser)]
pub struct Args {
    /// The store pushauthd runs on.
    #[arg(long, value_enum, default_value_t = Store::Sqlite)]
    store: Store,
    /// With `--store postgresql`: fsync and full_page_writes off (synchronous_commit stays
    /// on), to see how much of the time is the disk's flush.
    #[arg(long)]
    pg_no_fsync: bool,
    /// With `--store postgresql`: stop after the one-replica phases (to compare builds, and
    /// builds that cannot serve two replicas).
    #[arg(long)]
    pg_one_replica: bool,
    /// The pushauthd binary; default: next to this binary.
    #[arg(long)]
    pushauthd: Option<PathBuf>,
    /// Relying-party/device pairs running logins at once; a list (`12,64`) runs the
    /// throughput phase once per entry.
    #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = [12, 64])]
    pairs: Vec<usize>,
    /// Users (each with a device) that each pair logs in by turns: a site's logins come from
    /// many people. 1 is the shape of earlier figures, where each user logged in dozens of
    /// times a second.
    #[arg(long, default_value_t = 16)]
    users_per_pair: usize,
    /// How long each throughput phase runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Sequential logins for the unloaded latency phase.
    #[arg(long, default_value_t = 300)]
    latency_logins: usize,
    /// Devices acknowledge each challenge before answering, as the phone app and
    /// `pushauth-device watch` do: one signed request more per login, and the relying party's
    /// long-poll returns on the acknowledgement and waits again. Without it a device polls and
    /// answers, as `pushauth-device pending` and `approve` do.
    #[arg(long)]
    acknowledge: bool,
    /// Challenges waited on at once in the memory phase.
    #[arg(long, default_value_t = 10_000)]
    waits: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "login shape: {}",
        if args.acknowledge {
            "the device polls, acknowledges, then answers (--acknowledge: the phone app's)"
        } else {
            "the device polls, then answers (pushauth-device pending + approve; \
             --acknowledge adds the phone app's acknowledgement)"
        }
    );
    let pushauthd = match args.pushauthd.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no folder")?
            .join("pushauthd"),
    };
    anyhow::ensure!(
        pushauthd.exists(),
        "{} not found: build it first (cargo build --release -p pushauth-server) or pass --pushauthd",
        pushauthd.display()
    );

    if args.store == Store::Postgresql {
        return postgres::run(&pushauthd, &args);
    }

    let server = server::Server::start(&pushauthd)?;
    println!(
        "pushauthd {} on {} (SQLite in {})",
        pushauthd.display(),
        server.url,
        server.data_dir().display()
    );
    let rp_key = server.create_rp("bench")?;
    let (light, loaded) = measure(&[&server], &rp_key, &args, None)?;
    let waits = waits::run(&server, &rp_key, args.waits)?;

    print_loaded(&loaded);
    println!(
        "== unloaded latency ({} sequential logins, client already waiting)",
        light.logins
    );
    println!(
        "answer→return p50 / p99:    {} / {}",
        stats::ms(light.latency.p(50.0)),
        stats::ms(light.latency.p(99.0))
    );
    println!("== {} challenges waiting at once", waits.waiting);
    println!("pushauthd RSS while waiting: {:.1} MiB", waits.rss_mib);
    println!(
        "pushauthd RSS before them:   {:.1} MiB ({:.1} KiB per wait)",
        waits.rss_before_mib,
        (waits.rss_mib - waits.rss_before_mib) * 1024.0 / waits.waiting.max(1) as f64
    );
    println!("pushauthd threads while waiting: {}", waits.threads);
    println!(
        "pushauthd peak RSS (whole run): {:.1} MiB",
        server.peak_rss_mib()?
    );
    Ok(())
}

/// One throughput phase: its pairs, its logins, and the CPU seconds pushauthd (all replicas)
/// and the bench used.
pub struct Loaded {
    pairs: usize,
    users: usize,
    run: logins::LoginStats,
    cpu_used: f64,
    own_cpu_used: f64,
    /// CPU seconds the database server used, and the transactions it committed, when
    /// measured.
    db_used: Option<(f64, f64)>,
}

/// The database server a phase runs on (PostgreSQL).
pub struct Db<'a> {
    /// What it has done so far: CPU seconds (all its processes) and committed transactions.
    pub counters: &'a dyn Fn() -> Result<(f64, f64)>,
    /// Brings its planner statistics up to date (`ANALYZE`), before each phase's clock starts.
    pub analyze: &'a dyn Fn() -> Result<()>,
}

/// The unloaded latency phase (`--latency-logins` sequential logins, the client already
/// waiting), then one throughput phase per `--pairs` entry, on `servers` (replicas of one
/// site: see [`logins::pairs`]).
pub fn measure(
    servers: &[&server::Server],
    rp_key: &Zeroizing<String>,
    args: &Args,
    db: Option<&Db>,
) -> Result<(logins::LoginStats, Vec<Loaded>)> {
    anyhow::ensure!(
        args.users_per_pair > 0,
        "--users-per-pair must be at least 1"
    );
    let light = logins::pairs(servers, rp_key, 1, args.users_per_pair, args.acknowledge)?.run(
        logins::Mode::Count(args.latency_logins),
        Duration::from_millis(5),
    )?;
    let cpu = || -> Result<f64> { servers.iter().map(|s| s.cpu_seconds()).sum() };
    let mut loaded = Vec::with_capacity(args.pairs.len());
    for &pairs in &args.pairs {
        anyhow::ensure!(pairs > 0, "--pairs must be at least 1");
        let ready = logins::pairs(
            servers,
            rp_key,
            pairs,
            args.users_per_pair,
            args.acknowledge,
        )?;
        // A site that has run for a while has challenges in its tables and statistics about
        // them (autovacuum analyzes its tables). The bench's new database has neither until
        // then, and the generic plans its pooled connections keep for the store's statements
        // would be plans for empty tables (sequential scans, which the phase's growing tables
        // make slower by the second) until autovacuum's first ANALYZE a minute later. So the
        // pairs log in for a while, then the tables are analyzed, then the clock starts.
        if let Some(db) = db {
            ready.run(logins::Mode::Seconds(WARM_UP_SECONDS), Duration::ZERO)?;
            (db.analyze)()?;
        }
        let cpu_before = cpu()?;
        let own_cpu_before = own_cpu_seconds();
        let db_before = db.map(|db| (db.counters)()).transpose()?;
        let run = ready.run(logins::Mode::Seconds(args.seconds), Duration::ZERO)?;
        loaded.push(Loaded {
            pairs,
            users: pairs * args.users_per_pair,
            run,
            cpu_used: cpu()? - cpu_before,
            own_cpu_used: own_cpu_seconds() - own_cpu_before,
            db_used: match (db, db_before) {
                (Some(db), Some((cpu, xacts))) => {
                    let (cpu_after, xacts_after) = (db.counters)()?;
                    Some((cpu_after - cpu, xacts_after - xacts))
                }
                _ => None,
            },
        });
    }
    Ok((light, loaded))
}

/// The figures of each throughput phase.
pub fn print_loaded(loaded: &[Loaded]) {
    for Loaded {
        pairs,
        users,
        run,
        cpu_used,
        own_cpu_used,
        db_used,
    } in loaded
    {
        let logins = run.logins.max(1) as f64;
        println!();
        println!(
            "== push logins ({pairs} pairs, {users} users, {:.1} s)",
            run.elapsed.as_secs_f64()
        );
        println!("complete logins:            {}", run.logins);
        println!("logins per second:          {:.0}", run.per_second());
        println!(
            "answer→return p50 / p99:    {} / {} (under full load)",
            stats::ms(run.latency.p(50.0)),
            stats::ms(run.latency.p(99.0))
        );
        println!(
            "pushauthd CPU per login:    {:.3} ms",
            cpu_used * 1000.0 / logins
        );
        println!(
            "bench CPU per login:        {:.3} ms (relying-party and device clients)",
            own_cpu_used * 1000.0 / logins
        );
        if let Some((cpu, xacts)) = db_used {
            println!(
                "PostgreSQL CPU per login:   {:.3} ms (all its processes)",
                cpu * 1000.0 / logins
            );
            println!(
                "PostgreSQL transactions per login: {:.2} (committed)",
                xacts / logins
            );
        }
    }
}

/// User plus system CPU seconds this process (all its threads) has used so far.
fn own_cpu_seconds() -> f64 {
    server::cpu_seconds_of("self").unwrap_or(0.0)
}
