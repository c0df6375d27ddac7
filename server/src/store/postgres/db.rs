//! The pool, the runtime that drives it, and how operations reach the database.
//!
//! The [`Store`] trait is synchronous and runs on the store's job threads, which are not
//! runtime threads. The store keeps a current-thread tokio runtime of its own for the
//! connections (and the pool's timers), which the job thread waiting for a statement drives
//! itself ([`drive`]): no thread switch between a statement and its answer.
//!
//! Transactions:
//! - every write runs in a transaction of its own, which first takes a shared advisory lock;
//!   the one exception is a single statement on data no atomic unit decides on (a device's
//!   request nonce, [`Db::write_alone`]), which runs in PostgreSQL's implicit transaction;
//! - [`Store::atomic`] runs its unit in one transaction holding that lock exclusively, so no
//!   other writer, thread or replica, comes between its reads and its writes (the contract of
//!   the trait, as SQLite's single writer gives it). A lock rather than SERIALIZABLE with
//!   retries: the unit's work is run once (`service::atomically` takes an `FnOnce`) and may
//!   not be repeated;
//! - [`Store::group`] runs each operation in its own transaction, or, with
//!   [`PgStore::with_group_commit`], runs its operations in one transaction holding that lock
//!   exclusively (group commit, as SQLite's single writer does): one commit, one WAL flush,
//!   for every job queued meanwhile. Each operation runs in a savepoint so that one that fails leaves the
//!   others as they were; an atomic unit inside it needs no lock of its own (the group's is
//!   exclusive already, and upgrading a shared one could deadlock two groups).
//!
//! Round trips: statements without parameters that only set up (`BEGIN` and the lock,
//! `SAVEPOINT`, `RELEASE`) are not sent on their own but deferred and pipelined with the next
//! statement, so an operation in a group costs its own statements' round trips and nothing
//! more. A failure of the savepoint machinery marks the transaction broken: it is then never
//! committed (PostgreSQL answers `COMMIT` of an aborted transaction with a silent rollback,
//! which must not be reported as success).

use std::cell::{Cell, RefCell};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;

use super::challenges::{ChallengeTerms, Creations};
use super::conn::Pipeline;
pub(super) use super::conn::{drive, Conn, Owned, P};
use super::connect::PgSettings;
use super::devices::DeviceKeys;
use super::error::{is_unavailable, PgError};
use super::exclusive::{lock_exclusively, LockBudget, AFTER_LOCKED};
use super::notify::OwnBackends;
use super::schema;
use super::timeline::Timelines;
use super::watched::{ListenerParts, RelyingPartyCache};
use crate::store::{Store, StoreError, StoreResult};

/// The advisory lock (`pg_advisory_xact_lock`) every write shares and [`Store::atomic`] holds
/// alone. The keys spell "pushau" and a number.
pub const ATOMIC_LOCK: i64 = 0x7075_7368_6175_0001;
/// Held while migrating: replicas starting together migrate one after the other.
pub(super) const MIGRATE_LOCK: i64 = 0x7075_7368_6175_0002;
/// Held by the replica that sweeps; the others skip the step.
pub(super) const SWEEP_LOCK: i64 = 0x7075_7368_6175_0003;
/// Held by the replica that prunes; the others skip the step.
pub(super) const PRUNE_LOCK: i64 = 0x7075_7368_6175_0004;

/// How long a request waits for a pooled connection (or for a new one) before the store
/// reports itself unavailable.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The pool's check of every new connection: its server's timeline must not be older than
/// the newest this process has seen ([`Timelines`]); a refused connection is not pooled, and
/// the operation that wanted it fails as unavailable (503). An admitted one's server process
/// joins `own` ([`OwnBackends`]).
fn admit_connections(
    file: Option<std::path::PathBuf>,
    own: OwnBackends,
) -> deadpool_postgres::Hook {
    let timelines = std::sync::Arc::new(Timelines::new(file));
    deadpool_postgres::Hook::async_fn(move |client, _| {
        let timelines = std::sync::Arc::clone(&timelines);
        let own = own.clone();
        Box::pin(async move {
            timelines
                .check(client)
                .await
                .map_err(deadpool_postgres::HookError::message)?;
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| {
                    deadpool_postgres::HookError::message(format!(
                        "cannot read the connection's server process: {}",
                        super::error::message(&e)
                    ))
                })?;
            own.add(pid);
            Ok(())
        })
    })
}

