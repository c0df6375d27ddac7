//! One connection, statement by statement, with the set-up statements of a transaction
//! deferred and pipelined with the next statement (see [`super::db`]).
//!
//! In a transaction of its own (not a savepoint of a group or an atomic unit), a
//! [`Pipeline`] also holds the statements whose results the operation does not need (audit
//! rows, NOTIFY, index rows: [`Conn::later`]) until the next statement or the `COMMIT`. Each
//! round trip costs both processes a wake-up, which is most of what a login costs PostgreSQL
//! here (issue 13's profile), so an operation pays for the answers it waits on, not for its
//! statements.

use std::cell::{Cell, RefCell};
use std::future::Future;

use futures_util::future::join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::PgError;

/// A statement parameter.
pub(super) type P<'a> = &'a (dyn ToSql + Sync);

/// An owned statement parameter, for a statement sent later ([`Conn::later`]).
pub(super) type Owned = Box<dyn ToSql + Sync + Send>;

/// Owned parameters as the statement parameters a query takes.
fn refs(params: &[Owned]) -> Vec<P<'_>> {
    params.iter().map(|p| &**p as P<'_>).collect()
}

/// A statement sent later, ahead of the next one or of the `COMMIT`.
struct Later {
    sql: String,
    params: Vec<Owned>,
}

/// The statements of a transaction of its own that wait for the next round trip
/// ([`Conn::later`]).
#[derive(Default)]
pub(super) struct Pipeline {
    later: RefCell<Vec<Later>>,
    /// The `COMMIT` went with the last statement ([`Conn::two_then_commit`]): nothing more
    /// may be sent in the transaction, and [`Held::commit`](super::db::Held::commit) has
    /// nothing left to do.
    committed: Cell<bool>,
}

impl Pipeline {
    /// Whether the `COMMIT` went already ([`Conn::two_then_commit`]).
    pub(super) fn committed(&self) -> bool {
        self.committed.get()
    }
}

