//! Store jobs run on a dedicated thread instead of tokio's blocking pool, in groups that share
//! one commit.
//!
//! The blocking pool grows to hundreds of threads when many requests wait on the store at once
//! (ten thousand long-polls each start with a read); every such thread gets its own malloc arena
//! and SQLite reader connection, which costs memory and, through the reader pool's churn, CPU.
//! SQLite has one writer anyway. A single thread that takes every job queued so far and runs
//! them as one [`Store::group`] turns many small commits into one; more threads would only
//! contend for the writer and switch contexts (`pushauth-bench --pairs 16` on 2 cores: 1,690
//! logins/s with four threads, 1,780 with two, 2,170 with one). Keeping the store off the
//! blocking pool also means slow webhook deliveries (which stay there) can never queue store
//! work behind them.
//!
//! Jobs wait in two lanes ([`Lane`]): what finishes a login under way (a device's answer to a
//! challenge a relying party waits on here, the relying party's read of it) goes ahead of new
//! work, so that when the store is the bottleneck an approved login returns before new ones
//! start. At most [`AHEAD_IN_A_ROW`] go ahead in a row while others wait, so neither lane can
//! starve the other. (PostgreSQL, one replica, 32 pairs on 2 cores, three runs each:
//! answer→return p50 24.3–25.1 → 11.1–12.5 ms, p99 41.6–50.5 → 26.9–30.2 ms; logins/s 411–419
//! → 377–408, cause not known: docs/benchmark-history.md "Session 17".)

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle, ThreadId};

use tokio::sync::oneshot;

use crate::store::{SharedStore, Store};

/// Threads serving store jobs (see the module notes for why one).
pub const STORE_THREADS: usize = 1;

/// Most jobs one thread takes from the queue at once and runs as one [`Store::group`].
pub const MAX_GROUP: usize = 64;

/// Most jobs waiting in the queue; past it, new jobs are refused at once
/// ([`JobError::Unavailable`]): requests, unauthenticated ones too, cannot pile up work
/// without bound behind a slow or unreachable store. Above the ten thousand long-polls the
/// bench starts at once (each begins with a read); at the bench's rates (2 cores, about five
/// jobs per login: some 1,300 logins/s on SQLite, 350 on PostgreSQL, so roughly 6,500 and
/// 1,750 jobs/s) a backlog this size is about 2.5 s of work on SQLite, 9 s on PostgreSQL.
pub const MAX_QUEUED: usize = 16_384;

/// Hands a job's result to its caller: `Ok` once the job's writes are committed, else why not.
type Reply = Box<dyn FnOnce(Result<(), JobError>) + Send>;
/// A job: run on the store (`Some`), or told its group could not start (`None`).
type Job = Box<dyn FnOnce(Option<&dyn Store>) -> Reply + Send>;

/// Which of the two lanes a job waits in ([`StoreJobs::run_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Work that finishes a login already under way: a device's answer, acknowledgement or a
    /// cancel of a challenge a relying party waits on here (or that was listed to one of its
    /// devices here: `crate::shown`), and that relying party's reads and key check once its
    /// wait is woken (`AppState::run_announced`, `AppState::run_ahead`). Taken first.
    Ahead,
    /// Everything else (new logins, enrollments, polls, administration).
    Normal,
}

/// Most jobs of the [`Lane::Ahead`] lane taken in a row (by any of the threads) while normal
/// jobs wait: however many answers arrive at once, at least a fifth of the jobs go to the
/// rest.
pub const AHEAD_IN_A_ROW: usize = 4;

/// The two lanes of jobs (`T`), and whether the queue still takes jobs.
struct Lanes<T> {
    ahead: VecDeque<T>,
    normal: VecDeque<T>,
    /// Jobs taken from `ahead` since the last normal one, while normal ones waited.
    ahead_in_a_row: usize,
    closed: bool,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Lanes {
            ahead: VecDeque::new(),
            normal: VecDeque::new(),
            ahead_in_a_row: 0,
            closed: false,
        }
    }
}

