//! The SQLite store: one file `<data_dir>/pushauthd.sqlite3` in WAL mode, one writer connection
//! behind a mutex (SQLite has one writer anyway), a small pool of readers, and a thread that
//! checkpoints the WAL in the background.

mod checkpoint;

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use pushauth_proto::wire::AuditEvent;
use pushauth_proto::{ChallengeState, Context};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use self::checkpoint::Checkpointer;
use super::*;
use crate::clock::{self, Millis};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "pushauthd.sqlite3";

/// Current schema version; each step in [`MIGRATIONS`] moves one version up.
const SCHEMA_VERSION: i64 = 3;

const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    r#"
    CREATE TABLE users (
        name        TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE user_locks (
        user        TEXT PRIMARY KEY REFERENCES users(name),
        until       INTEGER NOT NULL
    );
    CREATE TABLE devices (
        id           TEXT PRIMARY KEY,
        user         TEXT NOT NULL REFERENCES users(name),
        name         TEXT NOT NULL,
        alg          TEXT NOT NULL,
        public_key   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER,
        revoked_at   INTEGER
    );
    CREATE INDEX devices_by_user ON devices(user, created_at);
    CREATE TABLE enrollments (
        token_hash  BLOB PRIMARY KEY,
        user        TEXT NOT NULL REFERENCES users(name),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER,
        device_id   TEXT
    );
    CREATE TABLE relying_parties (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        key_hash    BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE challenges (
        id             TEXT PRIMARY KEY,
        user           TEXT NOT NULL,
        rp_id          TEXT NOT NULL,
        state          TEXT NOT NULL,
        context        TEXT NOT NULL,
        context_digest BLOB NOT NULL,
        rp_nonce       BLOB NOT NULL,
        code           TEXT,
        devices        TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        device_id      TEXT,
        decision       TEXT,
        reason         TEXT,
        typed_code     TEXT,
        responded_at   TEXT,
        signature      TEXT
    );
    CREATE INDEX challenges_by_user_created ON challenges(user, created_at);
    CREATE INDEX challenges_by_user_state ON challenges(user, state);
    CREATE INDEX challenges_by_state_expiry ON challenges(state, expires_at);
    -- Which devices an open challenge waits on; rows go when the challenge ends.
    CREATE TABLE open_challenge_devices (
        device_id    TEXT NOT NULL,
        challenge_id TEXT NOT NULL,
        PRIMARY KEY (device_id, challenge_id)
    ) WITHOUT ROWID;
    CREATE INDEX open_challenge_devices_by_challenge ON open_challenge_devices(challenge_id);
    CREATE TABLE device_nonces (
        device_id   TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        -- After this time the request's timestamp is stale, so the nonce cannot be replayed.
        valid_until INTEGER NOT NULL,
        PRIMARY KEY (device_id, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX device_nonces_by_time ON device_nonces(valid_until);
    CREATE TABLE audit (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        at           INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        user         TEXT,
        device_id    TEXT,
        challenge_id TEXT,
        detail       TEXT
    );
    CREATE INDEX audit_by_user ON audit(user, id);
    "#,
    // 1 -> 2: relying-party rights and lifecycle; how each device was bound (issue 9 items 1,
    // 2 and 4). Existing relying parties keep what they had: every user, no enrollment.
    r#"
    ALTER TABLE relying_parties ADD COLUMN users TEXT NOT NULL DEFAULT '["*"]';
    ALTER TABLE relying_parties ADD COLUMN enroll INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE relying_parties ADD COLUMN bootstrap INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE relying_parties ADD COLUMN revoked_at INTEGER;
    -- 'admin' or 'rp:<id>'; the approving challenge (each usable once) and its device.
    ALTER TABLE enrollments ADD COLUMN via TEXT NOT NULL DEFAULT 'admin';
    ALTER TABLE enrollments ADD COLUMN approval TEXT;
    ALTER TABLE enrollments ADD COLUMN approved_by TEXT;
    CREATE UNIQUE INDEX enrollments_by_approval ON enrollments(approval) WHERE approval IS NOT NULL;
    -- Devices are never deleted: the record of every binding (NIST SP 800-63B-4).
    ALTER TABLE devices ADD COLUMN source TEXT;
    ALTER TABLE devices ADD COLUMN via TEXT;
    ALTER TABLE devices ADD COLUMN approved_by TEXT;
    "#,
    // 2 -> 3 (issue 9 items 12 and 13): push limits and report lock-outs per user, relying
    // party and source address; unlock resets; aggregated audit events carry a count.
    r#"
    ALTER TABLE challenges ADD COLUMN source TEXT NOT NULL DEFAULT '';
    -- Partial indexes, so the limit counts read only the rows they count: a user with thousands of
    -- approved logins in the window costs nothing per new challenge.
    CREATE INDEX challenges_unapproved_by_source ON challenges(user, rp_id, source, created_at)
        WHERE state != 'approved';
    CREATE INDEX challenges_unapproved_by_user ON challenges(user, created_at)
        WHERE state != 'approved';
    CREATE INDEX challenges_approved_by_source ON challenges(user, rp_id, source, created_at)
        WHERE state = 'approved';
    DROP TABLE user_locks;
    CREATE TABLE push_locks (
        user        TEXT NOT NULL,
        rp_id       TEXT NOT NULL,
        source      TEXT NOT NULL,
        until       INTEGER NOT NULL,
        PRIMARY KEY (user, rp_id, source)
    ) WITHOUT ROWID;
    CREATE INDEX push_locks_by_until ON push_locks(until);
    -- `pushauthd unlock`: challenges created before `at` no longer count against the user.
    CREATE TABLE push_resets (
        user        TEXT PRIMARY KEY,
        at          INTEGER NOT NULL
    );
    ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    "#,
];

const OPEN: &str = "('pending','acknowledged')";
/// The terminal states, listed so the `(state, expires_at)` index serves the retention query.
const FINISHED: &str = "('approved','denied','expired','cancelled')";
const CHALLENGE_COLUMNS: &str = "id, user, rp_id, state, context, context_digest, rp_nonce, code, \
     devices, created_at, expires_at, device_id, decision, reason, typed_code, responded_at, signature";
const DEVICE_COLUMNS: &str =
    "id, user, name, alg, public_key, created_at, last_seen_at, revoked_at, source, via, approved_by";
const RP_COLUMNS: &str = "id, name, key_hash, users, enroll, bootstrap, created_at, revoked_at";
const MAX_IDLE_READERS: usize = 8;
// Every store thread keeps its reader: closing one drops its page cache and its memory map.
const _: () = assert!(MAX_IDLE_READERS >= crate::jobs::STORE_THREADS);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the connection usable (SQLite rolls back).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn conversion_error(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

fn parse_col<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e: T::Err| conversion_error(index, e.to_string()))
}

fn parse_opt_col<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let text: Option<String> = row.get(index)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: T::Err| conversion_error(index, e.to_string()))
    })
    .transpose()
}

fn challenge_from_row(row: &Row<'_>) -> rusqlite::Result<ChallengeRecord> {
    let context: String = row.get(4)?;
    let context: Context =
        serde_json::from_str(&context).map_err(|e| conversion_error(4, e.to_string()))?;
    let digest: Vec<u8> = row.get(5)?;
    let context_digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| conversion_error(5, "context digest is not 32 bytes".into()))?;
    let devices: String = row.get(8)?;
    let devices: Vec<String> =
        serde_json::from_str(&devices).map_err(|e| conversion_error(8, e.to_string()))?;
    Ok(ChallengeRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        rp_id: row.get(2)?,
        state: parse_col(row, 3)?,
        context,
        context_digest,
        rp_nonce: row.get(6)?,
        code: row.get(7)?,
        devices,
        created_at: row.get(9)?,
        expires_at: row.get(10)?,
        device_id: row.get(11)?,
        decision: parse_opt_col(row, 12)?,
        reason: parse_opt_col(row, 13)?,
        typed_code: row.get(14)?,
        responded_at: row.get(15)?,
        signature: row.get(16)?,
    })
}

