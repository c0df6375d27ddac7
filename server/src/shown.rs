//! Challenges this replica listed to one of their devices, while they are open: a few of that
//! device's requests on such a challenge (its acknowledgement, its answer) go ahead of new
//! work in the store's queue (`jobs::Lane::Ahead`), as they do on the replica where its
//! relying party waits.
//!
//! With several replicas (issue 13) a relying party waits on one and the device often answers
//! on another, which has no wait of its own on that challenge: there the answer queued behind
//! new logins and their devices' polls (session 17's figures: answer→return p99 138 ms at 64
//! pairs across two replicas).
//!
//! - Only a listing to an authenticated device adds an id: as with a wait, a request can go
//!   ahead only by naming a challenge id that its relying party and its devices alone know.
//! - Each listed challenge lets [`AHEAD_PER_LISTING`] requests go ahead, however often it is
//!   listed again: a device flooding requests on its own challenge gets no more than that
//!   ahead of other users' logins (attack review of session 19).
//! - A challenge leaves when a change here makes it terminal, or when it expires: the registry
//!   holds about the open challenges listed here, which the per-user caps bound.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::clock::Millis;

/// Ids kept at most (under a hundred bytes each). Full, those expired go; if three quarters
/// are left, all go (so a full registry is swept once per quarter of it, never per insert).
pub const MAX_SHOWN: usize = 16_384;

/// Requests on one listed challenge that may go ahead: an acknowledgement, an answer, and one
/// more (a retry after a lost reply).
pub const AHEAD_PER_LISTING: u8 = 3;

/// The registry: challenge id → when it expires (Unix milliseconds) and how many of its
/// requests may still go ahead.
#[derive(Debug, Default)]
pub struct ShownHere {
    entries: Mutex<HashMap<String, (Millis, u8)>>,
}

impl ShownHere {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Millis, u8)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Challenge `id`, expiring at `expires_at` (Unix milliseconds), was listed to an
    /// authenticated device of its own here; `now` (Unix milliseconds). Listing it again
    /// changes nothing.
    pub fn shown(&self, id: &str, expires_at: Millis, now: Millis) {
        if expires_at <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.contains_key(id) {
            return;
        }
        if entries.len() >= MAX_SHOWN {
            entries.retain(|_, (at, _)| *at > now);
            if entries.len() > MAX_SHOWN / 4 * 3 {
                entries.clear();
            }
        }
        entries.insert(id.to_owned(), (expires_at, AHEAD_PER_LISTING));
    }

    /// Whether a request on challenge `id` goes ahead at `now` (Unix milliseconds): it was
    /// listed here, has not expired, and fewer than [`AHEAD_PER_LISTING`] went ahead before
    /// (this one is counted).
    pub fn take_ahead(&self, id: &str, now: Millis) -> bool {
        match self.lock().get_mut(id) {
            Some((at, left)) if *at > now && *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Challenge `id` ended (a terminal change made or seen here): none of its requests goes
    /// ahead any more.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_challenge_lets_a_few_requests_ahead_until_it_ends_or_expires() {
        let shown = ShownHere::default();
        shown.shown("c1", 2_000, 1_000);
        for _ in 0..AHEAD_PER_LISTING {
            assert!(shown.take_ahead("c1", 1_500));
        }
        assert!(!shown.take_ahead("c1", 1_500), "its budget is spent");
        shown.shown("c1", 2_000, 1_600);
        assert!(
            !shown.take_ahead("c1", 1_600),
            "listing again gives no more"
        );
        shown.shown("c2", 2_000, 1_000);
        assert!(!shown.take_ahead("c2", 2_000), "expired");
        shown.shown("c3", 2_000, 1_000);
        shown.forget("c3");
        assert!(!shown.take_ahead("c3", 1_000), "ended");
        assert!(!shown.take_ahead("c4", 1_000), "never listed");
        shown.shown("c5", 1_000, 1_000);
        assert!(
            !shown.take_ahead("c5", 999),
            "listed already expired: not kept"
        );
    }

    #[test]
    fn a_full_registry_drops_the_expired_first_then_starts_over() {
        let shown = ShownHere::default();
        for i in 0..MAX_SHOWN {
            // Half expire at 1,500, half at 5,000.
            let at = if i % 2 == 0 { 1_500 } else { 5_000 };
            shown.shown(&format!("c{i}"), at, 1_000);
        }
        shown.shown("new", 5_000, 2_000);
        assert!(shown.take_ahead("new", 2_000));
        assert!(shown.take_ahead("c1", 2_000), "not expired: kept");
        assert_eq!(shown.lock().len(), MAX_SHOWN / 2 + 1);
        // Full of live ids: it starts over rather than grow, or sweep on every insert.
        let shown = ShownHere::default();
        for i in 0..MAX_SHOWN {
            shown.shown(&format!("c{i}"), 5_000, 1_000);
        }
        shown.shown("new", 5_000, 1_000);
        assert!(shown.take_ahead("new", 1_000));
        assert_eq!(shown.lock().len(), 1);
    }
}
