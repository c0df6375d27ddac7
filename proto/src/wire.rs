//! JSON bodies of the v1 HTTP API (DESIGN.md, "The HTTP API").
//!
//! Requests refuse unknown fields, so a typo is an error rather than a silently ignored option.
//! Times are RFC 3339 UTC text; binary values are unpadded base64url text.

use serde::{Deserialize, Serialize};

pub use crate::backup::*;
use crate::{ChallengeState, Context, Decision, Reason};

// ---------------------------------------------------------------- errors

/// Stable error codes. Messages are for people; these are for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body or a parameter is not what the API takes.
    MalformedRequest,
    /// 400: the context is too large or holds bad keys or characters.
    InvalidContext,
    /// 401: missing or wrong API key or admin token.
    Unauthorized,
    /// 401: a device request or answer whose signature does not verify.
    BadSignature,
    /// 401: a device request whose timestamp is too far from the server's clock.
    StaleTimestamp,
    /// 401: a device request nonce seen before.
    ReplayedNonce,
    /// 401: a device id the server does not know.
    UnknownDevice,
    /// 403: the device was revoked.
    DeviceRevoked,
    /// 403: the caller may not act on this object (a device answering a challenge not sent to it).
    Forbidden,
    /// 404: no such route or object.
    NotFound,
    /// 405: the route exists but not with this HTTP method.
    MethodNotAllowed,
    /// 404: the user is not known to the server.
    UnknownUser,
    /// 404: the user exists but has no (matching) enrolled device.
    NoDevice,
    /// 404: no such enrollment token.
    UnknownEnrollment,
    /// 409: the challenge is already decided, expired or cancelled.
    WrongState,
    /// 409: the enrollment token was already used.
    EnrollmentUsed,
    /// 410: the challenge expired.
    Expired,
    /// 410: the enrollment token expired.
    EnrollmentExpired,
    /// 413: the body is larger than 64 KiB.
    PayloadTooLarge,
    /// 429: the user already has the maximum number of open challenges.
    TooManyOpenChallenges,
    /// 429: too many new challenges for the user in the window.
    RateLimited,
    /// 429: new pushes to the user are locked: a recent "this was not me" report (from this
    /// source), or `max_code_failures` wrong codes in a row (from every source, until unlocked).
    UserLocked,
    /// 403: the user already has an active device, so a new enrollment needs an `approval`: an
    /// approved `add_device` challenge answered on one of those devices.
    ApprovalRequired,
    /// 403: the `approval` does not name an approved, recent `add_device` challenge of this
    /// relying party for this user.
    ApprovalInvalid,
    /// 409: the `approval` was already used for an enrollment.
    ApprovalUsed,
    /// 403: the user has no active device and this relying party may not bootstrap one.
    BootstrapNotAllowed,
    /// 400: a push subscription's endpoint is at a push service whose origin is not in the
    /// server's `[web_push] allow_origins`; the message names the origin.
    PushOriginNotAllowed,
    /// 403: a backup code was refused: wrong, already used, or the user has none (one code
    /// for all three, so a refusal does not tell whether a user has codes).
    BackupCodeInvalid,
    /// 500: the server failed.
    Internal,
    /// 507: the store reached its configured size bound (`[retention] max_db_mb`); new
    /// challenges are refused until retention or an administrator makes room.
    StorageFull,
    /// 503: the server cannot reach its database (no primary reachable, a failover under
    /// way), so it cannot answer. Try another server, or again shortly (issue 13).
    StoreUnavailable,
}

