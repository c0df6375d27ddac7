//! JSON bodies of the v1 HTTP API (DESIGN.md, "The HTTP API").
//!
//! Requests refuse unknown fields, so a typo is an error rather than a silently ignored option.
//! Times are RFC 3339 UTC text; binary values are unpadded base64url text.

use serde::{Deserialize, Serialize};

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
    /// 429: a recent "this was not me" report locks new pushes to the user.
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
    /// 500: the server failed.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is returned with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedRequest | InvalidContext => 400,
            Unauthorized | BadSignature | StaleTimestamp | ReplayedNonce | UnknownDevice => 401,
            DeviceRevoked | Forbidden | ApprovalRequired | ApprovalInvalid
            | BootstrapNotAllowed => 403,
            NotFound | UnknownUser | NoDevice | UnknownEnrollment => 404,
            MethodNotAllowed => 405,
            WrongState | EnrollmentUsed | ApprovalUsed => 409,
            Expired | EnrollmentExpired => 410,
            PayloadTooLarge => 413,
            TooManyOpenChallenges | RateLimited | UserLocked => 429,
            Internal => 500,
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
            Internal => "internal",
        }
    }
}

/// Every error response: `{"error": "<stable_code>", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
}

// ---------------------------------------------------------------- relying parties

/// One enrolled device as relying parties and admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub alg: String,
    /// base64url raw public key.
    pub public_key: String,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

/// `GET /v1/users/{user}/devices` and `GET /v1/admin/users/{user}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceInfo>,
}

fn default_true() -> bool {
    true
}

/// `POST /v1/challenges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChallenge {
    pub user: String,
    /// Device ids to target; all of the user's devices when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    #[serde(default)]
    pub context: Context,
    /// Number matching; on unless the RP turns it off.
    #[serde(default = "default_true")]
    pub code: bool,
    /// Lifetime in seconds; the server's default when absent, bounded by its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// base64url of 32 random bytes chosen by the RP.
    pub rp_nonce: String,
}

/// `201` answer to `POST /v1/challenges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeCreated {
    pub id: String,
    pub user: String,
    /// Ids of the devices the challenge was sent to.
    pub devices: Vec<String>,
    /// Those devices with names and keys, so the RP can show names and verify the answer without
    /// another round trip. (An addition to DESIGN.md's list.)
    pub device_info: Vec<DeviceInfo>,
    /// The code to show the person; null when number matching is off.
    pub code: Option<String>,
    pub expires_at: String,
    pub state: ChallengeState,
}

/// `GET /v1/challenges/{id}`, `DELETE /v1/challenges/{id}`, and the device's answer/ack replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeStatus {
    pub id: String,
    pub state: ChallengeState,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
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

// ---------------------------------------------------------------- devices

/// `POST /v1/device/enroll` (unsigned; `proof` signs [`crate::signing::enroll_message`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    pub name: String,
    pub alg: String,
    pub public_key: String,
    pub proof: String,
}

/// Answer to `POST /v1/device/enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: String,
    pub user: String,
}

/// One challenge as the device sees it: never the code itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChallenge {
    pub id: String,
    pub user: String,
    pub state: ChallengeState,
    pub context: Context,
    /// base64url SHA-256 digest of the context.
    pub context_digest: String,
    /// base64url of the RP's 32-byte nonce.
    pub rp_nonce: String,
    pub created_at: String,
    pub expires_at: String,
    pub code_required: bool,
}

/// `GET /v1/device/challenges?wait=SECS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingList {
    pub challenges: Vec<PendingChallenge>,
}

/// The context `action` value of a challenge that approves adding a device to the user.
pub const ACTION_ADD_DEVICE: &str = "add_device";

/// One thing the user's other devices should know: today only `device_added`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNotice {
    /// `device_added`.
    pub kind: String,
    pub device_id: String,
    pub device_name: String,
    /// RFC 3339 time of the binding.
    pub at: String,
    /// Address that redeemed the enrollment link, if recorded.
    pub source: Option<String>,
    /// `admin` or `rp:<id>`, if recorded.
    pub via: Option<String>,
}

/// `GET /v1/device/notices`: the bindings of the caller's user in the last 30 days, newest
/// first, without the caller itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeList {
    pub notices: Vec<DeviceNotice>,
}

/// `POST /v1/device/challenges/{id}/response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceResponse {
    pub decision: Decision,
    /// What the person typed; empty without number matching.
    #[serde(default)]
    pub code: String,
    pub responded_at: String,
    pub signature: String,
}

// ---------------------------------------------------------------- admin

/// `POST /v1/admin/enrollments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollment {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// Answer to `POST /v1/admin/enrollments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCreated {
    pub token: String,
    /// `<public_url>/enroll?token=<token>`: the link the device CLI takes and the QR code carries.
    pub url: String,
    pub expires_at: String,
}

fn all_users() -> Vec<String> {
    vec!["*".to_owned()]
}

/// `POST /v1/admin/relying-parties`. Without the optional fields the relying party may push to
/// every user and may not enroll (what `pushauthd rp add NAME` always made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRelyingParty {
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
    pub id: String,
    pub name: String,
    pub api_key: String,
}

/// One relying party as `GET /v1/admin/relying-parties` lists it (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingPartyInfo {
    pub id: String,
    pub name: String,
    /// User patterns it may act for (see [`CreateRelyingParty::users`]).
    pub users: Vec<String>,
    pub enroll: bool,
    pub bootstrap: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; set once revoked (its key is then refused).
    pub revoked_at: Option<String>,
}

/// `GET /v1/admin/relying-parties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingPartyList {
    pub relying_parties: Vec<RelyingPartyInfo>,
}

/// `POST /v1/enrollments` (relying-party key with the `enroll` right).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRpEnrollment {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Id of a challenge this relying party created for `user` with context
    /// `action = "add_device"`, approved on one of the user's devices in the last 10 minutes.
    /// Required when the user already has an active device; usable once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// One device with how it was bound, as `GET /v1/admin/users/{user}/devices[?all=true]` lists it
/// (the [`DeviceInfo`] fields plus these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBinding {
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
    pub devices: Vec<DeviceBinding>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: String,
    /// `enrolled`, `revoked`, `challenge_created`, `challenge_answered`, `challenge_expired`,
    /// `challenge_cancelled`, `rate_limited`, `signature_rejected`, `rp_created`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v1/admin/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    pub events: Vec<AuditEvent>,
}

/// Body of the webhook POST on a new challenge (signed with HMAC-SHA256 in a header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookNotification {
    pub challenge_id: String,
    pub user: String,
    pub device_id: String,
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
