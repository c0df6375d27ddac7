//! The offline-code cache of one user on this host: `<state_dir>/offline/<user>` (JSON, 0600
//! root, written atomically through [`crate::state`]). It holds, per device, Argon2id hashes of
//! the next values with their counters (never a value), the reports of codes used here that
//! pushauthd has not heard of yet, and the count of wrong codes typed since the last good one.
//! Every read-change-write runs under an exclusive `flock` of the user's lock file
//! (`.<name>.lock` beside it), so two logins cannot both use one value, and one user's slow
//! refill or Argon2id checks never hold up another user.

use std::collections::BTreeMap;
use std::fs::File;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use pushauth_proto::offline::OfflineResponse;
use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use crate::state::{Feature, StateDir, StateError};

/// Largest cache file read (64 devices × 100 values fit easily).
pub const MAX_CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// Wrong offline codes (over all logins) after which this host refuses offline logins for the
/// user until an online login or an administrator (`rm <state_dir>/offline/<user>`) resets it.
pub const MAX_FAILURES: u32 = 10;

/// Most Argon2id memory a cached value may ask for, in KiB (pushauthd hashes with 19 MiB).
pub const MAX_HASH_M_KIB: u32 = 64 * 1024;
/// Most Argon2id passes a cached value may ask for (pushauthd uses 2).
pub const MAX_HASH_T: u32 = 4;
/// Most Argon2id lanes a cached value may ask for (pushauthd uses 1).
pub const MAX_HASH_P: u32 = 4;

/// Whether `phc` is an Argon2id (v=19) PHC string whose costs stay within
/// [`MAX_HASH_M_KIB`], [`MAX_HASH_T`] and [`MAX_HASH_P`]: the costs come from the server, and
/// the host runs them for every code typed at the offline prompt, so a value asking for more is
/// neither stored nor run.
pub fn acceptable_hash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
        return false;
    }
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    params.m_cost() <= MAX_HASH_M_KIB
        && params.t_cost() <= MAX_HASH_T
        && params.p_cost() <= MAX_HASH_P
}

/// One cached value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedValue {
    /// The HOTP counter.
    pub counter: u64,
    /// Argon2id PHC string of the code.
    pub hash: String,
}

/// The values of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDevice {
    /// The device id.
    pub device_id: String,
    /// Digits of its codes.
    pub digits: u32,
    /// Values, ascending by counter.
    pub values: Vec<CachedValue>,
}

/// A code used here that pushauthd has not been told of. `Debug` leaves the code out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReport {
    /// The device.
    pub device_id: String,
    /// The counter used.
    pub counter: u64,
    /// When (RFC 3339 UTC).
    pub used_at: String,
    /// The code typed, the report's proof for pushauthd (already used up here; the file is
    /// root's, 0600). `None` in reports queued before reports carried it: those are dropped.
    #[serde(default)]
    pub code: Option<String>,
}

impl std::fmt::Debug for PendingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingReport")
            .field("device_id", &self.device_id)
            .field("counter", &self.counter)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Per device.
    #[serde(default)]
    pub devices: Vec<CachedDevice>,
    /// Reports to send on the next online login.
    #[serde(default)]
    pub pending: Vec<PendingReport>,
    /// Wrong codes since the last good one (or the last online login).
    #[serde(default)]
    pub failures: u32,
}

/// A match found by [`Cache::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The device.
    pub device_id: String,
    /// The counter of the value that matched.
    pub counter: u64,
}

impl Cache {
    /// Values held, over all devices.
    pub fn value_count(&self) -> usize {
        self.devices.iter().map(|d| d.values.len()).sum()
    }

    /// Device id -> highest counter held or used here and not yet reported (what `have` tells
    /// pushauthd, so that it sends only counters above both).
    pub fn have(&self) -> BTreeMap<String, u64> {
        let mut have: BTreeMap<String, u64> = self
            .devices
            .iter()
            .filter_map(|d| d.values.last().map(|v| (d.device_id.clone(), v.counter)))
            .collect();
        for report in &self.pending {
            let held = have.entry(report.device_id.clone()).or_default();
            *held = (*held).max(report.counter);
        }
        have
    }

    /// The highest counter of `device_id` used here whose report pushauthd has not
    /// acknowledged (0 for none): no value at or below it may be taken again.
    fn used_here(&self, device_id: &str) -> u64 {
        self.pending
            .iter()
            .filter(|r| r.device_id == device_id)
            .map(|r| r.counter)
            .max()
            .unwrap_or(0)
    }

    /// Merges pushauthd's answer: devices it no longer lists are dropped, values at or below
    /// a device's `last_used` or a counter used here and not yet reported (a server that has
    /// not heard of that use would send it again) are dropped, new values are added (one per
    /// counter). Returns the number of values added.
    pub fn merge(&mut self, answer: &OfflineResponse) -> usize {
        let mut added = 0;
        let mut devices = Vec::new();
        for fresh in &answer.devices {
            let floor = fresh.last_used.max(self.used_here(&fresh.device_id));
            let mut values: BTreeMap<u64, String> = self
                .devices
                .iter()
                .find(|d| d.device_id == fresh.device_id && d.digits == fresh.digits)
                .map(|d| {
                    d.values
                        .iter()
                        .map(|v| (v.counter, v.hash.clone()))
                        .collect()
                })
                .unwrap_or_default();
            values.retain(|counter, _| *counter > floor);
            for value in fresh
                .values
                .iter()
                .filter(|v| v.counter > floor && acceptable_hash(&v.hash))
            {
                if values.insert(value.counter, value.hash.clone()).is_none() {
                    added += 1;
                }
            }
            devices.push(CachedDevice {
                device_id: fresh.device_id.clone(),
                digits: fresh.digits,
                values: values
                    .into_iter()
                    .map(|(counter, hash)| CachedValue { counter, hash })
                    .collect(),
            });
        }
        self.devices = devices;
        added
    }

