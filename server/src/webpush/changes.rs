//! How often a device may change its push subscription.
//!
//! Why: every change is written to the store with an audit row, and the store has a size bound
//! above which new challenges are refused for everyone (`[retention] max_db_mb`). Without a
//! bound, one enrolled device re-registering in a loop could fill the store and so stop every
//! user's logins. Browsers change a subscription rarely (a new one after the old expires or
//! the app is reinstalled), so a few changes a day per device is generous.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::Millis;

/// Changes one device may make per [`WINDOW_MS`].
pub const MAX_CHANGES: u32 = 24;
/// The window changes are counted in: a day.
pub const WINDOW_MS: Millis = 86_400_000;
/// Devices tracked at once; beyond that, windows that have ended are dropped first, and if
/// none has, a new device is refused until one ends (memory stays bounded).
pub const MAX_TRACKED: usize = 100_000;

/// Per-device counts of subscription changes in the current window (in memory: a restart
/// starts them again, which bounds a loop all the same).
#[derive(Debug, Default)]
pub struct ChangeLimiter {
    windows: Mutex<HashMap<String, (Millis, u32)>>,
}

impl ChangeLimiter {
    /// Counts one change of `device` at `now`; `false` when the device has made
    /// [`MAX_CHANGES`] in its current window (then nothing is counted).
    pub fn allow(&self, device: &str, now: Millis) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(device) {
            windows.retain(|_, (started, _)| now.saturating_sub(*started) < WINDOW_MS);
            if windows.len() >= MAX_TRACKED {
                return false;
            }
        }
        let entry = windows.entry(device.to_owned()).or_insert((now, 0));
        if now.saturating_sub(entry.0) >= WINDOW_MS {
            *entry = (now, 0);
        }
        if entry.1 >= MAX_CHANGES {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_gets_max_changes_a_window_and_others_are_apart() {
        let limiter = ChangeLimiter::default();
        for _ in 0..MAX_CHANGES {
            assert!(limiter.allow("a", 1_000));
        }
        assert!(!limiter.allow("a", 2_000));
        assert!(limiter.allow("b", 2_000));
        assert!(!limiter.allow("a", 1_000 + WINDOW_MS - 1));
        assert!(limiter.allow("a", 1_000 + WINDOW_MS));
    }
}
