//! The storage interface. Handlers call these operations and never see SQL; `sqlite` implements
//! them today, a PostgreSQL backend can follow behind the same trait.
//!
//! Every method blocks; async callers run them on the store's job threads. Each method is
//! atomic (its own transaction, or a savepoint inside a [`Store::group`]), and every challenge
//! transition is a compare-and-set on its current state.

pub mod sqlite;

use pushauth_proto::wire::AuditEvent;
use pushauth_proto::{ChallengeState, Context, Decision, Reason};
use thiserror::Error;

use crate::clock::Millis;
use crate::limits::{PushState, Refusal};

/// A storage failure (never a "not found": those are values).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot use data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database schema version {0} is newer than this pushauthd understands")]
    TooNew(i64),
    #[error("cannot start a store thread: {0}")]
    Thread(#[source] std::io::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: String,
    pub user: String,
    pub name: String,
    pub alg: String,
    /// base64url raw public key.
    pub public_key: String,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// Peer address (`ip:port`) of the request that redeemed the enrollment link.
    pub source: Option<String>,
    /// Who issued the enrollment link: `admin` or `rp:<id>`.
    pub via: Option<String>,
    /// The device whose approved `add_device` challenge allowed this enrollment.
    pub approved_by: Option<String>,
}

impl DeviceRecord {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A device about to be enrolled.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: String,
    pub name: String,
    pub alg: String,
    pub public_key: String,
}

/// An enrollment token's record (looked up by the token's SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRecord {
    pub user: String,
    pub expires_at: Millis,
    pub used: bool,
}

/// What redeeming an enrollment token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    Enrolled(Box<DeviceRecord>),
    Unknown,
    Used,
    Expired,
    /// A relying party's link whose grounds no longer hold at redemption: the relying party
    /// was revoked or lost the right, the user got a device since a bootstrap link was issued,
    /// or the device that approved it was revoked since.
    Refused(crate::enrollment::Refusal),
}

/// A relying party: its API key is stored as SHA-256 of the secret part only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingPartyRecord {
    pub id: String,
    pub name: String,
    pub key_hash: [u8; 32],
    /// User patterns it may act for (see [`crate::rights`]).
    pub users: Vec<String>,
    /// May request enrollment links and revoke devices of users in scope.
    pub enroll: bool,
    /// May enroll a user who has no active device.
    pub bootstrap: bool,
    pub created_at: Millis,
    /// Set once revoked: its key is refused from then on.
    pub revoked_at: Option<Millis>,
}

/// An enrollment link a relying party asks for (see [`crate::enrollment`]).
#[derive(Debug, Clone)]
pub struct NewRpEnrollment {
    pub user: String,
    pub token_hash: [u8; 32],
    pub rp_id: String,
    /// The approving challenge's id, when given.
    pub approval: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// What the store knows, in the enrolling transaction, about the user and the approval.
#[derive(Debug, Clone)]
pub struct EnrollFacts {
    /// The user's active devices (0 for an unknown user).
    pub active_devices: usize,
    /// Every device ever bound to the user, revoked ones included.
    pub bound_devices: usize,
    /// The approving challenge, if one was named and exists.
    pub approval: Option<ApprovalFacts>,
}

/// The named approval challenge as stored.
#[derive(Debug, Clone)]
pub struct ApprovalFacts {
    pub challenge: ChallengeRecord,
    /// When the challenge reached its current state (for an approved one: when it was answered).
    pub decided_at: Millis,
    /// Already used for an enrollment.
    pub used: bool,
    /// The device that answered it is still active (a revoked device approves nothing).
    pub approver_active: bool,
}

/// A challenge with everything the server knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub id: String,
    pub user: String,
    pub rp_id: String,
    pub state: ChallengeState,
    pub context: Context,
    pub context_digest: [u8; 32],
    pub rp_nonce: Vec<u8>,
    pub code: Option<String>,
    pub devices: Vec<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub device_id: Option<String>,
    pub decision: Option<Decision>,
    pub reason: Option<Reason>,
    pub typed_code: Option<String>,
    pub responded_at: Option<String>,
    pub signature: Option<String>,
}

