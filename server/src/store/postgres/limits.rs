//! Push limits in the store: the counts the limit check reads, the aggregated `rate_limited`
//! audit rows, report lock-outs per user, relying party and source, the wrong-code count, and
//! `pushauthd unlock`. Callers hold the user's row lock (`challenges::lock_user`), so these
//! read-then-write steps run one at a time per user across replicas.

use super::audit::{audit_params, later_audit};
use super::challenges::{lock_user, OPEN};
use super::db::{Conn, Db};
use super::error::{get, PgError};
use super::rows::{count, device_from_row, DEVICE_COLUMNS, DEVICE_COLUMN_COUNT};
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};
use crate::store::{
    events, ChallengeRecord, CodeTally, DeviceRecord, NewChallenge, PushSubscriptionRecord,
    StoreResult,
};

/// The statement's `WITH` part that [`push_state`] and [`push_state_and_devices_sql`] share: the
/// counts the limits need as the one row of `state` (`$1` user, `$2` relying party, `$3`
/// source, `$4` now, `$5` window start, `$6` known-since). Challenges from before an unlock
/// (`reset`) no longer count; the window starts at the later of the two (`since`). Each part
/// is served by an index, also in the generic plan PostgreSQL keeps for a prepared statement.
/// Whether the source is known reads the newest entry of the partial index of approved
/// challenges (`ORDER BY … LIMIT 1`): `max()`, costed on a generic plan's guess of few rows,
/// was an aggregate over every approved challenge of the user from that source (448 heap
/// fetches per push in the bench; a sysadmin's month of sudo is as many), and `EXISTS` was a
/// sequential scan of the table, expecting a match early, when the source was new.
pub(super) fn state_sql() -> String {
    format!(
        "WITH reset AS (SELECT coalesce((SELECT at FROM push_resets WHERE user_name = $1), \
          -9223372036854775808) AS at), \
         since AS (SELECT GREATEST($5::bigint, reset.at) AS at FROM reset), \
         state AS (SELECT \
         (SELECT count(*) FROM challenges, reset WHERE user_name = $1 AND state IN {OPEN} \
          AND expires_at > $4 AND created_at > reset.at AND rp_id = $2 AND source = $3), \
         (SELECT count(*) FROM challenges, reset WHERE user_name = $1 AND state IN {OPEN} \
          AND expires_at > $4 AND created_at > reset.at), \
         (SELECT count(*) FROM challenges, since WHERE user_name = $1 AND rp_id = $2 \
          AND source = $3 AND created_at > since.at AND state <> 'approved'), \
         (SELECT count(*) FROM challenges, since WHERE user_name = $1 \
          AND created_at > since.at AND state <> 'approved'), \
         coalesce((SELECT created_at FROM challenges WHERE user_name = $1 AND rp_id = $2 \
          AND source = $3 AND state = 'approved' ORDER BY created_at DESC LIMIT 1) > $6, \
          false), \
         (SELECT count FROM code_failures WHERE user_name = $1), \
         (SELECT until FROM push_locks WHERE user_name = $1 AND rp_id = $2 AND source = $3))"
    )
}

/// The [`PushState`] in the 7 columns of `row` from `first` on.
fn state_from_row(row: &tokio_postgres::Row, first: usize) -> Result<PushState, PgError> {
    let code_failures: Option<i64> = get(row, first + 5)?;
    let locked_until: Option<Millis> = get(row, first + 6)?;
    Ok(PushState {
        code_failures: u32::try_from(code_failures.unwrap_or(0)).unwrap_or(u32::MAX),
        locked_until,
        open_source: count(row, first)?,
        open_user: count(row, first + 1)?,
        recent_source: count(row, first + 2)?,
        recent_user: count(row, first + 3)?,
        known_source: get(row, first + 4)?,
    })
}

/// What the limits need to decide on `new`, read in the caller's transaction (see
/// [`Store::create_challenge`](crate::store::Store::create_challenge)) after it locked the
/// user's row: a statement of its own, so that its snapshot sees every change committed by
/// whoever held that lock before.
pub(super) fn push_state(c: &Conn<'_>, new: &NewChallenge) -> Result<PushState, PgError> {
    let row = c.one(
        &format!("{} SELECT * FROM state", state_sql()),
        &state_params(new),
    )?;
    state_from_row(&row, 0)
}