impl<T> Lanes<T> {
    /// The next job: ahead first, but never more than [`AHEAD_IN_A_ROW`] of them in a row
    /// while a normal one waits.
    fn next(&mut self) -> Option<T> {
        if self.normal.is_empty() {
            self.ahead_in_a_row = 0;
            return self.ahead.pop_front();
        }
        if self.ahead_in_a_row < AHEAD_IN_A_ROW {
            if let Some(job) = self.ahead.pop_front() {
                self.ahead_in_a_row += 1;
                return Some(job);
            }
        }
        self.ahead_in_a_row = 0;
        self.normal.pop_front()
    }
}

/// The queue the job threads take from.
#[derive(Default)]
struct Queue {
    lanes: Mutex<Lanes<Job>>,
    /// Signalled for each job queued, and when the queue closes.
    ready: Condvar,
}

impl Queue {
    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes<Job>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The store's job threads; dropping it lets queued jobs finish and joins the threads.
pub struct StoreJobs {
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
    /// Jobs sent and not yet taken by a thread.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

impl std::fmt::Debug for StoreJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreJobs")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// Why a job gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobError {
    /// The job panicked, its group could not commit, or the threads are gone (only while
    /// shutting down, or if a thread could not start).
    Stopped,
    /// The store cannot be reached (its group failed so), or too many jobs are queued
    /// ([`MAX_QUEUED`]): worth answering `store_unavailable` (503).
    Unavailable,
}

impl StoreJobs {
    /// Starts `threads` job threads over `store`, each taking up to [`MAX_GROUP`] queued jobs
    /// as one group.
    pub fn start(store: SharedStore, threads: usize) -> std::io::Result<StoreJobs> {
        Self::start_grouping(store, threads, MAX_GROUP)
    }

