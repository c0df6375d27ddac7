//! Relying parties a replica keeps in memory while its listener hears of their changes.
//!
//! Every relying-party request looked its caller up in the database: two statements per push
//! login (the start and the wait). Unlike a device's key or a challenge's terms ([`Kept`]),
//! a relying party's key hash, scope and revocation do change, so an entry is kept only while
//! something tells the replica of every change:
//!
//! - each change (create, revoke, rotate) notifies [`RELYING_PARTY_CHANNEL`] in its
//!   transaction, and the replica that made it forgets the entry once it committed;
//! - the replica's listener (`wake.rs`) forgets an entry when it hears of a change, and calls
//!   [`RelyingPartyCache::listening`] once its `LISTEN` holds and
//!   [`RelyingPartyCache::not_listening`] when its connection ends: while nobody listens,
//!   nothing is kept (a change may go unheard), and every (re)connect starts empty;
//! - a read that began before a change was heard is not kept (a generation number counts the
//!   changes heard), so an entry read before a revocation committed cannot outlive it;
//! - an entry is used for [`KEPT_FOR`] at most, counted from when its read began: should the
//!   listener's connection die without a word (found by its probe within seconds), a change
//!   still holds on every replica [`KEPT_FOR`] after its commit.
//!
//! So a relying party revoked or rotated on any replica is refused on every other within the
//! NOTIFY's delivery (milliseconds), and [`KEPT_FOR`] after the commit at the latest: the CLI
//! and the admin API wait that long before they say the old key is refused
//! ([`Store::relying_party_change_spread`]). Unknown ids are never kept: a guess costs a read,
//! as before.
//!
//! [`Store::relying_party_change_spread`]: crate::store::Store::relying_party_change_spread
//!
//! [`Kept`]: super::kept::Kept

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::store::RelyingPartyRecord;

/// The channel of relying-party changes; the payload is the relying party's id.
pub const RELYING_PARTY_CHANNEL: &str = "pushauth_relying_party";

/// How long an entry is used at most, from when its read began (see the module notes). Short,
/// since a change's caller waits this long; a relying party's record is read once a second
/// at most for it, against a statement per request without the cache.
pub const KEPT_FOR: Duration = Duration::from_secs(1);

/// Entries kept before the cache starts over (a few hundred bytes each).
const MAX_ENTRIES: usize = 1024;

/// A store's relying parties while its listener hears of their changes (see the module
/// notes). Cheap to clone: every clone is the same cache.
#[derive(Clone, Default)]
pub struct RelyingPartyCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// By id, with when the read of each began.
    entries: HashMap<String, (RelyingPartyRecord, Instant)>,
    /// Changes heard so far (and every start or end of listening).
    generation: u64,
    /// Whether a listener hears of every change now.
    listening: bool,
}

/// What a store shares with its replica's listener (`wake.rs`): the relying parties the
/// listener keeps true, the server processes whose notices are this replica's own, and the
/// replica's id.
/// Cheap to clone: clones share both.
#[derive(Clone, Debug, Default)]
pub struct ListenerParts {
    /// [`RelyingPartyCache`].
    pub relying_parties: RelyingPartyCache,
    /// [`OwnBackends`](super::OwnBackends).
    pub own_backends: super::OwnBackends,
    /// The replica's id, which its listener registers ([`register`](super::register)) and its
    /// store's statements pass, so that they notify only when another replica listens.
    pub replica: super::ReplicaId,
}

/// What a read must show to be kept: the generation when it began, and when that was.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64, Instant);

impl std::fmt::Debug for RelyingPartyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("RelyingPartyCache")
            .field("entries", &inner.entries.len())
            .field("listening", &inner.listening)
            .finish()
    }
}

impl RelyingPartyCache {
    /// The listener's `LISTEN` holds: from now on every change is heard. Starts empty, since
    /// changes made while nobody listened were not.
    pub fn listening(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
        inner.listening = true;
    }

    /// The listener's connection ended: nothing is kept until it listens again.
    pub fn not_listening(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
        inner.listening = false;
    }

