//! Push-fatigue limits: a reported user is locked for a while, open challenges per user are
//! bounded, and so are new challenges per user per window.

use pushauth_proto::wire::ErrorCode;

use crate::clock::Millis;
use crate::config::Limits;

/// What the store knows about a user's recent pushes, read in the same transaction that would
/// insert the new challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushState {
    pub locked_until: Option<Millis>,
    /// Pending or acknowledged challenges not yet expired.
    pub open: u32,
    /// Challenges created since the start of the window.
    pub recent: u32,
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
                "a recent push to this user was reported as not theirs; new pushes are paused"
            }
            Refusal::TooManyOpen => "this user already has the maximum number of open challenges",
            Refusal::RateLimited => "too many new challenges for this user; try again later",
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
    if state.open >= limits.max_open_per_user {
        return Err(Refusal::TooManyOpen);
    }
    if state.recent >= limits.max_new_per_window {
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
            open: 2,
            recent: 9,
        };
        assert_eq!(check(&limits, &ok, 1000), Ok(()));
        let locked = PushState {
            locked_until: Some(2000),
            open: 5,
            ..ok
        };
        assert_eq!(check(&limits, &locked, 1000), Err(Refusal::UserLocked));
        assert_eq!(
            check(&limits, &locked, 2000),
            Err(Refusal::TooManyOpen),
            "lock ended"
        );
        let busy = PushState { recent: 10, ..ok };
        assert_eq!(check(&limits, &busy, 1000), Err(Refusal::RateLimited));
    }
}