    /// [`StoreJobs::start`] with at most `max_group` jobs per group. A backend whose group
    /// shares no commit (PostgreSQL: each operation is its own transaction) takes 1, so that
    /// queued jobs spread over the threads instead of waiting behind one thread's group.
    pub fn start_grouping(
        store: SharedStore,
        threads: usize,
        max_group: usize,
    ) -> std::io::Result<StoreJobs> {
        let max_group = max_group.max(1);
        // Made first: should a thread fail to start, dropping it closes the queue and ends
        // the threads already started.
        let mut jobs = StoreJobs {
            queue: Arc::new(Queue::default()),
            threads: Vec::with_capacity(threads),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: MAX_QUEUED,
        };
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&jobs.queue);
            let store = Arc::clone(&store);
            let queued = Arc::clone(&jobs.queued);
            jobs.threads.push(
                thread::Builder::new()
                    .name(format!("pushauthd-store-{i}"))
                    .spawn(move || worker(&queue, store.as_ref(), max_group, &queued))?,
            );
        }
        Ok(jobs)
    }

    /// The same threads with at most `max_queued` jobs waiting (tests; else [`MAX_QUEUED`]).
    #[must_use]
    pub fn with_max_queued(mut self, max_queued: usize) -> StoreJobs {
        self.max_queued = max_queued;
        self
    }

    /// Runs `f` on a job thread and returns its result once its writes are committed. Jobs
    /// queued together run as one [`Store::group`], so they share a commit. A job that panics,
    /// or whose group cannot commit, yields [`JobError`] to its caller (`Unavailable` when
    /// the store could not be reached, or at once when [`MAX_QUEUED`] jobs wait); the thread
    /// goes on serving.
    pub async fn run<T, F>(&self, f: F) -> Result<T, JobError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> T + Send + 'static,
    {
        self.run_or_else(f, |_| ()).await
    }

    /// [`StoreJobs::run`] in the [`Lane::Ahead`] lane: for work that finishes a login under
    /// way, which should not wait behind new logins when the store is the bottleneck.
    pub async fn run_ahead<T, F>(&self, f: F) -> Result<T, JobError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> T + Send + 'static,
    {
        self.submit(Lane::Ahead, f, |_| ()).await
    }

    /// [`StoreJobs::run`], and should the caller be gone once the job's writes are committed
    /// (a request dropped while its job ran: a client that closed its connection), `left`
    /// gets the job's value on the job thread instead. A change must still be announced then:
    /// a waiter on this replica hears of it from its handler, and from no NOTIFY when no other
    /// replica listens (`store/postgres/replicas.rs`), nor on SQLite.
    pub async fn run_or_else<T, F, L>(&self, f: F, left: L) -> Result<T, JobError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> T + Send + 'static,
        L: FnOnce(T) + Send + 'static,
    {
        self.submit(Lane::Normal, f, left).await
    }

    /// [`StoreJobs::run_or_else`] in `lane`.
    pub async fn submit<T, F, L>(&self, lane: Lane, f: F, left: L) -> Result<T, JobError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> T + Send + 'static,
        L: FnOnce(T) + Send + 'static,
    {
        // Counted before it is sent, so that a thread never takes it off the count first.
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(JobError::Unavailable);
        }
        let (tx, rx) = oneshot::channel::<Result<T, JobError>>();
        // Whichever side holds a committed value nobody else will read calls `left`, once.
        let left = Arc::new(Mutex::new(Some(left)));
        let left_job = Arc::clone(&left);
        let job: Job = Box::new(move |store| {
            // The caller went away while the job was queued (a client that gave up, a
            // long-poll past its deadline): it is as if the request had never come, and a
            // backlog (a database outage) is not made longer by work nobody waits for.
            if tx.is_closed() {
                return Box::new(|_| ());
            }
            let value = store.map(f);
            Box::new(move |outcome| {
                let result = outcome.and_then(|()| value.ok_or(JobError::Unavailable));
                // The caller may have gone away (a dropped request): a committed value goes
                // to `left`.
                if let Err(Ok(value)) = tx.send(result) {
                    announce(&left_job, value);
                }
            })
        });
        {
            let mut lanes = self.queue.lanes();
            // Only `drop` closes it, never while `self` is borrowed here; kept as the rule.
            if lanes.closed {
                drop(lanes);
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(JobError::Stopped);
            }
            match lane {
                Lane::Ahead => lanes.ahead.push_back(job),
                Lane::Normal => lanes.normal.push_back(job),
            }
        }
        self.queue.ready.notify_one();
        // Dropped unread (the request dropped after the value was sent, before it was polled
        // again: hyper drops a request whose client closed its connection), the value goes to
        // `left` from here.
        let mut unread = Unread { rx: Some(rx), left };
        let got = match unread.rx.as_mut() {
            Some(rx) => rx.await,
            None => return Err(JobError::Stopped),
        };
        unread.rx = None;
        got.unwrap_or(Err(JobError::Stopped))
    }
}

/// Calls the `left` of [`StoreJobs::run_or_else`] with `value`, unless it was called already
/// (a panic in it must not end a job thread, nor a runtime thread).
fn announce<T, L: FnOnce(T)>(left: &Mutex<Option<L>>, value: T) {
    let taken = left.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(left) = taken {
        if catch_unwind(AssertUnwindSafe(|| left(value))).is_err() {
            tracing::error!("a store job's announcement panicked");
        }
    }
}

/// The receiving side of [`StoreJobs::run_or_else`] until its value is read.
struct Unread<T, L: FnOnce(T)> {
    rx: Option<oneshot::Receiver<Result<T, JobError>>>,
    left: Arc<Mutex<Option<L>>>,
}

impl<T, L: FnOnce(T)> Drop for Unread<T, L> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            // Closed first: from here the job's side gets its value back if it has not sent.
            rx.close();
            if let Ok(Ok(value)) = rx.try_recv() {
                announce(&self.left, value);
            }
        }
    }
}

