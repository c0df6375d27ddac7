//! Push-fatigue limits that cannot be turned into a lockout weapon: they count only
//! challenges that were not approved, and they are kept per *source* (user, relying party and
//! the login's source address), so one address's pushes never stop another's logins. Per-user
//! ceilings, far higher, still stop a spray from many addresses. A report locks only its
//! source, and `pushauthd unlock` lifts a user's locks and resets the counts.

use pushauth_proto::wire::ErrorCode;
use pushauth_proto::Context;

use crate::clock::Millis;
use crate::config::Limits;

/// Context keys that name a login's source address, in the order they are looked for: `rhost`
/// (pam_push: PAM_RHOST), `remote_addr` and `ip` (identity providers; the Keycloak shim sends
/// `ip`).
pub const SOURCE_KEYS: [&str; 3] = ["rhost", "remote_addr", "ip"];

/// The login's source address as the relying party gave it; empty (a source of its own) when
/// it gave none.
pub fn source_of(context: &Context) -> String {
    SOURCE_KEYS
        .iter()
        .filter_map(|key| context.get(*key))
        .map(|value| value.trim())
        .find(|value| !value.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// What the store knows about recent pushes to a user, read in the same transaction that would
/// insert the new challenge. "Source" is the new challenge's user, relying party and source
/// address; nothing from before the user's last unlock counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushState {
    /// End of a report lock-out of this source.
    pub locked_until: Option<Millis>,
    /// Pending or acknowledged challenges not yet expired, of this source.
    pub open_source: u32,
    /// The same over all the user's sources.
    pub open_user: u32,
    /// Challenges of this source created in the window and not approved.
    pub recent_source: u32,
    /// The same over all the user's sources.
    pub recent_user: u32,
}

/// Why a new challenge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UserLocked,
    TooManyOpen,
    RateLimited,
}

impl Refusal {
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::UserLocked => ErrorCode::UserLocked,
            Refusal::TooManyOpen => ErrorCode::TooManyOpenChallenges,
            Refusal::RateLimited => ErrorCode::RateLimited,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::UserLocked => {
                "a recent push to this user from this source was reported as not theirs; new \
                 pushes from it are paused (an administrator can lift this with pushauthd unlock)"
            }
            Refusal::TooManyOpen => {
                "this user already has the maximum number of open challenges from this source"
            }
            Refusal::RateLimited => {
                "too many unanswered or denied challenges for this user; try again later"
            }
        }
    }
}

/// Start of the rate window ending at `now`.
pub fn window_start(limits: &Limits, now: Millis) -> Millis {
    now.saturating_sub(i64::try_from(limits.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// Lock end after a report at `now`.
pub fn lock_until(limits: &Limits, now: Millis) -> Millis {
    now.saturating_add(
        i64::try_from(limits.report_lockout_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    )
}

/// Decides whether one more challenge may be created.
pub fn check(limits: &Limits, state: &PushState, now: Millis) -> Result<(), Refusal> {
    if state.locked_until.is_some_and(|until| until > now) {
        return Err(Refusal::UserLocked);
    }
    if state.open_source >= limits.max_open_per_source
        || state.open_user >= limits.max_open_per_user
    {
        return Err(Refusal::TooManyOpen);
    }
    if state.recent_source >= limits.max_new_per_window
        || state.recent_user >= limits.max_new_per_user_window
    {
        return Err(Refusal::RateLimited);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_refusals() {
        let limits = Limits::default();
        let ok = PushState {
            locked_until: None,
            open_source: 2,
            open_user: 29,
            recent_source: 9,
            recent_user: 99,
        };
        assert_eq!(check(&limits, &ok, 1000), Ok(()));
        let locked = PushState {
            locked_until: Some(2000),
            open_source: 5,
            ..ok
        };
        assert_eq!(check(&limits, &locked, 1000), Err(Refusal::UserLocked));
        assert_eq!(
            check(&limits, &locked, 2000),
            Err(Refusal::TooManyOpen),
            "lock ended"
        );
        let crowded = PushState {
            open_user: 30,
            ..ok
        };
        assert_eq!(check(&limits, &crowded, 1000), Err(Refusal::TooManyOpen));
        let busy = PushState {
            recent_source: 10,
            ..ok
        };
        assert_eq!(check(&limits, &busy, 1000), Err(Refusal::RateLimited));
        let sprayed = PushState {
            recent_user: 100,
            ..ok
        };
        assert_eq!(check(&limits, &sprayed, 1000), Err(Refusal::RateLimited));
    }

    #[test]
    fn issue9_item13_the_source_is_the_login_address_the_rp_sent() {
        let ctx = |pairs: &[(&str, &str)]| -> Context {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(source_of(&ctx(&[("rhost", "192.0.2.1")])), "192.0.2.1");
        assert_eq!(source_of(&ctx(&[("ip", "2001:db8::1")])), "2001:db8::1");
        assert_eq!(
            source_of(&ctx(&[("remote_addr", "198.51.100.2"), ("ip", "x")])),
            "198.51.100.2"
        );
        assert_eq!(
            source_of(&ctx(&[("rhost", " "), ("ip", "203.0.113.9")])),
            "203.0.113.9"
        );
        assert_eq!(source_of(&ctx(&[("service", "sudo")])), "");
    }
}