/// One connection, statement by statement (each prepared once per connection and cached).
pub(super) struct Conn<'c> {
    /// Drives the connection while a statement waits.
    pub(super) runtime: &'c tokio::runtime::Runtime,
    pub(super) client: &'c deadpool_postgres::ClientWrapper,
    /// The transaction's deferred set-up statements (see [`super::db::Held`]), if in one.
    pub(super) deferred: Option<&'c RefCell<String>>,
    /// Set when the transaction must not be committed.
    pub(super) broken: Option<&'c Cell<bool>>,
    /// In a transaction of its own: the statements waiting for the next round trip.
    pub(super) pipeline: Option<&'c Pipeline>,
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
            pipeline: None,
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

    /// Runs `sql` (its result not needed) with the next statement or the `COMMIT`, in their
    /// round trip; at once outside a pipelined transaction. Its failure fails that statement
    /// (or the commit), and the transaction is then never committed.
    pub(super) fn later(&self, sql: &str, params: Vec<Owned>) -> Result<(), PgError> {
        match self.pipeline {
            Some(pipeline) => {
                pipeline.later.borrow_mut().push(Later {
                    sql: sql.to_owned(),
                    params,
                });
                Ok(())
            }
            None => {
                let refs = refs(&params);
                self.exec(sql, &refs).map(drop)
            }
        }
    }

    fn take_later(&self) -> Vec<Later> {
        self.pipeline
            .map(|p| std::mem::take(&mut *p.later.borrow_mut()))
            .unwrap_or_default()
    }

    /// Sends what waits (the deferred set-up, then the later statements), then `f`'s
    /// requests, in one round trip, and waits for all. A client pipelines the requests of
    /// futures polled together, in the order polled; the later statements are prepared first
    /// (from the cache, without a round trip, once the connection has seen them) so that
    /// each sends its whole request when first polled.
    fn pipelined<T, F>(&self, f: F) -> Result<T, PgError>
    where
        T: Send,
        F: Future<Output = Result<T, PgError>> + Send,
    {
        if self.pipeline.is_some_and(Pipeline::committed) {
            // Sent now, it would run on its own, outside the transaction it belongs to.
            return Err(PgError::Pool(
                "a statement after its transaction's COMMIT".into(),
            ));
        }
        let ahead = self.take_deferred();
        let later = self.take_later();
        if ahead.is_none() && later.is_empty() {
            return drive(self.runtime, f);
        }
        let client = self.client;
        // All ready before anything is sent: a statement the client refuses unsent must fail
        // the transaction here, not let the rest of the round trip, a COMMIT among it, go
        // without it (attack review r9). What waited is then gone, and the transaction broken.
        let statements = later
            .iter()
            .map(|l| {
                let params = refs(&l.params);
                self.prepared(&l.sql, &params)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (ahead, later, value) =
            drive(self.runtime, async {
                let ahead = async {
                    match &ahead {
                        Some(sql) => client.batch_execute(sql).await,
                        None => Ok(()),
                    }
                };
                let runs = join_all(later.iter().zip(&statements).map(
                    |(l, statement)| async move {
                        let params = refs(&l.params);
                        client.execute(statement, &params).await
                    },
                ));
                let (ahead, runs, value) = tokio::join!(biased; ahead, runs, f);
                let later = runs.into_iter().find(Result::is_err).unwrap_or(Ok(0));
                (ahead, later, value)
            });
        if let Err(e) = ahead.and(later) {
            self.set_broken();
            return Err(e.into());
        }
        value
    }

    /// Every row of `sql`.
    pub(super) fn query(&self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, PgError> {
        self.pipelined(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.query(&statement, params).await?)
        })
    }

    /// Every row of `first`, then of `second`, in one round trip. PostgreSQL still runs them
    /// one after the other, `second` with a snapshot taken when it starts: after the locks
    /// `first` took. Both run even when `first` fails (then `second` fails too, and `first`'s
    /// error is the one returned).
    pub(super) fn two(
        &self,
        first: (&str, &[P<'_>]),
        second: (&str, &[P<'_>]),
    ) -> Result<(Vec<Row>, Vec<Row>), PgError> {
        let client = self.client;
        // Both ready before either is sent: `second` must never run without `first` (its
        // locks).
        let a = self.prepared(first.0, first.1)?;
        let b = self.prepared(second.0, second.1)?;
        self.pipelined(async {
            let (rows_a, rows_b) = tokio::join!(
                biased;
                client.query(&a, first.1),
                client.query(&b, second.1)
            );
            Ok((rows_a?, rows_b?))
        })
    }

    /// Every row of each statement, in one round trip; PostgreSQL runs them in the order
    /// given, each with a snapshot taken when it starts (after the locks of those before).
    /// All run even when one fails (those after it in a transaction then fail too); the
    /// first failure is returned.
    pub(super) fn many(&self, statements: &[(&str, &[P<'_>])]) -> Result<Vec<Vec<Row>>, PgError> {
        let client = self.client;
        // All ready before any is sent: none may run without those before it (their locks).
        let prepared = statements
            .iter()
            .map(|(sql, params)| self.prepared(sql, params))
            .collect::<Result<Vec<_>, _>>()?;
        self.pipelined(async {
            // `join_all` polls its futures in order the first time: the requests go in order.
            let runs = join_all(
                prepared
                    .iter()
                    .zip(statements)
                    .map(|(statement, (_, params))| client.query(statement, params)),
            )
            .await;
            runs.into_iter()
                .map(|rows| rows.map_err(PgError::from))
                .collect()
        })
    }

    /// [`Conn::two`], then, in a transaction of its own (not a savepoint of a group or an
    /// atomic unit), the `COMMIT` in the same round trip: true when it went. The caller
    /// sends nothing more in the transaction then (a statement would fail), and must need
    /// nothing else of it: what the two statements decided is all there is.
    ///
    /// A failed statement aborts the transaction, which PostgreSQL then ends with a silent
    /// rollback at the `COMMIT`: its error is returned, never a success.
    pub(super) fn two_then_commit(
        &self,
        first: (&str, &[P<'_>]),
        second: (&str, &[P<'_>]),
    ) -> Result<(Vec<Row>, Vec<Row>, bool), PgError> {
        let Some(pipeline) = self.pipeline else {
            let (a, b) = self.two(first, second)?;
            return Ok((a, b, false));
        };
        if self.broken.is_some_and(Cell::get) {
            return Err(PgError::Pool(
                "the transaction was aborted by a failed statement".into(),
            ));
        }
        let client = self.client;
        let a = self.prepared(first.0, first.1)?;
        let b = self.prepared(second.0, second.1)?;
        let (rows_a, rows_b) = self.pipelined(async {
            let (rows_a, rows_b, commit) = tokio::join!(
                biased;
                client.query(&a, first.1),
                client.query(&b, second.1),
                client.batch_execute("COMMIT")
            );
            // The statements' errors first: after one, the COMMIT "succeeded" as a rollback.
            let rows = (rows_a?, rows_b?);
            commit?;
            Ok(rows)
        })?;
        pipeline.committed.set(true);
        Ok((rows_a, rows_b, true))
    }

    /// Every row of `sql`, then, in a transaction of its own, the `COMMIT` in the same round
    /// trip, as [`Conn::two_then_commit`] does for two statements (and with its rules): true
    /// when it went.
    pub(super) fn one_then_commit(
        &self,
        sql: &str,
        params: &[P<'_>],
    ) -> Result<(Vec<Row>, bool), PgError> {
        let Some(pipeline) = self.pipeline else {
            return Ok((self.query(sql, params)?, false));
        };
        if self.broken.is_some_and(Cell::get) {
            return Err(PgError::Pool(
                "the transaction was aborted by a failed statement".into(),
            ));
        }
        let client = self.client;
        let statement = self.prepared(sql, params)?;
        let rows = self.pipelined(async {
            let (rows, commit) = tokio::join!(
                biased;
                client.query(&statement, params),
                client.batch_execute("COMMIT")
            );
            // The statement's error first: after one, the COMMIT "succeeded" as a rollback.
            let rows = rows?;
            commit?;
            Ok(rows)
        })?;
        pipeline.committed.set(true);
        Ok((rows, true))
    }

    /// The one row of `sql`, if any (more than one is an error).
    pub(super) fn opt(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>, PgError> {
        self.pipelined(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.query_opt(&statement, params).await?)
        })
    }

    /// The one row of `sql`.
    pub(super) fn one(&self, sql: &str, params: &[P<'_>]) -> Result<Row, PgError> {
        self.pipelined(async {
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
        self.pipelined(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.execute(&statement, params).await?)
        })
    }

    /// Runs statements without parameters (simple protocol), with what waits sent ahead in
    /// the same round trip.
    pub(super) fn batch(&self, sql: &str) -> Result<(), PgError> {
        let client = self.client;
        self.pipelined(async { Ok(client.batch_execute(sql).await?) })
    }

    /// `sql` prepared (from the cache, without a round trip once the connection has seen it)
    /// and `params` checked against it, before anything of a pipeline is sent: a client sends
    /// a prepared statement's whole request when first polled, and refuses one whose
    /// parameters do not fit without sending it. A failure breaks the transaction.
    fn prepared(&self, sql: &str, params: &[P<'_>]) -> Result<tokio_postgres::Statement, PgError> {
        let checked = drive(self.runtime, self.client.prepare_cached(sql))
            .map_err(PgError::from)
            .and_then(|statement| check_params(&statement, params).map(|()| statement));
        if checked.is_err() {
            self.set_broken();
        }
        checked
    }

    /// Drops what waits (the deferred set-up and later statements): moot before a rollback.
    pub(super) fn forget_waiting(&self) {
        if let Some(deferred) = self.deferred {
            deferred.borrow_mut().clear();
        }
        drop(self.take_later());
    }
}

/// Whether `params` fit `statement` (their number, and each encodes as its type): what the
/// driver checks before it sends a request, and refuses without sending it.
fn check_params(statement: &tokio_postgres::Statement, params: &[P<'_>]) -> Result<(), PgError> {
    let types = statement.params();
    if types.len() != params.len() {
        return Err(PgError::Data(format!(
            "a statement with {} parameters was given {}",
            types.len(),
            params.len()
        )));
    }
    let mut scratch = bytes::BytesMut::new();
    for (ty, param) in types.iter().zip(params) {
        scratch.clear();
        param
            .to_sql_checked(ty, &mut scratch)
            .map_err(|e| PgError::Data(format!("a parameter of type {ty}: {e}")))?;
    }
    Ok(())
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