fn worker(jobs: &Queue, store: &(dyn Store + Send + Sync), max_group: usize, queued: &AtomicUsize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_group);
    let mut replies: Vec<Reply> = Vec::with_capacity(max_group);
    loop {
        {
            let mut lanes = jobs.lanes();
            let first = loop {
                if let Some(job) = lanes.next() {
                    break job;
                }
                // Closed and drained: the thread ends.
                if lanes.closed {
                    return;
                }
                lanes = jobs.ready.wait(lanes).unwrap_or_else(|p| p.into_inner());
            };
            batch.push(first);
            // Whatever queued up meanwhile joins this group.
            while batch.len() < max_group {
                match lanes.next() {
                    Some(job) => batch.push(job),
                    None => break,
                }
            }
            queued.fetch_sub(batch.len(), Ordering::SeqCst);
        }
        // Each job's panic is caught on its own; the outer catch keeps the thread alive (and
        // its callers answered) should the group itself fail that way.
        let committed = catch_unwind(AssertUnwindSafe(|| {
            store.group(&mut |group| {
                for job in batch.drain(..) {
                    match catch_unwind(AssertUnwindSafe(|| job(Some(group)))) {
                        Ok(reply) => replies.push(reply),
                        Err(_) => tracing::error!("a store job panicked"),
                    }
                }
            })
        }));
        let failed = match committed {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, jobs = replies.len() + batch.len(), "a group of store jobs could not commit");
                Some(if e.is_unavailable() {
                    JobError::Unavailable
                } else {
                    JobError::Stopped
                })
            }
            Err(_) => {
                tracing::error!(jobs = replies.len(), "a group of store jobs panicked");
                Some(JobError::Stopped)
            }
        };
        let outcome = failed.map_or(Ok(()), Err);
        replies.drain(..).for_each(|reply| reply(outcome));
        // Jobs the group never ran (it could not start): their callers learn why.
        for job in batch.drain(..) {
            let _ = catch_unwind(AssertUnwindSafe(|| job(None)(outcome)));
        }
    }
}

impl Drop for StoreJobs {
    fn drop(&mut self) {
        self.queue.lanes().closed = true;
        self.queue.ready.notify_all();
        let me: ThreadId = thread::current().id();
        for handle in self.threads.drain(..) {
            // A job holding the last reference to the state drops it on a job thread: that
            // thread cannot join itself, and ends by itself once the queue is closed.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = StoreJobs::start(store, 2).unwrap();
        assert_eq!(jobs.run(|s| s.health(false).is_ok()).await, Ok(true));
        let panicked: Result<(), JobError> = jobs.run(|_| panic!("boom")).await;
        assert_eq!(panicked, Err(JobError::Stopped));
        let names: Vec<_> = futures_join(&jobs).await;
        assert_eq!(names.len(), 8);
        assert!(names.iter().all(|n| n.starts_with("pushauthd-store-")));
    }

    /// A job whose caller went away before it ran is not run: a backlog behind a slow store
    /// does not grow by work nobody waits for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue13_a_job_whose_caller_left_is_not_run() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = Arc::new(StoreJobs::start(store, 1).unwrap());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        // The one thread is busy until released.
        let busy = {
            let jobs = Arc::clone(&jobs);
            tokio::spawn(async move {
                jobs.run(move |_| {
                    let _ = started.send(());
                    held.recv().ok();
                })
                .await
            })
        };
        running.await.unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let abandoned = {
            let (jobs, ran) = (Arc::clone(&jobs), Arc::clone(&ran));
            tokio::spawn(async move {
                jobs.run(move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .await
            })
        };
        // Let it queue, then its caller gives up.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        abandoned.abort();
        let _ = abandoned.await;
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let counted = Arc::clone(&ran);
        jobs.run(move |_| counted.fetch_add(1, Ordering::SeqCst))
            .await
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the abandoned job ran");
    }

    /// A job whose caller went away while it ran hands its committed value to `left` on the
    /// job thread (what a change must announce even so); one whose caller waited does not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue13_a_job_whose_caller_left_while_it_ran_hands_its_value_over() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = Arc::new(StoreJobs::start(store, 1).unwrap());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let (left_tx, left_rx) = std::sync::mpsc::channel::<u32>();
        let abandoned = {
            let (jobs, left_tx) = (Arc::clone(&jobs), left_tx.clone());
            tokio::spawn(async move {
                jobs.run_or_else(
                    move |_| {
                        let _ = started.send(());
                        held.recv().ok();
                        7_u32
                    },
                    move |value| {
                        let _ = left_tx.send(value);
                    },
                )
                .await
            })
        };
        running.await.unwrap();
        // The caller gives up while its job runs; the job goes on and commits.
        abandoned.abort();
        let _ = abandoned.await;
        release.send(()).unwrap();
        let handed = tokio::task::spawn_blocking(move || {
            left_rx.recv_timeout(std::time::Duration::from_secs(5))
        });
        assert_eq!(handed.await.unwrap(), Ok(7));
        // A caller that waits gets the value, and `left` nothing.
        let (left_tx2, left_rx2) = std::sync::mpsc::channel::<u32>();
        let got = jobs
            .run_or_else(
                |_| 8_u32,
                move |value| {
                    let _ = left_tx2.send(value);
                },
            )
            .await;
        assert_eq!(got, Ok(8));
        assert!(left_rx2.try_recv().is_err());
        drop(left_tx);
    }