/// Locks the user's row (`false` for a user never seen), then reads [`push_state`], the
/// user's active devices, oldest first, and whether the relying party's key still holds
/// ([`NewChallenge::rp_key`]) in a second statement: one round trip for all, and the second's
/// snapshot is younger than the lock (and than the write lock every transaction shares, which
/// a revocation takes alone: see `service::keys::atomically_for`).
pub(super) fn lock_user_then_push_state(
    c: &Conn<'_>,
    new: &NewChallenge,
) -> Result<(bool, Option<StateAndDevices>), PgError> {
    let rp_key = new.rp_key.as_ref().map(|k| &k[..]);
    let [p1, p2, p3, p4, p5, p6] = state_params(new);
    let (user, rows) = c.two(
        (super::challenges::LOCK_USER, &[&new.user]),
        (
            &push_state_and_devices_sql(),
            &[p1, p2, p3, p4, p5, p6, &rp_key],
        ),
    )?;
    Ok((!user.is_empty(), state_and_devices(&rows)?))
}

/// What [`lock_users_then_push_states`] gives each creation.
pub(super) enum Locked {
    /// Its user's row is locked (`true`), or there is no such user (`false`); then what
    /// [`lock_user_then_push_state`] reads.
    Read(bool, Option<StateAndDevices>),
    /// Another transaction holds its user's row: not locked, and what was read is moot.
    Busy,
}

