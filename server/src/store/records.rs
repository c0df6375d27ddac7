//! The values the [`Store`](super::Store) operations take and return: plain data, the same for
//! every backend. Times are [`Millis`] (milliseconds since the Unix epoch, UTC).

use pushauth_proto::{ChallengeState, Context, Decision, Reason};

use crate::clock::Millis;
use crate::limits::Refusal;

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device's id (URL-safe, chosen by the server at enrollment).
    pub id: String,
    /// The user it belongs to.
    pub user: String,
    /// The name its owner gave it (see `pushauth_proto::names::check_device_name`).
    pub name: String,
    /// Its key's algorithm: `ed25519` or `es256`.
    pub alg: String,
    /// base64url raw public key.
    pub public_key: String,
    /// When it was enrolled.
    pub created_at: Millis,
    /// When it last made a signed request (second granularity).
    pub last_seen_at: Option<Millis>,
    /// When it was revoked; a revoked device is kept (the record of every binding).
    pub revoked_at: Option<Millis>,
    /// Peer address (`ip:port`) of the request that redeemed the enrollment link.
    pub source: Option<String>,
    /// Who issued the enrollment link: `admin` or `rp:<id>`.
    pub via: Option<String>,
    /// The device whose approved `add_device` challenge allowed this enrollment.
    pub approved_by: Option<String>,
}

impl DeviceRecord {
    /// Not revoked: it receives challenges and its answers count.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A device about to be enrolled.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Its id (see [`DeviceRecord::id`]).
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// Its key's algorithm: `ed25519` or `es256`.
    pub alg: String,
    /// base64url raw public key.
    pub public_key: String,
}

/// An enrollment token's record (looked up by the token's SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRecord {
    /// The user the token enrolls a device for.
    pub user: String,
    /// After this the token is refused.
    pub expires_at: Millis,
    /// Already redeemed (each token enrolls one device).
    pub used: bool,
    /// Who issued it: `admin`, or `rp:<id>` for a relying party.
    pub via: String,
    /// The device whose approval the link was issued on, if any.
    pub approved_by: Option<String>,
}

/// A device's open challenges, each with the name of the relying party that asked (`None`
/// when no relying party has its id), and the challenges that expired as they were read
/// ([`Store::device_challenges`](super::Store::device_challenges)).
pub type DeviceChallenges = (Vec<(ChallengeRecord, Option<String>)>, Vec<Expired>);

/// What spending a device request nonce did ([`Store::spend_device_nonce`](super::Store::spend_device_nonce)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// The nonce was new and is remembered; the device as it is now (active).
    Fresh(Box<DeviceRecord>),
    /// The nonce was seen before (or cannot be stored, so cannot be proven unused).
    Replayed,
    /// The device is revoked: nothing was stored.
    Revoked,
    /// No device has this id: nothing was stored.
    Unknown,
}

impl Spent {
    /// Whether the nonce was new and the device active.
    pub fn is_fresh(&self) -> bool {
        matches!(self, Spent::Fresh(_))
    }

    /// Whether it is `nonce` spent by the device that signed its request: fresh, and the
    /// device's key the one the signature was checked with (else the id would name another
    /// device than the signer, as after a restore: [`NonceRefused::Unknown`]).
    ///
    /// # Errors
    /// Why the nonce was not spent.
    pub fn by_signer(self, nonce: &RequestNonce) -> Result<Box<DeviceRecord>, NonceRefused> {
        match self {
            Spent::Fresh(device)
                if device.alg == nonce.alg && device.public_key == nonce.public_key =>
            {
                Ok(device)
            }
            Spent::Fresh(_) | Spent::Unknown => Err(NonceRefused::Unknown),
            Spent::Replayed => Err(NonceRefused::Replayed),
            Spent::Revoked => Err(NonceRefused::Revoked),
        }
    }
}

/// A signed device request's one-time nonce, spent by the operation the request asks for, in
/// its statement or transaction ([`Store::answer_spending`](super::Store::answer_spending),
/// [`Store::device_challenges_spending`](super::Store::device_challenges_spending)): one
/// round trip and one commit fewer than spending it first. The request's signature was
/// checked with `alg` and `public_key`; the nonce is spent only while the device with that id
/// is active and still has that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestNonce {
    /// The device the request is signed by.
    pub device_id: String,
    /// Its key's algorithm (`ed25519`, `es256`), as stored.
    pub alg: String,
    /// Its public key, as stored (base64url).
    pub public_key: String,
    /// The nonce (base64url, as the `Authorization` header carries it).
    pub nonce: String,
    /// Until when it must be remembered (Unix milliseconds).
    pub valid_until: Millis,
}

/// Why a request's nonce was not spent; the operation it guarded did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRefused {
    /// Seen before (or not storable, so not provably unused).
    Replayed,
    /// The device is revoked.
    Revoked,
    /// No device has this id, or it has another key than the request was checked with.
    Unknown,
}