fn device_from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        alg: row.get(3)?,
        public_key: row.get(4)?,
        created_at: row.get(5)?,
        last_seen_at: row.get(6)?,
        revoked_at: row.get(7)?,
        source: row.get(8)?,
        via: row.get(9)?,
        approved_by: row.get(10)?,
    })
}

fn rp_from_row(row: &Row<'_>) -> rusqlite::Result<RelyingPartyRecord> {
    let hash: Vec<u8> = row.get(2)?;
    let key_hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| conversion_error(2, "key hash is not 32 bytes".into()))?;
    let users: String = row.get(3)?;
    let users: Vec<String> =
        serde_json::from_str(&users).map_err(|e| conversion_error(3, e.to_string()))?;
    Ok(RelyingPartyRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        key_hash,
        users,
        enroll: row.get(4)?,
        bootstrap: row.get(5)?,
        created_at: row.get(6)?,
        revoked_at: row.get(7)?,
    })
}

fn select_rp(conn: &Connection, id: &str) -> rusqlite::Result<Option<RelyingPartyRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {RP_COLUMNS} FROM relying_parties WHERE id = ?1"
    ))?
    .query_row([id], rp_from_row)
    .optional()
}

fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // No mmap: pages touched through it count as the process's memory, and with WAL every
    // write invalidates the readers' view anyway; reads go through a small page cache instead.
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The background checkpointer copies pages as they come; the writer's own checkpoint, at
    // 64 MiB of WAL, only finishes that work and lets the WAL start over. Rarer is better for
    // it (it stalls every operation while it syncs); much larger WALs make reads slower.
    conn.pragma_update(None, "wal_autocheckpoint", 16_000)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn write_audit(tx: &Connection, entry: &AuditEntry, now: Millis) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (at, kind, user, device_id, challenge_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now,
        entry.kind,
        entry.user,
        entry.device_id,
        entry.challenge_id,
        entry.detail
    ])?;
    Ok(())
}

fn select_challenge(conn: &Connection, id: &str) -> rusqlite::Result<Option<ChallengeRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = ?1"
    ))?
    .query_row([id], challenge_from_row)
    .optional()
}

/// Drops the open-challenge index rows of a challenge that just ended.
fn finish(tx: &Connection, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM open_challenge_devices WHERE challenge_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Moves one challenge to `expired` if it is open and due; audits it. True if it did.
fn expire_if_due(tx: &Connection, id: &str, user: &str, now: Millis) -> rusqlite::Result<bool> {
    let changed = tx
        .prepare_cached(&format!(
            "UPDATE challenges SET state = 'expired', updated_at = ?2 \
             WHERE id = ?1 AND state IN {OPEN} AND expires_at <= ?2"
        ))?
        .execute(params![id, now])?;
    if changed == 0 {
        return Ok(false);
    }
    finish(tx, id)?;
    write_audit(
        tx,
        &AuditEntry {
            kind: "challenge_expired",
            user: Some(user.to_owned()),
            challenge_id: Some(id.to_owned()),
            ..AuditEntry::default()
        },
        now,
    )?;
    Ok(true)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, which is created 0700 if missing.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        };
        if !data_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(dir_err)?;
            // The umask may have narrowed the mode further; make it exactly 0700.
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
        }
        let path = data_dir.join(DB_FILE);
        let mut writer = open_connection(&path)?;
        migrate(&mut writer)?;
        let checkpointer = Checkpointer::start(open_connection(&path)?, &path)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            checkpointer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How the [`Store`] operations below reach the database: a plain [`SqliteStore`] gives each
/// write its own transaction; a [`Group`] makes its writes share one.
trait Db {
    /// Runs `f` on a connection that sees everything committed (and, in a group, the group's own
    /// writes).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T>;
    /// Runs `f` atomically on the writer: all of it takes effect or none.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T>;
    /// [`Store::group`].
    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()>;

    /// Applies a compare-and-set `UPDATE` (whose WHERE clause holds the allowed states and
    /// `expires_at > now`) after expiring the challenge if it is due.
    fn transition(
        &self,
        id: &str,
        now: Millis,
        apply: impl FnOnce(&Connection, &ChallengeRecord) -> rusqlite::Result<usize>,
    ) -> StoreResult<Cas> {
        self.write(|tx| {
            let Some(current) = select_challenge(tx, id)? else {
                return Ok(Cas::Missing);
            };
            if expire_if_due(tx, id, &current.user, now)? {
                let after = select_challenge(tx, id)?;
                return Ok(after.map_or(Cas::Missing, |c| Cas::Expired(Box::new(c))));
            }
            if apply(tx, &current)? == 0 {
                return Ok(Cas::WrongState(Box::new(current)));
            }
            Ok(select_challenge(tx, id)?.map_or(Cas::Missing, |c| Cas::Changed(Box::new(c))))
        })
    }
}

impl Db for SqliteStore {
    /// Reads on a pooled reader connection. The pool never shrinks below the number of store
    /// job threads ([`crate::jobs::STORE_THREADS`]), so connections are not opened and closed
    /// per read.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        Ok(result?)
    }

    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        self.checkpointer.committed();
        Ok(value)
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        let group = Group {
            store: self,
            writer: RefCell::new(None),
        };
        work(&group);
        group.commit()
    }
}

/// Operations whose writes share one transaction, committed when the group ends (see
/// [`Store::group`]). The writer is taken at the group's first write, not before, so a group
/// that only reads never holds up other threads' writes; from then on reads use the writer's
/// connection too, so later operations see the earlier ones' writes.
struct Group<'a> {
    store: &'a SqliteStore,
    writer: RefCell<Option<MutexGuard<'a, Connection>>>,
}