/// [`lock_user_then_push_state`] for several creations of different users in one round
/// trip: each user's row lock, then its read, in the order given, which must be the users'
/// name order (so that two replicas' batches lock users in the same order and cannot
/// deadlock). One result per creation, in that order. A row another transaction holds is
/// skipped (`SKIP LOCKED`: [`Locked::Busy`]) rather than waited for, so that it holds up
/// neither the batch nor its other creations.
pub(super) fn lock_users_then_push_states(
    c: &Conn<'_>,
    news: &[&NewChallenge],
) -> Result<Vec<Locked>, PgError> {
    let sql = push_state_and_devices_sql();
    let keys: Vec<Option<&[u8]>> = news
        .iter()
        .map(|n| n.rp_key.as_ref().map(|k| &k[..]))
        .collect();
    let params: Vec<[super::conn::P<'_>; 7]> = news
        .iter()
        .zip(&keys)
        .map(|(new, key)| {
            let [p1, p2, p3, p4, p5, p6] = state_params(new);
            [p1, p2, p3, p4, p5, p6, key as super::conn::P<'_>]
        })
        .collect();
    let users: Vec<[super::conn::P<'_>; 1]> = news
        .iter()
        .map(|n| [&n.user as super::conn::P<'_>])
        .collect();
    let mut statements: Vec<(&str, &[super::conn::P<'_>])> = Vec::with_capacity(news.len() * 2);
    for (user, params) in users.iter().zip(&params) {
        statements.push((LOCK_USER_UNLESS_HELD, user));
        statements.push((&sql, params));
    }
    let mut rows = c.many(&statements)?.into_iter();
    let mut read = Vec::with_capacity(news.len());
    while let (Some(user), Some(state)) = (rows.next(), rows.next()) {
        let row = user
            .first()
            .ok_or_else(|| PgError::Data("no row from a user's lock".into()))?;
        let known: bool = get(row, 0)?;
        let locked: bool = get(row, 1)?;
        read.push(match (known, locked) {
            (true, false) => Locked::Busy,
            _ => Locked::Read(locked, state_and_devices(&state)?),
        });
    }
    Ok(read)
}

/// Locks the user's row (`$1`) unless another transaction holds it: whether the user exists,
/// and whether its row is now locked.
const LOCK_USER_UNLESS_HELD: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1), \
     EXISTS (SELECT 1 FROM (SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE SKIP LOCKED) AS l)";

/// What a creation reads after locking the user: the limits' counts, the user's active
/// devices, and their Web Push subscriptions.
pub(super) type StateAndDevices = (PushState, Vec<DeviceRecord>, Vec<PushSubscriptionRecord>);

/// The rows of [`push_state_and_devices_sql`]; `None` when the relying party's key no longer
/// holds.
fn state_and_devices(rows: &[tokio_postgres::Row]) -> Result<Option<StateAndDevices>, PgError> {
    let first = DEVICE_COLUMN_COUNT;
    // The subscription's columns follow the state's 7, and the key's check follows them.
    let sub = first + 7;
    let state = match rows.first() {
        Some(row) => {
            let holds: bool = get(row, sub + 4)?;
            if !holds {
                return Ok(None);
            }
            state_from_row(row, first)?
        }
        None => return Err(PgError::Data("no limits row".into())),
    };
    let mut devices = Vec::with_capacity(rows.len());
    let mut subscriptions = Vec::new();
    for row in rows {
        // The LEFT JOIN's one row without a device when the user has none.
        let id: Option<String> = get(row, 0)?;
        let Some(id) = id else { continue };
        devices.push(device_from_row(row)?);
        let endpoint: Option<String> = get(row, sub)?;
        if let Some(endpoint) = endpoint {
            subscriptions.push(PushSubscriptionRecord {
                device_id: id,
                endpoint,
                p256dh: get(row, sub + 1)?,
                auth: get(row, sub + 2)?,
                created_at: get(row, sub + 3)?,
            });
        }
    }
    Ok(Some((state, devices, subscriptions)))
}

/// The statement of [`lock_user_then_push_state`]'s second part: its parameters are
/// [`state_sql`]'s and `$7`, [`NewChallenge::rp_key`] (`NULL`: no check).
pub(super) fn push_state_and_devices_sql() -> String {
    format!(
        "{}, d AS (SELECT {DEVICE_COLUMNS} FROM devices WHERE user_name = $1 \
         AND revoked_at IS NULL) \
         SELECT d.*, state.*, s.endpoint, s.p256dh, s.auth, s.created_at, {} \
         FROM state LEFT JOIN d ON true LEFT JOIN push_subscriptions s ON s.device_id = d.id \
         ORDER BY d.created_at, d.id",
        state_sql(),
        super::relying_parties::key_holds("$2", "$7")
    )
}

fn state_params(new: &NewChallenge) -> [super::conn::P<'_>; 6] {
    [
        &new.user,
        &new.rp_id,
        &new.source,
        &new.created_at,
        &new.window_start,
        &new.known_since,
    ]
}

/// Audits a refused challenge: one `rate_limited` row a minute per user, relying party and
/// refusal, whose count grows with each further refusal. One statement, sent with the next
/// statement or the `COMMIT` ([`Conn::later`]): a refusal in a batch of creations costs the
/// batch no round trip of its own.
pub(super) fn record_refusal(
    c: &Conn<'_>,
    new: &NewChallenge,
    refusal: &Refusal,
) -> Result<(), PgError> {
    let now = new.created_at;
    let entry = events::rate_limited(new, refusal);
    // Only the user's last rows are looked at (through audit_by_user), so it is bounded.
    c.later(
        "WITH recent AS (SELECT id FROM (SELECT id, kind, detail, at FROM audit \
         WHERE user_name = $3 ORDER BY id DESC LIMIT 64) AS last \
         WHERE kind = 'rate_limited' AND at > $7 AND starts_with(detail, $8) LIMIT 1), \
         bumped AS (UPDATE audit SET count = count + 1 WHERE id IN (SELECT id FROM recent)) \
         INSERT INTO audit (at, kind, user_name, device_id, challenge_id, detail) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM recent)",
        {
            let mut params = audit_params(&entry, now);
            params.push(Box::new(now.saturating_sub(60_000)));
            params.push(Box::new(events::rate_limited_prefix(new, refusal)));
            params
        },
    )
}

/// Pauses pushes from the relying party and source of the reported challenge `id` until
/// `until`; audits `user_locked` naming the reporting device.
pub(super) fn lock_source(
    c: &Conn<'_>,
    id: &str,
    current: &ChallengeRecord,
    device_id: &str,
    until: Millis,
    now: Millis,
) -> Result<(), PgError> {
    // The lock-out is for the source the reported login came from, not the user's every login.
    let source: String = get(
        &c.one("SELECT source FROM challenges WHERE id = $1", &[&id])?,
        0,
    )?;
    c.exec(
        "INSERT INTO push_locks (user_name, rp_id, source, until) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_name, rp_id, source) \
         DO UPDATE SET until = GREATEST(push_locks.until, excluded.until)",
        &[&current.user, &current.rp_id, &source, &until],
    )?;
    later_audit(
        c,
        &events::user_locked_reported(current, id, device_id, &source, until),
        now,
    )?;
    Ok(())
}

fn code_failures(c: &Conn<'_>, user: &str) -> Result<u32, PgError> {
    c.opt(
        "SELECT count FROM code_failures WHERE user_name = $1",
        &[&user],
    )?
    .map(|r| count(&r, 0))
    .transpose()
    .map(|n| n.unwrap_or(0))
}

/// Whether an answer with this [`CodeTally`] must be refused: it approves a number-matching
/// challenge while the user's count is at the lock.
pub(super) fn code_locked(c: &Conn<'_>, user: &str, tally: CodeTally) -> Result<bool, PgError> {
    let Some(lock_at) = tally.lock_at() else {
        return Ok(false);
    };
    Ok(code_failures(c, user)? >= lock_at)
}

/// Counts a wrong code ([`CodeTally::Failed`]) toward its user's lock at `lock_at`; the one
/// that reaches it audits `user_locked`. (A right code's reset travels in the answer's own
/// closing statement, `challenges::answer`.)
pub(super) fn count_wrong_code(
    c: &Conn<'_>,
    current: &ChallengeRecord,
    device_id: &str,
    lock_at: u32,
    now: Millis,
) -> Result<(), PgError> {
    let row = c.one(
        "INSERT INTO code_failures (user_name, count) VALUES ($1, 1) \
         ON CONFLICT (user_name) DO UPDATE SET count = code_failures.count + 1 \
         RETURNING count",
        &[&current.user],
    )?;
    let n = count(&row, 0)?;
    if n == lock_at {
        later_audit(
            c,
            &events::user_locked_wrong_codes(current, device_id, n),
            now,
        )?;
    }
    Ok(())
}

/// Deletes the user's row of a counter table, returning the count it held (0 if none).
fn take_count(c: &Conn<'_>, table: &str, user: &str) -> Result<u32, PgError> {
    c.opt(
        &format!("DELETE FROM {table} WHERE user_name = $1 RETURNING count"),
        &[&user],
    )?
    .map(|r| count(&r, 0))
    .transpose()
    .map(|n| n.unwrap_or(0))
}

/// [`Store::unlock_user`](crate::store::Store::unlock_user).
pub(super) fn unlock_user<D: Db>(db: &D, user: &str, by: &str, now: Millis) -> StoreResult<bool> {
    if !super::rows::storable(user) {
        return Ok(false);
    }
    db.write(|c| {
        if !lock_user(c, user)? {
            return Ok(false);
        }
        let locks = c.exec("DELETE FROM push_locks WHERE user_name = $1", &[&user])?;
        let wrong_codes = take_count(c, "code_failures", user)?;
        // Issue 12: the backup-code lock is lifted by the same unlock.
        let wrong_backup = take_count(c, "backup_code_failures", user)?;
        // Issue 13 review: so are a host's wrong offline-code reports for the user's devices.
        c.exec(
            "DELETE FROM offline_checks WHERE device_id IN \
             (SELECT id FROM devices WHERE user_name = $1)",
            &[&user],
        )?;
        c.exec(
            "INSERT INTO push_resets (user_name, at) VALUES ($1, $2) \
             ON CONFLICT (user_name) DO UPDATE SET at = GREATEST(push_resets.at, excluded.at)",
            &[&user, &now],
        )?;
        later_audit(
            c,
            &events::user_unlocked(user, by, locks, wrong_codes, wrong_backup),
            now,
        )?;
        Ok(true)
    })
}