/// The PostgreSQL implementation of [`Store`]: open it with [`PgStore::open`], share it as a
/// [`SharedStore`](crate::store::SharedStore).
pub struct PgStore {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    settings: PgSettings,
    /// [`PgStore::with_group_commit`].
    group_commit: bool,
    /// Active devices' keys ([`DeviceKeys`]).
    device_keys: DeviceKeys,
    /// The terms of challenges it created ([`ChallengeTerms`]).
    challenge_terms: ChallengeTerms,
    /// Relying parties, while a listener hears of their changes ([`RelyingPartyCache`]), and
    /// the server processes of its connections ([`OwnBackends`]).
    listener_parts: ListenerParts,
    /// Challenge creations under way on its job threads ([`Creations`]).
    creations: Creations,
    /// The connections' `lock_timeout`, once read ([`LockBudget`]).
    lock_budget: LockBudget,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        // Dropping a runtime blocks, which is refused inside another runtime (the server's
        // last reference may go there): let its thread end on its own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects (lazily: the pool opens connections as they are needed) and, with `migrate`,
    /// brings the schema up to [`schema::SCHEMA_VERSION`]; without, checks that it is there.
    ///
    /// # Errors
    /// [`StoreError::Db`] ([`DbErrorKind::Unavailable`](crate::store::DbErrorKind) when no
    /// primary answers), [`StoreError::TooNew`], [`StoreError::TooOld`],
    /// [`StoreError::Thread`].
    pub fn open(settings: &PgSettings, migrate: bool) -> StoreResult<PgStore> {
        let store = Self::connect(settings)?;
        if migrate {
            store.migrate()?;
        } else {
            schema::check(&store)?;
        }
        Ok(store)
    }

