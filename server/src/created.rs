//! Challenges this replica created and that nothing has changed since, as far as it can tell
//! (issue 13, PostgreSQL): a relying party's long-poll on one of them starts waiting without
//! reading it first, which saves a store job and a statement per login.
//!
//! - A view is kept only while the replica's listener hears every other process's change
//!   ([`CreatedHere::hearing`], set by `wake.rs` once its `LISTEN` holds). Never on SQLite,
//!   whose CLI changes the database unheard, so there every long-poll reads first.
//! - Everything that wakes a challenge's waiters ([`Waiters`](crate::waiters::Waiters)) forgets
//!   its view: a change made here, another process's notice, a reconnect (all views).
//! - A creation's view is kept only if nothing forgot that challenge (or every view) between
//!   the start of the creation and the keeping: a change heard before the view was kept
//!   cannot be outlived by it. The last [`MAX_FORGOTTEN`] forgettings are remembered for that;
//!   a creation that spans more keeps nothing.
//! - A view is used for [`VIEW_FOR`] after it was kept, and not past the challenge's expiry
//!   (the read expires it). A relying party waits within milliseconds of its creation; the
//!   age limit bounds what a listener that stopped hearing without a word (found by its probe
//!   within seconds) can cost. A read that finds the challenge no longer pending forgets its
//!   view too.
//!
//! So a view is the state committed at the creation, with no change since, up to a notice
//! still on its way: the window a read made just before that change would have had. A view
//! only lets a long-poll start waiting. A terminal answer still comes from a committed record
//! or a read, so a wrong view costs time (until the next wake-up, at worst the expiry), never
//! a wrong answer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Millis;

/// Forgettings of single challenges remembered for creations under way (about a second of a
/// busy replica's changes).
pub const MAX_FORGOTTEN: usize = 4096;

/// Views kept at most (about a hundred bytes each); full, the registry keeps only those still
/// young enough to be used, or starts over.
pub const MAX_VIEWS: usize = 16_384;

/// How long after it was kept a view is used.
pub const VIEW_FOR: Duration = Duration::from_secs(1);

/// Longest id remembered as forgotten: ours are 22 characters, and a longer one (from a
/// request's path) can never have a view.
const MAX_ID_LEN: usize = 64;

/// What a long-poll needs of a challenge it may wait on without reading it: it is pending,
/// owned by `rp_id`, and expires at `expires_at` (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedView {
    /// The relying party that created it.
    pub rp_id: String,
    /// When it expires (Unix milliseconds).
    pub expires_at: Millis,
}

/// Taken before a creation whose view may be kept ([`CreatedHere::keep`]).
#[derive(Debug, Clone, Copy)]
pub struct CreationTicket(u64);

/// The registry (see the module notes). Shared through [`Waiters`](crate::waiters::Waiters).
#[derive(Debug, Default)]
pub struct CreatedHere {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether a listener hears every other process's change now.
    hearing: bool,
    /// Forgettings so far (of one challenge or of all).
    seq: u64,
    /// The last forgetting of every view.
    all_at: u64,
    /// The last [`MAX_FORGOTTEN`] forgettings of one challenge: (seq, id).
    recent: VecDeque<(u64, String)>,
    /// The newest forgetting no longer in `recent`.
    dropped_at: u64,
    /// By id, with when each was kept.
    views: HashMap<String, (CreatedView, Instant)>,
}

impl CreatedHere {
    /// Starts (`true`) or ends keeping views: the listener's `LISTEN` holds, or its connection
    /// ended. Either way every view is forgotten, and no creation under way keeps one.
    pub fn hearing(&self, on: bool) {
        let mut inner = self.lock();
        forget_all(&mut inner);
        inner.hearing = on;
    }

    /// Taken before a creation, for [`CreatedHere::keep`].
    pub fn ticket(&self) -> CreationTicket {
        CreationTicket(self.lock().seq)
    }

    /// Keeps the view of challenge `id`, created (committed, pending) since `ticket` was
    /// taken, unless nothing is kept now or anything forgot it, or every view, since then.
    pub fn keep(&self, ticket: CreationTicket, id: &str, view: CreatedView) {
        let mut inner = self.lock();
        if !inner.hearing || inner.all_at > ticket.0 || inner.dropped_at > ticket.0 {
            return;
        }
        let heard = inner
            .recent
            .iter()
            .rev()
            .take_while(|(seq, _)| *seq > ticket.0)
            .any(|(_, forgotten)| forgotten == id);
        if heard {
            return;
        }
        if inner.views.len() >= MAX_VIEWS {
            inner.views.retain(|_, (_, kept)| kept.elapsed() < VIEW_FOR);
            if inner.views.len() >= MAX_VIEWS {
                inner.views.clear();
            }
        }
        inner.views.insert(id.to_owned(), (view, Instant::now()));
    }

