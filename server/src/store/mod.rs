//! The storage interface. Handlers call these operations and never see SQL; `sqlite` and
//! `postgres` implement them.
//!
//! Every method blocks; async callers run them on the store's job threads. Each method is
//! atomic (its own transaction, or a savepoint inside a [`Store::group`]), and every challenge
//! transition is a compare-and-set on its current state.
//!
//! - [`records`]: the values the operations take and return;
//! - [`events`]: the audit rows both backends write, one constructor per event;
//! - [`error`]: [`StoreError`], which names no database library (each backend converts its own
//!   errors at its edge);
//! - [`grace`]: the values of the grace-window operations (issue 12);
//! - [`counts`]: the counts that bound relying parties and devices, shared by replicas;
//!   [`site_keys`]: the fingerprints of the keys every replica must share;
//! - [`sqlite`]: the SQLite backend; [`postgres`]: the PostgreSQL backend (issue 13);
//!   [`open`]: opening the one `[store]` names.

pub mod backup_codes;
pub mod counts;
pub mod error;
pub(crate) mod events;
pub mod grace;
pub mod notices;
pub mod offline;
pub mod open;
pub mod postgres;
pub mod records;
pub mod site_keys;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

use pushauth_proto::wire::AuditEvent;

pub use self::backup_codes::{BackupCodeFacts, StoredCode, UseCode};
pub use self::counts::CountStore;
pub use self::error::{DbError, DbErrorKind, StoreError, StoreResult};
pub use self::grace::{GraceFind, GraceLogin};
pub use self::notices::NoticeRecord;
pub use self::offline::{OfflineAdvance, OfflineSecretRecord, OfflineStore};
pub use self::records::*;
pub use self::site_keys::SiteKeyStore;
use crate::clock::Millis;
use crate::limits::{PushState, Refusal};

/// The push limits' decision on one more challenge, given the counts read in the creating
/// transaction ([`Store::create_challenge`]): `Err` refuses it.
pub type PushCheck = std::sync::Arc<dyn Fn(&PushState) -> Result<(), Refusal> + Send + Sync>;

/// A store that threads share.
pub type SharedStore = std::sync::Arc<dyn Store + Send + Sync>;

/// Everything pushauthd stores.
pub trait Store: OfflineStore + CountStore + SiteKeyStore {
    /// Runs `work` with a view of this store whose writes share one transaction, committed once
    /// when `work` returns: group commit, so that the operations of many concurrent requests
    /// cost one commit. Each operation still takes effect or fails on its own. `Err` means the
    /// commit failed and none of the group's writes were kept; callers must then report none of
    /// the group's results.
    fn group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()>;

    /// Runs `work` as one unit on the writer, so that a rule the service checks over what
    /// `work` reads still holds when `work` writes: no other writer (thread or process) comes
    /// between its reads and its writes, and its reads see the writes of the group it is in.
    /// If `work` returns `Err`, none of its writes are kept (the rest of a group is); that
    /// error is returned. Inside a [`Store::group`] it costs no extra commit.
    fn atomic(&self, work: &mut dyn FnMut(&dyn Store) -> StoreResult<()>) -> StoreResult<()>;

    /// A cheap query proving the database answers; with `commit`, also that a commit comes
    /// back (PostgreSQL: an empty transaction that gets an id, which waits for a synchronous
    /// standby as every login's writes do; SQLite: its commits are local, nothing more).
    fn health(&self, commit: bool) -> StoreResult<()>;

    // ---- users, enrollment, devices

