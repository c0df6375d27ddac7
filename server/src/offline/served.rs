//! Which approvals already had offline values hashed for them: each approved challenge pays
//! for one batch of Argon2id work, so a relying party cannot make pushauthd hash `window`
//! values per device again and again on a single approval (each call costs seconds of a core).
//! Kept in memory: values are only served within 5 minutes of the challenge's creation
//! (`service::offline::VALUES_MAX_AGE_SECS`, which checks that [`KEEP_MS`] is longer), so an
//! entry older than that can go, and a restart forgets at most that much.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::clock::Millis;

/// How long an entry is kept: the 5 minutes values are served plus a minute of clock slack.
pub const KEEP_MS: Millis = 6 * 60 * 1000;

/// The approvals whose values were hashed (challenge id -> when).
#[derive(Debug, Default)]
pub struct Served {
    seen: Mutex<HashMap<String, Millis>>,
}

impl Served {
    /// True when `challenge_id` had no batch yet (it has one now); false when it had.
    pub fn claim(&self, challenge_id: &str, now: Millis) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, at| now.saturating_sub(*at) <= KEEP_MS);
        if seen.contains_key(challenge_id) {
            return false;
        }
        seen.insert(challenge_id.to_owned(), now);
        true
    }

    /// Gives a claim back when its hashing failed (busy, no randomness), so the host may try
    /// again on the same approval.
    pub fn release(&self, challenge_id: &str) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(challenge_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_challenge_until_released_or_old() {
        let served = Served::default();
        assert!(served.claim("a", 1_000));
        assert!(!served.claim("a", 2_000));
        assert!(served.claim("b", 2_000));
        served.release("a");
        assert!(served.claim("a", 3_000));
        // Long past the serving age, the entry is gone (the challenge is refused as too old).
        assert!(served.claim("b", 2_000 + KEEP_MS + 1));
    }
}
