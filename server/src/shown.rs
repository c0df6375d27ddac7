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
//!   ahead only by naming a challenge id that its relying party and its devices alone know
//!   (and the webhook receiver, which is told of new challenges).
//! - The budget is per listing device: each device a challenge was listed to here lets
//!   [`AHEAD_PER_DEVICE`] of the requests that claim to be from it go ahead, however often it
//!   is listed again. A device flooding requests on its own challenge gets no more than that
//!   ahead of other users' logins, and one device's acknowledgements cannot spend another's
//!   (attack reviews of session 19). The claim is checked in the job, after the lane is
//!   chosen: someone who knows the challenge and a device id can spend that device's budget,
//!   which costs its answer the priority, never a refusal.
//! - A challenge leaves when a change here makes it terminal, or when it expires: the registry
//!   holds about the open challenges listed here, which the per-user caps bound. (A change made
//!   through another replica reaches this one as "read again", without the state: such a
//!   challenge stays until it expires, and its few requests ahead are refused in their jobs.)

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::clock::Millis;

/// Ids kept at most (a hundred bytes each, about a kilobyte with 16 devices). Full, those expired go; if three quarters
/// are left, all go (so a full registry is swept once per quarter of it, never per insert;
/// a challenge listed again after that starts with a new budget).
pub const MAX_SHOWN: usize = 16_384;

/// Requests from one device on one listed challenge that may go ahead: an acknowledgement, an
/// answer, and one more (a retry after a lost reply).
pub const AHEAD_PER_DEVICE: u8 = 3;

/// Devices per challenge given a budget: a user's devices, more than anyone enrolls.
const MAX_DEVICES: usize = 16;

/// A listed challenge: when it expires (Unix milliseconds), and each device it was listed to
/// with how many of its requests may still go ahead.
#[derive(Debug)]
struct Listed {
    expires_at: Millis,
    budgets: Vec<(String, u8)>,
}

/// The registry: challenge id → [`Listed`].
#[derive(Debug, Default)]
pub struct ShownHere {
    entries: Mutex<HashMap<String, Listed>>,
}

impl ShownHere {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Listed>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Challenge `id`, expiring at `expires_at` (Unix milliseconds), was listed to `device`,
    /// authenticated, here; `now` (Unix milliseconds). Listing it to that device again changes
    /// nothing.
    pub fn shown(&self, id: &str, device: &str, expires_at: Millis, now: Millis) {
        if expires_at <= now {
            return;
        }
        let mut entries = self.lock();
        if let Some(listed) = entries.get_mut(id) {
            if listed.budgets.len() < MAX_DEVICES
                && !listed.budgets.iter().any(|(d, _)| d == device)
            {
                listed.budgets.push((device.to_owned(), AHEAD_PER_DEVICE));
            }
            return;
        }
        if entries.len() >= MAX_SHOWN {
            entries.retain(|_, listed| listed.expires_at > now);
            if entries.len() > MAX_SHOWN / 4 * 3 {
                entries.clear();
            }
        }
        entries.insert(
            id.to_owned(),
            Listed {
                expires_at,
                budgets: vec![(device.to_owned(), AHEAD_PER_DEVICE)],
            },
        );
    }

    /// Whether a request on challenge `id` claiming to be from `device` goes ahead at `now`
    /// (Unix milliseconds): the challenge was listed to that device here, has not ended or
    /// expired, and fewer than [`AHEAD_PER_DEVICE`] of that device's went ahead before (this
    /// one is counted).
    pub fn take_ahead(&self, id: &str, device: &str, now: Millis) -> bool {
        let mut entries = self.lock();
        let Some(listed) = entries.get_mut(id).filter(|l| l.expires_at > now) else {
            return false;
        };
        match listed.budgets.iter_mut().find(|(d, _)| d == device) {
            Some((_, left)) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Challenge `id` ended (a terminal change made here): none of its requests goes ahead
    /// any more.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_challenge_lets_a_few_requests_of_each_device_ahead_until_it_ends() {
        let shown = ShownHere::default();
        shown.shown("c1", "d1", 2_000, 1_000);
        shown.shown("c1", "d2", 2_000, 1_000);
        for _ in 0..AHEAD_PER_DEVICE {
            assert!(shown.take_ahead("c1", "d1", 1_500));
        }
        assert!(!shown.take_ahead("c1", "d1", 1_500), "d1's budget is spent");
        shown.shown("c1", "d1", 2_000, 1_600);
        assert!(
            !shown.take_ahead("c1", "d1", 1_600),
            "listing again gives no more"
        );
        assert!(
            shown.take_ahead("c1", "d2", 1_600),
            "d2's own budget is whole"
        );
        assert!(!shown.take_ahead("c1", "d3", 1_600), "never listed to d3");
        assert!(!shown.take_ahead("c1", "d2", 2_000), "expired");
        shown.shown("c3", "d1", 2_000, 1_000);
        shown.forget("c3");
        assert!(!shown.take_ahead("c3", "d1", 1_000), "ended");
        assert!(!shown.take_ahead("c4", "d1", 1_000), "never listed");
        shown.shown("c5", "d1", 1_000, 1_000);
        assert!(
            !shown.take_ahead("c5", "d1", 999),
            "listed already expired: not kept"
        );
    }

    #[test]
    fn a_full_registry_drops_the_expired_first_then_starts_over() {
        let shown = ShownHere::default();
        for i in 0..MAX_SHOWN {
            // Half expire at 1,500, half at 5,000.
            let at = if i % 2 == 0 { 1_500 } else { 5_000 };
            shown.shown(&format!("c{i}"), "d", at, 1_000);
        }
        shown.shown("new", "d", 5_000, 2_000);
        assert!(shown.take_ahead("new", "d", 2_000));
        assert!(shown.take_ahead("c1", "d", 2_000), "not expired: kept");
        assert_eq!(shown.lock().len(), MAX_SHOWN / 2 + 1);
        // Full of live ids: it starts over rather than grow, or sweep on every insert.
        let shown = ShownHere::default();
        for i in 0..MAX_SHOWN {
            shown.shown(&format!("c{i}"), "d", 5_000, 1_000);
        }
        shown.shown("new", "d", 5_000, 1_000);
        assert!(shown.take_ahead("new", "d", 1_000));
        assert_eq!(shown.lock().len(), 1);
    }
}