/// What redeeming an enrollment token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    /// The device was added; its record.
    Enrolled(Box<DeviceRecord>),
    /// No token has this hash.
    Unknown,
    /// The token was redeemed before.
    Used,
    /// The token is past its expiry.
    Expired,
}

/// A relying party: its API key is stored as SHA-256 of the secret part only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingPartyRecord {
    /// Its id, the part of the API key before the dot.
    pub id: String,
    /// A name for people (the host it runs on, say).
    pub name: String,
    /// SHA-256 of the API key's secret part.
    pub key_hash: [u8; 32],
    /// User patterns it may act for (matched by the service layer, [`crate::service::keys`]).
    pub users: Vec<String>,
    /// May request enrollment links and revoke devices of users in scope.
    pub enroll: bool,
    /// May enroll a user who has no active device.
    pub bootstrap: bool,
    /// When it was created.
    pub created_at: Millis,
    /// Set once revoked: its key is refused from then on.
    pub revoked_at: Option<Millis>,
}

/// An enrollment link a relying party asks for, as the service allowed it
/// ([`crate::service::enrollments`]).
#[derive(Debug, Clone)]
pub struct NewRpEnrollment {
    /// The user the link enrolls a device for.
    pub user: String,
    /// SHA-256 of the link's token.
    pub token_hash: [u8; 32],
    /// The relying party asking.
    pub rp_id: String,
    /// The approving challenge's id, when given.
    pub approval: Option<String>,
    /// Now, when the link is made.
    pub created_at: Millis,
    /// After this the link is refused.
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
    /// The challenge itself.
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
    /// Its id (random, URL-safe).
    pub id: String,
    /// The user asked to approve.
    pub user: String,
    /// The relying party that created it.
    pub rp_id: String,
    /// Where it is in its life (DESIGN.md, "The challenge").
    pub state: ChallengeState,
    /// What the person is approving, as the relying party described it.
    pub context: Context,
    /// SHA-256 over the canonical encoding of `context` (signed by the device).
    pub context_digest: [u8; 32],
    /// The relying party's 32 random bytes (signed by the device).
    pub rp_nonce: Vec<u8>,
    /// The number-matching code the person must type, when number matching is on.
    pub code: Option<String>,
    /// Ids of the devices it was sent to.
    pub devices: Vec<String>,
    /// When it was created.
    pub created_at: Millis,
    /// After this it can only become `expired`.
    pub expires_at: Millis,
    /// The device that answered it.
    pub device_id: Option<String>,
    /// The answering device's decision.
    pub decision: Option<Decision>,
    /// Why it ended the way it did, where a reason applies (`code_mismatch`, ...).
    pub reason: Option<Reason>,
    /// The code the person typed on the device.
    pub typed_code: Option<String>,
    /// The device's signed answer time, RFC 3339 UTC text as signed.
    pub responded_at: Option<String>,
    /// The device's signature over the answer (base64url).
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
    /// Its id (random, URL-safe).
    pub id: String,
    /// The user asked to approve.
    pub user: String,
    /// The relying party creating it.
    pub rp_id: String,
    /// The stored hash of the key `rp_id` authenticated with, or `None` (the admin token, and
    /// callers inside pushauthd). With `Some`, the store creates the challenge only if, inside
    /// the creating transaction, `rp_id` still has this key and is not revoked
    /// ([`Create::KeyRevoked`] otherwise): a revocation that returned is never followed by a
    /// push made with the old key (see `service::keys::atomically_for`).
    pub rp_key: Option<[u8; 32]>,
    /// What the person is approving.
    pub context: Context,
    /// SHA-256 over the canonical encoding of `context`.
    pub context_digest: [u8; 32],
    /// The relying party's 32 random bytes.
    pub rp_nonce: Vec<u8>,
    /// The number-matching code, when number matching is on.
    pub code: Option<String>,
    /// Device ids the RP asked for; all active devices of the user when `None`.
    pub requested_devices: Option<Vec<String>>,
    /// Now, when it is created.
    pub created_at: Millis,
    /// When it expires.
    pub expires_at: Millis,
    /// Start of the rate window, for counting recent challenges.
    pub window_start: Millis,
    /// A login approved from the same source (and relying party) after this makes the source
    /// known ([`PushState::known_source`](crate::limits::PushState::known_source)); the
    /// service sets how far back that reaches.
    pub known_since: Millis,
    /// The login's source address as the relying party gave it (see
    /// [`crate::limits::source_of`]); empty when it gave none.
    pub source: String,
}

impl NewChallenge {
    /// The challenge as a creation stores it: pending, sent to `devices`, at `created_at`.
    pub fn pending(&self, devices: Vec<String>) -> ChallengeRecord {
        ChallengeRecord {
            id: self.id.clone(),
            user: self.user.clone(),
            rp_id: self.rp_id.clone(),
            state: ChallengeState::Pending,
            context: self.context.clone(),
            context_digest: self.context_digest,
            rp_nonce: self.rp_nonce.clone(),
            code: self.code.clone(),
            devices,
            created_at: self.created_at,
            expires_at: self.expires_at,
            device_id: None,
            decision: None,
            reason: None,
            typed_code: None,
            responded_at: None,
            signature: None,
        }
    }
}

