//! Refusing a stale primary: the newest PostgreSQL timeline this process has written to.
//!
//! After a failover the promoted standby writes on a new timeline (its number one higher). If
//! the old primary is later started again as a primary (instead of as a standby of the new
//! one), it accepts writes on its old timeline with the data of before the failover: a device
//! revoked since then approves again. `target_session_attrs=read-write` cannot tell the two
//! apart, so every new connection reports its server's cluster and timeline, and a connection
//! to a cluster on a timeline older than the newest seen of that cluster is refused (as
//! unavailable: 503, fail closed). Timelines are compared within one cluster (its
//! `system_identifier`, which a streaming standby shares with its primary): a database moved
//! to a new cluster starts again at timeline 1 and is not refused. The newest is kept in
//! memory, so a restarted replica learns it again from the first primary it reaches.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// What a connection's server reports: its cluster and its current timeline (the first 8 hex
/// digits of the name of the WAL file being written, PostgreSQL's "Write-Ahead Log File
/// Names").
const TIMELINE_SQL: &str = "SELECT (SELECT system_identifier FROM pg_control_system()), \
                            pg_walfile_name(pg_current_wal_lsn())";

/// A refusal is logged at most this often (every pool connection attempt meets it).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The newest timeline seen per cluster.
#[derive(Debug, Default)]
pub(super) struct Timelines {
    newest: Mutex<HashMap<i64, u32>>,
    logged: Mutex<Option<Instant>>,
}

impl Timelines {
    /// Checks a new connection's server: `Ok` and remembered when its timeline is not older
    /// than the newest seen of its cluster; `Err` with the log line otherwise.
    pub(super) fn admit(&self, cluster: i64, timeline: u32) -> Result<(), String> {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = newest.entry(cluster).or_insert(timeline);
        if timeline < *seen {
            return Err(format!(
                "database timeline {timeline} is older than timeline {seen} this pushauthd \
                 wrote to before: refused (an old primary started again after a failover? make \
                 it a standby of the new primary)"
            ));
        }
        *seen = timeline;
        Ok(())
    }

    /// Asks `client`'s server for its cluster and timeline and [`Timelines::admit`]s it.
    ///
    /// # Errors
    /// The refusal's text, or the query's failure.
    pub(super) async fn check(&self, client: &Client) -> Result<(), String> {
        let row = client.query_one(TIMELINE_SQL, &[]).await.map_err(|e| {
            format!(
                "cannot read the database's timeline: {}",
                super::error::message(&e)
            )
        })?;
        let (cluster, name): (i64, String) = row
            .try_get(0)
            .and_then(|cluster| Ok((cluster, row.try_get(1)?)))
            .map_err(|e| format!("cannot read the database's timeline: {e}"))?;
        let timeline = parse(&name)
            .ok_or_else(|| format!("unexpected WAL file name {name:?} from the database"))?;
        self.admit(cluster, timeline).inspect_err(|refusal| {
            let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
            if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                *logged = Some(Instant::now());
                tracing::error!("{refusal}");
            }
        })
    }
}

/// The timeline of a WAL file name (`00000002000000000000000A` → 2).
fn parse(walfile: &str) -> Option<u32> {
    let digits = walfile.get(..8)?;
    if walfile.len() != 24 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walfile_names_give_their_timeline() {
        assert_eq!(parse("00000002000000000000000A"), Some(2));
        assert_eq!(parse("0000001F0000000100000003"), Some(31));
        assert_eq!(parse("000000020000"), None);
        assert_eq!(parse("g0000002000000000000000A"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn an_older_timeline_is_refused_once_a_newer_was_seen() {
        let t = Timelines::default();
        assert!(t.admit(7, 1).is_ok());
        assert!(t.admit(7, 2).is_ok());
        let refusal = t.admit(7, 1).unwrap_err();
        assert!(
            refusal.contains("timeline 1 is older than timeline 2"),
            "{refusal}"
        );
        assert!(t.admit(7, 2).is_ok());
        assert!(t.admit(7, 3).is_ok());
        assert!(t.admit(7, 2).is_err());
    }

    /// Attack review r8: a database moved to a new cluster (a restore, a rebuilt cluster)
    /// starts again at timeline 1; that is not an old primary, and must not be refused.
    #[test]
    fn timelines_of_another_cluster_are_not_compared() {
        let t = Timelines::default();
        assert!(t.admit(7, 3).is_ok());
        assert!(t.admit(8, 1).is_ok());
        assert!(t.admit(7, 2).is_err());
        assert!(t.admit(8, 1).is_ok());
    }

    /// The newcomer walk-through's finding: after a failover, the old primary started again
    /// as a primary (with the data of before: a device revoked since approves again) is taken
    /// by `target_session_attrs=read-write`. It must be refused, as unavailable.
    #[test]
    fn issue13_an_old_primary_started_again_after_a_failover_is_refused() {
        use crate::store::{DbError, DbErrorKind, Store, StoreError};
        use pushauth_testkit::PgCluster;
        use std::time::{Duration, Instant};

        let test = "issue13_an_old_primary_started_again_after_a_failover_is_refused";
        let Some(old) = PgCluster::start_or_skip(test) else {
            return;
        };
        old.create_database("tl");
        let url = PgCluster::multi_host_url(&[&old], "tl");
        let settings = |url: &str| super::super::PgSettings::parse(url, None, Some(2)).unwrap();
        drop(super::super::PgStore::open(&settings(&url), true).unwrap());
        let new = old.standby();
        let store = super::super::PgStore::open(
            &settings(&PgCluster::multi_host_url(&[&old, &new], "tl")),
            false,
        )
        .unwrap();
        store.health(true).unwrap();

        // Failover: the old primary goes, the standby is promoted (timeline 2).
        old.stop();
        new.promote();
        let until = |what: &str, ok: &dyn Fn(&StoreResult) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let result = store.open_challenges(0);
                if ok(&result) {
                    return result;
                }
                assert!(Instant::now() < deadline, "{what}: last {result:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        until("the promoted standby serves", &|r| r.is_ok()).unwrap();

        // The old primary comes back writable on its old timeline; the new one is gone.
        new.stop();
        old.start_again();
        let refused = until("the old primary is refused", &|r| {
            r.as_ref()
                .err()
                .is_some_and(|e| e.to_string().contains("older than timeline"))
        });
        match refused {
            Err(StoreError::Db(DbError { kind, .. })) => assert_eq!(kind, DbErrorKind::Unavailable),
            other => panic!("{other:?}"),
        }
        // And it stays refused: nothing is ever served from it.
        for _ in 0..5 {
            assert!(store.open_challenges(0).is_err());
        }
    }

    type StoreResult = crate::store::StoreResult<u64>;
}
