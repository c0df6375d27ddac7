//! The rules of pushauthd as plain functions over the [`Store`](crate::store::Store): who may
//! push to whom, what a challenge may become, who may get an enrollment link, what a relying
//! party or a device may do. The HTTP handlers ([`crate::api`]) and the admin command line
//! ([`crate::cli`]) both call these, so each rule has one home.
//!
//! Functions that touch the store take `&dyn Store` and run inside one store job (the caller
//! picks the thread); pure checks run before it, off the store thread. Where a rule is checked
//! over what the store read and then written on, both happen in one [`atomically`] unit; the
//! store decides nothing. Every refusal is an
//! [`Error`]; no HTTP type appears here, [`crate::api::ApiError`] maps errors to statuses.
//!
//! - [`challenges`]: create, read, cancel, acknowledge and answer challenges;
//! - [`enrollments`]: enrollment links (administrator and relying party) and their redemption;
//! - [`keys`]: relying parties, their API keys and the rights a key carries;
//! - [`devices`]: signed device requests, device keys, listing and revoking devices;
//! - [`device_self`]: the enrollment-link lookup and a device's removal of itself;
//! - [`offline`]: offline codes (issue 12): secrets at enrollment, cached values;
//!   [`offline_used`]: a host's report of a code used while pushauthd was down;
//! - [`users`]: unlocking a user, the audit log;
//! - [`subscriptions`]: a device's Web Push subscription (set, replace, remove);
//! - [`notices`]: what a user's devices are told (bindings and stored notices);
//! - [`backup_codes`]: issuing sets of backup codes and using one instead of a push;
//!   [`backup_enroll`]: an enrollment link approved by a backup code.
//! - [`grace`]: the grace window for repeated logins, and ending it (issue 12).

pub mod backup_codes;
pub mod backup_enroll;
pub mod backup_sets;
pub mod challenges;
pub mod device_self;
pub mod devices;
pub mod enrollments;
pub mod grace;
pub mod keys;
pub mod notices;
pub mod offline;
pub mod offline_used;
pub mod subscriptions;
pub mod users;

use pushauth_proto::names::NameError;
use pushauth_proto::ChallengeState;
use thiserror::Error;

use crate::clock::Millis;
use crate::store::{Store, StoreError};

/// Why a service function refused or failed. Each variant is one outcome callers tell apart;
/// the `Display` text is the message for people.
#[derive(Debug, Error)]
pub enum Error {
    /// The request is not what the operation takes (a bad field, an out-of-range number).
    #[error("{0}")]
    Invalid(String),
    /// The challenge context is too large or holds bad keys or characters.
    #[error("{0}")]
    InvalidContext(String),
    /// No credentials, or wrong ones.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such object (or one the caller may not see, which looks the same).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The user was never seen.
    #[error("no such user")]
    UnknownUser,
    /// The user has no (matching) active device.
    #[error("the user has no (matching) active device; enroll one first")]
    NoDevice,
    /// The challenge is in a state the operation does not start from.
    #[error("the challenge is already {0}")]
    WrongState(ChallengeState),
    /// Another object is in a state the operation does not start from.
    #[error("{0}")]
    Conflict(String),
    /// The challenge expired.
    #[error("the challenge expired")]
    Expired,
    /// A push-fatigue limit refused a new challenge.
    #[error("{}", .0.message())]
    Limited(crate::limits::Refusal),
    /// A relying party's enrollment request was refused.
    #[error("{0}")]
    Enrollment(#[from] crate::enrollment::Refusal),
    /// No enrollment link with this token.
    #[error("no such enrollment token")]
    UnknownEnrollment,
    /// The enrollment link was used before.
    #[error("this enrollment link was already used")]
    EnrollmentUsed,
    /// The enrollment link expired.
    #[error("this enrollment link expired; ask for a new one")]
    EnrollmentExpired,
    /// A signed device request names a device the server does not know.
    #[error("no such device")]
    UnknownDevice,
    /// A signed device request comes from a revoked device.
    #[error("this device was revoked; enroll it again")]
    DeviceRevoked,
    /// A signed device request's timestamp is too far from the server's clock.
    #[error("{0}")]
    StaleTimestamp(String),
    /// A signature (request, answer, proof of possession) does not verify.
    #[error("{0}")]
    BadSignature(&'static str),
    /// A signed device request's nonce was used before.
    #[error("this request nonce was used before")]
    ReplayedNonce,
    /// A push subscription's endpoint is at a push service that is not allowed.
    #[error("{0}")]
    PushOriginNotAllowed(String),
    /// The caller made too many changes of this kind lately (the text says which and when
    /// to try again).
    #[error("{0}")]
    TooManyChanges(String),
    /// A backup code was refused: wrong, used, or none issued (one answer for all).
    #[error("this backup code was not accepted: it is wrong, was used before, or is not one of this user's codes")]
    BackupCodeInvalid,
    /// Too many wrong backup codes in a row (`[limits] max_backup_code_failures`).
    #[error(
        "too many wrong backup codes in a row: this user's backup codes are locked until an \
         administrator runs `pushauthd unlock USER`"
    )]
    BackupCodesLocked,
    /// The store reached its size bound (`[retention] max_db_mb`).
    #[error(
        "the server's store reached its size bound; new challenges are refused until an \
         administrator makes room"
    )]
    StorageFull,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Something that should not fail did (no randomness, an unusable stored key, the store
    /// threads gone); the text is for the log, never for the caller.
    #[error("{0}")]
    Internal(String),
}

impl From<NameError> for Error {
    fn from(e: NameError) -> Self {
        Error::Invalid(e.to_string())
    }
}

impl From<crate::hashing::HashingError> for Error {
    fn from(e: crate::hashing::HashingError) -> Self {
        match e {
            crate::hashing::HashingError::Busy => Error::TooManyChanges(e.to_string()),
            crate::hashing::HashingError::Failed(why) => Error::Internal(why),
        }
    }
}

impl From<crate::limits::Refusal> for Error {
    fn from(r: crate::limits::Refusal) -> Self {
        Error::Limited(r)
    }
}

/// The error for a failed draw of random bytes (ids, codes, tokens).
pub fn no_randomness(e: pushauth_proto::ProtoError) -> Error {
    Error::Internal(format!("no randomness: {e}"))
}

/// A result of the service layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `f` as one [`Store::atomic`] unit: a rule `f` checks over what it reads still holds
/// when `f` writes, even against other threads or processes on the same store. Refusals keep
/// what `f` wrote (the audit of the refusal); a store failure undoes all of it.
///
/// # Errors
/// Whatever `f` returns; [`Error::Store`] when the unit cannot be run or finished.
pub fn atomically<T>(s: &dyn Store, f: impl FnOnce(&dyn Store) -> Result<T>) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    s.atomic(&mut |s| {
        let Some(f) = f.take() else {
            return Ok(());
        };
        match f(s) {
            Err(Error::Store(e)) => Err(e),
            other => {
                out = Some(other);
                Ok(())
            }
        }
    })?;
    out.unwrap_or_else(|| Err(Error::Internal("the store skipped an atomic unit".into())))
}

/// `secs` seconds in milliseconds, saturating.
pub fn secs_to_ms(secs: u64) -> Millis {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The expiry of something that lives `ttl_secs` from `now`, on a whole second (wire times
/// are RFC 3339 seconds).
pub fn expiry(now: Millis, ttl_secs: u64) -> Millis {
    crate::clock::ceil_to_second(now.saturating_add(secs_to_ms(ttl_secs)))
}