    /// The view of challenge `id` if one is kept, was kept less than [`VIEW_FOR`] ago, and
    /// `now` (Unix milliseconds) is before the challenge's expiry.
    pub fn view(&self, id: &str, now: Millis) -> Option<CreatedView> {
        let inner = self.lock();
        if !inner.hearing {
            return None;
        }
        inner
            .views
            .get(id)
            .filter(|(view, kept)| now < view.expires_at && kept.elapsed() < VIEW_FOR)
            .map(|(view, _)| view.clone())
    }

    /// Challenge `id` changed, or may have: its view goes, and a creation of it under way
    /// keeps none.
    pub fn forget(&self, id: &str) {
        let mut inner = self.lock();
        if !inner.hearing || id.len() > MAX_ID_LEN {
            // Nothing is kept, and nothing will be from a creation under way (hearing again
            // forgets everything); or no view can have this id.
            return;
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.views.remove(id);
        if inner.recent.len() >= MAX_FORGOTTEN {
            if let Some((dropped, _)) = inner.recent.pop_front() {
                inner.dropped_at = dropped;
            }
        }
        inner.recent.push_back((seq, id.to_owned()));
    }

    /// Any challenge may have changed: every view goes.
    pub fn forget_all(&self) {
        forget_all(&mut self.lock());
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn forget_all(inner: &mut Inner) {
    inner.seq += 1;
    inner.all_at = inner.seq;
    inner.views.clear();
    inner.recent.clear();
    inner.dropped_at = 0;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{CreatedHere, CreatedView, MAX_FORGOTTEN};

    fn view() -> CreatedView {
        CreatedView {
            rp_id: "sshd".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn nothing_is_kept_unless_hearing_and_a_reconnect_forgets_everything() {
        let created = CreatedHere::default();
        let ticket = created.ticket();
        created.keep(ticket, "c1", view());
        assert_eq!(created.view("c1", 0), None);

        created.hearing(true);
        let ticket = created.ticket();
        created.keep(ticket, "c1", view());
        assert_eq!(created.view("c1", 0), Some(view()));
        assert_eq!(created.view("c1", 1_000), None, "due: read it");

        // The connection ends and comes back: views go, and a creation that spanned it
        // keeps nothing.
        let spanning = created.ticket();
        created.hearing(false);
        assert_eq!(created.view("c1", 0), None);
        created.hearing(true);
        assert_eq!(created.view("c1", 0), None);
        created.keep(spanning, "c2", view());
        assert_eq!(created.view("c2", 0), None);
    }

    #[test]
    fn a_change_heard_during_the_creation_is_not_outlived_by_its_view() {
        let created = CreatedHere::default();
        created.hearing(true);
        let ticket = created.ticket();
        // Other challenges' changes do not matter; this one's does.
        created.forget("other");
        created.keep(ticket, "c1", view());
        assert!(created.view("c1", 0).is_some());
        let ticket = created.ticket();
        created.forget("c2");
        created.keep(ticket, "c2", view());
        assert_eq!(created.view("c2", 0), None);
        // A change after the keeping forgets it; so does a wake-up of every waiter.
        created.forget("c1");
        assert_eq!(created.view("c1", 0), None);
        let ticket = created.ticket();
        created.keep(ticket, "c3", view());
        created.forget_all();
        assert_eq!(created.view("c3", 0), None);
        let ticket = created.ticket();
        created.forget_all();
        created.keep(ticket, "c4", view());
        assert_eq!(created.view("c4", 0), None);
    }

    #[test]
    fn a_creation_that_spans_more_changes_than_are_remembered_keeps_nothing() {
        let created = CreatedHere::default();
        created.hearing(true);
        let ticket = created.ticket();
        for i in 0..=MAX_FORGOTTEN {
            created.forget(&format!("other{i}"));
        }
        created.keep(ticket, "c1", view());
        assert_eq!(created.view("c1", 0), None);
        let ticket = created.ticket();
        created.forget("other");
        created.keep(ticket, "c1", view());
        assert!(created.view("c1", 0).is_some());
    }

    #[test]
    fn a_view_is_used_for_view_for_after_it_was_kept() {
        let created = CreatedHere::default();
        created.hearing(true);
        let ticket = created.ticket();
        created.keep(ticket, "c1", view());
        assert!(created.view("c1", 0).is_some());
        std::thread::sleep(super::VIEW_FOR);
        assert_eq!(created.view("c1", 0), None);
    }
}
