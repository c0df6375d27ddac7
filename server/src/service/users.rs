//! Users as the administrator sees them: lifting a user's lock-outs, and the audit log.

use pushauth_proto::wire::AuditEvent;

use super::{Error, Result};
use crate::clock::Millis;
use crate::store::Store;

/// Default page of the audit log.
pub const DEFAULT_AUDIT_LIMIT: u64 = 100;
/// Largest page of the audit log.
pub const MAX_AUDIT_LIMIT: u64 = 1000;

/// Lifts the user's report lock-outs and wrong-code lock (`[limits] max_code_failures`) and
/// resets their push counters and count of wrong codes at once; audited as `user_unlocked`
/// with `actor` (`admin API from <address>`, `pushauthd unlock`).
///
/// # Errors
/// [`Error::UnknownUser`] for a user never seen, [`Error::Store`].
pub fn unlock(s: &dyn Store, user: &str, actor: &str, now: Millis) -> Result<()> {
    if s.unlock_user(user, actor, now)? {
        tracing::info!(%user, %actor, "user unlocked");
        Ok(())
    } else {
        Err(Error::UnknownUser)
    }
}

/// The audit log, newest first: `limit` events (1 to [`MAX_AUDIT_LIMIT`]), of one user if
/// given.
///
/// # Errors
/// [`Error::Invalid`] for a limit out of range, [`Error::Store`].
pub fn audit(s: &dyn Store, limit: u64, user: Option<&str>) -> Result<Vec<AuditEvent>> {
    if limit == 0 || limit > MAX_AUDIT_LIMIT {
        return Err(Error::Invalid(format!(
            "limit must be 1 to {MAX_AUDIT_LIMIT}"
        )));
    }
    let limit = u32::try_from(limit).unwrap_or(1000);
    Ok(s.list_audit(limit, user)?)
}
