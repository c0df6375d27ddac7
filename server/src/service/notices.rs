//! Device notices: what a user's devices are told (a device added, a backup code used, a new
//! set of backup codes…). Bindings are read from the devices themselves; every other kind is
//! stored with [`record`] in the unit of the event it announces, and forgotten after
//! [`NOTICE_WINDOW_MS`].

use pushauth_proto::wire::NOTICE_DEVICE_ADDED;

use super::challenges::{new_bindings, NOTICE_WINDOW_MS};
use super::Result;
use crate::clock::Millis;
use crate::store::{DeviceRecord, NoticeRecord, Store};

/// One notice as the service finds it: a binding, or a stored notice.
#[derive(Debug, Clone)]
pub enum Notice {
    /// `device_added`: another device of the user, bound within the window.
    Binding(DeviceRecord),
    /// Any other kind.
    Stored(NoticeRecord),
}

impl Notice {
    fn at(&self) -> Millis {
        match self {
            Notice::Binding(d) => d.created_at,
            Notice::Stored(n) => n.at,
        }
    }
}

/// Stores `notice` (call it inside the event's [`Store::atomic`] unit) and returns the user's
/// active devices' ids, to wake with [`crate::state::AppState::announce_notice`].
///
/// # Errors
/// [`super::Error::Store`].
pub fn record(s: &dyn Store, notice: &NoticeRecord) -> Result<Vec<String>> {
    s.add_notice(notice, notice.at.saturating_sub(NOTICE_WINDOW_MS))?;
    let devices = s.user_devices(&notice.user)?.unwrap_or_default();
    Ok(devices
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| d.id)
        .collect())
}

/// The notices for `caller` from the last [`NOTICE_WINDOW_MS`], newest first: the bindings of
/// its user (without itself), and with `all` every stored kind too (`?kinds=all`; clients that
/// predate other kinds than [`NOTICE_DEVICE_ADDED`] do not ask for them).
///
/// # Errors
/// [`super::Error::Store`].
pub fn for_device(
    s: &dyn Store,
    caller: &DeviceRecord,
    now: Millis,
    all: bool,
) -> Result<Vec<Notice>> {
    let mut out: Vec<Notice> = new_bindings(s, caller, now)?
        .into_iter()
        .map(Notice::Binding)
        .collect();
    if all {
        let since = now.saturating_sub(NOTICE_WINDOW_MS);
        out.extend(
            s.user_notices(&caller.user, since)?
                .into_iter()
                .filter(|n| n.kind != NOTICE_DEVICE_ADDED)
                .map(Notice::Stored),
        );
        // Stable: the two lists are each newest first already.
        out.sort_by_key(|n| std::cmp::Reverse(n.at()));
    }
    Ok(out)
}