    /// The store without a look at its schema (for [`PgStore::migrate`] alone: operations on
    /// an old schema fail).
    ///
    /// # Errors
    /// [`StoreError::Thread`] (no runtime thread), [`StoreError::Corrupt`] (no pool).
    pub fn connect(settings: &PgSettings) -> StoreResult<PgStore> {
        // A current-thread runtime, driven by whichever thread waits on it (a store job
        // thread): a statement's request, the socket and the answer stay on that thread, where
        // a runtime thread of its own cost two thread switches per statement.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let listener_parts = ListenerParts::default();
        let manager = Manager::from_config(
            settings.config.clone(),
            settings.tls.clone(),
            ManagerConfig {
                // A closed connection is noticed and replaced; one that fails a statement as
                // unavailable is dropped by the operation (see `Held`).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(settings.create_timeout().max(POOL_WAIT)))
            .recycle_timeout(Some(POOL_WAIT))
            .post_create(admit_connections(
                settings.timeline_file.clone(),
                listener_parts.own_backends.clone(),
            ))
            .build()
            .map_err(|e| StoreError::Corrupt(format!("cannot make the connection pool: {e}")))?;
        Ok(PgStore {
            runtime: Some(runtime),
            pool,
            settings: settings.clone(),
            group_commit: false,
            device_keys: DeviceKeys::new(super::devices::DEVICE_KEYS_MAX),
            challenge_terms: ChallengeTerms::new(super::challenges::CHALLENGE_TERMS_MAX),
            listener_parts,
            creations: Creations::new(super::challenges::CREATIONS_MAX),
            lock_budget: LockBudget::new(),
        })
    }

    /// Brings the schema up to [`schema::SCHEMA_VERSION`] (`pushauthd migrate`); returns the
    /// version it found.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub fn migrate(&self) -> StoreResult<i64> {
        schema::migrate(self)
    }

    /// Runs each [`Store::group`] as one transaction (one commit for every job queued
    /// meanwhile) that holds the write lock exclusively, instead of each operation in a
    /// transaction of its own. Fewer commits and less CPU per login, but every write of every
    /// replica then waits for the group before it: with one job thread it measured slower
    /// under load than a job thread per connection without it (issue 13, h6-readme), so the
    /// server does not turn it on.
    #[must_use]
    pub fn with_group_commit(mut self) -> PgStore {
        self.group_commit = true;
        self
    }

    /// What its replica's listener keeps true and consults ([`ListenerParts`]): its cache of
    /// relying parties (until the listener says it listens, nothing is kept) and the server
    /// processes of its connections.
    pub fn listener_parts(&self) -> ListenerParts {
        self.listener_parts.clone()
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// The runtime that drives the connections.
    pub(super) fn runtime(&self) -> Result<&tokio::runtime::Runtime, PgError> {
        self.runtime
            .as_ref()
            .ok_or_else(|| PgError::Pool("the store is closed".into()))
    }

    /// A pooled connection.
    pub(super) fn connection(&self) -> Result<Object, PgError> {
        Ok(drive(self.runtime()?, async {
            // The connections' tasks run only while a thread drives the runtime: let them
            // read what arrived while the store was idle (a server that closed them on a
            // restart or failover) so that the pool sees them closed and hands out a new one.
            // Three turns: one for the readiness, one for the server's goodbye, one for the
            // end (a connection missed here fails its first statement as unavailable: 503).
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.pool.get().await
        })?)
    }

    /// Runs `f` in a transaction of its own that first takes the advisory lock
    /// [`ATOMIC_LOCK`] (shared, or exclusive for an atomic unit).
    pub(super) fn in_transaction<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>,
    ) -> StoreResult<T> {
        let held = Held::begin(self, exclusive, true)?;
        let result = held.conn().and_then(|conn| {
            let value = f(&conn)?;
            held.commit()?;
            Ok(value)
        });
        held.end(result)
    }
}

/// A connection in a transaction: rolled back if dropped before [`Held::end`] (a panic in an
/// operation must not leave a transaction open on a pooled connection), and left out of the
/// pool when it failed as unavailable (a standby, a broken socket).
pub(super) struct Held<'s> {
    runtime: &'s tokio::runtime::Runtime,
    /// Always `Some` until the value is finished (`Option` only so it can be retired).
    obj: Option<Object>,
    open: bool,
    /// Set-up statements not sent yet: they go ahead of the next statement, in its round trip.
    deferred: RefCell<String>,
    /// The transaction may be aborted behind the operations' backs (a savepoint could not be
    /// set or rolled back to, a later statement failed): it must not be committed.
    broken: Cell<bool>,
    /// For a transaction of its own (one operation): statements whose results it does not
    /// need wait for the next round trip or the `COMMIT` ([`Conn::later`]). `None` for a group
    /// or an atomic unit, whose operations each run in a savepoint and must fail on their own.
    pipeline: Option<Pipeline>,
}