/// What creating a challenge did.
#[derive(Debug, Clone)]
pub enum Create {
    /// It was stored and is pending.
    Created {
        /// The new challenge.
        challenge: Box<ChallengeRecord>,
        /// The active devices it was sent to.
        devices: Vec<DeviceRecord>,
        /// Those devices' Web Push subscriptions, read in the creating transaction: the push
        /// needs no read of its own.
        subscriptions: Vec<PushSubscriptionRecord>,
    },
    /// The user was never enrolled.
    UnknownUser,
    /// The user has no active device (among the requested ones).
    NoDevice,
    /// The push limits refused it (audited as `rate_limited`).
    Refused(Refusal),
    /// The relying party was revoked, or its key rotated, after the request was
    /// authenticated ([`NewChallenge::rp_key`]): nothing was written.
    KeyRevoked,
}

/// A device's accepted answer, to store with the terminal state.
#[derive(Debug, Clone)]
pub struct AnswerRecord {
    /// The answering device.
    pub device_id: String,
    /// The terminal state the answer leads to.
    pub state: ChallengeState,
    /// What the device decided.
    pub decision: Decision,
    /// Why, where a reason applies.
    pub reason: Option<Reason>,
    /// The code the person typed (empty without number matching).
    pub typed_code: String,
    /// The device's signed answer time, RFC 3339 UTC text as signed.
    pub responded_at: String,
    /// The device's signature (base64url).
    pub signature: String,
    /// Set for a `report`: new pushes to the user from the same relying party and source stop
    /// until then.
    pub lock_user_until: Option<Millis>,
    /// What the answer does to the user's count of consecutive wrong codes.
    pub code_tally: CodeTally,
}

/// What an answer does to a user's count of consecutive wrong codes, which spans challenges
/// (NIST SP 800-63B-4: a new challenge does not reset it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeTally {
    /// Leaves it (deny, report, an approval without number matching).
    Keep,
    /// A wrong code: one more. Reaching `lock_at` audits `user_locked` (new pushes to the user
    /// stop; [`crate::limits::check`] refuses them).
    Failed {
        /// `[limits] max_code_failures`.
        lock_at: u32,
    },
    /// An approval with the right code: back to zero.
    Reset {
        /// `[limits] max_code_failures`.
        lock_at: u32,
    },
}

impl CodeTally {
    /// The lock an approval on a number-matching challenge must be below: once the user's
    /// count reaches it, the store refuses the approval ([`Cas::CodeLocked`]) before it looks
    /// at the code, so challenges opened before the lock take no further guesses.
    pub fn lock_at(self) -> Option<u32> {
        match self {
            CodeTally::Keep => None,
            CodeTally::Failed { lock_at } | CodeTally::Reset { lock_at } => Some(lock_at),
        }
    }
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
    /// No challenge has this id.
    Missing,
    /// An approval on a number-matching challenge of a user at `max_code_failures`; unchanged,
    /// and the count with it (only `pushauthd unlock` lifts the lock).
    CodeLocked(Box<ChallengeRecord>),
    /// An answer from a device revoked after its request was authenticated (another replica,
    /// the admin, a moment before); unchanged.
    DeviceRevoked(Box<ChallengeRecord>),
    /// A cancel whose relying party was revoked, or its key rotated, after its request was
    /// authenticated (see [`Store::cancel`](super::Store::cancel)); unchanged.
    KeyRevoked(Box<ChallengeRecord>),
}

/// A challenge the store just moved to `expired`, so callers can wake its waiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The challenge's id.
    pub id: String,
    /// The devices it was sent to.
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
    /// Finished challenges deleted.
    pub challenges: usize,
    /// Audit events deleted.
    pub audit_events: usize,
    /// It stopped at its bound: call again.
    pub more: bool,
}

/// An audit entry to write.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// What happened (`challenge_created`, `revoked`, ...: a stable word).
    pub kind: &'static str,
    /// The user it concerns.
    pub user: Option<String>,
    /// The device it concerns.
    pub device_id: Option<String>,
    /// The challenge it concerns.
    pub challenge_id: Option<String>,
    /// Free text for people.
    pub detail: Option<String>,
}

/// A device's Web Push subscription (RFC 8030, RFC 8291): where its push service takes pushes
/// for it and the keys that encrypt them. At most one per device.
#[derive(Clone, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    /// The device it belongs to.
    pub device_id: String,
    /// The push service's URL for this subscription (its path is a capability: never logged).
    pub endpoint: String,
    /// The browser's ECDH public key: base64url of the 65-byte uncompressed P-256 point.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url (a secret: never logged).
    pub auth: String,
    /// When it was registered.
    pub created_at: Millis,
}

impl std::fmt::Debug for PushSubscriptionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSubscriptionRecord")
            .field("device_id", &self.device_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}
