//! The grace window for repeated logins (issue 12): a relying party that asks for it
//! (`"grace_secs"` on `POST /v1/challenges`) gets a login let in without a push when a device
//! approved the same login (same relying party, user and
//! [`grace key`](pushauth_proto::grace::grace_key)) within that many seconds. The window rules
//! are the store's one query ([`Store::grace_login`]); here are the checks of the request, the
//! choice between grace and push, and ending a user's windows (a device, an administrator).
//!
//! The server's word is not the last: a PAM host accepts a grace answer only for an approval it
//! verified and recorded itself, so a server that is broken into cannot let anyone in this way.

use pushauth_proto::grace::{grace_key, MAX_GRACE_SECS};
use pushauth_proto::wire::{
    CreateChallenge, ACTION_ADD_DEVICE, ACTION_ISSUE_BACKUP_CODES, NOTICE_GRACE_ENDED,
};
use pushauth_proto::Context;

use super::challenges::{self, NewRequest};
use super::keys::{self, RpCaller};
use super::notices;
use super::{atomically, secs_to_ms, Error, Result};
use crate::bounds::SizeBound;
use crate::clock::Millis;
use crate::config::Limits;
use crate::limits;
use crate::store::{
    ChallengeRecord, DeviceRecord, GraceFind, NoticeRecord, PushSubscriptionRecord, Store,
};

/// A relying party's checked ask for grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceAsk {
    /// The window, 1 to [`MAX_GRACE_SECS`] seconds.
    pub secs: u64,
    /// The login's grace key.
    pub key: [u8; 32],
}

/// Checks a request's `grace_secs` (off the store thread): absent is no grace; 0, more than
/// [`MAX_GRACE_SECS`], or grace on a challenge with any `action` (an enrollment approval, a new
/// set of backup codes: those must come from a device) are refused.
///
/// # Errors
/// [`Error::Invalid`] with a message saying what is allowed.
pub fn ask(req: &CreateChallenge) -> Result<Option<GraceAsk>> {
    let Some(secs) = req.grace_secs else {
        return Ok(None);
    };
    if secs == 0 || secs > MAX_GRACE_SECS {
        return Err(Error::Invalid(format!(
            "grace_secs must be 1 to {MAX_GRACE_SECS} seconds (got {secs}); leave it out to \
             push every time"
        )));
    }
    // Grace is for repeated logins only. A challenge that approves an action (add_device,
    // issue_backup_codes, any other) needs a device's own answer every time, and its approval
    // must open no window for logins (the grace key does not cover `action`).
    if let Some(action) = req.context.get("action") {
        return Err(Error::Invalid(format!(
            "a challenge with an action ({action}) never takes grace: {ACTION_ADD_DEVICE}, \
             {ACTION_ISSUE_BACKUP_CODES} and every other action need a device's own approval; \
             drop grace_secs"
        )));
    }
    Ok(Some(GraceAsk {
        secs,
        key: grace_key(&req.user, &req.context),
    }))
}

/// The window a login was let in by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The approval that opened it.
    pub of: String,
    /// When the window closes: that approval plus the `grace_secs` asked now.
    pub until: Millis,
}

/// What [`create`] made: a pending challenge sent to `devices`, or one already approved by a
/// grace window (`grace`, no devices: nothing to push).
#[derive(Debug)]
pub struct Created {
    /// The challenge.
    pub challenge: ChallengeRecord,
    /// The devices to push to (empty for a grace login).
    pub devices: Vec<DeviceRecord>,
    /// Their Web Push subscriptions (empty for a grace login).
    pub subscriptions: Vec<PushSubscriptionRecord>,
    /// Set when a grace window let the login in.
    pub grace: Option<Granted>,
}

/// Creates a challenge ([`challenges::create`]) or, when the relying party asked for grace
/// and a window is open, lets the login in without a push. Scope first, then the request's own
/// checks; the look for a window, the push and the recording of the new challenge's grace key
/// are one [`atomically`] unit, so a window ended meanwhile opens nothing.
///
/// # Errors
/// The errors of [`challenges::create`], and [`Error::Invalid`] for a bad `grace_secs`.
pub fn create(
    s: &dyn Store,
    rp: &RpCaller,
    request: NewRequest,
    ask: Result<Option<GraceAsk>>,
    limits: &Limits,
    bound: &SizeBound,
) -> Result<Created> {
    rp.require_user(&request.user, "push to")?;
    let Some(ask) = ask? else {
        let created = challenges::create(s, rp, request, limits, bound)?;
        return Ok(Created {
            challenge: created.challenge,
            devices: created.devices,
            subscriptions: created.subscriptions,
            grace: None,
        });
    };
    let mut new = request.checked?;
    new.rp_id.clone_from(&rp.rp_id);
    let now = new.created_at;
    keys::atomically_for(s, rp, |s| {
        if bound.over(s, now)? {
            return Err(Error::StorageFull);
        }
        let find = GraceFind {
            key: ask.key,
            since: now.saturating_sub(secs_to_ms(ask.secs)),
        };
        let check = |push: &limits::PushState| limits::check(limits, push, now);
        if let Some(login) = s.grace_login(&new, &find, &check)? {
            tracing::info!(challenge = %login.challenge.id, of = %login.of, user = %login.challenge.user, "grace login");
            return Ok(Created {
                challenge: login.challenge,
                devices: Vec::new(),
                subscriptions: Vec::new(),
                grace: Some(Granted {
                    of: login.of,
                    until: login.approved_at.saturating_add(secs_to_ms(ask.secs)),
                }),
            });
        }
        let request = NewRequest {
            user: new.user.clone(),
            checked: Ok(new),
        };
        let created = challenges::create(s, rp, request, limits, bound)?;
        s.set_grace_key(&created.challenge.id, &ask.key)?;
        Ok(Created {
            challenge: created.challenge,
            devices: created.devices,
            subscriptions: created.subscriptions,
            grace: None,
        })
    })
}

/// Who ends a user's grace windows, for the audit row and the device notice.
#[derive(Debug, Clone, Copy)]
pub struct EndedBy<'a> {
    /// In words, for the audit row (`the device`, `admin API from <address>`,
    /// `pushauthd grace end`).
    pub by: &'a str,
    /// For the notice: `device:<id>`, `admin` or `cli`.
    pub via: &'a str,
    /// The device that asked, if one did.
    pub device: Option<&'a str>,
    /// The caller's address, if known.
    pub source: Option<&'a str>,
}

/// Ends every grace window of `user` and tells the user's devices (a `grace_ended` notice,
/// stored in the same unit); the next login of the user takes a push again. Returns the
/// user's active devices, to wake with [`crate::state::AppState::announce_notice`].
///
/// # Errors
/// [`Error::UnknownUser`] for a user never seen, [`Error::Store`].
pub fn end(s: &dyn Store, user: &str, who: EndedBy<'_>, now: Millis) -> Result<Vec<String>> {
    let devices = atomically(s, |s| {
        if !s.end_grace(user, who.by, who.device, now)? {
            return Err(Error::UnknownUser);
        }
        notices::record(
            s,
            &NoticeRecord {
                user: user.to_owned(),
                kind: NOTICE_GRACE_ENDED.to_owned(),
                at: now,
                source: who.source.map(str::to_owned),
                via: Some(who.via.to_owned()),
                context: Context::new(),
                count: None,
            },
        )
    })?;
    tracing::info!(%user, by = %who.by, "grace windows ended");
    Ok(devices)
}