impl ErrorCode {
    /// The HTTP status this code is returned with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedRequest | InvalidContext | PushOriginNotAllowed => 400,
            Unauthorized | BadSignature | StaleTimestamp | ReplayedNonce | UnknownDevice => 401,
            DeviceRevoked | Forbidden | ApprovalRequired | ApprovalInvalid
            | BootstrapNotAllowed | BackupCodeInvalid => 403,
            NotFound | UnknownUser | NoDevice | UnknownEnrollment => 404,
            MethodNotAllowed => 405,
            WrongState | EnrollmentUsed | ApprovalUsed => 409,
            Expired | EnrollmentExpired => 410,
            PayloadTooLarge => 413,
            TooManyOpenChallenges | RateLimited | UserLocked => 429,
            Internal => 500,
            StorageFull => 507,
            StoreUnavailable => 503,
        }
    }

    /// The wire text (`"malformed_request"`, …).
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedRequest => "malformed_request",
            InvalidContext => "invalid_context",
            Unauthorized => "unauthorized",
            BadSignature => "bad_signature",
            StaleTimestamp => "stale_timestamp",
            ReplayedNonce => "replayed_nonce",
            UnknownDevice => "unknown_device",
            DeviceRevoked => "device_revoked",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            UnknownUser => "unknown_user",
            NoDevice => "no_device",
            UnknownEnrollment => "unknown_enrollment",
            WrongState => "wrong_state",
            EnrollmentUsed => "enrollment_used",
            Expired => "expired",
            EnrollmentExpired => "enrollment_expired",
            PayloadTooLarge => "payload_too_large",
            TooManyOpenChallenges => "too_many_open_challenges",
            RateLimited => "rate_limited",
            UserLocked => "user_locked",
            ApprovalRequired => "approval_required",
            ApprovalInvalid => "approval_invalid",
            ApprovalUsed => "approval_used",
            BootstrapNotAllowed => "bootstrap_not_allowed",
            PushOriginNotAllowed => "push_origin_not_allowed",
            BackupCodeInvalid => "backup_code_invalid",
            Internal => "internal",
            StorageFull => "storage_full",
            StoreUnavailable => "store_unavailable",
        }
    }
}

/// Every error response: `{"error": "<stable_code>", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code programs branch on.
    pub error: ErrorCode,
    /// A sentence for people; its wording may change.
    pub message: String,
}

// ---------------------------------------------------------------- relying parties

/// One enrolled device as relying parties and admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device id (base64url, at most 128 characters).
    pub id: String,
    /// The name the person gave the device at enrollment (1 to 64 characters).
    pub name: String,
    /// Key algorithm (`ed25519` or `es256`).
    pub alg: String,
    /// base64url raw public key.
    pub public_key: String,
    /// RFC 3339 time of enrollment.
    pub created_at: String,
    /// RFC 3339 time of the device's last signed request, if any.
    pub last_seen_at: Option<String>,
}

/// `GET /v1/users/{user}/devices` and `GET /v1/admin/users/{user}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    /// The user's active devices, oldest first.
    pub devices: Vec<DeviceInfo>,
}

fn default_true() -> bool {
    true
}

/// `POST /v1/challenges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChallenge {
    /// The user to push to (1 to 256 printable characters, [`crate::names::check_user`]).
    pub user: String,
    /// Device ids to target; all of the user's devices when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// A key given twice is refused ([`crate::context::deserialize_unique`]).
    #[serde(default, deserialize_with = "crate::context::deserialize_unique")]
    pub context: Context,
    /// Number matching; on unless the RP turns it off.
    #[serde(default = "default_true")]
    pub code: bool,
    /// Lifetime in seconds; the server's default when absent, bounded by its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// base64url of 32 random bytes chosen by the RP.
    pub rp_nonce: String,
    /// Issue 12: let the login in without a push when a device approved the same login (same
    /// user, relying party and [`crate::grace::grace_key`]) within this many seconds, 1 to
    /// [`crate::grace::MAX_GRACE_SECS`]. Absent: always push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_secs: Option<u64>,
}

/// Issue 12: the grace window a login was let in by, in a `201` answer to
/// `POST /v1/challenges` whose challenge is already `approved` (no push was sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceGrant {
    /// The challenge a device approved, which opened the window.
    pub of: String,
    /// RFC 3339 time the window closes (that approval plus the `grace_secs` asked now).
    pub until: String,
}