impl<'s> Held<'s> {
    /// Starts a transaction that takes the lock: shared, both sent with the first statement;
    /// exclusive, at once and a short wait at a time ([`exclusive`](super::exclusive)).
    /// `pipelined` for a transaction of one operation (see [`Held::pipeline`]).
    pub(super) fn begin(
        store: &'s PgStore,
        exclusive: bool,
        pipelined: bool,
    ) -> Result<Held<'s>, PgError> {
        let runtime = store.runtime()?;
        let obj = store.connection()?;
        // READ COMMITTED whatever the database's default: each statement's snapshot must be
        // younger than the row locks taken before it (a user's limits and wrong-code count
        // are read after the user's row is locked; attack review r9).
        let (obj, deferred) = if exclusive {
            let obj = lock_exclusively(runtime, obj, &store.lock_budget)?;
            (obj, AFTER_LOCKED.to_owned())
        } else {
            let begin = format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared({ATOMIC_LOCK})"
            );
            (obj, begin)
        };
        Ok(Held {
            runtime,
            obj: Some(obj),
            open: true,
            deferred: RefCell::new(deferred),
            broken: Cell::new(false),
            pipeline: pipelined.then(Pipeline::default),
        })
    }

    /// The connection.
    pub(super) fn conn(&self) -> Result<Conn<'_>, PgError> {
        self.obj
            .as_deref()
            .map(|client| Conn {
                runtime: self.runtime,
                client,
                deferred: Some(&self.deferred),
                broken: Some(&self.broken),
                pipeline: self.pipeline.as_ref(),
            })
            .ok_or_else(|| PgError::Pool("the connection was retired".into()))
    }

    /// Commits, with what waits in the same round trip, unless the transaction is broken
    /// (then an error: nothing was kept) or its last statement carried the `COMMIT` already.
    pub(super) fn commit(&self) -> Result<(), PgError> {
        if self.pipeline.as_ref().is_some_and(Pipeline::committed) {
            return Ok(());
        }
        if self.broken.get() {
            return Err(PgError::Pool(
                "the transaction was aborted by a failed statement".into(),
            ));
        }
        self.conn()?.batch("COMMIT")
    }

    /// Finishes after the operation: its result, the transaction already committed on `Ok`.
    pub(super) fn end<T>(mut self, result: Result<T, PgError>) -> StoreResult<T> {
        match result {
            Ok(value) => {
                self.open = false;
                Ok(value)
            }
            Err(e) => {
                // Drop rolls back.
                self.retire_if_broken(&e);
                Err(e.into())
            }
        }
    }

    fn retire_if_broken(&mut self, e: &PgError) {
        if let PgError::Driver(e) = e {
            if is_unavailable(e) {
                // Out of the pool: the next operation connects afresh (to the new primary,
                // with several hosts and target_session_attrs=read-write).
                self.open = false;
                if let Some(obj) = self.obj.take() {
                    drop(Object::take(obj));
                }
            }
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing sent yet: nothing to roll back.
            if self.deferred.get_mut().starts_with("BEGIN")
                || self.pipeline.as_ref().is_some_and(Pipeline::committed)
            {
                return;
            }
            if let Ok(conn) = self.conn() {
                // Statements still waiting would go ahead of the rollback and, in an aborted
                // transaction, fail it: they are moot now.
                conn.forget_waiting();
                if conn.batch("ROLLBACK").is_err() {
                    // Not known to be out of the transaction: never back into the pool.
                    if let Some(obj) = self.obj.take() {
                        drop(Object::take(obj));
                    }
                }
            }
        }
    }
}

/// How the [`Store`] operations reach the database (see the module notes).
pub(super) trait Db {
    /// Runs `f` outside a transaction (each statement sees what is committed), or in the
    /// atomic unit's transaction.
    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T>;
    /// Runs `f` atomically: all of it takes effect or none.
    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T>;
    /// Runs `sql`, a write of **one statement** on data no atomic unit decides on (a device's
    /// request nonce and its `last_seen_at`), on its own: PostgreSQL's implicit transaction
    /// for the statement, no `BEGIN`, no advisory lock, no `COMMIT` (three statements fewer
    /// for PostgreSQL to run, and no wait behind an atomic unit, which gains nothing from
    /// excluding it), and returns its rows. In a group or an atomic unit, as [`Db::write`].
    ///
    /// It takes the statement, not a closure, so that nothing more can run outside a
    /// transaction: a closure once let a revocation (several statements, and one an atomic unit
    /// decides on) run here by mistake (attack review r10).
    fn write_alone(&self, sql: &str, params: &[P<'_>]) -> StoreResult<Vec<Row>>;
    /// The store's cache of active devices' keys ([`DeviceKeys`]); `None` in a group or an
    /// atomic unit, which read the devices.
    fn device_keys(&self) -> Option<&DeviceKeys> {
        None
    }
    /// The store's cache of the challenges it created ([`ChallengeTerms`]); `None` in a group
    /// or an atomic unit (whose commit is not the operation's).
    fn challenge_terms(&self) -> Option<&ChallengeTerms> {
        None
    }
    /// This replica's id ([`ReplicaId`](super::ReplicaId)), with which a login's statements
    /// notify only when another replica listens; `None` in a group or an atomic unit, which
    /// notify whenever any replica listens.
    fn replica(&self) -> Option<&str> {
        None
    }
    /// The store's cache of relying parties ([`RelyingPartyCache`]); `None` in a group or an
    /// atomic unit, which read them.
    fn relying_parties(&self) -> Option<&RelyingPartyCache> {
        None
    }
    /// The store's concurrent challenge creations, decided in batches ([`Creations`]);
    /// `None` in a group or an atomic unit, whose operations run in its own transaction.
    fn creations(&self) -> Option<&Creations> {
        None
    }
    /// [`Store::group`].
    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()>;
    /// [`Store::atomic`].
    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()>;
}

impl Db for PgStore {
    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        let obj = self.connection()?;
        let result = f(&Conn::new(self.runtime()?, &obj));
        if let Err(PgError::Driver(e)) = &result {
            if is_unavailable(e) {
                let _ = Object::take(obj);
            }
        }
        Ok(result?)
    }

    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        self.in_transaction(false, f)
    }