    /// The caller is dropped after the job committed and its reply was sent, before it was
    /// polled again (review of session 15: hyper drops a request's future when it reads the
    /// client's EOF first): the value goes to `left` all the same.
    #[tokio::test(flavor = "current_thread")]
    async fn issue13_a_caller_dropped_after_the_reply_was_sent_still_announces() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = Arc::new(StoreJobs::start(store, 1).unwrap());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let (left_tx, left_rx) = std::sync::mpsc::channel::<u32>();
        let caller = {
            let jobs = Arc::clone(&jobs);
            tokio::spawn(async move {
                jobs.run_or_else(
                    move |_| {
                        let _ = started.send(());
                        held.recv().ok();
                        7_u32
                    },
                    move |value| {
                        let _ = left_tx.send(value);
                    },
                )
                .await
            })
        };
        running.await.unwrap();
        release.send(()).unwrap();
        // The runtime's one thread is busy: the job commits and its reply is sent (the caller
        // is woken, not polled).
        std::thread::sleep(std::time::Duration::from_millis(300));
        caller.abort();
        let _ = caller.await;
        let handed = left_rx.recv_timeout(std::time::Duration::from_secs(2));
        assert_eq!(handed, Ok(7), "a committed value nobody announced");
    }

    /// Holds the one job thread of `jobs` with a job that runs until `release` is sent to
    /// (its result: `true`), so that the next jobs queue up behind it; returns once it runs.
    async fn hold_the_thread(
        jobs: &Arc<StoreJobs>,
    ) -> (
        mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<bool, JobError>>,
    ) {
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let jobs = Arc::clone(jobs);
        let blocker = tokio::spawn(async move {
            jobs.run(move |_| {
                let _ = started.send(());
                held.recv().is_ok()
            })
            .await
        });
        running.await.unwrap();
        (release, blocker)
    }

    /// Past [`MAX_QUEUED`] waiting jobs, a new one is refused at once as unavailable (503
    /// `store_unavailable`) instead of queuing: nobody can pile up work without bound behind
    /// a slow store; the queued ones still run, and the queue takes jobs again once drained.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue13_a_full_queue_refuses_new_jobs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = Arc::new(StoreJobs::start(store, 1).unwrap().with_max_queued(3));
        let (release, busy) = hold_the_thread(&jobs).await;
        let queued: Vec<_> = (0..3)
            .map(|i| {
                let jobs = Arc::clone(&jobs);
                tokio::spawn(async move { jobs.run(move |_| i).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            jobs.run(|_| unreachable!("a job past the bound ran")),
        )
        .await
        .expect("a job past the bound waited");
        assert_eq!(refused, Err::<(), _>(JobError::Unavailable));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        for (i, job) in queued.into_iter().enumerate() {
            assert_eq!(job.await.unwrap(), Ok(i));
        }
        assert_eq!(jobs.run(|_| 7).await, Ok(7));
    }

    /// Session 17: jobs that finish a login go ahead of the others, but a flood of them (an
    /// answer is checked in its job, so forged ones queue too) leaves every fifth job to the
    /// rest, in order within each lane.
    #[test]
    fn ahead_jobs_go_first_but_never_starve_the_rest() {
        let mut lanes = Lanes::default();
        lanes.normal.extend(["n1", "n2", "n3"].map(String::from));
        lanes.ahead.extend(["a1", "a2"].map(String::from));
        let order: Vec<_> = std::iter::from_fn(|| lanes.next()).collect();
        assert_eq!(order, ["a1", "a2", "n1", "n2", "n3"]);

        lanes.ahead.extend((1..=10).map(|i| format!("a{i}")));
        lanes.normal.extend(["n1", "n2"].map(String::from));
        let order: Vec<_> = std::iter::from_fn(|| lanes.next()).collect();
        assert_eq!(
            order,
            ["a1", "a2", "a3", "a4", "n1", "a5", "a6", "a7", "a8", "n2", "a9", "a10"]
        );
    }

    /// Session 17: through the job thread, a job run ahead that queued after normal ones
    /// runs before them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_run_ahead_overtakes_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = Arc::new(StoreJobs::start(store, 1).unwrap());
        let (release, blocker) = hold_the_thread(&jobs).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let queued_now = |n: usize| {
            let jobs = Arc::clone(&jobs);
            async move {
                while jobs.queued.load(Ordering::SeqCst) < n {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        let queue = |name: &'static str, ahead: bool| {
            let (jobs, order) = (Arc::clone(&jobs), Arc::clone(&order));
            tokio::spawn(async move {
                let job = move |_: &dyn Store| order.lock().unwrap().push(name);
                if ahead {
                    jobs.run_ahead(job).await
                } else {
                    jobs.run(job).await
                }
            })
        };
        let mut queued = vec![queue("new login", false)];
        queued_now(1).await;
        queued.push(queue("enrollment", false));
        queued_now(2).await;
        queued.push(queue("answer", true));
        queued_now(3).await;
        release.send(()).unwrap();
        assert_eq!(blocker.await.unwrap(), Ok(true));
        for job in queued {
            assert_eq!(job.await.unwrap(), Ok(()));
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["answer", "new login", "enrollment"]
        );
    }

    /// Frames in the write-ahead log: each commit appends the pages it changed.
    fn wal_frames(dir: &std::path::Path) -> u64 {
        let wal = dir.join(format!("{}-wal", crate::store::sqlite::DB_FILE));
        let len = std::fs::metadata(wal).map_or(0, |m| m.len());
        len.saturating_sub(32) / (4096 + 24)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_queued_together_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let jobs = Arc::new(StoreJobs::start(store, 1).unwrap());
        // Hold the store thread so the next jobs queue up behind it.
        let (release, blocker) = hold_the_thread(&jobs).await;
        let before = wal_frames(dir.path());
        let writers: Vec<_> = (0..50)
            .map(|i| {
                let jobs = Arc::clone(&jobs);
                tokio::spawn(async move {
                    jobs.run(move |s| {
                        let entry = crate::store::AuditEntry {
                            kind: "grouped",
                            detail: Some(format!("job {i}")),
                            ..Default::default()
                        };
                        s.audit(&entry, 1).is_ok()
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        release.send(()).unwrap();
        assert_eq!(blocker.await.unwrap(), Ok(true));
        for writer in writers {
            assert_eq!(writer.await.unwrap(), Ok(true));
        }
        let events = jobs
            .run(|s| s.list_audit(100, None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == "grouped").count(), 50);
        // Fifty commits would write at least fifty frames; one commit writes a handful.
        let frames = wal_frames(dir.path()) - before;
        assert!(frames < 10, "{frames} WAL frames for 50 queued writes");
    }

    /// Runs several jobs and returns the names of the threads that ran them.
    async fn futures_join(jobs: &StoreJobs) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..8 {
            let name = jobs
                .run(|_| thread::current().name().unwrap_or("").to_owned())
                .await
                .unwrap();
            out.push(name);
        }
        out
    }
}
