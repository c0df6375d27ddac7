//! What a device (or the person holding an enrollment link) may do about itself (issue 11):
//! look up an enrollment link before redeeming it, so the web app can say which user the link
//! is for, and remove itself.

use super::enrollments::{link_refusal, open_link};
use super::{Error, Result};
use crate::clock::Millis;
use crate::store::{DeviceRecord, EnrollmentRecord, Store};

/// The actor recorded when a device revokes itself (`revoked` audit event, "by self").
pub const SELF_ACTOR: &str = "self";

/// Longest token the lookup hashes; real tokens are 43 characters. A longer one is unknown
/// without touching the store.
const MAX_TOKEN_CHARS: usize = 256;

/// The link behind `token`, if it could be redeemed now. Reads only. Unknown, used and
/// expired links, and relying-party links whose grounds no longer hold, all give the same
/// [`Error::UnknownEnrollment`], so the answer tells a token guesser nothing about which
/// tokens once existed.
///
/// # Errors
/// [`Error::UnknownEnrollment`], [`Error::Store`].
pub fn lookup_link(s: &dyn Store, token: &str, now: Millis) -> Result<EnrollmentRecord> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(Error::UnknownEnrollment);
    }
    let link = match open_link(s, token, now) {
        Ok(link) => link,
        Err(Error::Store(e)) => return Err(Error::Store(e)),
        Err(_) => return Err(Error::UnknownEnrollment),
    };
    if link_refusal(s, &link)?.is_some() {
        return Err(Error::UnknownEnrollment);
    }
    Ok(link)
}

/// Revokes `device` at its own signed request (audited as `revoked` "by self"); the store
/// also drops it from its open challenges. Returns the device as revoked.
///
/// # Errors
/// [`Error::NotFound`] if it vanished meanwhile, [`Error::Store`].
pub fn remove_self(s: &dyn Store, device: &DeviceRecord, now: Millis) -> Result<DeviceRecord> {
    super::devices::revoke(s, &device.id, SELF_ACTOR, now)
}
