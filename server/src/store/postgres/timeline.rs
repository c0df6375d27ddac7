//! Refusing a stale primary: the newest PostgreSQL timeline this process has written to.
//!
//! After a failover the promoted standby writes on a new timeline (its number one higher). If
//! the old primary is later started again as a primary (instead of as a standby of the new
//! one), it accepts writes on its old timeline with the data of before the failover: a device
//! revoked since then approves again. `target_session_attrs=read-write` cannot tell the two
//! apart, so every new connection reports its server's timeline and a connection to one older
//! than the newest seen is refused (as unavailable: 503, fail closed). The newest is kept in
//! memory, so a restarted replica learns it again from the first primary it reaches.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::Client;

/// What a connection's server reports: its current timeline (the first 8 hex digits of the
/// name of the WAL file being written, PostgreSQL's "Write-Ahead Log File Names").
const TIMELINE_SQL: &str = "SELECT pg_walfile_name(pg_current_wal_lsn())";

/// The newest timeline seen (0: none yet).
#[derive(Debug, Default)]
pub(super) struct Timelines {
    newest: AtomicU32,
}

impl Timelines {
    /// Checks a new connection's server: `Ok` and remembered when its timeline is not older
    /// than the newest seen; `Err` with the log line otherwise.
    pub(super) fn admit(&self, timeline: u32) -> Result<(), String> {
        let newest = self.newest.fetch_max(timeline, Ordering::SeqCst);
        if timeline < newest {
            return Err(format!(
                "database timeline {timeline} is older than timeline {newest} this pushauthd \
                 wrote to before: refused (an old primary started again after a failover? make \
                 it a standby of the new primary)"
            ));
        }
        Ok(())
    }

    /// Asks `client`'s server for its timeline and [`Timelines::admit`]s it.
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
        let name: String = row
            .try_get(0)
            .map_err(|e| format!("cannot read the database's timeline: {e}"))?;
        let timeline = parse(&name)
            .ok_or_else(|| format!("unexpected WAL file name {name:?} from the database"))?;
        self.admit(timeline)
            .inspect_err(|refusal| tracing::error!("{refusal}"))
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
        assert!(t.admit(1).is_ok());
        assert!(t.admit(2).is_ok());
        let refusal = t.admit(1).unwrap_err();
        assert!(
            refusal.contains("timeline 1 is older than timeline 2"),
            "{refusal}"
        );
        assert!(t.admit(2).is_ok());
        assert!(t.admit(3).is_ok());
        assert!(t.admit(2).is_err());
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