impl Group<'_> {
    fn commit(self) -> StoreResult<()> {
        let Some(conn) = self.writer.take() else {
            return Ok(());
        };
        if let Err(e) = conn.execute_batch("COMMIT") {
            // Nothing of the group is kept: its callers are told it failed.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        self.store.checkpointer.committed();
        Ok(())
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        // Only reached with the writer still held if the group unwound before committing.
        if let Some(conn) = self.writer.get_mut().take() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
}

impl Db for Group<'_> {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        if let Some(conn) = self.writer.borrow().as_deref() {
            return Ok(f(conn)?);
        }
        self.store.read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut slot = self.writer.borrow_mut();
        let conn = match slot.as_deref_mut() {
            Some(conn) => conn,
            None => {
                let conn = lock(&self.store.writer);
                conn.execute_batch("BEGIN IMMEDIATE")?;
                slot.insert(conn)
            }
        };
        // A savepoint per operation: one that fails leaves the rest of the group as it was.
        let savepoint = conn.savepoint()?;
        let value = f(&savepoint)?;
        savepoint.commit()?;
        Ok(value)
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        // Already grouped: the outer group commits.
        work(self);
        Ok(())
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let version: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    let mut version = version.unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew(version));
    }
    while version < SCHEMA_VERSION {
        let step = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
            .ok_or_else(|| StoreError::Corrupt(format!("no migration from version {version}")))?;
        tx.execute_batch(step)?;
        version += 1;
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl<D: Db> Store for D {
    fn group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        self.run_group(work)
    }

    fn health(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn create_enrollment(
        &self,
        user: &str,
        token_hash: &[u8; 32],
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO users (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![user, now])?;
            tx.prepare_cached(
                "INSERT INTO enrollments (token_hash, user, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&token_hash[..], user, now, expires_at])?;
            write_audit(
                tx,
                &AuditEntry {
                    kind: "enrollment_created",
                    user: Some(user.to_owned()),
                    detail: Some(format!("expires {}", clock::rfc3339(expires_at))),
                    ..AuditEntry::default()
                },
                now,
            )
        })
    }

    fn get_enrollment(&self, token_hash: &[u8; 32]) -> StoreResult<Option<EnrollmentRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT user, expires_at, used_at IS NOT NULL FROM enrollments WHERE token_hash = ?1",
            )?
            .query_row([&token_hash[..]], |row| {
                Ok(EnrollmentRecord {
                    user: row.get(0)?,
                    expires_at: row.get(1)?,
                    used: row.get(2)?,
                })
            })
            .optional()
        })
    }

    fn create_rp_enrollment(
        &self,
        new: &NewRpEnrollment,
        check: &dyn Fn(&EnrollFacts) -> Result<(), crate::enrollment::Refusal>,
    ) -> StoreResult<Result<(), crate::enrollment::Refusal>> {
        let now = new.created_at;
        self.write(|tx| {
            let (active_devices, bound_devices): (i64, i64) = tx
                .prepare_cached(
                    "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM devices WHERE user = ?1",
                )?
                .query_row([&new.user], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let approval = match &new.approval {
                None => None,
                Some(id) => match select_challenge(tx, id)? {
                    None => None,
                    Some(challenge) => {
                        let decided_at: Millis = tx
                            .prepare_cached("SELECT updated_at FROM challenges WHERE id = ?1")?
                            .query_row([id], |r| r.get(0))?;
                        let used = tx
                            .prepare_cached("SELECT 1 FROM enrollments WHERE approval = ?1")?
                            .exists([id])?;
                        let approver_active = match &challenge.device_id {
                            Some(device) => tx
                                .prepare_cached(
                                    "SELECT 1 FROM devices WHERE id = ?1 AND user = ?2 AND revoked_at IS NULL",
                                )?
                                .exists(params![device, challenge.user])?,
                            None => false,
                        };
                        Some(ApprovalFacts {
                            challenge,
                            decided_at,
                            used,
                            approver_active,
                        })
                    }
                },
            };
            let approved_by = approval
                .as_ref()
                .and_then(|a| a.challenge.device_id.clone());
            let facts = EnrollFacts {
                active_devices: usize::try_from(active_devices).unwrap_or(usize::MAX),
                bound_devices: usize::try_from(bound_devices).unwrap_or(usize::MAX),
                approval,
            };
            if let Err(refusal) = check(&facts) {
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "enrollment_refused",
                        user: Some(new.user.clone()),
                        challenge_id: new.approval.clone(),
                        detail: Some(format!("{} (rp {})", refusal.code().as_str(), new.rp_id)),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
                return Ok(Err(refusal));
            }
            tx.prepare_cached(
                "INSERT INTO users (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![new.user, now])?;
            let via = format!("rp:{}", new.rp_id);
            tx.prepare_cached(
                "INSERT INTO enrollments (token_hash, user, created_at, expires_at, via, approval, approved_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &new.token_hash[..],
                new.user,
                now,
                new.expires_at,
                via,
                new.approval,
                approved_by
            ])?;
            let approval_text = match (&new.approval, &approved_by) {
                (Some(c), Some(d)) => format!(", approved by device {d} (challenge {c})"),
                (Some(c), None) => format!(", approval challenge {c}"),
                _ => ", no device to approve (bootstrap)".to_owned(),
            };
            write_audit(
                tx,
                &AuditEntry {
                    kind: "enrollment_created",
                    user: Some(new.user.clone()),
                    device_id: approved_by.clone(),
                    challenge_id: new.approval.clone(),
                    detail: Some(format!(
                        "expires {}, via {via}{approval_text}",
                        clock::rfc3339(new.expires_at)
                    )),
                },
                now,
            )?;
            Ok(Ok(()))
        })
    }

    fn redeem_enrollment(
        &self,
        token_hash: &[u8; 32],
        device: &NewDevice,
        source: Option<&str>,
        now: Millis,
    ) -> StoreResult<Redeem> {
        self.write(|tx| {
            type Found = (String, Millis, bool, String, Option<String>);
            let found: Option<Found> = tx
                .prepare_cached(
                    "SELECT user, expires_at, used_at IS NOT NULL, via, approved_by FROM enrollments WHERE token_hash = ?1",
                )?
                .query_row([&token_hash[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            let Some((user, expires_at, used, via, approved_by)) = found else {
                return Ok(Redeem::Unknown);
            };
            if used {
                return Ok(Redeem::Used);
            }
            if now >= expires_at {
                return Ok(Redeem::Expired);
            }
            // A relying party's link is only as good as what allowed it, checked again now
            // (the link lives up to a week): the relying party still holds the right, a
            // bootstrap link still finds the user without a device, the approving device is
            // still active.
            if let Some(rp_id) = via.strip_prefix("rp:") {
                use crate::enrollment::Refusal;
                // The admin token used as a relying party has every right and cannot be revoked.
                let (rp_ok, may_bootstrap) = if rp_id == crate::auth::ADMIN_RP {
                    (true, true)
                } else {
                    let rp = select_rp(tx, rp_id)?;
                    let rp_ok = rp.as_ref().is_some_and(|rp| {
                        rp.revoked_at.is_none()
                            && rp.enroll
                            && crate::rights::user_in_scope(&rp.users, &user)
                    });
                    (rp_ok, rp.as_ref().is_some_and(|rp| rp.bootstrap))
                };
                let refusal = if !rp_ok {
                    Some(Refusal::RelyingPartyRevoked)
                } else {
                    match &approved_by {
                        None => {
                            let (active, bound): (i64, i64) = tx
                                .prepare_cached(
                                    "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM devices WHERE user = ?1",
                                )?
                                .query_row([&user], |r| Ok((r.get(0)?, r.get(1)?)))?;
                            if active > 0 {
                                Some(Refusal::ApprovalRequired)
                            } else {
                                crate::enrollment::bootstrap_refusal(
                                    usize::try_from(bound).unwrap_or(usize::MAX),
                                    may_bootstrap,
                                )
                            }
                        }
                        Some(approver) => {
                            let active = tx
                                .prepare_cached(
                                    "SELECT 1 FROM devices WHERE id = ?1 AND user = ?2 AND revoked_at IS NULL",
                                )?
                                .exists(params![approver, user])?;
                            (!active).then_some(Refusal::ApprovalInvalid)
                        }
                    }
                };
                if let Some(refusal) = refusal {
                    write_audit(
                        tx,
                        &AuditEntry {
                            kind: "enrollment_refused",
                            user: Some(user.clone()),
                            device_id: approved_by.clone(),
                            detail: Some(format!(
                                "{} at redemption (via {via})",
                                refusal.code().as_str()
                            )),
                            ..AuditEntry::default()
                        },
                        now,
                    )?;
                    return Ok(Redeem::Refused(refusal));
                }
            }
            let changed = tx
                .prepare_cached(
                    "UPDATE enrollments SET used_at = ?2, device_id = ?3 WHERE token_hash = ?1 AND used_at IS NULL",
                )?
                .execute(params![&token_hash[..], now, device.id])?;
            if changed == 0 {
                return Ok(Redeem::Used);
            }
            tx.prepare_cached(
                "INSERT INTO devices (id, user, name, alg, public_key, created_at, source, via, approved_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                device.id,
                user,
                device.name,
                device.alg,
                device.public_key,
                now,
                source,
                via,
                approved_by
            ])?;
            write_audit(
                tx,
                &AuditEntry {
                    kind: "device_enrolled",
                    user: Some(user.clone()),
                    device_id: Some(device.id.clone()),
                    detail: Some(format!(
                        "name {:?}, alg {}, source {}, via {via}, approved_by {}",
                        device.name,
                        device.alg,
                        source.unwrap_or("unknown"),
                        approved_by.as_deref().unwrap_or("none")
                    )),
                    ..AuditEntry::default()
                },
                now,
            )?;
            Ok(Redeem::Enrolled(Box::new(DeviceRecord {
                id: device.id.clone(),
                user,
                name: device.name.clone(),
                alg: device.alg.clone(),
                public_key: device.public_key.clone(),
                created_at: now,
                last_seen_at: None,
                revoked_at: None,
                source: source.map(str::to_owned),
                via: Some(via),
                approved_by,
            })))
        })
    }

    fn user_devices(&self, user: &str) -> StoreResult<Option<Vec<DeviceRecord>>> {
        self.read(|conn| {
            let known = conn
                .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
                .exists([user])?;
            if !known {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE user = ?1 ORDER BY created_at, id"
            ))?;
            let devices = stmt
                .query_map([user], device_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(devices))
        })
    }

    fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([id], device_from_row)
            .optional()
        })
    }

    fn use_device_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        now: Millis,
        valid_until: Millis,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let fresh = tx
                .prepare_cached(
                    "INSERT INTO device_nonces (device_id, nonce, valid_until) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![device_id, nonce, valid_until])?
                == 1;
            if fresh {
                // Second granularity is plenty and spares a page write per request.
                tx.prepare_cached(
                    "UPDATE devices SET last_seen_at = ?2 \
                     WHERE id = ?1 AND (last_seen_at IS NULL OR last_seen_at <= ?2 - 1000)",
                )?
                .execute(params![device_id, now])?;
            }
            Ok(fresh)
        })
    }

    fn revoke_device(
        &self,
        id: &str,
        actor: &str,
        now: Millis,
    ) -> StoreResult<Option<DeviceRecord>> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![id, now])?;
            let device = tx
                .prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
                ))?
                .query_row([id], device_from_row)
                .optional()?;
            if let (1, Some(device)) = (changed, &device) {
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "revoked",
                        user: Some(device.user.clone()),
                        device_id: Some(device.id.clone()),
                        detail: Some(format!("by {actor}")),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
            }
            Ok(device)
        })
    }

    fn create_relying_party(&self, rp: &RelyingPartyRecord, now: Millis) -> StoreResult<()> {
        let users =
            serde_json::to_string(&rp.users).map_err(|e| conversion_error(3, e.to_string()))?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO relying_parties (id, name, key_hash, created_at, users, enroll, bootstrap) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                rp.id,
                rp.name,
                &rp.key_hash[..],
                now,
                users,
                rp.enroll,
                rp.bootstrap
            ])?;
            write_audit(
                tx,
                &AuditEntry {
                    kind: "rp_created",
                    detail: Some(format!(
                        "id {}, name {:?}, users {users}, enroll {}, bootstrap {}",
                        rp.id, rp.name, rp.enroll, rp.bootstrap
                    )),
                    ..AuditEntry::default()
                },
                now,
            )
        })
    }

    fn get_relying_party(&self, id: &str) -> StoreResult<Option<RelyingPartyRecord>> {
        self.read(|conn| select_rp(conn, id))
    }

    fn list_relying_parties(&self) -> StoreResult<Vec<RelyingPartyRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {RP_COLUMNS} FROM relying_parties ORDER BY created_at, id"
            ))?
            .query_map([], rp_from_row)?
            .collect()
        })
    }

    fn revoke_relying_party(
        &self,
        id: &str,
        now: Millis,
    ) -> StoreResult<Option<RelyingPartyRecord>> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE relying_parties SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![id, now])?;
            let rp = select_rp(tx, id)?;
            if let (1, Some(rp)) = (changed, &rp) {
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "rp_revoked",
                        detail: Some(format!("id {}, name {:?}", rp.id, rp.name)),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
            }
            Ok(rp)
        })
    }

    fn rotate_relying_party(
        &self,
        id: &str,
        key_hash: &[u8; 32],
        now: Millis,
    ) -> StoreResult<Option<RelyingPartyRecord>> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE relying_parties SET key_hash = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![id, &key_hash[..]])?;
            let rp = select_rp(tx, id)?;
            if let (1, Some(rp)) = (changed, &rp) {
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "rp_rotated",
                        detail: Some(format!("id {}, name {:?}", rp.id, rp.name)),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
            }
            Ok(rp)
        })
    }

    fn create_challenge(
        &self,
        new: &NewChallenge,
        check: &dyn Fn(&PushState) -> Result<(), Refusal>,
    ) -> StoreResult<Create> {
        let now = new.created_at;
        self.write(|tx| {
            let known = tx
                .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
                .exists([&new.user])?;
            if !known {
                return Ok(Create::UnknownUser);
            }
            let mut devices = tx
                .prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE user = ?1 AND revoked_at IS NULL \
                     ORDER BY created_at, id"
                ))?
                .query_map([&new.user], device_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if let Some(wanted) = &new.requested_devices {
                devices.retain(|d| wanted.contains(&d.id));
            }
            if devices.is_empty() {
                return Ok(Create::NoDevice);
            }
            let locked_until: Option<Millis> = tx
                .prepare_cached(
                    "SELECT until FROM push_locks WHERE user = ?1 AND rp_id = ?2 AND source = ?3",
                )?
                .query_row(params![new.user, new.rp_id, new.source], |r| r.get(0))
                .optional()?;
            // Challenges from before an unlock no longer count.
            let reset_at: Millis = tx
                .prepare_cached("SELECT at FROM push_resets WHERE user = ?1")?
                .query_row([&new.user], |r| r.get(0))
                .optional()?
                .unwrap_or(Millis::MIN);
            let since = new.window_start.max(reset_at);
            // Open ones (few: read through the state index), and in the window every one that
            // was not approved.
            let open_source: u32 = tx
                .prepare_cached(&format!(
                    "SELECT count(*) FROM challenges INDEXED BY challenges_by_user_state \
                     WHERE user = ?1 AND state IN {OPEN} AND expires_at > ?4 AND created_at > ?5 \
                     AND rp_id = ?2 AND source = ?3"
                ))?
                .query_row(
                    params![new.user, new.rp_id, new.source, now, reset_at],
                    |r| r.get(0),
                )?;
            let open_user: u32 = tx
                .prepare_cached(&format!(
                    "SELECT count(*) FROM challenges INDEXED BY challenges_by_user_state \
                     WHERE user = ?1 AND state IN {OPEN} AND expires_at > ?2 AND created_at > ?3"
                ))?
                .query_row(params![new.user, now, reset_at], |r| r.get(0))?;
            let recent_source: u32 = tx
                .prepare_cached(
                    "SELECT count(*) FROM challenges INDEXED BY challenges_unapproved_by_source \
                     WHERE user = ?1 AND rp_id = ?2 AND source = ?3 AND created_at > ?4 \
                     AND state != 'approved'",
                )?
                .query_row(params![new.user, new.rp_id, new.source, since], |r| {
                    r.get(0)
                })?;
            let recent_user: u32 = tx
                .prepare_cached(
                    "SELECT count(*) FROM challenges INDEXED BY challenges_unapproved_by_user \
                     WHERE user = ?1 AND created_at > ?2 AND state != 'approved'",
                )?
                .query_row(params![new.user, since], |r| r.get(0))?;
            // A source the user approved a login from recently is not held by the per-user
            // ceilings (see `limits`).
            let known_since = now.saturating_sub(crate::limits::KNOWN_SOURCE_DAYS * 24 * 3600 * 1000);
            let known_source = tx
                .prepare_cached(
                    "SELECT 1 FROM challenges INDEXED BY challenges_approved_by_source \
                     WHERE user = ?1 AND rp_id = ?2 AND source = ?3 AND created_at > ?4 \
                     AND state = 'approved' LIMIT 1",
                )?
                .exists(params![new.user, new.rp_id, new.source, known_since])?;
            let state = PushState {
                locked_until,
                open_source,
                open_user,
                recent_source,
                recent_user,
                known_source,
            };
            if let Err(refusal) = check(&state) {
                // One row a minute per user, relying party and refusal, counting the rest in it (issue 9
                // item 12): the refusals of a flood must not grow the store. Only the user's
                // last rows are looked at (through audit_by_user), so the look-up is bounded.
                let recent: Option<i64> = tx
                    .prepare_cached(
                        "SELECT id FROM (SELECT id, kind, detail, at FROM audit WHERE user = ?1 \
                         ORDER BY id DESC LIMIT 64) \
                         WHERE kind = 'rate_limited' AND at > ?2 AND substr(detail, 1, length(?3)) = ?3 LIMIT 1",
                    )?
                    .query_row(
                        params![
                            new.user,
                            now.saturating_sub(60_000),
                            format!("{} (rp {}, ", refusal.code().as_str(), new.rp_id)
                        ],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = recent {
                    tx.prepare_cached("UPDATE audit SET count = count + 1 WHERE id = ?1")?
                        .execute([id])?;
                    return Ok(Create::Refused(refusal));
                }
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "rate_limited",
                        user: Some(new.user.clone()),
                        detail: Some(format!(
                            "{} (rp {}, source {:?})",
                            refusal.code().as_str(),
                            new.rp_id,
                            new.source
                        )),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
                return Ok(Create::Refused(refusal));
            }
            let device_ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
            let context = serde_json::to_string(&new.context)
                .map_err(|e| conversion_error(4, e.to_string()))?;
            let devices_json = serde_json::to_string(&device_ids)
                .map_err(|e| conversion_error(8, e.to_string()))?;
            tx.prepare_cached(
                "INSERT INTO challenges (id, user, rp_id, state, context, context_digest, rp_nonce, code, \
                 devices, created_at, expires_at, updated_at, source) \
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11)",
            )?
            .execute(params![
                new.id,
                new.user,
                new.rp_id,
                context,
                &new.context_digest[..],
                new.rp_nonce,
                new.code,
                devices_json,
                now,
                new.expires_at,
                new.source
            ])?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO open_challenge_devices (device_id, challenge_id) VALUES (?1, ?2)",
                )?;
                for id in &device_ids {
                    stmt.execute(params![id, new.id])?;
                }
            }
            write_audit(
                tx,
                &AuditEntry {
                    kind: "challenge_created",
                    user: Some(new.user.clone()),
                    challenge_id: Some(new.id.clone()),
                    detail: Some(format!(
                        "rp {}, {} device(s), code {}",
                        new.rp_id,
                        device_ids.len(),
                        if new.code.is_some() { "on" } else { "off" }
                    )),
                    ..AuditEntry::default()
                },
                now,
            )?;
            Ok(Create::Created {
                challenge: Box::new(ChallengeRecord {
                    id: new.id.clone(),
                    user: new.user.clone(),
                    rp_id: new.rp_id.clone(),
                    state: ChallengeState::Pending,
                    context: new.context.clone(),
                    context_digest: new.context_digest,
                    rp_nonce: new.rp_nonce.clone(),
                    code: new.code.clone(),
                    devices: device_ids,
                    created_at: now,
                    expires_at: new.expires_at,
                    device_id: None,
                    decision: None,
                    reason: None,
                    typed_code: None,
                    responded_at: None,
                    signature: None,
                }),
                devices,
            })
        })
    }

    fn get_challenge(&self, id: &str, now: Millis) -> StoreResult<Option<(ChallengeRecord, bool)>> {
        let Some(found) = self.read(|conn| select_challenge(conn, id))? else {
            return Ok(None);
        };
        if !found.is_due(now) {
            return Ok(Some((found, false)));
        }
        self.write(|tx| {
            let expired = expire_if_due(tx, id, &found.user, now)?;
            Ok(select_challenge(tx, id)?.map(|c| (c, expired)))
        })
    }

    fn acknowledge(&self, id: &str, now: Millis) -> StoreResult<Cas> {
        self.transition(id, now, |tx, _| {
            tx.prepare_cached(
                "UPDATE challenges SET state = 'acknowledged', updated_at = ?2 \
                 WHERE id = ?1 AND state = 'pending' AND expires_at > ?2",
            )?
            .execute(params![id, now])
        })
    }

    fn answer(&self, id: &str, answer: &AnswerRecord, now: Millis) -> StoreResult<Cas> {
        self.transition(id, now, |tx, current| {
            let changed = tx
                .prepare_cached(&format!(
                    "UPDATE challenges SET state = ?2, updated_at = ?3, device_id = ?4, decision = ?5, \
                     reason = ?6, typed_code = ?7, responded_at = ?8, signature = ?9 \
                     WHERE id = ?1 AND state IN {OPEN} AND expires_at > ?3"
                ))?
                .execute(params![
                    id,
                    answer.state.as_str(),
                    now,
                    answer.device_id,
                    answer.decision.as_str(),
                    answer.reason.map(|r| r.as_str()),
                    answer.typed_code,
                    answer.responded_at,
                    answer.signature
                ])?;
            if changed == 0 {
                return Ok(0);
            }
            finish(tx, id)?;
            let detail = match answer.reason {
                Some(reason) => format!("{} ({reason})", answer.decision),
                None => answer.decision.to_string(),
            };
            write_audit(
                tx,
                &AuditEntry {
                    kind: "challenge_answered",
                    user: Some(current.user.clone()),
                    device_id: Some(answer.device_id.clone()),
                    challenge_id: Some(id.to_owned()),
                    detail: Some(detail),
                },
                now,
            )?;
            if let Some(until) = answer.lock_user_until {
                // The lock-out is for the source the reported login came from, not the user's
                // every login: an attacker's pushes cannot lock the owner out.
                let source: String = tx
                    .prepare_cached("SELECT source FROM challenges WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))?;
                tx.prepare_cached(
                    "INSERT INTO push_locks (user, rp_id, source, until) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (user, rp_id, source) DO UPDATE SET until = max(until, excluded.until)",
                )?
                .execute(params![current.user, current.rp_id, source, until])?;
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "user_locked",
                        user: Some(current.user.clone()),
                        device_id: Some(answer.device_id.clone()),
                        challenge_id: Some(id.to_owned()),
                        detail: Some(format!(
                            "reported; pushes from rp {}, source {:?} paused until {}",
                            current.rp_id,
                            source,
                            clock::rfc3339(until)
                        )),
                    },
                    now,
                )?;
            }
            Ok(changed)
        })
    }

    fn cancel(&self, id: &str, now: Millis) -> StoreResult<Cas> {
        self.transition(id, now, |tx, current| {
            let changed = tx
                .prepare_cached(&format!(
                    "UPDATE challenges SET state = 'cancelled', updated_at = ?2 \
                     WHERE id = ?1 AND state IN {OPEN} AND expires_at > ?2"
                ))?
                .execute(params![id, now])?;
            if changed == 1 {
                finish(tx, id)?;
                write_audit(
                    tx,
                    &AuditEntry {
                        kind: "challenge_cancelled",
                        user: Some(current.user.clone()),
                        challenge_id: Some(id.to_owned()),
                        detail: Some(format!("rp {}", current.rp_id)),
                        ..AuditEntry::default()
                    },
                    now,
                )?;
            }
            Ok(changed)
        })
    }

    fn unlock_user(&self, user: &str, by: &str, now: Millis) -> StoreResult<bool> {
        self.write(|tx| {
            let known = tx
                .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
                .exists([user])?;
            if !known {
                return Ok(false);
            }
            let locks = tx
                .prepare_cached("DELETE FROM push_locks WHERE user = ?1")?
                .execute([user])?;
            tx.prepare_cached(
                "INSERT INTO push_resets (user, at) VALUES (?1, ?2) \
                 ON CONFLICT (user) DO UPDATE SET at = max(at, excluded.at)",
            )?
            .execute(params![user, now])?;
            write_audit(
                tx,
                &AuditEntry {
                    kind: "user_unlocked",
                    user: Some(user.to_owned()),
                    detail: Some(format!("by {by}; {locks} lock(s) lifted, counters reset")),
                    ..AuditEntry::default()
                },
                now,
            )?;
            Ok(true)
        })
    }

    fn device_challenges(
        &self,
        device_id: &str,
        now: Millis,
    ) -> StoreResult<(Vec<ChallengeRecord>, Vec<Expired>)> {
        let open = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM open_challenge_devices o JOIN challenges c ON c.id = o.challenge_id \
                 WHERE o.device_id = ?1 AND c.state IN {OPEN} ORDER BY c.created_at, c.id",
                CHALLENGE_COLUMNS
                    .split(", ")
                    .map(|col| format!("c.{col}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?;
            let rows = stmt
                .query_map([device_id], challenge_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let (due, live): (Vec<_>, Vec<_>) = open.into_iter().partition(|c| c.is_due(now));
        if due.is_empty() {
            return Ok((live, Vec::new()));
        }
        let expired = self.write(|tx| {
            let mut expired = Vec::new();
            for c in due {
                if expire_if_due(tx, &c.id, &c.user, now)? {
                    expired.push(Expired {
                        id: c.id,
                        devices: c.devices,
                    });
                }
            }
            Ok(expired)
        })?;
        Ok((live, expired))
    }

    fn sweep(&self, now: Millis, max: usize) -> StoreResult<Swept> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let due = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT id, user, devices FROM challenges WHERE state IN {OPEN} AND expires_at <= ?1 \
                 LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map(params![now, limit], |r| {
                    let devices: String = r.get(2)?;
                    let devices: Vec<String> = serde_json::from_str(&devices)
                        .map_err(|e| conversion_error(2, e.to_string()))?;
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, devices))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let more_due = due.len() >= max;
        self.write(|tx| {
            let mut expired = Vec::new();
            for (id, user, devices) in due {
                if expire_if_due(tx, &id, &user, now)? {
                    expired.push(Expired { id, devices });
                }
            }
            let forgotten = tx
                .prepare_cached(
                    "DELETE FROM device_nonces WHERE (device_id, nonce) IN \
                     (SELECT device_id, nonce FROM device_nonces WHERE valid_until < ?1 LIMIT ?2)",
                )?
                .execute(params![now, limit])?;
            tx.prepare_cached("DELETE FROM push_locks WHERE until <= ?1")?
                .execute([now])?;
            Ok(Swept {
                expired,
                more: more_due || forgotten >= max,
            })
        })
    }

    fn prune(
        &self,
        challenges_before: Option<Millis>,
        audit_before: Option<Millis>,
        max: usize,
    ) -> StoreResult<Pruned> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.write(|tx| {
            let challenges = match challenges_before {
                Some(cutoff) => tx
                    .prepare_cached(&format!(
                        "DELETE FROM challenges WHERE rowid IN (SELECT rowid FROM challenges \
                         WHERE state IN {FINISHED} AND expires_at < ?1 LIMIT ?2)"
                    ))?
                    .execute(params![cutoff, limit])?,
                None => 0,
            };
            // Ids grow with time, so the oldest `max` events are the only candidates; a step
            // never scans the whole log.
            let audit_events = match audit_before {
                Some(cutoff) => tx
                    .prepare_cached(
                        "DELETE FROM audit WHERE id IN (SELECT id FROM \
                         (SELECT id, at FROM audit ORDER BY id LIMIT ?2) WHERE at < ?1)",
                    )?
                    .execute(params![cutoff, limit])?,
                None => 0,
            };
            Ok(Pruned {
                challenges,
                audit_events,
                more: challenges >= max || audit_events >= max,
            })
        })
    }

    fn open_challenges(&self, now: Millis) -> StoreResult<u64> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT count(*) FROM challenges WHERE state IN {OPEN} AND expires_at > ?1"
            ))?
            .query_row([now], |r| r.get(0))
        })
    }

    fn audit(&self, entry: &AuditEntry, now: Millis) -> StoreResult<()> {
        self.write(|tx| write_audit(tx, entry, now))
    }

    fn audit_returning_id(&self, entry: &AuditEntry, now: Millis) -> StoreResult<i64> {
        self.write(|tx| {
            write_audit(tx, entry, now)?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn set_audit_count(&self, id: i64, count: u64) -> StoreResult<()> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.prepare_cached("UPDATE audit SET count = max(count, ?2) WHERE id = ?1")?
                .execute(params![id, count])?;
            Ok(())
        })
    }

    fn used_bytes(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let pragma = |name: &str| -> rusqlite::Result<i64> {
                conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            };
            let pages = pragma("page_count")?.saturating_sub(pragma("freelist_count")?);
            let bytes = pages.saturating_mul(pragma("page_size")?);
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
    }

    fn list_audit(&self, limit: u32, user: Option<&str>) -> StoreResult<Vec<AuditEvent>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, kind, user, device_id, challenge_id, detail, count FROM audit \
                 WHERE ?1 IS NULL OR user = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![user, limit], |r| {
                    Ok(AuditEvent {
                        id: r.get(0)?,
                        at: clock::rfc3339(r.get(1)?),
                        kind: r.get(2)?,
                        user: r.get(3)?,
                        device_id: r.get(4)?,
                        challenge_id: r.get(5)?,
                        detail: r.get(6)?,
                        count: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use pushauth_proto::Decision;

    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("data")).unwrap();
        (dir, store)
    }

    fn enrolled(store: &SqliteStore, user: &str, device: &str) {
        let hash = [device.len() as u8; 32];
        store.create_enrollment(user, &hash, 0, 10_000).unwrap();
        let new = NewDevice {
            id: device.into(),
            name: "phone".into(),
            alg: "ed25519".into(),
            public_key: "k".into(),
        };
        assert!(matches!(
            store.redeem_enrollment(&hash, &new, None, 1).unwrap(),
            Redeem::Enrolled(_)
        ));
        assert_eq!(
            store.redeem_enrollment(&hash, &new, None, 2).unwrap(),
            Redeem::Used
        );
    }

    fn challenge(store: &SqliteStore, id: &str, now: Millis, expires_at: Millis) -> Create {
        challenge_in(store, id, now, expires_at)
    }

    fn challenge_in(store: &dyn Store, id: &str, now: Millis, expires_at: Millis) -> Create {
        let new = NewChallenge {
            id: id.into(),
            user: "alice".into(),
            rp_id: "rp".into(),
            context: Context::new(),
            context_digest: [0; 32],
            rp_nonce: vec![1; 32],
            code: Some("42".into()),
            requested_devices: None,
            created_at: now,
            expires_at,
            window_start: now - 600_000,
            source: String::new(),
        };
        store.create_challenge(&new, &|_| Ok(())).unwrap()
    }

    fn answer(decision: Decision, state: ChallengeState) -> AnswerRecord {
        AnswerRecord {
            device_id: "d1".into(),
            state,
            decision,
            reason: None,
            typed_code: "42".into(),
            responded_at: "2026-01-01T00:00:00Z".into(),
            signature: "sig".into(),
            lock_user_until: None,
        }
    }

    #[test]
    fn transitions_are_compare_and_set() {
        let (_dir, store) = store();
        enrolled(&store, "alice", "d1");
        assert!(matches!(
            challenge(&store, "c1", 1_000, 60_000),
            Create::Created { .. }
        ));
        assert!(
            matches!(store.acknowledge("c1", 2_000).unwrap(), Cas::Changed(c) if c.state == ChallengeState::Acknowledged)
        );
        let approve = answer(Decision::Approve, ChallengeState::Approved);
        assert!(
            matches!(store.answer("c1", &approve, 3_000).unwrap(), Cas::Changed(c) if c.state == ChallengeState::Approved)
        );
        // terminal: nothing moves it
        assert!(matches!(
            store.answer("c1", &approve, 3_001).unwrap(),
            Cas::WrongState(_)
        ));
        assert!(matches!(
            store.cancel("c1", 3_002).unwrap(),
            Cas::WrongState(_)
        ));
        assert!(matches!(
            store.acknowledge("c1", 3_003).unwrap(),
            Cas::WrongState(_)
        ));
        assert!(matches!(store.cancel("nope", 3_004).unwrap(), Cas::Missing));
        let (c, expired) = store.get_challenge("c1", 100_000).unwrap().unwrap();
        assert_eq!((c.state, expired), (ChallengeState::Approved, false));
        assert_eq!(c.device_id.as_deref(), Some("d1"));
    }

    #[test]
    fn expiry_wins_over_late_writes_and_reads() {
        let (_dir, store) = store();
        enrolled(&store, "alice", "d1");
        challenge(&store, "c1", 1_000, 5_000);
        challenge(&store, "c2", 1_000, 5_000);
        challenge(&store, "c3", 1_000, 5_000);
        let approve = answer(Decision::Approve, ChallengeState::Approved);
        assert!(
            matches!(store.answer("c1", &approve, 5_000).unwrap(), Cas::Expired(c) if c.state == ChallengeState::Expired)
        );
        let (c, expired) = store.get_challenge("c2", 5_000).unwrap().unwrap();
        assert_eq!((c.state, expired), (ChallengeState::Expired, true));
        let (c, expired) = store.get_challenge("c2", 6_000).unwrap().unwrap();
        assert_eq!((c.state, expired), (ChallengeState::Expired, false));
        let (open, expired) = store.device_challenges("d1", 4_999).unwrap();
        assert_eq!((open.len(), expired.len()), (1, 0));
        let swept = store.sweep(5_000, 100).unwrap();
        assert!(!swept.more);
        assert_eq!(swept.expired.len(), 1);
        assert_eq!(swept.expired[0].id, "c3");
        assert_eq!(swept.expired[0].devices, vec!["d1".to_owned()]);
        assert_eq!(store.open_challenges(5_000).unwrap(), 0);
        let expired_events = store
            .list_audit(100, None)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "challenge_expired")
            .count();
        assert_eq!(expired_events, 3);
    }

    #[test]
    fn a_sweep_works_off_a_backlog_in_bounded_steps() {
        let (_dir, store) = store();
        enrolled(&store, "alice", "d1");
        for i in 0..5 {
            challenge(&store, &format!("c{i}"), 1_000, 5_000);
            assert!(store
                .use_device_nonce("d1", &format!("n{i}"), 1_000, 3_000)
                .unwrap());
        }
        let first = store.sweep(6_000, 2).unwrap();
        assert_eq!((first.expired.len(), first.more), (2, true));
        let second = store.sweep(6_000, 2).unwrap();
        assert_eq!((second.expired.len(), second.more), (2, true));
        let third = store.sweep(6_000, 2).unwrap();
        // The last challenge and nonce: the step is not full, so nothing is left.
        assert_eq!((third.expired.len(), third.more), (1, false));
        let last = store.sweep(6_000, 2).unwrap();
        assert_eq!(last, Swept::default());
        assert_eq!(store.open_challenges(1_000).unwrap(), 0);
        let outside = Connection::open(store.path()).unwrap();
        assert_eq!(count(&outside, "SELECT count(*) FROM device_nonces"), 0);
    }

    #[test]
    fn retention_deletes_only_old_finished_records() {
        let (dir, store) = store();
        enrolled(&store, "alice", "d1");
        challenge(&store, "old-done", 1_000, 5_000);
        challenge(&store, "old-open", 1_000, 5_000);
        challenge(&store, "new-done", 1_000, 50_000);
        let approve = answer(Decision::Approve, ChallengeState::Approved);
        store.answer("old-done", &approve, 2_000).unwrap();
        store.answer("new-done", &approve, 2_000).unwrap();
        store.audit(&note("late"), 60_000).unwrap();
        let outside = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
        let audit_before = count(&outside, "SELECT count(*) FROM audit");

        assert_eq!(store.prune(None, None, 100).unwrap(), Pruned::default());
        let pruned = store.prune(Some(10_000), None, 100).unwrap();
        assert_eq!((pruned.challenges, pruned.audit_events), (1, 0));
        // Past its expiry but still open (never swept): it stays until it is expired.
        assert!(store.get_challenge("old-open", 4_000).unwrap().is_some());
        assert!(store.get_challenge("old-done", 4_000).unwrap().is_none());
        assert!(store.get_challenge("new-done", 4_000).unwrap().is_some());

        // Audit events from before 60,000 go, two per step; the late one stays.
        let mut steps = 0;
        loop {
            let step = store.prune(None, Some(60_000), 2).unwrap();
            steps += 1;
            if !step.more {
                break;
            }
        }
        assert!(steps > 1);
        assert_eq!(count(&outside, "SELECT count(*) FROM audit"), 1);
        assert!(audit_before > 2);
        assert_eq!(store.list_audit(10, None).unwrap()[0].kind, "late");
    }

    #[test]
    fn nonces_are_single_use_until_they_go_stale() {
        let (_dir, store) = store();
        enrolled(&store, "alice", "d1");
        assert!(store.use_device_nonce("d1", "n1", 1_000, 10_000).unwrap());
        assert!(!store.use_device_nonce("d1", "n1", 2_000, 11_000).unwrap());
        assert!(store.use_device_nonce("d2", "n1", 2_000, 11_000).unwrap());
        store.sweep(9_999, 100).unwrap();
        assert!(!store.use_device_nonce("d1", "n1", 9_999, 12_000).unwrap());
        store.sweep(10_001, 100).unwrap();
        assert!(store.use_device_nonce("d1", "n1", 10_001, 12_000).unwrap());
        assert_eq!(
            store.get_device("d1").unwrap().unwrap().last_seen_at,
            Some(10_001)
        );
    }

    #[test]
    fn unknown_users_devices_and_limits() {
        let (_dir, store) = store();
        assert!(matches!(challenge(&store, "c0", 0, 1), Create::UnknownUser));
        store.create_enrollment("alice", &[9; 32], 0, 10).unwrap();
        assert!(matches!(challenge(&store, "c0", 0, 1), Create::NoDevice));
        enrolled(&store, "alice", "d1");
        challenge(&store, "c1", 1_000, 60_000);
        let new = NewChallenge {
            id: "c2".into(),
            user: "alice".into(),
            rp_id: "rp".into(),
            context: Context::new(),
            context_digest: [0; 32],
            rp_nonce: vec![1; 32],
            code: None,
            requested_devices: None,
            created_at: 2_000,
            expires_at: 60_000,
            window_start: 0,
            source: String::new(),
        };
        let seen = std::sync::Mutex::new(None);
        let refused = store
            .create_challenge(&new, &|state| {
                *seen.lock().unwrap() = Some(*state);
                Err(Refusal::TooManyOpen)
            })
            .unwrap();
        assert!(matches!(refused, Create::Refused(Refusal::TooManyOpen)));
        assert_eq!(
            seen.lock().unwrap().unwrap(),
            PushState {
                locked_until: None,
                open_source: 1,
                open_user: 1,
                recent_source: 1,
                recent_user: 1,
                known_source: false,
            }
        );
        assert!(store.get_challenge("c2", 2_000).unwrap().is_none());
        store.revoke_device("d1", "admin", 3_000).unwrap();
        assert!(matches!(
            challenge(&store, "c3", 3_000, 60_000),
            Create::NoDevice
        ));
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn note(kind: &'static str) -> AuditEntry {
        AuditEntry {
            kind,
            ..AuditEntry::default()
        }
    }

    #[test]
    fn a_group_commits_once_and_each_operation_stands_alone() {
        let (dir, store) = store();
        enrolled(&store, "alice", "d1");
        let outside = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
        let mut ran = false;
        store
            .group(&mut |g| {
                g.audit(&note("first"), 1).unwrap();
                // Not committed yet: another connection does not see it.
                assert_eq!(
                    count(&outside, "SELECT count(*) FROM audit WHERE kind = 'first'"),
                    0
                );
                assert!(matches!(
                    challenge_in(g, "c1", 1_000, 60_000),
                    Create::Created { .. }
                ));
                // Later operations of the group see the earlier ones' writes.
                assert!(g.get_challenge("c1", 1_001).unwrap().is_some());
                assert!(g.use_device_nonce("d1", "n1", 1_000, 10_000).unwrap());
                assert!(!g.use_device_nonce("d1", "n1", 1_001, 10_000).unwrap());
                // A failing operation (the token hash exists) undoes only itself.
                let reused = [2u8; 32];
                assert!(g.create_enrollment("bob", &reused, 2, 10).is_err());
                ran = true;
            })
            .unwrap();
        assert!(ran);
        assert_eq!(
            count(&outside, "SELECT count(*) FROM audit WHERE kind = 'first'"),
            1
        );
        assert_eq!(
            count(&outside, "SELECT count(*) FROM challenges WHERE id = 'c1'"),
            1
        );
        assert_eq!(count(&outside, "SELECT count(*) FROM device_nonces"), 1);
        assert_eq!(
            count(&outside, "SELECT count(*) FROM users WHERE name = 'bob'"),
            0
        );
        assert_eq!(
            count(
                &outside,
                "SELECT count(*) FROM audit WHERE kind = 'enrollment_created'"
            ),
            1
        );
    }

    #[test]
    fn a_group_that_only_reads_never_takes_the_writer() {
        let (_dir, store) = store();
        enrolled(&store, "alice", "d1");
        store
            .group(&mut |g| {
                assert!(g.get_device("d1").unwrap().is_some());
                // The writer is free: a write outside the group goes through at once.
                assert!(store.writer.try_lock().is_ok());
            })
            .unwrap();
    }

    #[test]
    fn a_group_that_cannot_commit_keeps_nothing() {
        let (dir, store) = store();
        enrolled(&store, "alice", "d1");
        let group = Group {
            store: &store,
            writer: RefCell::new(None),
        };
        group.audit(&note("doomed"), 1).unwrap();
        // A deferred foreign-key violation passes the savepoint and fails the commit.
        Db::write(&group, |c| {
            c.execute_batch(
                "PRAGMA defer_foreign_keys = ON; \
                 INSERT INTO devices (id, user, name, alg, public_key, created_at) \
                 VALUES ('ghost-device', 'ghost', 'n', 'ed25519', 'k', 0);",
            )
        })
        .unwrap();
        assert!(group.commit().is_err());
        let outside = Connection::open(dir.path().join("data").join(DB_FILE)).unwrap();
        assert_eq!(
            count(&outside, "SELECT count(*) FROM audit WHERE kind = 'doomed'"),
            0
        );
        assert_eq!(
            count(
                &outside,
                "SELECT count(*) FROM devices WHERE user = 'ghost'"
            ),
            0
        );
        // The writer is usable again.
        store.audit(&note("after"), 2).unwrap();
        assert_eq!(
            count(&outside, "SELECT count(*) FROM audit WHERE kind = 'after'"),
            1
        );
    }

    #[test]
    fn commits_reach_the_database_file_in_the_background() {
        let (dir, store) = store();
        let db = dir.path().join("data").join(DB_FILE);
        let size = || fs::metadata(&db).map_or(0, |m| m.len());
        let before = size();
        let filler = "x".repeat(500);
        for i in 0..200 {
            let entry = AuditEntry {
                kind: "filler",
                detail: Some(filler.clone()),
                ..AuditEntry::default()
            };
            store.audit(&entry, i).unwrap();
        }
        // Far below the writer's own checkpoint threshold: only the background thread copies
        // these pages from the WAL into the database file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn issue9_item2_a_version_1_database_keeps_its_relying_parties_with_old_rights() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO users VALUES ('alice', 1);
                 INSERT INTO devices (id, user, name, alg, public_key, created_at)
                     VALUES ('d1', 'alice', 'phone', 'ed25519', 'k', 1);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO relying_parties VALUES ('rp1', 'old host', ?1, 5)",
                [&[7u8; 32][..]],
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let rp = store.get_relying_party("rp1").unwrap().unwrap();
        assert_eq!(rp.users, vec!["*".to_owned()]);
        assert!(!rp.enroll && !rp.bootstrap);
        assert_eq!(
            (rp.created_at, rp.revoked_at, rp.key_hash),
            (5, None, [7; 32])
        );
        let d = store.get_device("d1").unwrap().unwrap();
        assert_eq!((d.source, d.via, d.approved_by), (None, None, None));
        // Revoke and rotate are compare-and-set on "not revoked".
        let rotated = store
            .rotate_relying_party("rp1", &[8; 32], 6)
            .unwrap()
            .unwrap();
        assert_eq!(rotated.key_hash, [8; 32]);
        let revoked = store.revoke_relying_party("rp1", 7).unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(7));
        let again = store
            .rotate_relying_party("rp1", &[9; 32], 8)
            .unwrap()
            .unwrap();
        assert_eq!((again.key_hash, again.revoked_at), ([8; 32], Some(7)));
        assert_eq!(
            store
                .revoke_relying_party("rp1", 9)
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(7)
        );
        assert!(store.revoke_relying_party("nope", 9).unwrap().is_none());
        assert_eq!(store.list_relying_parties().unwrap().len(), 1);
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            enrolled(&store, "alice", "d1");
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(store.get_device("d1").unwrap().is_some());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let version: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