/// Issue 12: `DELETE /v1/device/grace` (signed) and `DELETE /v1/admin/users/{user}/grace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceEnded {
    /// The user whose grace windows ended.
    pub user: String,
    /// Always true: no login of the user is let in by an approval from before now.
    pub ended: bool,
}

/// `201` answer to `POST /v1/challenges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeCreated {
    /// Challenge id (base64url).
    pub id: String,
    /// The user it was created for (the request's `user`).
    pub user: String,
    /// Ids of the devices the challenge was sent to.
    pub devices: Vec<String>,
    /// Those devices with names and keys, so the RP can show names and verify the answer without
    /// another round trip. (An addition to DESIGN.md's list.)
    pub device_info: Vec<DeviceInfo>,
    /// The code to show the person; null when number matching is off.
    pub code: Option<String>,
    /// RFC 3339 time after which it can no longer be answered.
    pub expires_at: String,
    /// `pending` on creation; `approved` when a grace window let the login in.
    pub state: ChallengeState,
    /// Issue 12: set when a grace window let the login in (then no device was asked, and
    /// `devices` and `code` are empty). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<GraceGrant>,
}

/// `GET /v1/challenges/{id}`, `DELETE /v1/challenges/{id}`, and the device's answer/ack replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeStatus {
    /// Challenge id.
    pub id: String,
    /// Current state.
    pub state: ChallengeState,
    /// RFC 3339 expiry time.
    pub expires_at: String,
    /// The device that answered, once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// What that device decided, once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Why it was denied (`denied`, `reported`, `code_mismatch`), for a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// RFC 3339 time the device signed, once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<String>,
    /// The device's signature over the response message (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The code the person typed on the device ("" without number matching). Needed to verify the
    /// signature of a `code_mismatch` answer. (An addition to DESIGN.md's list.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_code: Option<String>,
}

/// `GET /v1/challenges?ids=ID,ID&wait=SECS` (issue 14): the challenges asked for, in the order
/// asked, once any of them changed (or the wait ended). An approval by someone else asks every
/// approver with a challenge of its own and waits on all of them at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeStatuses {
    /// One status per id asked for, in the same order.
    pub challenges: Vec<ChallengeStatus>,
}

/// Most challenge ids one `GET /v1/challenges?ids=` waits on at once.
pub const MAX_WAIT_IDS: usize = 16;

// ---------------------------------------------------------------- devices

/// `POST /v1/device/enroll` (unsigned; `proof` signs [`crate::signing::enroll_message`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token from the link.
    pub token: String,
    /// Device name (1 to 64 printable characters).
    pub name: String,
    /// Key algorithm (`ed25519` or `es256`).
    pub alg: String,
    /// base64url raw public key: 32 bytes for `ed25519`, the 65-byte uncompressed point for `es256`.
    pub public_key: String,
    /// base64url signature over [`crate::signing::enroll_message`], proving the device holds the key.
    pub proof: String,
}

/// Answer to `POST /v1/device/enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The new device's id.
    pub device_id: String,
    /// The user the device now belongs to.
    pub user: String,
    /// The device's offline-code secret, shown only here (issue 12); absent when the server
    /// has offline codes off. Older clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<crate::offline::EnrollOffline>,
}

/// One challenge as the device sees it: never the code itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChallenge {
    /// Challenge id.
    pub id: String,
    /// The user it is for.
    pub user: String,
    /// Current state (`pending` or `acknowledged`).
    pub state: ChallengeState,
    /// A key given twice is refused ([`crate::context::deserialize_unique`]).
    #[serde(deserialize_with = "crate::context::deserialize_unique")]
    pub context: Context,
    /// base64url SHA-256 digest of the context.
    pub context_digest: String,
    /// base64url of the RP's 32-byte nonce.
    pub rp_nonce: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 expiry time.
    pub expires_at: String,
    /// Whether the person must type the code the login shows.
    pub code_required: bool,
    /// How many digits that code has (2 to 8; `null` without number matching), so a device
    /// checks a typed code's length before it sends it. Absent from servers that predate it.
    #[serde(default)]
    pub code_length: Option<u8>,
    /// Name of the relying party that asked (the PAM host's or IdP's registration), so the
    /// person sees who is asking. Absent from servers that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_name: Option<String>,
}