impl ChallengeRecord {
    /// Open and past its expiry: the next read or write moves it to `expired`.
    pub fn is_due(&self, now: Millis) -> bool {
        !self.state.is_terminal() && now >= self.expires_at
    }
}

/// A challenge to create.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub id: String,
    pub user: String,
    pub rp_id: String,
    pub context: Context,
    pub context_digest: [u8; 32],
    pub rp_nonce: Vec<u8>,
    pub code: Option<String>,
    /// Device ids the RP asked for; all active devices of the user when `None`.
    pub requested_devices: Option<Vec<String>>,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// Start of the rate window, for counting recent challenges.
    pub window_start: Millis,
    /// The login's source address as the relying party gave it (see
    /// [`crate::limits::source_of`]); empty when it gave none.
    pub source: String,
}

/// What creating a challenge did.
#[derive(Debug, Clone)]
pub enum Create {
    Created {
        challenge: Box<ChallengeRecord>,
        devices: Vec<DeviceRecord>,
    },
    UnknownUser,
    NoDevice,
    Refused(Refusal),
}

/// A device's accepted answer, to store with the terminal state.
#[derive(Debug, Clone)]
pub struct AnswerRecord {
    pub device_id: String,
    pub state: ChallengeState,
    pub decision: Decision,
    pub reason: Option<Reason>,
    pub typed_code: String,
    pub responded_at: String,
    pub signature: String,
    /// Set for a `report`: new pushes to the user from the same relying party and source stop
    /// until then.
    pub lock_user_until: Option<Millis>,
}

/// What a compare-and-set on a challenge did.
#[derive(Debug, Clone)]
pub enum Cas {
    /// The transition happened; the record after it.
    Changed(Box<ChallengeRecord>),
    /// The challenge was already past its expiry: it is now `expired` and nothing else changed.
    Expired(Box<ChallengeRecord>),
    /// The challenge is in a state the transition does not start from; unchanged.
    WrongState(Box<ChallengeRecord>),
    Missing,
}

/// A challenge the store just moved to `expired`, so callers can wake its waiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub id: String,
    pub devices: Vec<String>,
}

/// What one sweep step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// The challenges it expired.
    pub expired: Vec<Expired>,
    /// It stopped at its bound: call again.
    pub more: bool,
}

/// What one prune step deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub challenges: usize,
    pub audit_events: usize,
    /// It stopped at its bound: call again.
    pub more: bool,
}

/// An audit entry to write.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub kind: &'static str,
    pub user: Option<String>,
    pub device_id: Option<String>,
    pub challenge_id: Option<String>,
    pub detail: Option<String>,
}

/// A store that threads share.
pub type SharedStore = std::sync::Arc<dyn Store + Send + Sync>;

/// Everything pushauthd stores.
pub trait Store {
    /// Runs `work` with a view of this store whose writes share one transaction, committed once
    /// when `work` returns: group commit, so that the operations of many concurrent requests
    /// cost one commit. Each operation still takes effect or fails on its own. `Err` means the
    /// commit failed and none of the group's writes were kept; callers must then report none of
    /// the group's results.
    fn group(&self, work: &mut dyn FnMut(&dyn Store)) -> StoreResult<()>;

    /// A cheap query proving the database answers.
    fn health(&self) -> StoreResult<()>;

    // ---- users, enrollment, devices

