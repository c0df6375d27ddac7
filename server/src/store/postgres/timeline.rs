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
//! memory and, for pushauthd, in a file of the data directory (`pg-timelines`, one
//! "cluster timeline" line per cluster), so a restarted replica still refuses a primary older
//! than one it wrote to before the restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// What a connection's server reports: its cluster and its current timeline (the first 8 hex
/// digits of the name of the WAL file being written, PostgreSQL's "Write-Ahead Log File
/// Names").
const TIMELINE_SQL: &str = "SELECT (SELECT system_identifier FROM pg_control_system()), \
                            pg_walfile_name(pg_current_wal_lsn())";

/// The words every refusal of an old primary carries ([`refuses_stale_primary`]).
const REFUSED: &str = "this pushauthd wrote to before: refused";

/// Whether `e` is the refusal of a database on a timeline older than one this process (or its
/// data directory's `pg-timelines`) saw: an old primary started again after a failover, which
/// pointing at another config does not cure (the admin commands' advice differs).
pub fn refuses_stale_primary(e: &crate::store::StoreError) -> bool {
    e.to_string().contains(REFUSED)
}

/// A refusal is logged at most this often (every pool connection attempt meets it).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The newest timeline seen per cluster.
#[derive(Debug, Default)]
pub(super) struct Timelines {
    newest: Mutex<HashMap<i64, u32>>,
    logged: Mutex<Option<Instant>>,
    /// Where they are kept across restarts, if anywhere.
    file: Option<PathBuf>,
}

impl Timelines {
    /// The timelines `file` remembers (none when it is `None` or does not exist yet).
    pub(super) fn new(file: Option<PathBuf>) -> Timelines {
        let newest = file.as_deref().map(read_file).unwrap_or_default();
        Timelines {
            newest: Mutex::new(newest),
            logged: Mutex::default(),
            file,
        }
    }

    /// Checks a new connection's server: `Ok` and remembered when its timeline is not older
    /// than the newest seen of its cluster; `Err` with the log line otherwise.
    pub(super) fn admit(&self, cluster: i64, timeline: u32) -> Result<(), String> {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let known = newest.get(&cluster).copied();
        if let Some(seen) = known.filter(|seen| timeline < *seen) {
            return Err(format!(
                "database timeline {timeline} is older than timeline {seen} {REFUSED} (an old \
                 primary started again after a failover? make it a standby of the new primary)"
            ));
        }
        if known != Some(timeline) {
            newest.insert(cluster, timeline);
            if let Some(file) = &self.file {
                persist(file, &newest);
            }
        }
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

/// The timelines a file keeps; an unreadable file or line is logged and skipped (the memory
/// still guards this process).
fn read_file(path: &Path) -> HashMap<i64, u32> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            tracing::error!("cannot read {}: {e}", path.display());
            return HashMap::new();
        }
    };
    let mut timelines = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .split_once(' ')
            .and_then(|(c, t)| Some((c.parse::<i64>().ok()?, t.parse::<u32>().ok()?)));
        match parsed {
            Some((cluster, timeline)) => {
                let seen = timelines.entry(cluster).or_insert(timeline);
                *seen = (*seen).max(timeline);
            }
            None => tracing::error!("{}: line {line:?} skipped", path.display()),
        }
    }
    timelines
}

/// Writes `newest` to `path` (atomically, 0600), merged with what the file holds: replicas
/// sharing a data directory each add what they saw, none lowers another's.
fn persist(path: &Path, newest: &HashMap<i64, u32>) {
    let mut merged = read_file(path);
    for (cluster, timeline) in newest {
        let seen = merged.entry(*cluster).or_insert(*timeline);
        *seen = (*seen).max(*timeline);
    }
    let mut lines: Vec<String> = merged.iter().map(|(c, t)| format!("{c} {t}\n")).collect();
    lines.sort();
    if let Err(e) = pushauth_files::replace(path, lines.concat().as_bytes()) {
        tracing::error!("cannot keep the database timeline: {e}");
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

    /// Session 8's next step: a restarted replica forgot the newest timeline and would
    /// accept an old primary again; the file keeps it, and replicas sharing it never lower it.
    #[test]
    fn issue13_the_newest_timeline_outlives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pg-timelines");
        let first = Timelines::new(Some(file.clone()));
        assert!(first.admit(7, 1).is_ok());
        assert!(first.admit(7, 2).is_ok());
        assert!(first.admit(9, 1).is_ok());
        drop(first);
        let restarted = Timelines::new(Some(file.clone()));
        let refusal = restarted.admit(7, 1).unwrap_err();
        assert!(refusal.contains("older than timeline 2"), "{refusal}");
        assert!(restarted.admit(9, 1).is_ok());
        // Another replica on the same data directory that only saw timeline 1 of cluster 7
        // adds its cluster without lowering 7.
        let other = Timelines::new(None);
        assert!(other.admit(7, 1).is_ok());
        super::persist(&file, &[(7, 1), (11, 3)].into_iter().collect());
        let again = Timelines::new(Some(file.clone()));
        assert!(again.admit(7, 1).is_err());
        assert!(again.admit(11, 2).is_err());
        // Written like the other state files: 0600.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A damaged line is skipped, not fatal.
        std::fs::write(&file, "7 2\ngarbage\n").unwrap();
        assert!(Timelines::new(Some(file)).admit(7, 1).is_err());
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
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pg-timelines");
        let settings = |url: &str| {
            let mut s = super::super::PgSettings::parse(url, None, Some(2)).unwrap();
            s.timeline_file = Some(file.clone());
            s
        };
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
        // Also after this replica restarts: the file remembers timeline 2.
        drop(store);
        let err = super::super::PgStore::open(&settings(&url), false).unwrap_err();
        assert!(err.to_string().contains("older than timeline 2"), "{err}");
    }

    type StoreResult = crate::store::StoreResult<u64>;
}
