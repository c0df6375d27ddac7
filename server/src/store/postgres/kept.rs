//! Rows a replica keeps in memory because the fields it reads from them never change once
//! written (a device's key, a challenge's terms): an entry cannot go stale where it is used,
//! and what may change (a revocation, a challenge's state) is always read from the database
//! by the operation that decides. Each saves a round trip on the login path.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Up to `max` values by id; full, it starts over (no eviction order to keep).
#[derive(Debug)]
pub(super) struct Kept<V> {
    map: Mutex<HashMap<String, V>>,
    max: usize,
}

impl<V: Clone> Kept<V> {
    /// An empty cache of at most `max` entries.
    pub(super) fn new(max: usize) -> Kept<V> {
        Kept {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The value kept for `id`.
    pub(super) fn get(&self, id: &str) -> Option<V> {
        self.lock().get(id).cloned()
    }

    /// Keeps `value` for `id`.
    pub(super) fn keep(&self, id: &str, value: V) {
        let mut map = self.lock();
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(id.to_owned(), value);
    }

    /// Drops what is kept for `id`.
    pub(super) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, V>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Kept;

    #[test]
    fn a_full_cache_starts_over_and_forgets_on_request() {
        let kept = Kept::new(2);
        kept.keep("a", 1);
        kept.keep("b", 2);
        assert_eq!((kept.get("a"), kept.get("b")), (Some(1), Some(2)));
        kept.keep("c", 3);
        assert_eq!((kept.get("a"), kept.get("c")), (None, Some(3)));
        kept.forget("c");
        assert_eq!(kept.get("c"), None);
    }
}
