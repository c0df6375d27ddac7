//! Bounds on what traffic can make the server store: failed device signatures, and the
//! refusals a relying party can cause at will (wrong backup codes, refused offline reports and
//! fetches), are aggregated into at most one audit row per subject and source a minute (with a
//! count), never a row per request, and no such row is written while the database is over its
//! size bound; above that bound new challenges are refused too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::clock::{self, Millis};
use crate::store::{AuditEntry, DeviceRecord, Store, StoreResult};

/// How long one aggregated audit row collects failures.
pub const FAILURE_WINDOW_MS: Millis = 60_000;
/// Keys (device and address) tracked at once; beyond that, failures of a device from further
/// addresses share one key, so a flood from many addresses cannot grow memory.
pub const MAX_FAILURE_KEYS: usize = 10_000;
/// The address recorded when [`MAX_FAILURE_KEYS`] is reached.
pub const MANY_SOURCES: &str = "(many addresses)";
/// Addresses tracked apart for one device at once; failures of that device from further
/// addresses share the key [`MANY_SOURCES`], so a flood from many addresses naming one device
/// writes a handful of rows a minute, not one per address.
pub const MAX_SOURCES_PER_DEVICE: u32 = 16;

#[derive(Debug)]
struct Window {
    started: Millis,
    count: u64,
    /// The count the audit row holds.
    written: u64,
    audit_id: Option<i64>,
}

/// Failed signatures by (device id, client address), and other refusals by (subject, source),
/// each collected for a minute into one audit row (`signature_rejected`, `backup_code_refused`,
/// …) whose `count` says how many there were. With a [`SizeBound`], no row is written while the
/// store is over it (the refusals are still counted and logged).
#[derive(Debug, Default)]
pub struct SignatureFailures {
    windows: Mutex<Windows>,
    bound: Option<Arc<SizeBound>>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<(String, String), Window>,
    /// Keys of `by_key` per device, without the [`MANY_SOURCES`] one.
    per_device: HashMap<String, u32>,
}

