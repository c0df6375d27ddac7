//! Flat combining: concurrent calls of one operation, from the store's job threads, run as
//! one batch on whichever of those threads finds no batch under way (the leader), so that
//! several logins share each statement's round trip and one commit (issue 13: a round trip
//! costs PostgreSQL and pushauthd a wake-up each, most of what a login costs here).
//!
//! Nothing waits to fill a batch: a call that finds no batch under way leads at once, alone if
//! need be; the calls that arrive while a batch runs wait for it and go in the next. So a
//! batch is as large as the operation's concurrency, and a lone call makes the round trips it
//! made before. The leader runs its batch, hands every caller its result, and leads again only
//! for its own item (when it missed the batch); otherwise the oldest waiting caller is woken to
//! lead the next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, Thread};

/// An item of a batch. Two items with the same key never share a batch (the second waits
/// for the next): a creation reads its user's counts before the batch writes anything, so two
/// of one user's in one batch would each miss the other.
pub(super) trait Keyed {
    /// The key no two items of a batch share.
    fn key(&self) -> &str;
}

/// An item waiting for its batch: its ticket, the item, and the thread that waits for it.
struct Waiting<T> {
    ticket: u64,
    item: T,
    thread: Thread,
}

/// Items (`T`) waiting for a batch, and the results (`R`) of those whose batch ran.
struct State<T, R> {
    waiting: VecDeque<Waiting<T>>,
    results: HashMap<u64, R>,
    /// A thread runs a batch now.
    leading: bool,
    next_ticket: u64,
}

/// Concurrent calls of one operation, combined into batches of at most `max` items.
///
/// A waiting caller sleeps (`thread::park`) until woken for its result or to lead the next
/// batch: only those threads are woken, not every waiting one (a thread's wake-up is much of
/// what a store operation costs here).
pub(super) struct Combiner<T, R> {
    state: Mutex<State<T, R>>,
    max: usize,
    /// The most items a batch held so far (what tests look at).
    #[cfg(test)]
    largest: std::sync::atomic::AtomicUsize,
}

