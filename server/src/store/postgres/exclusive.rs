//! Taking the write lock ([`ATOMIC_LOCK`]) exclusively, for an atomic unit or a group, without
//! holding up the other writes while it waits.
//!
//! PostgreSQL grants lock requests in their order: a shared request made while an exclusive
//! one waits is queued behind it, even when the lock's holders are all shared. So an atomic
//! unit that simply waited for the lock behind a write that holds it long (a replica frozen
//! mid-transaction, a row lock waited for) held up every write of every replica for as long
//! as it waited: up to its `lock_timeout`, 5 s by default, and again for each unit tried
//! meanwhile (attack test `session22_an_atomic_unit_waiting_for_the_write_lock_holds_up_no_write`).
//!
//! Instead the unit waits in the lock's queue for a while ([`FIRST_TRY`] at first), then leaves
//! it for [`STEP_OUT`] so that the writes queued behind it go through, and tries again, until
//! the connection's own `lock_timeout` has passed since its first try (then it fails as busy,
//! with PostgreSQL's lock-timeout error, as a statement waiting that long would). After each
//! refused try it reads which transactions hold the lock (`pg_locks`), and compares them with
//! those of the refusal two tries before (one try before, a holder of a few hundred
//! milliseconds is often still there; two tries before, only a long one is):
//! - one holds it still: a long holder, which no longer wait would get the unit past sooner;
//!   the tries stay as they are, and the writes behind the unit wait at most one try;
//! - none of them: the lock passes from write to write, each holding it longer than a try
//!   waits (a commit that waits for a distant synchronous standby); the next try waits twice
//!   as long, or the unit would never get its turn (attack review of session 22).
//!
//! While only short writes hold the lock, as they do when nothing is wrong, the first try gets
//! it in milliseconds: the unit then costs one round trip more than a write (the lock is no
//! longer sent with its first statement).

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use tokio_postgres::error::SqlState;

use super::conn::drive;
use super::db::ATOMIC_LOCK;
use super::error::{is_unavailable, PgError};
use super::replicas::write_lock_holders;

/// How long the first try waits in the lock's queue (`SET LOCAL lock_timeout`): the longest
/// the writes made meanwhile wait behind the unit while a long holder keeps it out.
pub(super) const FIRST_TRY: Duration = Duration::from_millis(100);

/// Pause between two tries, out of the lock's queue.
pub(super) const STEP_OUT: Duration = Duration::from_millis(50);

/// What the unit's own statements are sent after: they wait for a row lock as long as any
/// other statement (the connection's `lock_timeout`), not as long as a try.
pub(super) const AFTER_LOCKED: &str = "SET LOCAL lock_timeout TO DEFAULT";

/// The connections' `lock_timeout` (all of a store's connections have the same settings),
/// read once, at the first refused try: `None` for none (0, wait as long as it takes).
pub(super) type LockBudget = OnceLock<Option<Duration>>;

/// Opens a transaction on `obj` and takes [`ATOMIC_LOCK`] exclusively in it, trying as the
/// module notes say; the transaction is left open with the lock held, and
/// [`AFTER_LOCKED`] is to be sent before the unit's first statement. `budget` is the store's.
///
/// # Errors
/// PostgreSQL's lock-timeout error (`55P03`, busy) once the connection's `lock_timeout` has
/// passed without the lock (never with `lock_timeout = 0`, which waits as long as it takes,
/// as any statement then would); the connection's failure (then `obj` is not pooled again).
pub(super) fn lock_exclusively(
    runtime: &tokio::runtime::Runtime,
    obj: Object,
    budget: &LockBudget,
) -> Result<Object, PgError> {
    let started = Instant::now();
    let mut try_for = FIRST_TRY;
    // The lock's holders at the last two refusals, the older first.
    let mut held_by: VecDeque<Vec<String>> = VecDeque::with_capacity(2);
    loop {
        let left = budget
            .get()
            .copied()
            .flatten()
            .map(|total| total.saturating_sub(started.elapsed()));
        // At least 1 ms: `lock_timeout = 0` would wait for ever.
        let ms = left
            .map_or(try_for, |left| try_for.min(left))
            .as_millis()
            .max(1);
        let attempt = drive(
            runtime,
            obj.batch_execute(&format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = {ms}; \
                 SELECT pg_advisory_xact_lock({ATOMIC_LOCK})"
            )),
        );
        let refused = match attempt {
            Ok(()) => return Ok(obj),
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => e,
            Err(e) => return Err(give_up(runtime, obj, e)),
        };
        if let Err(e) = drive(runtime, obj.batch_execute("ROLLBACK")) {
            return Err(give_up(runtime, obj, e));
        }
        let total = match budget.get() {
            Some(total) => *total,
            None => match lock_timeout(runtime, &obj) {
                Ok(total) => *budget.get_or_init(|| total),
                Err(e) => return Err(give_up(runtime, obj, e)),
            },
        };
        let left = total.map(|t| t.saturating_sub(started.elapsed()));
        if left.is_some_and(|left| left.is_zero()) {
            return Err(refused.into());
        }
        let holders = match drive(runtime, write_lock_holders(&obj)) {
            Ok(holders) => holders,
            Err(e) => return Err(give_up(runtime, obj, e)),
        };
        if held_by.len() == 2 {
            let two_before = held_by.pop_front().unwrap_or_default();
            if !holders.iter().any(|h| two_before.contains(h)) {
                try_for = try_for.saturating_mul(2);
            }
        }
        held_by.push_back(holders);
        let pause = left.map_or(STEP_OUT, |left| STEP_OUT.min(left));
        drive(runtime, async move { tokio::time::sleep(pause).await });
    }
}

/// The connection's `lock_timeout` as its session started (the URL's `options`, else the
/// default pushauthd sets): `None` when it is 0 (no limit).
fn lock_timeout(
    runtime: &tokio::runtime::Runtime,
    obj: &Object,
) -> Result<Option<Duration>, tokio_postgres::Error> {
    // `reset_val`: the session's own value, in ms, whatever a `SET LOCAL` made it since.
    let row = drive(
        runtime,
        obj.query_one(
            "SELECT reset_val::bigint FROM pg_settings WHERE name = 'lock_timeout'",
            &[],
        ),
    )?;
    let ms: i64 = row.try_get(0)?;
    Ok((ms > 0).then(|| Duration::from_millis(ms.unsigned_abs())))
}

/// `e` as the error to report, once the connection is out of any transaction: rolled back,
/// or, when that cannot be known (the connection failed), kept out of the pool.
fn give_up(runtime: &tokio::runtime::Runtime, obj: Object, e: tokio_postgres::Error) -> PgError {
    if is_unavailable(&e) || drive(runtime, obj.batch_execute("ROLLBACK")).is_err() {
        drop(Object::take(obj));
    }
    e.into()
}