    fn write_alone(&self, sql: &str, params: &[P<'_>]) -> StoreResult<Vec<Row>> {
        // Outside a transaction, as a read: the one statement commits by itself.
        self.read(|c| c.query(sql, params))
    }

    fn device_keys(&self) -> Option<&DeviceKeys> {
        Some(&self.device_keys)
    }

    fn challenge_terms(&self) -> Option<&ChallengeTerms> {
        Some(&self.challenge_terms)
    }

    fn replica(&self) -> Option<&str> {
        Some(self.listener_parts.replica.as_str())
    }

    fn relying_parties(&self) -> Option<&RelyingPartyCache> {
        Some(&self.listener_parts.relying_parties)
    }

    fn creations(&self) -> Option<&Creations> {
        Some(&self.creations)
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        if !self.group_commit {
            work(self);
            return Ok(());
        }
        // No connection, or no write lock in time: every job learns it at once (and answers
        // `store_unavailable`, or fails), instead of each waiting for them again.
        let held = Held::begin(self, true, false)?;
        work(&Atomic { held: &held });
        let result = held.commit();
        held.end(result)
    }

    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()> {
        let held = Held::begin(self, true, false)?;
        let unit = Atomic { held: &held };
        let result = work(&unit)
            .map_err(Unit::Store)
            .and_then(|()| held.commit().map_err(Unit::Pg));
        match result {
            Ok(()) => held.end(Ok(())),
            Err(Unit::Pg(e)) => held.end(Err(e)),
            // Dropping `held` rolls the unit back.
            Err(Unit::Store(e)) => Err(e),
        }
    }
}

enum Unit {
    Store(StoreError),
    Pg(PgError),
}

/// The view of the store a group's or an atomic unit's work gets: every operation runs in
/// the one transaction, each in a savepoint so that one that fails leaves the rest as it was.
pub(super) struct Atomic<'h> {
    held: &'h Held<'h>,
}

impl Atomic<'_> {
    /// Runs `f` in a savepoint named `name`; the set-up and the release travel with the
    /// next statements.
    fn savepoint<T, E>(&self, name: &str, f: impl FnOnce(&Conn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<PgError>,
    {
        let conn = self.held.conn()?;
        conn.defer(&format!("SAVEPOINT {name}"))?;
        // A panic in `f` leaves its writes in the savepoint; in a group the job thread catches
        // it and goes on, so the transaction must then never be committed.
        let guard = BreakOnPanic(&conn);
        let result = f(&conn);
        std::mem::forget(guard);
        match result {
            Ok(value) => {
                conn.defer(&format!("RELEASE SAVEPOINT {name}"))?;
                Ok(value)
            }
            Err(e) => {
                let undo = format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}");
                if conn.batch(&undo).is_err() {
                    // The transaction may be aborted: nothing of it may be committed. The
                    // operation's own failure is the cause to report: when the set-up sent with
                    // its first statement failed, the savepoint was never made, and the undo's
                    // "savepoint does not exist" would hide what went wrong (session 21: a
                    // lock timeout, when the write lock was still sent that way).
                    conn.set_broken();
                }
                Err(e)
            }
        }
    }
}

/// Marks the transaction broken when dropped, which [`Atomic::savepoint`] lets happen only
/// while unwinding from a panic.
struct BreakOnPanic<'c, 'x>(&'c Conn<'x>);

impl Drop for BreakOnPanic<'_, '_> {
    fn drop(&mut self) {
        self.0.set_broken();
    }
}

impl Db for Atomic<'_> {
    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        // Reads too: a failed read must not abort the others' transaction (a savepoint that
        // is only read in costs PostgreSQL no transaction id, and no round trip here).
        Ok(self.savepoint("op", f)?)
    }

    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        Ok(self.savepoint("op", f)?)
    }

    fn write_alone(&self, sql: &str, params: &[P<'_>]) -> StoreResult<Vec<Row>> {
        self.write(|c| c.query(sql, params))
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        work(self);
        Ok(())
    }

    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()> {
        self.savepoint("unit", |_| work(self))
    }
}
