//! `--store postgresql`: the login phases on a temporary PostgreSQL cluster, first with one
//! pushauthd, then with two replicas of one site where every login crosses replicas (the
//! relying party waits on A, the device answers on B), so the answer→return latency there is
//! the cross-replica wake (B's commit and NOTIFY → A's listener → A's waiting request).
//!
//! The cluster is the test kit's ([`PgCluster`]) with its production-like settings
//! ([`PgOptions::durable`]: fsync, full_page_writes and synchronous_commit on), and pushauthd
//! keeps its default pool (`[store] pool_size`, 8 connections per replica).

use std::path::Path;

use anyhow::Result;
use pushauth_testkit::{PgCluster, PgOptions};

use crate::server::Server;
use crate::{measure, print_loaded, stats, Args};

pub fn run(pushauthd: &Path, args: &Args) -> Result<()> {
    anyhow::ensure!(
        PgCluster::available(),
        "no PostgreSQL binaries under /usr/lib/postgresql/*/bin (or PUSHAUTH_PG_BIN)"
    );
    let pg = PgCluster::start_with(PgOptions { durable: true });
    pg.create_database("pushauth");
    let url = pg.url("pushauth");
    println!(
        "PostgreSQL {} on {} (fsync, full_page_writes, synchronous_commit on)",
        pg.psql("SHOW server_version"),
        pg.host_port()
    );

    let a = Server::start_on(pushauthd, &url)?;
    println!("pushauthd {} replica A on {}", pushauthd.display(), a.url);
    let rp_key = a.create_rp("bench")?;
    let (light, loaded) = measure(&[&a], &rp_key, args)?;
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

    let b = a.replica(pushauthd)?;
    println!();
    println!("pushauthd replica B on {}", b.url);
    let (light, loaded) = measure(&[&a, &b], &rp_key, args)?;
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
