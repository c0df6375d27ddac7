//! The pool, the runtime that drives it, and how operations reach the database.
//!
//! The [`Store`] trait is synchronous and runs on the store's job threads, which are not
//! runtime threads. The store keeps a small tokio runtime of its own whose thread drives the
//! connections (and the pool's timers); a job thread waits for each statement with
//! `futures_executor::block_on`, which works on any thread, inside another runtime too (the
//! store is opened from `serve`'s async start).
//!
//! Transactions:
//! - every write runs in a transaction of its own, which first takes a shared advisory lock;
//! - [`Store::atomic`] runs its unit in one transaction holding that lock exclusively, so no
//!   other writer, thread or replica, comes between its reads and its writes (the contract of
//!   the trait, as SQLite's single writer gives it). A lock rather than SERIALIZABLE with
//!   retries: the unit's work is run once (`service::atomically` takes an `FnOnce`) and may
//!   not be repeated;
//! - [`Store::group`] simply runs each operation in its own transaction: group commit saves
//!   SQLite's fsyncs, while PostgreSQL's own commit grouping (`commit_delay`) and the several
//!   job threads the server then starts do that here.

use std::future::Future;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::connect::PgSettings;
use super::error::{is_unavailable, PgError};
use super::schema;
use crate::store::{Store, StoreError, StoreResult};

/// A statement parameter.
pub(super) type P<'a> = &'a (dyn ToSql + Sync);

/// The advisory lock (`pg_advisory_xact_lock`) every write shares and [`Store::atomic`] holds
/// alone. The keys spell "pushau" and a number.
pub(super) const ATOMIC_LOCK: i64 = 0x7075_7368_6175_0001;
/// Held while migrating: replicas starting together migrate one after the other.
pub(super) const MIGRATE_LOCK: i64 = 0x7075_7368_6175_0002;
/// Held by the replica that sweeps; the others skip the step.
pub(super) const SWEEP_LOCK: i64 = 0x7075_7368_6175_0003;
/// Held by the replica that prunes; the others skip the step.
pub(super) const PRUNE_LOCK: i64 = 0x7075_7368_6175_0004;

/// How long a request waits for a pooled connection (or for a new one) before the store
/// reports itself unavailable.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The PostgreSQL implementation of [`Store`]: open it with [`PgStore::open`], share it as a
/// [`SharedStore`](crate::store::SharedStore).
pub struct PgStore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    settings: PgSettings,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pushauthd-pg")
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let handle = runtime.handle().clone();
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
            .build()
            .map_err(|e| StoreError::Corrupt(format!("cannot make the connection pool: {e}")))?;
        Ok(PgStore {
            runtime: Some(runtime),
            handle,
            pool,
            settings: settings.clone(),
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

    /// The settings it was opened with.
    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// Waits for `f` with the store's runtime entered (new connections and the pool's timers
    /// need it).
    fn block<F: Future>(&self, f: F) -> F::Output {
        let _entered = self.handle.enter();
        futures_executor::block_on(f)
    }

    /// A pooled connection.
    pub(super) fn connection(&self) -> Result<Object, PgError> {
        Ok(self.block(self.pool.get())?)
    }

    /// Runs `f` in a transaction of its own that first takes the advisory lock
    /// [`ATOMIC_LOCK`] (shared, or exclusive for an atomic unit).
    pub(super) fn in_transaction<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>,
    ) -> StoreResult<T> {
        let held = Held::begin(self.connection()?, exclusive)?;
        let result = held.conn().and_then(|conn| {
            let value = f(&conn)?;
            conn.batch("COMMIT")?;
            Ok(value)
        });
        held.end(result)
    }
}

/// A connection in a transaction: rolled back if dropped before [`Held::end`] (a panic in an
/// operation must not leave a transaction open on a pooled connection), and left out of the
/// pool when it failed as unavailable (a standby, a broken socket).
pub(super) struct Held {
    /// Always `Some` until the value is finished (`Option` only so it can be retired).
    obj: Option<Object>,
    open: bool,
}

impl Held {
    pub(super) fn begin(obj: Object, exclusive: bool) -> Result<Held, PgError> {
        let lock = if exclusive {
            "pg_advisory_xact_lock"
        } else {
            "pg_advisory_xact_lock_shared"
        };
        let mut held = Held {
            obj: Some(obj),
            open: true,
        };
        // One round trip for both.
        if let Err(e) = held
            .conn()?
            .batch(&format!("BEGIN; SELECT {lock}({ATOMIC_LOCK})"))
        {
            held.retire_if_broken(&e);
            return Err(e);
        }
        Ok(held)
    }

