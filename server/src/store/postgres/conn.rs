//! One connection, statement by statement, with the set-up statements of a transaction
//! deferred and pipelined with the next statement (see [`super::db`]).

use std::cell::{Cell, RefCell};
use std::future::Future;

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::PgError;

/// A statement parameter.
pub(super) type P<'a> = &'a (dyn ToSql + Sync);

/// One connection, statement by statement (each prepared once per connection and cached).
pub(super) struct Conn<'c> {
    /// Drives the connection while a statement waits.
    pub(super) runtime: &'c tokio::runtime::Runtime,
    pub(super) client: &'c deadpool_postgres::ClientWrapper,
    /// The transaction's deferred set-up statements (see [`super::db::Held`]), if in one.
    pub(super) deferred: Option<&'c RefCell<String>>,
    /// Set when the transaction must not be committed.
    pub(super) broken: Option<&'c Cell<bool>>,
}

impl<'c> Conn<'c> {
    /// A connection outside any transaction.
    pub(super) fn new(
        runtime: &'c tokio::runtime::Runtime,
        client: &'c deadpool_postgres::ClientWrapper,
    ) -> Conn<'c> {
        Conn {
            runtime,
            client,
            deferred: None,
            broken: None,
        }
    }
}

impl Conn<'_> {
    /// Sends `sql` (no parameters, results ignored) ahead of the next statement; at once
    /// outside a transaction.
    pub(super) fn defer(&self, sql: &str) -> Result<(), PgError> {
        match self.deferred {
            Some(deferred) => {
                let mut deferred = deferred.borrow_mut();
                if !deferred.is_empty() {
                    deferred.push_str("; ");
                }
                deferred.push_str(sql);
                Ok(())
            }
            None => self.batch(sql),
        }
    }

    /// Marks the transaction as not to be committed.
    pub(super) fn set_broken(&self) {
        if let Some(broken) = self.broken {
            broken.set(true);
        }
    }

    fn take_deferred(&self) -> Option<String> {
        let deferred = std::mem::take(&mut *self.deferred?.borrow_mut());
        (!deferred.is_empty()).then_some(deferred)
    }

    /// Waits for `f`, with the deferred statements sent first in the same round trip (a
    /// client pipelines the requests of futures polled together, in the order polled).
    fn send<T, F>(&self, f: F) -> Result<T, PgError>
    where
        T: Send,
        F: Future<Output = Result<T, PgError>> + Send,
    {
        let Some(ahead) = self.take_deferred() else {
            return drive(self.runtime, f);
        };
        let (ahead, value) = drive(self.runtime, async {
            tokio::join!(biased; self.client.batch_execute(&ahead), f)
        });
        if let Err(e) = ahead {
            self.set_broken();
            return Err(e.into());
        }
        value
    }

    /// Every row of `sql`.
    pub(super) fn query(&self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, PgError> {
        self.send(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.query(&statement, params).await?)
        })
    }

    /// The one row of `sql`, if any (more than one is an error).
    pub(super) fn opt(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>, PgError> {
        self.send(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.query_opt(&statement, params).await?)
        })
    }

    /// The one row of `sql`.
    pub(super) fn one(&self, sql: &str, params: &[P<'_>]) -> Result<Row, PgError> {
        self.send(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.query_one(&statement, params).await?)
        })
    }

    /// Whether `sql` returns a row.
    pub(super) fn exists(&self, sql: &str, params: &[P<'_>]) -> Result<bool, PgError> {
        Ok(!self.query(sql, params)?.is_empty())
    }

    /// Runs `sql`; the rows it changed.
    pub(super) fn exec(&self, sql: &str, params: &[P<'_>]) -> Result<u64, PgError> {
        self.send(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.execute(&statement, params).await?)
        })
    }

    /// Runs statements without parameters (simple protocol: one round trip for all, the
    /// deferred ones first).
    pub(super) fn batch(&self, sql: &str) -> Result<(), PgError> {
        let sql = match self.take_deferred() {
            Some(ahead) => format!("{ahead}; {sql}"),
            None => sql.to_owned(),
        };
        drive(self.runtime, self.client.batch_execute(&sql))?;
        Ok(())
    }
}

/// Waits for `f` on the calling thread, which drives `runtime` (the connections' sockets and
/// the pool's timers) meanwhile. Inside another runtime's context (the store opened from
/// `serve`'s async start, async tests), where a runtime may not block, a scoped thread of its
/// own waits instead.
pub(super) fn drive<F>(runtime: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(f);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(f))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