    /// The value `code` matches, checking each hash of a device with that many digits once.
    pub fn find(&self, code: &str) -> Option<Found> {
        let argon2 = Argon2::default();
        for device in &self.devices {
            if device.digits as usize != code.len() {
                continue;
            }
            for value in &device.values {
                if !acceptable_hash(&value.hash) {
                    continue;
                }
                let Ok(parsed) = PasswordHash::new(&value.hash) else {
                    continue;
                };
                // The crate verifies in constant time over the derived hash.
                if argon2.verify_password(code.as_bytes(), &parsed).is_ok() {
                    return Some(Found {
                        device_id: device.device_id.clone(),
                        counter: value.counter,
                    });
                }
            }
        }
        None
    }

    /// Uses up `found`: its value and every lower one of that device are deleted (HOTP moves
    /// forward: an older code must never work after a newer one), and the report is queued
    /// with `code` (the typed digits) as its proof.
    pub fn consume(&mut self, found: &Found, used_at: String, code: &str) {
        if let Some(device) = self
            .devices
            .iter_mut()
            .find(|d| d.device_id == found.device_id)
        {
            device.values.retain(|v| v.counter > found.counter);
        }
        self.pending.push(PendingReport {
            device_id: found.device_id.clone(),
            counter: found.counter,
            used_at,
            code: Some(code.to_owned()),
        });
    }
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The state directory or file was refused or could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The file is not a cache.
    #[error("offline cache of this user is malformed: {0}; remove it (it refills on the next online login)")]
    Malformed(String),
    /// The lock could not be taken.
    #[error("cannot lock the offline cache directory: {0}")]
    Lock(String),
}

/// Opens (creating it 0600) `user`'s lock file `<offline>/.<name>.lock`: one per user, so
/// that one user's refill (network calls) or Argon2id checks never hold up another user's
/// login. User files never start with a dot and temporary files end in `.tmp-<pid>`, so the
/// name is no one else's; a symlink in its place is refused (`O_NOFOLLOW`).
fn open_lock(state: &StateDir, user: &str) -> Result<File, CacheError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = state.feature_dir(Feature::Offline)?;
    let name = crate::state::user_file_name(user)?;
    let path = dir.join(format!(".{name}.lock"));
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| CacheError::Lock(format!("{}: {e}", path.display())))
}

/// The cache of one user, under that user's lock while it lives.
pub struct Locked<'a> {
    state: &'a StateDir,
    user: &'a str,
    _lock: File,
    /// What the file held (empty when there was none).
    pub cache: Cache,
    /// Whether there was a file.
    pub existed: bool,
}

impl<'a> Locked<'a> {
    /// Locks `user`'s cache (blocking until that user's other logins are done with it) and
    /// reads it.
    ///
    /// # Errors
    /// [`CacheError`].
    pub fn open(state: &'a StateDir, user: &'a str) -> Result<Locked<'a>, CacheError> {
        let lock = open_lock(state, user)?;
        flock(&lock, FlockOperation::LockExclusive).map_err(|e| CacheError::Lock(e.to_string()))?;
        let (cache, existed) = match state.read_user(Feature::Offline, user, MAX_CACHE_BYTES)? {
            None => (Cache::default(), false),
            Some(bytes) => (
                serde_json::from_slice(&bytes).map_err(|e| CacheError::Malformed(e.to_string()))?,
                true,
            ),
        };
        Ok(Locked {
            state,
            user,
            _lock: lock,
            cache,
            existed,
        })
    }

    /// As [`Locked::open`], but `Ok(None)` without taking the lock (and so without creating
    /// a lock file) when `user` has no cache here: the offline prompt, which anyone can reach
    /// with any user name, writes nothing for a user without one.
    ///
    /// # Errors
    /// [`CacheError`].
    pub fn open_existing(
        state: &'a StateDir,
        user: &'a str,
    ) -> Result<Option<Locked<'a>>, CacheError> {
        let path = state.user_path(Feature::Offline, user)?;
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CacheError::Lock(format!("{}: {e}", path.display()))),
        }
        Ok(Some(Locked::open(state, user)?))
    }

    /// Writes the cache back (atomically), still under the lock.
    ///
    /// # Errors
    /// [`CacheError`].
    pub fn save(&self) -> Result<(), CacheError> {
        let bytes =
            serde_json::to_vec(&self.cache).map_err(|e| CacheError::Malformed(e.to_string()))?;
        self.state.write_user(Feature::Offline, self.user, &bytes)?;
        Ok(())
    }
}