    /// The connection.
    pub(super) fn conn(&self) -> Result<Conn<'_>, PgError> {
        self.obj
            .as_deref()
            .map(Conn)
            .ok_or_else(|| PgError::Pool("the connection was retired".into()))
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

impl Drop for Held {
    fn drop(&mut self) {
        if self.open {
            if let Ok(conn) = self.conn() {
                let _ = conn.batch("ROLLBACK");
            }
        }
    }
}

/// One connection, statement by statement (each prepared once per connection and cached).
pub(super) struct Conn<'c>(pub(super) &'c deadpool_postgres::ClientWrapper);

impl Conn<'_> {
    /// Every row of `sql`.
    pub(super) fn query(&self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, PgError> {
        futures_executor::block_on(async {
            let statement = self.0.prepare_cached(sql).await?;
            Ok(self.0.query(&statement, params).await?)
        })
    }

    /// The one row of `sql`, if any (more than one is an error).
    pub(super) fn opt(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>, PgError> {
        futures_executor::block_on(async {
            let statement = self.0.prepare_cached(sql).await?;
            Ok(self.0.query_opt(&statement, params).await?)
        })
    }

    /// The one row of `sql`.
    pub(super) fn one(&self, sql: &str, params: &[P<'_>]) -> Result<Row, PgError> {
        futures_executor::block_on(async {
            let statement = self.0.prepare_cached(sql).await?;
            Ok(self.0.query_one(&statement, params).await?)
        })
    }

    /// Whether `sql` returns a row.
    pub(super) fn exists(&self, sql: &str, params: &[P<'_>]) -> Result<bool, PgError> {
        Ok(!self.query(sql, params)?.is_empty())
    }

    /// Runs `sql`; the rows it changed.
    pub(super) fn exec(&self, sql: &str, params: &[P<'_>]) -> Result<u64, PgError> {
        futures_executor::block_on(async {
            let statement = self.0.prepare_cached(sql).await?;
            Ok(self.0.execute(&statement, params).await?)
        })
    }

    /// Runs statements without parameters (simple protocol: one round trip for all).
    pub(super) fn batch(&self, sql: &str) -> Result<(), PgError> {
        futures_executor::block_on(self.0.batch_execute(sql))?;
        Ok(())
    }
}

/// How the [`Store`] operations reach the database (see the module notes).
pub(super) trait Db {
    /// Runs `f` outside a transaction (each statement sees what is committed), or in the
    /// atomic unit's transaction.
    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T>;
    /// Runs `f` atomically: all of it takes effect or none.
    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T>;
    /// [`Store::group`].
    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()>;
    /// [`Store::atomic`].
    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()>;
}

impl Db for PgStore {
    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        let obj = self.connection()?;
        let result = f(&Conn(&obj));
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

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        work(self);
        Ok(())
    }

    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()> {
        let held = Held::begin(self.connection()?, true)?;
        let unit = Atomic { held: &held };
        let result = work(&unit).map_err(Unit::Store).and_then(|()| {
            held.conn()
                .and_then(|c| c.batch("COMMIT"))
                .map_err(Unit::Pg)
        });
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

/// The view of the store an atomic unit's work gets: every operation runs in the unit's
/// transaction, each in a savepoint so that one that fails leaves the rest as it was.
pub(super) struct Atomic<'h> {
    held: &'h Held,
}

impl Db for Atomic<'_> {
    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        Ok(f(&self.held.conn()?)?)
    }

    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T, PgError>) -> StoreResult<T> {
        let conn = self.held.conn()?;
        conn.batch("SAVEPOINT op")?;
        match f(&conn) {
            Ok(value) => {
                conn.batch("RELEASE SAVEPOINT op")?;
                Ok(value)
            }
            Err(e) => {
                conn.batch("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op")?;
                Err(e.into())
            }
        }
    }

    fn run_group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()> {
        work(self);
        Ok(())
    }

    fn run_atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()> {
        let conn = self.held.conn()?;
        conn.batch("SAVEPOINT unit")?;
        match work(self) {
            Ok(()) => Ok(conn.batch("RELEASE SAVEPOINT unit")?),
            Err(e) => {
                conn.batch("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit")?;
                Err(e)
            }
        }
    }
}