    /// Records an enrollment token (by hash) for `user`, creating the user if new.
    fn create_enrollment(
        &self,
        user: &str,
        token_hash: &[u8; 32],
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()>;
    /// An enrollment token's record by the token's SHA-256; `None` if no token has it.
    fn get_enrollment(&self, token_hash: &[u8; 32]) -> StoreResult<Option<EnrollmentRecord>>;
    /// What an enrollment request for `user` with the approval challenge `approval` is
    /// decided on: the user's device counts and the approval as stored. Read it and record the
    /// link in one [`Store::atomic`] so that the decision still holds when the link is written.
    fn enroll_facts(&self, user: &str, approval: Option<&str>) -> StoreResult<EnrollFacts>;
    /// Records a relying party's link (creating the user if new) that the service allowed;
    /// with `new.approval` it uses the approval challenge up (one enrollment per approval: a
    /// second link naming it is refused by the store as a conflict). `approved_by` is the device
    /// that answered the approval. Audits `enrollment_created`.
    fn create_rp_enrollment(
        &self,
        new: &NewRpEnrollment,
        approved_by: Option<&str>,
    ) -> StoreResult<()>;
    /// Uses the token once (compare-and-set: unknown, used or expired tokens change nothing)
    /// and adds the device with how it was bound (`source`: the redeeming peer's address, and
    /// the link's `via` and `approved_by`); audits `device_enrolled`. Whether a relying party's
    /// link still holds is the service's to check first, in the same [`Store::atomic`].
    fn redeem_enrollment(
        &self,
        token_hash: &[u8; 32],
        device: &NewDevice,
        source: Option<&str>,
        now: Millis,
    ) -> StoreResult<Redeem>;
    /// All devices of a user, revoked ones included; `None` for a user never seen.
    fn user_devices(&self, user: &str) -> StoreResult<Option<Vec<DeviceRecord>>>;
    /// A device, revoked ones included; `None` if unknown.
    fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>>;
    /// A device as enrolled, to check a signed request's signature before anything is written.
    /// Its `id`, `user`, `alg` and `public_key` never change, so a backend may answer from a
    /// cache of active devices: the other fields (`name`, `last_seen_at`, `revoked_at`, …) may
    /// be stale. Whether the device may act is [`Store::spend_device_nonce`]'s answer, read
    /// afresh. `None` if unknown.
    fn device_key(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        self.get_device(id)
    }
    /// Spends a device request nonce, in one step with reading the device: an active device's
    /// nonce never seen before is remembered until `valid_until` (when the request's timestamp
    /// turns stale), `last_seen_at` becomes `now` (at most once a second; on PostgreSQL only
    /// when no other transaction holds the device's row), and the device comes back as it is
    /// ([`Spent::Fresh`]). A nonce seen before is [`Spent::Replayed`]; a revoked or unknown
    /// device stores nothing ([`Spent::Revoked`], [`Spent::Unknown`]).
    fn spend_device_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        now: Millis,
        valid_until: Millis,
    ) -> StoreResult<Spent>;
    /// Marks a device revoked (idempotent), drops it from its open challenges, and audits it
    /// with `actor` (`admin`, `cli`, `rp:<id>`, `self`); `None` if unknown.
    fn revoke_device(
        &self,
        id: &str,
        actor: &str,
        now: Millis,
    ) -> StoreResult<Option<DeviceRecord>>;

    // ---- relying parties

    /// Adds a relying party (its `created_at` and `revoked_at` are ignored); audits `rp_created`.
    fn create_relying_party(&self, rp: &RelyingPartyRecord, now: Millis) -> StoreResult<()>;
    /// A relying party, revoked ones included.
    fn get_relying_party(&self, id: &str) -> StoreResult<Option<RelyingPartyRecord>>;
    /// The relying party as [`Store::get_relying_party`] would give it, if the store holds it
    /// in memory now; never a read, so it may be called off the store's job threads. `None`
    /// on SQLite (every request reads it); on PostgreSQL, the replica's kept record while its
    /// listener hears of every change (`store::postgres::RelyingPartyCache`).
    fn kept_relying_party(&self, _id: &str) -> Option<RelyingPartyRecord> {
        None
    }
    /// Drops what this store keeps of relying party `id` in memory, once a change to it
    /// committed (a revoke or rotate made in an atomic unit, which has no hold on the memory):
    /// this replica refuses the old key at once, without waiting for its listener.
    fn forget_relying_party(&self, _id: &str) {}
    /// Every relying party, oldest first.
    fn list_relying_parties(&self) -> StoreResult<Vec<RelyingPartyRecord>>;
    /// Revokes a relying party (idempotent; audits `rp_revoked` the first time); `None` if
    /// unknown.
    fn revoke_relying_party(
        &self,
        id: &str,
        now: Millis,
    ) -> StoreResult<Option<RelyingPartyRecord>>;
    /// Replaces the key hash of an active relying party; audits `rp_rotated`. Returns the
    /// record after the change, or as it is when it was revoked (unchanged); `None` if unknown.
    fn rotate_relying_party(
        &self,
        id: &str,
        key_hash: &[u8; 32],
        now: Millis,
    ) -> StoreResult<Option<RelyingPartyRecord>>;