    /// Records an enrollment token (by hash) for `user`, creating the user if new.
    fn create_enrollment(
        &self,
        user: &str,
        token_hash: &[u8; 32],
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()>;
    fn get_enrollment(&self, token_hash: &[u8; 32]) -> StoreResult<Option<EnrollmentRecord>>;
    /// Checks a relying party's enrollment request with `check` over the facts read in the same
    /// transaction, then records the link (creating the user if new) and with it uses up the
    /// approval challenge, so that an approval serves one enrollment only. Audits
    /// `enrollment_created`, or `enrollment_refused` with the refusal's code.
    fn create_rp_enrollment(
        &self,
        new: &NewRpEnrollment,
        check: &dyn Fn(&EnrollFacts) -> Result<(), crate::enrollment::Refusal>,
    ) -> StoreResult<Result<(), crate::enrollment::Refusal>>;
    /// Uses the token once (compare-and-set) and adds the device with how it was bound
    /// (`source`: the redeeming peer's address); audits `device_enrolled`.
    fn redeem_enrollment(
        &self,
        token_hash: &[u8; 32],
        device: &NewDevice,
        source: Option<&str>,
        now: Millis,
    ) -> StoreResult<Redeem>;
    /// All devices of a user, revoked ones included; `None` for a user never seen.
    fn user_devices(&self, user: &str) -> StoreResult<Option<Vec<DeviceRecord>>>;
    fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>>;
    /// Remembers a device request nonce until `valid_until` (when the request's timestamp turns
    /// stale) and updates `last_seen_at`. `false` if the nonce was seen.
    fn use_device_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        now: Millis,
        valid_until: Millis,
    ) -> StoreResult<bool>;
    /// Marks a device revoked (idempotent) and audits it with `actor` (`admin`, `cli`,
    /// `rp:<id>`); `None` if unknown.
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

    // ---- challenges

    /// Checks user and devices, asks `check` whether the limits allow one more (with the counts
    /// read in the same transaction: per user, relying party and source, and per user; only
    /// challenges that were not approved, and none from before the user's last unlock), and
    /// inserts the challenge. Audits `challenge_created` or `rate_limited`.
    fn create_challenge(
        &self,
        new: &NewChallenge,
        check: &dyn Fn(&PushState) -> Result<(), Refusal>,
    ) -> StoreResult<Create>;
    /// Reads a challenge, first moving it to `expired` if it is due (audited). The flag says
    /// whether this read expired it.
    fn get_challenge(&self, id: &str, now: Millis) -> StoreResult<Option<(ChallengeRecord, bool)>>;
    /// `pending` → `acknowledged` by a device.
    fn acknowledge(&self, id: &str, now: Millis) -> StoreResult<Cas>;
    /// Open → the answer's terminal state; audits `challenge_answered` (and `user_locked`).
    fn answer(&self, id: &str, answer: &AnswerRecord, now: Millis) -> StoreResult<Cas>;
    /// Open → `cancelled`; audits `challenge_cancelled`.
    fn cancel(&self, id: &str, now: Millis) -> StoreResult<Cas>;
    /// Lifts every report lock-out of `user` and resets their push counters (challenges created
    /// before `now` stop counting); audits `user_unlocked` naming `by`. `false` for a user never
    /// seen (nothing changes).
    fn unlock_user(&self, user: &str, by: &str, now: Millis) -> StoreResult<bool>;
    /// The open, unexpired challenges sent to a device, oldest first, after expiring its due
    /// ones (returned too).
    fn device_challenges(
        &self,
        device_id: &str,
        now: Millis,
    ) -> StoreResult<(Vec<ChallengeRecord>, Vec<Expired>)>;
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

    fn audit(&self, entry: &AuditEntry, now: Millis) -> StoreResult<()>;
    /// [`Store::audit`], returning the new event's id (for [`Store::set_audit_count`]).
    fn audit_returning_id(&self, entry: &AuditEntry, now: Millis) -> StoreResult<i64>;
    /// Sets how many events an aggregated audit event stands for.
    fn set_audit_count(&self, id: i64, count: u64) -> StoreResult<()>;
    /// Bytes the database's live pages take (free pages, which new data reuses, not counted).
    fn used_bytes(&self) -> StoreResult<u64>;
    /// Newest first.
    fn list_audit(&self, limit: u32, user: Option<&str>) -> StoreResult<Vec<AuditEvent>>;
}