/// `GET /v1/device/challenges?wait=SECS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingList {
    /// Open challenges for the calling device, oldest first.
    pub challenges: Vec<PendingChallenge>,
}

/// The context `action` value of a challenge that approves adding a device to the user.
pub const ACTION_ADD_DEVICE: &str = "add_device";

/// The context `action` value of an approval by someone else (issue 14): the person asked is
/// not the one who acts, and approves what `message` says (with `requester`, and for a
/// privileged command `command`, `reason` and `target_user`). Devices show the message
/// first; it is part of the context digest, so the signature covers what was shown.
pub const ACTION_APPROVAL: &str = "approval";

/// Notice kind: a device was added to the user (`device_id`, `device_name`, `source`, `via`).
pub const NOTICE_DEVICE_ADDED: &str = "device_added";
/// Notice kind: one of the user's backup codes was used (`context`: where; `count`: codes left).
pub const NOTICE_BACKUP_CODE_USED: &str = "backup_code_used";
/// Notice kind: a new set of backup codes was issued, voiding the old (`count`: codes in the
/// set; `via`: who asked).
pub const NOTICE_BACKUP_CODES_ISSUED: &str = "backup_codes_issued";
/// Notice kind: every backup code of the user was voided by an administrator, none issued in
/// their place (`via`: who).
pub const NOTICE_BACKUP_CODES_VOIDED: &str = "backup_codes_voided";
/// Notice kind: an offline code was used on a PAM host while the server was unreachable
/// (`context`: where).
pub const NOTICE_OFFLINE_CODE_USED: &str = "offline_code_used";
/// Notice kind: a grace window for repeated logins ended (`context`: which and why).
pub const NOTICE_GRACE_ENDED: &str = "grace_ended";

/// One thing the user's devices should know: a `kind` (one of the `NOTICE_*` constants, or a
/// kind this version does not know yet, which a client shows generically) and the fields that
/// kind carries. A `device_added` notice keeps the JSON it always had (`device_id`,
/// `device_name`, `at`, `source`, `via`), so older clients read it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNotice {
    /// What happened: `device_added`, `backup_code_used`, `backup_codes_issued`,
    /// `backup_codes_voided`,
    /// `offline_code_used`, `grace_ended`, or a later kind.
    pub kind: String,
    /// `device_added`: the new device's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// `device_added`: the new device's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// RFC 3339 time of the event.
    pub at: String,
    /// Address the event came from (the redeeming peer, the relying party's caller), if recorded.
    #[serde(default)]
    pub source: Option<String>,
    /// Who acted: `admin`, `cli`, `rp:<id>`, `device:<id>`, if recorded.
    #[serde(default)]
    pub via: Option<String>,
    /// Where it happened, as the relying party said (`service`, `host`, `rhost`…); empty when
    /// the kind has none. Shown as text, never trusted.
    #[serde(default, skip_serializing_if = "Context::is_empty")]
    pub context: Context,
    /// A number the kind defines (`backup_code_used`: codes left; `backup_codes_issued`: codes
    /// in the new set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl DeviceNotice {
    /// A key that tells notices apart, for a client that shows each once.
    pub fn key(&self) -> String {
        match &self.device_id {
            Some(id) if self.kind == NOTICE_DEVICE_ADDED => id.clone(),
            _ => format!(
                "{}|{}|{:?}|{:?}",
                self.kind, self.at, self.via, self.context
            ),
        }
    }
}

/// `GET /v1/device/notices`: what the caller's user should know from the last 30 days, newest
/// first (bindings without the caller itself). Only `device_added` notices unless the request
/// asks `?kinds=all`, so clients that predate other kinds keep reading the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeList {
    /// Newest first.
    pub notices: Vec<DeviceNotice>,
}

