//! The database schema: its version, the migration steps that build it, and [`migrate`], which
//! brings a database of any older version up to date in one transaction when the store opens.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::OrStore;
use crate::store::{StoreError, StoreResult};

/// Current schema version; each step in [`MIGRATIONS`] moves one version up.
pub(super) const SCHEMA_VERSION: i64 = 11;

/// The schema steps, oldest first: entry `v` moves a database from version `v` to `v + 1`.
/// Never edit a released step; add one.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 3 -> 4 (issue 11): consecutive wrong codes per user, across challenges (NIST SP
    // 800-63B-4); a row only while the count is above zero.
    r#"
    CREATE TABLE code_failures (
        user        TEXT PRIMARY KEY,
        count       INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 4 -> 5 (issue 11, Web Push): one push subscription per device; revoking the device
    // deletes it.
    r#"
    CREATE TABLE push_subscriptions (
        device_id   TEXT PRIMARY KEY REFERENCES devices(id),
        endpoint    TEXT NOT NULL,
        p256dh      TEXT NOT NULL,
        auth        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 5 -> 6 (issue 12): device notices other than bindings (kept 30 days), and backup codes
    // (NIST SP 800-63B-4 saved recovery codes).
    r#"
    CREATE TABLE notices (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        at          INTEGER NOT NULL,
        source      TEXT,
        via         TEXT,
        -- JSON object of strings: where it happened.
        context     TEXT NOT NULL DEFAULT '{}',
        count       INTEGER
    );
    CREATE INDEX notices_by_user ON notices(user, at);
    -- One row per unused code: `tag` (not secret, the code's first characters) picks the row so
    -- that an attempt costs one Argon2id verify; `hash` is the PHC string of the whole code. A
    -- used code's row is deleted in the unit that inserts its replacement; a new set deletes all.
    CREATE TABLE backup_codes (
        user        TEXT NOT NULL REFERENCES users(name),
        tag         TEXT NOT NULL,
        hash        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (user, tag)
    ) WITHOUT ROWID;
    -- Consecutive wrong backup codes per user; a row only while the count is above zero.
    CREATE TABLE backup_code_failures (
        user        TEXT PRIMARY KEY,
        count       INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- `issue_backup_codes` approvals a relying party used (each usable once).
    CREATE TABLE backup_code_approvals (
        challenge_id TEXT PRIMARY KEY,
        user         TEXT NOT NULL,
        used_at      INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 6 -> 7 (issue 12, offline codes): one HOTP secret per device, sealed with AES-256-GCM
    // under `<data_dir>/offline-key`, and the last counter used; revoking the device deletes it.
    r#"
    CREATE TABLE offline_secrets (
        device_id   TEXT PRIMARY KEY REFERENCES devices(id),
        sealed      BLOB NOT NULL,
        algorithm   TEXT NOT NULL,
        digits      INTEGER NOT NULL,
        last_used   INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 7 -> 8 (issue 12, grace window): a challenge the relying party asked grace for keeps its
    // grace key; one a window let in names the approval it rode on (`grace_of`). Ending a
    // user's windows records when, so approvals from before then open none.
    r#"
    ALTER TABLE challenges ADD COLUMN grace_key BLOB;
    ALTER TABLE challenges ADD COLUMN grace_of TEXT;
    CREATE INDEX challenges_grace_windows ON challenges(rp_id, user, grace_key, updated_at)
        WHERE grace_key IS NOT NULL AND grace_of IS NULL AND state = 'approved';
    CREATE TABLE grace_ends (
        user        TEXT PRIMARY KEY,
        at          INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 8 -> 9 (issue 12 review): the highest offline counter handed out to a host per device; a
    // report beyond it cannot have come from a cache. Rows from before may have handed out
    // up to the most a host can hold (100 past the last used).
    r#"
    ALTER TABLE offline_secrets ADD COLUMN served_to INTEGER NOT NULL DEFAULT 0;
    UPDATE offline_secrets SET served_to = last_used + 100;
    "#,
    // 9 -> 10 (issue 13 review): what bounds relying parties and devices, counted here so that
    // every replica sees it and a restart forgets none (`store::counts`).
    r#"
    CREATE TABLE offline_batches (
        challenge_id TEXT PRIMARY KEY,
        keep_until   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX offline_batches_by_keep ON offline_batches(keep_until);
    CREATE TABLE offline_reports (
        device_id   TEXT NOT NULL,
        rp_id       TEXT NOT NULL,
        counter     INTEGER NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (device_id, rp_id, counter)
    ) WITHOUT ROWID;
    CREATE INDEX offline_reports_by_at ON offline_reports(at);
    CREATE TABLE offline_checks (
        device_id   TEXT NOT NULL,
        rp_id       TEXT NOT NULL,
        count       INTEGER NOT NULL,
        PRIMARY KEY (device_id, rp_id)
    ) WITHOUT ROWID;
    CREATE TABLE push_changes (
        device_id   TEXT PRIMARY KEY,
        until       INTEGER NOT NULL,
        count       INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX push_changes_by_until ON push_changes(until);
    -- The fingerprints of the keys every replica must hold the same (`vapid`, `offline`).
    CREATE TABLE site_keys (
        name        TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 10 -> 11 (issue 13, speed): PostgreSQL's registry of listening replicas; one SQLite
    // store has no other replica to tell, so nothing changes here (the version stays shared).
    "",
];

/// Creates the schema or moves it up to [`SCHEMA_VERSION`], all or nothing; refuses a database
/// written by a newer version ([`StoreError::TooNew`]).
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .or_store()?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .or_store()?;
    let version: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()
        .or_store()?
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
        tx.execute_batch(step).or_store()?;
        version += 1;
        tx.execute("DELETE FROM schema_version", []).or_store()?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .or_store()?;
    }
    tx.commit().or_store()?;
    Ok(())
}
