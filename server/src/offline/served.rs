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

/// Wrong codes in reports of one relying party for one device after which every report of
/// that pair is refused (a host only reports codes that matched the device's values, so one
/// wrong code already means a broken or broken-into host; ten stop guessing a 6-digit value).
pub const MAX_WRONG_REPORTS: u32 = 10;

/// The offline-code reports already recorded, as (device, relying party, counter): a copy of
/// one is answered without writing again, so a relying party cannot flood the audit log and the
/// user's notices with one report. Bounded by what was handed out: a report beyond the values
/// served is refused before it gets here. Also the wrong codes per (device, relying party),
/// bounded by the devices with a secret times the relying parties. A restart forgets both (at
/// most one copy each, and [`MAX_WRONG_REPORTS`] guesses each, again).
#[derive(Debug, Default)]
pub struct Reports {
    seen: Mutex<std::collections::HashSet<(String, String, u64)>>,
    wrong: Mutex<HashMap<(String, String), u32>>,
}

impl Reports {
    /// True the first time `(device_id, rp_id, counter)` is seen.
    pub fn first(&self, device_id: &str, rp_id: &str, counter: u64) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((device_id.to_owned(), rp_id.to_owned(), counter))
    }

    /// Whether `rp_id` sent [`MAX_WRONG_REPORTS`] wrong codes for `device_id`: then every report
    /// of that pair is refused without a check.
    pub fn blocked(&self, device_id: &str, rp_id: &str) -> bool {
        self.wrong
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(device_id.to_owned(), rp_id.to_owned()))
            .is_some_and(|n| *n >= MAX_WRONG_REPORTS)
    }

    /// Counts a report of `rp_id` for `device_id` whose code was wrong.
    pub fn wrong(&self, device_id: &str, rp_id: &str) {
        let mut wrong = self.wrong.lock().unwrap_or_else(PoisonError::into_inner);
        let n = wrong
            .entry((device_id.to_owned(), rp_id.to_owned()))
            .or_default();
        *n = n.saturating_add(1);
    }

    /// Forgets a report whose recording failed, so its retry is recorded.
    pub fn forget(&self, device_id: &str, rp_id: &str, counter: u64) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(device_id.to_owned(), rp_id.to_owned(), counter));
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

    #[test]
    fn each_report_once_per_device_rp_and_counter() {
        let reports = Reports::default();
        assert!(reports.first("d", "rp", 3));
        assert!(!reports.first("d", "rp", 3));
        assert!(reports.first("d", "rp2", 3));
        assert!(reports.first("d", "rp", 2));
        reports.forget("d", "rp", 3);
        assert!(reports.first("d", "rp", 3));
    }

    #[test]
    fn wrong_reports_block_their_device_and_rp_only() {
        let reports = Reports::default();
        for _ in 0..MAX_WRONG_REPORTS - 1 {
            reports.wrong("d", "rp");
        }
        assert!(!reports.blocked("d", "rp"));
        reports.wrong("d", "rp");
        assert!(reports.blocked("d", "rp"));
        assert!(!reports.blocked("d", "rp2"));
        assert!(!reports.blocked("d2", "rp"));
    }
}