impl Windows {
    fn len(&self) -> usize {
        self.by_key.len()
    }
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// A count an audit row must be brought up to.
pub type CountUpdate = (i64, u64);

impl SignatureFailures {
    /// Counts that write no row while the store is over `bound`.
    pub fn with_bound(bound: Arc<SizeBound>) -> Self {
        SignatureFailures {
            windows: Mutex::default(),
            bound: Some(bound),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one failure; `true` when it opens a new window (then the caller writes its row
    /// and calls [`SignatureFailures::written`]). A window that ended is replaced; its final
    /// count, if the row does not hold it yet, is returned to be written.
    fn count(&self, subject: &str, source: &str, now: Millis) -> (bool, Option<CountUpdate>) {
        let mut guard = self.windows();
        let windows = &mut *guard;
        let mut key = (subject.to_owned(), source.to_owned());
        if !windows.by_key.contains_key(&key) {
            let of_device = windows.per_device.get(subject).copied().unwrap_or(0);
            if windows.len() >= MAX_FAILURE_KEYS || of_device >= MAX_SOURCES_PER_DEVICE {
                key.1 = MANY_SOURCES.to_owned();
            } else {
                windows.per_device.insert(subject.to_owned(), of_device + 1);
            }
        }
        let windows = &mut windows.by_key;
        let mut ended = None;
        if let Some(w) = windows.get_mut(&key) {
            if now.saturating_sub(w.started) < FAILURE_WINDOW_MS {
                w.count += 1;
                return (false, None);
            }
            if let (Some(id), true) = (w.audit_id, w.count > w.written) {
                ended = Some((id, w.count));
            }
        }
        windows.insert(
            key,
            Window {
                started: now,
                count: 1,
                written: 1,
                audit_id: None,
            },
        );
        (true, ended)
    }

    fn written(&self, subject: &str, source: &str, audit_id: i64) {
        let mut guard = self.windows();
        let windows = &mut guard.by_key;
        let key = (subject.to_owned(), source.to_owned());
        let key = if windows.contains_key(&key) {
            key
        } else {
            (subject.to_owned(), MANY_SOURCES.to_owned())
        };
        if let Some(w) = windows.get_mut(&key) {
            w.audit_id = Some(audit_id);
        }
    }

    /// The counts audit rows do not hold yet (marked as written), and forgets windows that
    /// ended at `now`. The sweeper writes them.
    pub fn pending_counts(&self, now: Millis) -> Vec<CountUpdate> {
        let mut guard = self.windows();
        let Windows { by_key, per_device } = &mut *guard;
        let mut updates = Vec::new();
        by_key.retain(|(device, source), w| {
            if let (Some(id), true) = (w.audit_id, w.count > w.written) {
                updates.push((id, w.count));
                w.written = w.count;
            }
            let keep = now.saturating_sub(w.started) < FAILURE_WINDOW_MS;
            if !keep && source != MANY_SOURCES {
                if let Some(n) = per_device.get_mut(device) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        per_device.remove(device);
                    }
                }
            }
            keep
        });
        updates
    }

    /// Records a signature that did not verify (runs inside a store job; best effort: the
    /// refusal stands either way). Writes an audit row only for the first failure of a
    /// device from an address in a minute.
    pub fn record(
        &self,
        store: &dyn Store,
        device: &DeviceRecord,
        source: &str,
        challenge_id: Option<String>,
        detail: String,
    ) {
        let entry = AuditEntry {
            kind: "signature_rejected",
            user: Some(device.user.clone()),
            device_id: Some(device.id.clone()),
            challenge_id,
            detail: Some(format!("{detail} from {source}")),
        };
        self.record_entry(store, &device.id, source, entry);
    }

    /// Records a refusal that traffic can repeat at will (runs inside a store job, in the
    /// unit of the refusal; best effort: the refusal stands either way). Only the first one
    /// of `subject` (say `backup_code_refused:alice`) from `source` (say `rp:<id>`) in a
    /// minute writes `entry`; the others raise its `count`.
    pub fn record_entry(&self, store: &dyn Store, subject: &str, source: &str, entry: AuditEntry) {
        let now = clock::now_ms();
        let (new, ended) = self.count(subject, source, now);
        if let Some((id, count)) = ended {
            if let Err(e) = store.set_audit_count(id, count) {
                tracing::error!(error = %e, "cannot record a failure count");
            }
        }
        if !new {
            return;
        }
        tracing::warn!(kind = entry.kind, %subject, %source, detail = entry.detail.as_deref().unwrap_or(""), "refused (further ones of this kind from this source are counted for a minute)");
        // Over the size bound the row is not written: the refusal is in the log line above.
        match &self.bound {
            Some(bound) if !matches!(bound.over(store, now), Ok(false)) => return,
            _ => {}
        }
        match store.audit_returning_id(&entry, now) {
            Ok(id) => self.written(subject, source, id),
            Err(e) => tracing::error!(error = %e, kind = entry.kind, "cannot audit a refusal"),
        }
    }
}

/// The database size bound (`[retention] max_db_mb`), checked at most once a second.
#[derive(Debug)]
pub struct SizeBound {
    max_bytes: Option<u64>,
    checked_at: AtomicI64,
    full: AtomicBool,
    logged_at: AtomicI64,
}

/// How often the size is read again.
const SIZE_CHECK_MS: Millis = 1_000;

impl SizeBound {
    /// A bound of `max_bytes`; `None` for none.
    pub fn new(max_bytes: Option<u64>) -> Self {
        SizeBound {
            max_bytes,
            checked_at: AtomicI64::new(i64::MIN),
            full: AtomicBool::new(false),
            logged_at: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether the store is over the bound (runs inside a store job). Reads the size again
    /// when the last reading is more than a second old; logs a refusal once a minute.
    pub fn over(&self, store: &dyn Store, now: Millis) -> StoreResult<bool> {
        let Some(max) = self.max_bytes else {
            return Ok(false);
        };
        let checked = self.checked_at.load(Ordering::Relaxed);
        if now.saturating_sub(checked) >= SIZE_CHECK_MS {
            let used = store.used_bytes()?;
            self.full.store(used > max, Ordering::Relaxed);
            self.checked_at.store(now, Ordering::Relaxed);
        }
        let full = self.full.load(Ordering::Relaxed);
        if full {
            let logged = self.logged_at.load(Ordering::Relaxed);
            if now.saturating_sub(logged) >= 60_000
                && self
                    .logged_at
                    .compare_exchange(logged, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::error!(
                    max_bytes = max,
                    "the database reached [retention] max_db_mb: new challenges are refused \
                     (storage_full) until retention deletes old records or the bound is raised \
                     (logged once a minute)"
                );
            }
        }
        Ok(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue9_item12_failures_are_counted_per_minute_and_key() {
        let failures = SignatureFailures::default();
        assert_eq!(failures.count("d1", "a", 0), (true, None));
        failures.written("d1", "a", 7);
        for t in 1..100 {
            assert_eq!(failures.count("d1", "a", t), (false, None));
        }
        assert_eq!(failures.count("d1", "b", 100), (true, None));
        assert_eq!(failures.count("d2", "a", 100), (true, None));
        assert_eq!(failures.pending_counts(200), vec![(7, 100)]);
        assert!(failures.pending_counts(300).is_empty(), "written once");
        failures.count("d1", "a", 400);
        // The window ended: the final count comes back with the first failure of the next.
        assert_eq!(failures.count("d1", "a", 60_000), (true, Some((7, 101))));
        // Windows that ended are forgotten.
        failures.pending_counts(200_000);
        assert!(failures.windows().is_empty());
    }

    #[test]
    fn many_addresses_naming_one_device_share_one_key_beyond_a_few() {
        let failures = SignatureFailures::default();
        let mut new_keys = 0;
        for n in 0..1000 {
            if failures.count("d1", &format!("2001:db8:{n:x}::/64"), 10).0 {
                new_keys += 1;
            }
        }
        assert_eq!(new_keys, MAX_SOURCES_PER_DEVICE + 1);
        // Another device is counted on its own.
        assert!(failures.count("d2", "192.0.2.1", 10).0);
        // Once the windows end, the device's places are free again.
        failures.pending_counts(10 + FAILURE_WINDOW_MS);
        assert!(failures.windows().per_device.is_empty());
        assert!(failures.count("d1", "192.0.2.7", 10 + FAILURE_WINDOW_MS).0);
    }
}