    /// The longest a server process of this store may still serve a request with a relying
    /// party's record as it was before a committed change (revoke, rotate): zero where every
    /// request reads the record (SQLite); on PostgreSQL, where each replica keeps the records
    /// its listener hears of every change to, the longest it uses one whose change notice it
    /// missed (`store::postgres::KEPT_FOR`, 1 s, and 50 ms for the timers). A caller that
    /// tells an admin "refused from now on" waits this long after the change returns, outside
    /// any store job (the CLI, the admin API); a long-poll under way checks the key again
    /// before it answers.
    fn relying_party_change_spread(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    // ---- challenges

    /// Checks user and devices, asks `check` whether the limits allow one more (with the counts
    /// read in the same transaction: per user, relying party and source, and per user; only
    /// challenges that were not approved, and none from before the user's last unlock; and the
    /// user's count of consecutive wrong codes), and
    /// inserts the challenge. Audits `challenge_created` or `rate_limited`.
    ///
    /// `check` is shared ([`PushCheck`]) because a backend may decide several concurrent
    /// creations in one transaction, on whichever thread runs it (PostgreSQL does).
    fn create_challenge(&self, new: &NewChallenge, check: PushCheck) -> StoreResult<Create>;
    /// Reads a challenge, first moving it to `expired` if it is due (audited). The flag says
    /// whether this read expired it.
    fn get_challenge(&self, id: &str, now: Millis) -> StoreResult<Option<(ChallengeRecord, bool)>>;
    /// A challenge's terms, to check a device's answer before [`Store::answer`] decides: the
    /// fields fixed at creation (id, user, relying party, context and its digest, nonce, code,
    /// devices, times) are exact, but a backend may answer from a cache of challenges it
    /// created, so the state and the answer's fields may be stale. As
    /// [`Store::get_challenge`] otherwise.
    fn challenge_terms(
        &self,
        id: &str,
        now: Millis,
    ) -> StoreResult<Option<(ChallengeRecord, bool)>> {
        self.get_challenge(id, now)
    }
    /// `pending` → `acknowledged` by a device.
    fn acknowledge(&self, id: &str, now: Millis) -> StoreResult<Cas>;
    /// Open → the answer's terminal state, applying its [`CodeTally`] to the user's count of
    /// wrong codes; audits `challenge_answered` (and `user_locked` for a report, or for the
    /// mismatch that reaches the count's limit).
    fn answer(&self, id: &str, answer: &AnswerRecord, now: Millis) -> StoreResult<Cas>;
    /// Spends a device request's `nonce` on its own ([`Store::spend_device_nonce`], checked
    /// with [`Spent::by_signer`]): the device as it is now, or why the nonce was refused.
    fn spend_request_nonce(
        &self,
        nonce: &RequestNonce,
        now: Millis,
    ) -> StoreResult<Result<Box<DeviceRecord>, NonceRefused>> {
        Ok(self
            .spend_device_nonce(&nonce.device_id, &nonce.nonce, now, nonce.valid_until)?
            .by_signer(nonce))
    }
    /// Spends a device request's `nonce` ([`Store::spend_request_nonce`]) and, when it was
    /// spent, runs [`Store::answer`]; a refused nonce does nothing else. PostgreSQL does both
    /// in the answer's compare-and-set statement.
    fn answer_spending(
        &self,
        nonce: &RequestNonce,
        id: &str,
        answer: &AnswerRecord,
        now: Millis,
    ) -> StoreResult<Result<Cas, NonceRefused>> {
        Ok(match self.spend_request_nonce(nonce, now)? {
            Ok(_) => Ok(self.answer(id, answer, now)?),
            Err(refused) => Err(refused),
        })
    }
    /// Spends a device request's `nonce` ([`Store::spend_request_nonce`]) and, when it was
    /// spent, runs [`Store::acknowledge`]; a refused nonce does nothing else. PostgreSQL does
    /// both in one statement when the challenge is pending (session 23: the phone app
    /// acknowledges every challenge before it answers).
    fn acknowledge_spending(
        &self,
        nonce: &RequestNonce,
        id: &str,
        now: Millis,
    ) -> StoreResult<Result<Cas, NonceRefused>> {
        Ok(match self.spend_request_nonce(nonce, now)? {
            Ok(_) => Ok(self.acknowledge(id, now)?),
            Err(refused) => Err(refused),
        })
    }
    /// Open → `cancelled`; audits `challenge_cancelled`. With `rp_key` (the stored hash of the
    /// key the challenge's relying party authenticated with), only while, inside the
    /// cancelling transaction, that relying party still has that key and is not revoked
    /// ([`Cas::KeyRevoked`] otherwise), as [`NewChallenge::rp_key`].
    fn cancel(&self, id: &str, rp_key: Option<&[u8; 32]>, now: Millis) -> StoreResult<Cas>;
    /// Lifts every report lock-out of `user`, resets their push counters (challenges created
    /// before `now` stop counting) and their count of wrong codes; audits `user_unlocked`
    /// naming `by`. `false` for a user never
    /// seen (nothing changes).
    fn unlock_user(&self, user: &str, by: &str, now: Millis) -> StoreResult<bool>;
    /// The open, unexpired challenges sent to a device, oldest first, each with the name of the
    /// relying party that asked (read with it; `None` when no relying party has its id, as
    /// for pushes of the admin), after expiring its due ones (returned too).
    fn device_challenges(&self, device_id: &str, now: Millis) -> StoreResult<DeviceChallenges>;
    /// Spends a device request's `nonce` (as [`Store::answer_spending`] does) and, when it was
    /// spent, reads [`Store::device_challenges`] of its device; a refused nonce reads nothing.
    /// PostgreSQL does both in one statement.
    fn device_challenges_spending(
        &self,
        nonce: &RequestNonce,
        now: Millis,
    ) -> StoreResult<Result<DeviceChallenges, NonceRefused>> {
        Ok(match self.spend_request_nonce(nonce, now)? {
            Ok(_) => Ok(self.device_challenges(&nonce.device_id, now)?),
            Err(refused) => Err(refused),
        })
    }
    /// Expires up to `max` due challenges and forgets up to `max` nonces (and the user locks)
    /// that no longer matter. Bounded so that a backlog is worked off in steps that other
    /// operations can run between.
    fn sweep(&self, now: Millis, max: usize) -> StoreResult<Swept>;
    /// Deletes up to `max` finished challenges whose expiry is before `challenges_before`, and
    /// up to `max` audit events from before `audit_before` (oldest first); `None` keeps them.
    /// Open challenges are never deleted.
    fn prune(
        &self,
        challenges_before: Option<Millis>,
        audit_before: Option<Millis>,
        max: usize,
    ) -> StoreResult<Pruned>;
    /// Open challenges (for the metrics gauge).
    fn open_challenges(&self, now: Millis) -> StoreResult<u64>;

    // ---- audit

    /// Writes an audit event at `now`.
    fn audit(&self, entry: &AuditEntry, now: Millis) -> StoreResult<()>;
    /// [`Store::audit`], returning the new event's id (for [`Store::set_audit_count`]).
    fn audit_returning_id(&self, entry: &AuditEntry, now: Millis) -> StoreResult<i64>;
    /// Sets how many events an aggregated audit event stands for.
    fn set_audit_count(&self, id: i64, count: u64) -> StoreResult<()>;
    /// Bytes the database's live pages take (free pages, which new data reuses, not counted).
    fn used_bytes(&self) -> StoreResult<u64>;
    /// Up to `limit` audit events, only those of `user` when given, newest first.
    fn list_audit(&self, limit: u32, user: Option<&str>) -> StoreResult<Vec<AuditEvent>>;

    // ---- Web Push subscriptions

    /// Sets the device's one subscription, replacing any; audits `push_subscription_set` with
    /// `detail` (which names the push service's origin, never the endpoint's path or the keys).
    /// `true` when it replaced one.
    fn set_push_subscription(
        &self,
        sub: &PushSubscriptionRecord,
        user: &str,
        detail: &str,
    ) -> StoreResult<bool>;
    /// Deletes the device's subscription (only if its endpoint is `endpoint`, when given, so a
    /// subscription that replaced a dead one is kept); audits `push_subscription_removed` with
    /// `detail`. `false` when there was none (nothing audited).
    fn delete_push_subscription(
        &self,
        device_id: &str,
        endpoint: Option<&str>,
        detail: &str,
        now: Millis,
    ) -> StoreResult<bool>;
    /// The subscriptions of those of `device_ids` that are active.
    fn push_subscriptions(&self, device_ids: &[String])
        -> StoreResult<Vec<PushSubscriptionRecord>>;

    // ---- grace windows (issue 12)

    /// Lets `new` in without a push if a window is open: an `approved` challenge of the same
    /// relying party and user with grace key `find.key`, answered at or after `find.since` by a
    /// device that is still active, after the user's last [`Store::end_grace`] and with no
    /// report of the user since, and `check` (the push limits, so a locked user gets no grace)
    /// allows it. Then stores `new` as `approved` naming that approval and audits `grace_login`;
    /// `None` (nothing written) otherwise.
    fn grace_login(
        &self,
        new: &NewChallenge,
        find: &GraceFind,
        check: &dyn Fn(&PushState) -> Result<(), Refusal>,
    ) -> StoreResult<Option<GraceLogin>>;
    /// Records the grace key of a challenge just created, so that its approval opens a window.
    fn set_grace_key(&self, challenge_id: &str, key: &[u8; 32]) -> StoreResult<()>;
    /// Ends every grace window of `user` at `now` (approvals from before open none); audits
    /// `grace_ended` naming `by` and the device that asked, if any. `false` for a user never
    /// seen (nothing changes).
    fn end_grace(
        &self,
        user: &str,
        by: &str,
        device_id: Option<&str>,
        now: Millis,
    ) -> StoreResult<bool>;

    // ---- device notices (issue 12)

    /// Stores a notice for `notice.user`'s devices and forgets theirs from before `keep_since`.
    fn add_notice(&self, notice: &NoticeRecord, keep_since: Millis) -> StoreResult<()>;
    /// The stored notices of `user` from `since` on, newest first (at most 200).
    fn user_notices(&self, user: &str, since: Millis) -> StoreResult<Vec<NoticeRecord>>;

    // ---- backup codes (issue 12)

    /// What an attempt with a backup code of `user` whose tag is `tag` is decided on.
    fn backup_code_facts(&self, user: &str, tag: &str) -> StoreResult<BackupCodeFacts>;
    /// Voids the user's codes and stores `codes` (all or nothing); `false` for a user never
    /// seen (nothing written).
    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[StoredCode],
        now: Millis,
    ) -> StoreResult<bool>;
    /// Uses the code whose row still holds `used_hash` (compare-and-set): its row takes
    /// `replacement` (same tag) and the user's count of wrong codes is cleared.
    fn use_backup_code(
        &self,
        user: &str,
        used_hash: &str,
        replacement: &StoredCode,
        now: Millis,
    ) -> StoreResult<UseCode>;
    /// Counts one more consecutive wrong backup code of a known `user`; returns the count.
    fn backup_code_failed(&self, user: &str) -> StoreResult<u32>;
    /// Marks the `issue_backup_codes` approval `challenge_id` used; `false` if it was before.
    fn use_backup_approval(&self, challenge_id: &str, user: &str, now: Millis)
        -> StoreResult<bool>;
}