/// `POST /v1/device/challenges/{id}/response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceResponse {
    /// Approve or deny.
    pub decision: Decision,
    /// What the person typed; empty without number matching.
    #[serde(default)]
    pub code: String,
    /// RFC 3339 time the device signed (covered by the signature).
    pub responded_at: String,
    /// base64url signature over [`crate::signing::response_message`].
    pub signature: String,
}

// ---------------------------------------------------------------- admin

/// `POST /v1/admin/enrollments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollment {
    /// The user to enroll a device for (1 to 256 printable characters).
    pub user: String,
    /// Link lifetime in seconds; the server's `enrollment_ttl_secs` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// Answer to `POST /v1/admin/enrollments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCreated {
    /// Single-use enrollment token (base64url).
    pub token: String,
    /// `<public_url>/enroll?token=<token>`: the link the device CLI takes and the QR code carries.
    pub url: String,
    /// RFC 3339 time the link stops working.
    pub expires_at: String,
    /// When a backup code approved the link: the fresh code that replaces it (show it to the
    /// person, once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// When a backup code approved the link: unused codes left (the replacement counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
}

fn all_users() -> Vec<String> {
    vec!["*".to_owned()]
}

/// `POST /v1/admin/relying-parties`. Without the optional fields the relying party may push to
/// every user and may not enroll (what `pushauthd rp add NAME` always made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRelyingParty {
    /// A name for people (1 to 64 printable characters); shown on the device.
    pub name: String,
    /// The users it may act for: an exact name, a prefix ending in `*` (`kc/*`), or `*` alone
    /// for every user. Default `["*"]`.
    #[serde(default = "all_users")]
    pub users: Vec<String>,
    /// May request enrollment links (`POST /v1/enrollments`) and revoke devices of users in
    /// scope. Default false.
    #[serde(default)]
    pub enroll: bool,
    /// May enroll a user who has no active device yet (needs `enroll`). Default false.
    #[serde(default)]
    pub bootstrap: bool,
}

/// Answer to `POST /v1/admin/relying-parties` and `POST /v1/admin/relying-parties/{id}/rotate`:
/// the key (`<id>.<secret>`) is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingPartyCreated {
    /// Relying-party id (the part of the key before the dot).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The key, `<id>.<secret>`: shown once, stored only as a hash.
    pub api_key: String,
}

/// One relying party as `GET /v1/admin/relying-parties` lists it (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingPartyInfo {
    /// Relying-party id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// User patterns it may act for (see [`CreateRelyingParty::users`]).
    pub users: Vec<String>,
    /// May request enrollment links and revoke devices.
    pub enroll: bool,
    /// May enroll a user's first device.
    pub bootstrap: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; set once revoked (its key is then refused).
    pub revoked_at: Option<String>,
}

/// `GET /v1/admin/relying-parties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingPartyList {
    /// Every relying party, revoked ones included, oldest first.
    pub relying_parties: Vec<RelyingPartyInfo>,
}

/// `POST /v1/enrollments` (relying-party key with the `enroll` right).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRpEnrollment {
    /// The user to enroll a device for (within the relying party's `users`).
    pub user: String,
    /// Link lifetime in seconds, at most the server's `enrollment_ttl_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Id of a challenge this relying party created for `user` with context
    /// `action = "add_device"`, approved on one of the user's devices in the last 10 minutes.
    /// Required when the user already has an active device; usable once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Instead of `approval`: one of the user's backup codes (issue 12), for a person who lost
    /// every device. It is used up in the unit that issues the link; the answer carries its
    /// replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_code: Option<String>,
}