    /// Relying party `id` changed (heard from the listener, or written here).
    pub fn changed(&self, id: &str) {
        let mut inner = self.lock();
        inner.entries.remove(id);
        inner.generation += 1;
    }

    /// Whether it keeps entries now (its listener listens).
    pub fn is_listening(&self) -> bool {
        self.lock().listening
    }

    /// The entry for `id`, if one is kept and young enough.
    pub(super) fn get(&self, id: &str) -> Option<RelyingPartyRecord> {
        let inner = self.lock();
        if !inner.listening {
            return None;
        }
        inner
            .entries
            .get(id)
            .filter(|(_, read)| read.elapsed() < KEPT_FOR)
            .map(|(rp, _)| rp.clone())
    }

    /// Taken before a read whose result may be kept.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation, Instant::now())
    }

    /// Keeps `rp`, read after `ticket` was taken, unless a change was heard since (or nobody
    /// listens).
    pub(super) fn keep(&self, ticket: Ticket, rp: &RelyingPartyRecord) {
        let mut inner = self.lock();
        if !inner.listening || inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(rp.id.clone(), (rp.clone(), ticket.1));
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::RelyingPartyCache;
    use crate::store::RelyingPartyRecord;

    fn rp(id: &str) -> RelyingPartyRecord {
        RelyingPartyRecord {
            id: id.into(),
            name: id.into(),
            key_hash: [7; 32],
            created_at: 1,
            users: vec!["*".into()],
            enroll: false,
            bootstrap: false,
            revoked_at: None,
        }
    }

    #[test]
    fn nothing_is_kept_while_nobody_listens() {
        let cache = RelyingPartyCache::default();
        let ticket = cache.ticket();
        cache.keep(ticket, &rp("sshd"));
        assert!(cache.get("sshd").is_none());

        cache.listening();
        let ticket = cache.ticket();
        cache.keep(ticket, &rp("sshd"));
        assert_eq!(cache.get("sshd").unwrap().id, "sshd");

        // The connection ends: what was kept goes, and nothing new is kept.
        cache.not_listening();
        assert!(cache.get("sshd").is_none());
        let ticket = cache.ticket();
        cache.keep(ticket, &rp("sshd"));
        assert!(cache.get("sshd").is_none());
    }

    #[test]
    fn a_read_that_began_before_a_change_was_heard_is_not_kept() {
        let cache = RelyingPartyCache::default();
        cache.listening();
        let before = cache.ticket();
        // The revocation is heard while the read of the old row is under way.
        cache.changed("sshd");
        cache.keep(before, &rp("sshd"));
        assert!(cache.get("sshd").is_none());
        // A read after it is kept, and the next change drops it.
        let after = cache.ticket();
        cache.keep(after, &rp("sshd"));
        assert!(cache.get("sshd").is_some());
        cache.changed("sshd");
        assert!(cache.get("sshd").is_none());
    }

    #[test]
    fn a_reconnect_starts_empty_and_refuses_reads_from_before_it() {
        let cache = RelyingPartyCache::default();
        cache.listening();
        let ticket = cache.ticket();
        cache.keep(ticket, &rp("a"));
        let old = cache.ticket();
        cache.not_listening();
        cache.listening();
        assert!(cache.get("a").is_none());
        cache.keep(old, &rp("a"));
        assert!(cache.get("a").is_none());
    }

    /// A read that began before a change, and whose notice never came (the listener's
    /// connection died without a word), is used until [`KEPT_FOR`](super::KEPT_FOR) after the
    /// read began, however late it was kept: the change's caller, which waits that long after
    /// its commit, never returns while the old record is still in use.
    #[test]
    fn an_entry_is_used_until_kept_for_after_its_read_began_not_after_it_was_kept() {
        let cache = RelyingPartyCache::default();
        cache.listening();
        let ticket = cache.ticket();
        std::thread::sleep(super::KEPT_FOR);
        cache.keep(ticket, &rp("sshd"));
        assert!(cache.get("sshd").is_none());
        let ticket = cache.ticket();
        cache.keep(ticket, &rp("sshd"));
        assert!(cache.get("sshd").is_some());
    }
}
