//! `--store postgresql`: the login phases on a temporary PostgreSQL cluster, first with one
//! pushauthd, then with two replicas of one site where every login crosses replicas (the
//! relying party waits on A, the device answers on B), so the answer→return latency there is
//! the cross-replica wake (B's commit and NOTIFY → A's listener → A's waiting request).
//!
//! The cluster is the test kit's ([`PgCluster`]) with its production-like settings
//! ([`PgOptions::durable`]: fsync, full_page_writes and synchronous_commit on; `--pg-no-fsync`
//! turns the first two off), and pushauthd
//! keeps its default pool (`[store] pool_size`, 8 connections per replica). `--pg-one-replica`
//! stops after the one-replica phases.

use std::path::Path;

use anyhow::{Context as _, Result};
use pushauth_testkit::{PgCluster, PgOptions};

use crate::server::{cpu_seconds_of, Server};
use crate::{measure, print_loaded, stats, Args, Db};

pub fn run(pushauthd: &Path, args: &Args) -> Result<()> {
    anyhow::ensure!(
        PgCluster::available(),
        "no PostgreSQL binaries under /usr/lib/postgresql/*/bin (or PUSHAUTH_PG_BIN)"
    );
    let durable = !args.pg_no_fsync;
    let pg = PgCluster::start_with(PgOptions {
        durable,
        ..PgOptions::default()
    });
    pg.create_database("pushauth");
    let url = pg.url("pushauth");
    println!(
        "PostgreSQL {} on {} (fsync and full_page_writes {}, synchronous_commit on)",
        pg.psql("SHOW server_version"),
        pg.host_port(),
        if durable { "on" } else { "off" }
    );

    let a = Server::start_on(pushauthd, &url)?;
    println!("pushauthd {} replica A on {}", pushauthd.display(), a.url);
    let rp_key = a.create_rp("bench")?;
    let counters = || Ok((pg_cpu_seconds(&pg)?, transactions(&pg)? as f64));
    let analyze = || {
        pg.try_psql_db("pushauth", "ANALYZE")
            .map(drop)
            .map_err(|e| anyhow::anyhow!("ANALYZE: {e}"))
    };
    let db = Db {
        counters: &counters,
        analyze: &analyze,
    };
    let (light, loaded) = measure(&[&a], &rp_key, args, Some(&db))?;
    println!();
    println!("==== PostgreSQL, one replica");
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
    if args.pg_one_replica {
        return Ok(());
    }

    let b = a.replica(pushauthd)?;
    println!();
    println!("pushauthd replica B on {}", b.url);
    let (light, loaded) = measure(&[&a, &b], &rp_key, args, Some(&db))?;
    println!();
    println!("==== PostgreSQL, two replicas (every answer on the other replica)");
    print_loaded(&loaded);
    println!(
        "== cross-replica wake ({} sequential logins, client waiting on A, answer on B)",
        light.logins
    );
    println!(
        "cross-replica wake p50 / p99: {} / {}",
        stats::ms(light.latency.p(50.0)),
        stats::ms(light.latency.p(99.0))
    );
    println!(
        "pushauthd peak RSS (whole run): A {:.1} MiB, B {:.1} MiB",
        a.peak_rss_mib()?,
        b.peak_rss_mib()?
    );
    Ok(())
}

/// User plus system CPU seconds of the postmaster and its children so far (the pool's backends
/// live as long as the pool keeps them).
fn pg_cpu_seconds(pg: &PgCluster) -> Result<f64> {
    let postmaster = pg.postmaster_pid().context("PostgreSQL is not running")?;
    let mut total = cpu_seconds_of(&postmaster.to_string())?;
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name: state, then the parent's pid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(postmaster) {
            // A backend that ended meanwhile is no error.
            total += cpu_seconds_of(pid).unwrap_or(0.0);
        }
    }
    Ok(total)
}

/// Transactions committed in the bench's database so far. Backends report them when idle (at
/// most a second late in PostgreSQL 15), hence the pause.
fn transactions(pg: &PgCluster) -> Result<u64> {
    std::thread::sleep(std::time::Duration::from_millis(1500));
    Ok(pg
        .psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'pushauth'")
        .parse()?)
}