/// One device with how it was bound, as `GET /v1/admin/users/{user}/devices[?all=true]` lists it
/// (the [`DeviceInfo`] fields plus these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBinding {
    /// The device itself.
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// RFC 3339; set for a revoked device.
    pub revoked_at: Option<String>,
    /// Address of the peer that redeemed the enrollment link (`ip:port`), if recorded.
    pub source: Option<String>,
    /// Who issued the enrollment link: `admin`, or `rp:<relying party id>`.
    pub via: Option<String>,
    /// The device that approved the enrollment (its `add_device` challenge), if any.
    pub approved_by: Option<String>,
}

/// `GET /v1/admin/users/{user}/devices[?all=true]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBindingList {
    /// The user's devices, oldest first.
    pub devices: Vec<DeviceBinding>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Row id, increasing.
    pub id: i64,
    /// RFC 3339 time of the event.
    pub at: String,
    /// `enrolled`, `revoked`, `challenge_created`, `challenge_answered`, `challenge_expired`,
    /// `challenge_cancelled`, `rate_limited`, `signature_rejected` (aggregated, see `count`),
    /// `user_locked`, `user_unlocked`, `rp_created`, …
    pub kind: String,
    /// The user concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The device concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The challenge concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    /// Free text for people (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many events this row stands for: repeated failures (such as bad signatures for one
    /// device from one address) are aggregated into one row per minute with their count.
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

/// `POST /v1/admin/users/{user}/unlock`: the user's report lock-outs were lifted and their push
/// counters reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUnlocked {
    /// The user.
    pub user: String,
    /// Always true: the lock-outs are gone.
    pub unlocked: bool,
}

/// `GET /v1/admin/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    /// Newest first.
    pub events: Vec<AuditEvent>,
}

/// Body of the webhook POST on a new challenge (signed with HMAC-SHA256 in a header): what a
/// receiver needs to wake the right phone, nothing about the login. The device then fetches
/// the details over its signed API (DESIGN.md: notifications carry only the challenge id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookNotification {
    /// The new challenge (or `notice:<id>` for a device notice).
    pub challenge_id: String,
    /// The device to wake.
    pub device_id: String,
    /// Only with `[webhook] include_user = true` on the server; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relying_party_rights_default_to_all_users_and_no_enrollment() {
        let req: CreateRelyingParty = serde_json::from_str(r#"{"name":"host"}"#).unwrap();
        assert_eq!(req.users, vec!["*".to_owned()]);
        assert!(!req.enroll && !req.bootstrap);
        assert!(
            serde_json::from_str::<CreateRelyingParty>(r#"{"name":"h","enrol":true}"#).is_err()
        );
    }

    #[test]
    fn error_codes_serialize_as_their_text() {
        for code in [
            ErrorCode::MalformedRequest,
            ErrorCode::TooManyOpenChallenges,
            ErrorCode::NoDevice,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
        assert_eq!(ErrorCode::PayloadTooLarge.status(), 413);
        assert_eq!(ErrorCode::WrongState.status(), 409);
        assert_eq!(ErrorCode::ApprovalRequired.as_str(), "approval_required");
        assert_eq!(ErrorCode::ApprovalUsed.status(), 409);
        assert_eq!(ErrorCode::BootstrapNotAllowed.status(), 403);
        assert_eq!(ErrorCode::StorageFull.status(), 507);
        assert_eq!(ErrorCode::StoreUnavailable.status(), 503);
        assert_eq!(
            serde_json::to_string(&ErrorCode::StoreUnavailable).unwrap(),
            "\"store_unavailable\""
        );
        assert_eq!(
            serde_json::to_string(&ErrorCode::StorageFull).unwrap(),
            "\"storage_full\""
        );
    }

    #[test]
    fn create_challenge_defaults_and_refuses_unknown_fields() {
        let req: CreateChallenge =
            serde_json::from_str(r#"{"user":"alice","rp_nonce":"x"}"#).unwrap();
        assert!(req.code);
        assert!(req.context.is_empty());
        assert!(req.devices.is_none());
        let err =
            serde_json::from_str::<CreateChallenge>(r#"{"user":"a","rp_nonce":"x","cod":false}"#);
        assert!(err.is_err());
    }
}
