//! Challenges this replica listed to one of their devices, until they expire: a device's
//! answer, acknowledgement or cancel of such a challenge goes ahead of new work in the store's
//! queue (`jobs::Lane::Ahead`), as one does on the replica where its relying party waits.
//!
//! With several replicas (issue 13) a relying party waits on one and the device often answers
//! on another, which has no wait of its own on that challenge: there the answer queued behind
//! new logins and their devices' polls (session 17's figures: answer→return p50 65 ms at 64
//! pairs across two replicas, 10 ms on one).
//!
//! Only a listing to an authenticated device adds an id, so as with a wait, a request can go
//! ahead only by naming a challenge id its relying party and its devices alone know; a forged
//! one queues with everything else (and is refused in its job).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::clock::Millis;

/// Ids kept at most (a few dozen bytes each); full, only those not expired stay, or none.
pub const MAX_SHOWN: usize = 16_384;

/// The registry: challenge id → when it expires (Unix milliseconds).
#[derive(Debug, Default)]
pub struct ShownHere {
    expiries: Mutex<HashMap<String, Millis>>,
}

impl ShownHere {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Millis>> {
        self.expiries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Challenge `id`, expiring at `expires_at` (Unix milliseconds), was listed to an
    /// authenticated device of its own here; `now` (Unix milliseconds) to drop what expired
    /// when the registry is full.
    pub fn shown(&self, id: &str, expires_at: Millis, now: Millis) {
        if expires_at <= now {
            return;
        }
        let mut expiries = self.lock();
        if expiries.len() >= MAX_SHOWN && !expiries.contains_key(id) {
            expiries.retain(|_, at| *at > now);
            if expiries.len() >= MAX_SHOWN {
                expiries.clear();
            }
        }
        expiries.insert(id.to_owned(), expires_at);
    }

    /// Whether challenge `id` was listed to one of its devices here and has not expired at
    /// `now` (Unix milliseconds).
    pub fn is_shown(&self, id: &str, now: Millis) -> bool {
        self.lock().get(id).is_some_and(|at| *at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_shown_until_its_expiry_and_others_never() {
        let shown = ShownHere::default();
        shown.shown("c1", 2_000, 1_000);
        assert!(shown.is_shown("c1", 1_999));
        assert!(!shown.is_shown("c1", 2_000), "expired");
        assert!(!shown.is_shown("c2", 1_000), "never listed");
        shown.shown("c3", 1_000, 1_000);
        assert!(
            !shown.is_shown("c3", 999),
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
        assert!(shown.is_shown("new", 2_000));
        assert!(shown.is_shown("c1", 2_000), "not expired: kept");
        assert_eq!(shown.lock().len(), MAX_SHOWN / 2 + 1);
        // Full of live ids: it starts over rather than grow.
        let shown = ShownHere::default();
        for i in 0..MAX_SHOWN {
            shown.shown(&format!("c{i}"), 5_000, 1_000);
        }
        shown.shown("new", 5_000, 1_000);
        assert!(shown.is_shown("new", 1_000));
        assert_eq!(shown.lock().len(), 1);
    }
}