impl<T: Keyed, R> Combiner<T, R> {
    /// A combiner of batches of at most `max` items (at least one).
    pub(super) fn new(max: usize) -> Self {
        Combiner {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                results: HashMap::new(),
                leading: false,
                next_ticket: 0,
            }),
            max: max.max(1),
            #[cfg(test)]
            largest: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `item`'s result: `work` runs a batch (its items in the order given) and returns one
    /// result per item, in the same order, on whichever calling thread leads. `lost` stands
    /// in for a result `work` did not give (it returned too few, or panicked: then the panic
    /// goes on in the leader's thread, and every other caller of its batch gets `lost`).
    pub(super) fn run(&self, item: T, work: impl Fn(Vec<T>) -> Vec<R>, lost: impl Fn() -> R) -> R {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(Waiting {
            ticket,
            item,
            thread: thread::current(),
        });
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                // Its batch ran (led by this thread or another): if none runs now while callers
                // wait, the oldest of them leads the next.
                let next = (!state.leading)
                    .then(|| state.waiting.front().map(|w| w.thread.clone()))
                    .flatten();
                drop(state);
                if let Some(next) = next {
                    next.unpark();
                }
                return result;
            }
            if state.leading {
                drop(state);
                // Woken for its result or to lead (or spuriously: the loop looks again). An
                // unpark that came before the park makes it return at once: none is lost.
                thread::park();
                state = self.lock();
                continue;
            }
            state.leading = true;
            let (tickets, threads, items) = self.take(&mut state);
            drop(state);
            // No batch runs (`leading` was false), so this caller's item waits, and the oldest
            // item always goes in: never an empty batch.
            debug_assert!(!items.is_empty());
            #[cfg(test)]
            self.largest
                .fetch_max(items.len(), std::sync::atomic::Ordering::SeqCst);
            let on_panic = OnPanic {
                combiner: self,
                tickets: &tickets,
                threads: &threads,
                own: ticket,
                lost: &lost,
            };
            let results = work(items);
            std::mem::forget(on_panic);
            state = self.lock();
            let mut results = results.into_iter();
            for &ticket in &tickets {
                state
                    .results
                    .insert(ticket, results.next().unwrap_or_else(&lost));
            }
            // Cleared here only, in the same hold of the lock as the results: a batch still
            // runs until then. Who leads next: this caller, at the top of the loop, if its item
            // missed the batch; else the oldest waiting one, woken there.
            state.leading = false;
            drop(state);
            let me = thread::current().id();
            for thread in &threads {
                if thread.id() != me {
                    thread.unpark();
                }
            }
            state = self.lock();
        }
    }

    /// How many items wait for a batch now, and the most a batch held so far.
    #[cfg(test)]
    pub(super) fn waiting_and_largest(&self) -> (usize, usize) {
        (
            self.lock().waiting.len(),
            self.largest.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    /// The next batch: the oldest waiting items, no two with one key, at most `max`; their
    /// tickets, threads and items.
    fn take(&self, state: &mut State<T, R>) -> (Vec<u64>, Vec<Thread>, Vec<T>) {
        let mut keys = HashSet::new();
        let mut tickets = Vec::new();
        let mut threads = Vec::new();
        let mut items = Vec::new();
        let mut left = VecDeque::with_capacity(state.waiting.len());
        while let Some(waiting) = state.waiting.pop_front() {
            if items.len() < self.max && keys.insert(waiting.item.key().to_owned()) {
                tickets.push(waiting.ticket);
                threads.push(waiting.thread);
                items.push(waiting.item);
            } else {
                left.push_back(waiting);
            }
        }
        state.waiting = left;
        (tickets, threads, items)
    }
}

/// Undoes a lead whose batch's work panicked (dropped only while unwinding: forgotten
/// otherwise): the lead is free again, the batch's other callers get `lost` and wake, the
/// leader's own item (whose caller gets the panic) leaves the queue if it was still there,
/// and the oldest waiting caller wakes to lead.
struct OnPanic<'c, T, R, L: Fn() -> R> {
    combiner: &'c Combiner<T, R>,
    tickets: &'c [u64],
    threads: &'c [Thread],
    own: u64,
    lost: &'c L,
}

impl<T, R, L: Fn() -> R> Drop for OnPanic<'_, T, R, L> {
    fn drop(&mut self) {
        let mut state = self
            .combiner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &ticket in self.tickets {
            if ticket != self.own {
                state.results.insert(ticket, (self.lost)());
            }
        }
        state.waiting.retain(|w| w.ticket != self.own);
        state.leading = false;
        let next = state.waiting.front().map(|w| w.thread.clone());
        drop(state);
        let me = thread::current().id();
        for thread in self.threads.iter().chain(&next) {
            if thread.id() != me {
                thread.unpark();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    struct Item(String, usize);

    impl Keyed for Item {
        fn key(&self) -> &str {
            &self.0
        }
    }

    #[test]
    fn a_lone_call_runs_at_once_as_a_batch_of_one() {
        let c = Combiner::<Item, usize>::new(8);
        let sizes = Mutex::new(Vec::new());
        let r = c.run(
            Item("a".into(), 7),
            |items| {
                sizes.lock().unwrap().push(items.len());
                items.iter().map(|i| i.1 * 2).collect()
            },
            || usize::MAX,
        );
        assert_eq!(r, 14);
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
    }

    /// Calls made while a batch runs go in the next, at most `max` and no two of one key, and
    /// each caller gets its own item's result.
    #[test]
    fn calls_during_a_batch_share_the_next_and_each_gets_its_own_result() {
        let c = Arc::new(Combiner::<Item, usize>::new(3));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let in_first = Arc::new(Barrier::new(2));
        let release = Arc::new(Barrier::new(2));
        let first = {
            let (c, sizes, in_first, release) = (
                Arc::clone(&c),
                Arc::clone(&sizes),
                Arc::clone(&in_first),
                Arc::clone(&release),
            );
            std::thread::spawn(move || {
                c.run(
                    Item("lead".into(), 1),
                    |items| {
                        sizes.lock().unwrap().push(items.len());
                        in_first.wait();
                        release.wait();
                        items.iter().map(|i| i.1 * 10).collect()
                    },
                    || usize::MAX,
                )
            })
        };
        in_first.wait();
        // Five callers while the first batch runs: keys a, b, a, c, d.
        let callers: Vec<_> = [("a", 2), ("b", 3), ("a", 4), ("c", 5), ("d", 6)]
            .into_iter()
            .map(|(key, n)| {
                let (c, sizes) = (Arc::clone(&c), Arc::clone(&sizes));
                std::thread::spawn(move || {
                    let r = c.run(
                        Item(key.into(), n),
                        |items| {
                            sizes.lock().unwrap().push(items.len());
                            items.iter().map(|i| i.1 * 10).collect()
                        },
                        || usize::MAX,
                    );
                    (n, r)
                })
            })
            .collect();
        while c.lock().waiting.len() < 5 {
            std::thread::yield_now();
        }
        release.wait();
        assert_eq!(first.join().unwrap(), 10);
        for caller in callers {
            let (n, r) = caller.join().unwrap();
            assert_eq!(r, n * 10, "each caller gets its own item's result");
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 6);
        assert_eq!(sizes[0], 1);
        // The five queued ones: a, b, c first (the max; the second "a" waits), then a, d.
        assert_eq!(&sizes[1..], &[3, 2]);
    }

    /// A panic in a batch's work reaches the caller that led it; the batch's other caller gets
    /// the stand-in; a caller left out of that batch (same key) still gets its own result;
    /// nothing stays queued or kept.
    #[test]
    fn a_panicking_batch_gives_its_other_callers_the_stand_in_and_frees_the_lead() {
        let c = Arc::new(Combiner::<Item, usize>::new(8));
        // Panics on an item 99: whoever leads a batch holding one.
        let work = |items: Vec<Item>| -> Vec<usize> {
            assert!(items.iter().all(|i| i.1 != 99), "boom");
            items.iter().map(|i| i.1 * 10).collect()
        };
        let in_first = Arc::new(Barrier::new(2));
        let release = Arc::new(Barrier::new(2));
        let first = {
            let (c, in_first, release) =
                (Arc::clone(&c), Arc::clone(&in_first), Arc::clone(&release));
            std::thread::spawn(move || {
                c.run(
                    Item("p".into(), 1),
                    |items| {
                        in_first.wait();
                        release.wait();
                        work(items)
                    },
                    || usize::MAX,
                )
            })
        };
        in_first.wait();
        let call = |key: &'static str, n: usize| {
            let mine = Arc::clone(&c);
            let thread = std::thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    mine.run(Item(key.into(), n), work, || usize::MAX)
                }))
            });
            // Queued before the next one is made.
            while !c.lock().waiting.iter().any(|w| w.item.1 == n) {
                std::thread::yield_now();
            }
            thread
        };
        // Queued in this order while the first batch runs: x (the panicking item), y, then a
        // second x, which cannot share their batch.
        let x = call("x", 99);
        let y = call("y", 2);
        let x2 = call("x", 3);
        release.wait();
        assert_eq!(first.join().unwrap(), 10);
        let (x, y) = (x.join().unwrap(), y.join().unwrap());
        // One of the two led the batch and panicked; the other got the stand-in.
        match (x, y) {
            (Err(_), Ok(r)) | (Ok(r), Err(_)) => assert_eq!(r, usize::MAX),
            other => panic!("one panic and one stand-in, got {other:?}"),
        }
        assert_eq!(x2.join().unwrap().unwrap(), 30);
        let state = c.lock();
        assert!(state.waiting.is_empty() && state.results.is_empty() && !state.leading);
        drop(state);
        // Too few results: the missing ones get the stand-in.
        let r = c.run(Item("b".into(), 3), |_| Vec::new(), || usize::MAX);
        assert_eq!(r, usize::MAX);
    }
}
