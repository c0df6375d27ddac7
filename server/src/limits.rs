//! Push-fatigue limits that cannot be turned into a lockout weapon: they count only
//! challenges that were not approved, and they are kept per *source* (user, relying party and
//! the login's source address), so one address's pushes never stop another's logins. Per-user
//! ceilings, far higher, still stop a spray from many addresses. A report locks only its
//! source, and `pushauthd unlock` lifts a user's locks and resets the counts.
//!
//! The per-user ceilings do not apply to a *known* source: one the user approved a login from
//! in the last [`KNOWN_SOURCE_DAYS`] days. Whoever holds only the password can spray pushes from
//! many addresses, but cannot make any of them known, so the owner's logins from where they
//! usually log in keep working while the spray is refused.

use std::net::IpAddr;

use pushauth_proto::wire::ErrorCode;
use pushauth_proto::Context;

use crate::clock::Millis;
use crate::config::Limits;

/// Context keys that name a login's source address, in the order they are looked for: `rhost`
/// (pam_push: PAM_RHOST), `remote_addr` and `ip` (identity providers; the Keycloak shim sends
/// `ip`).
pub const SOURCE_KEYS: [&str; 3] = ["rhost", "remote_addr", "ip"];

/// How long an approved login makes its source known (exempt from the per-user ceilings).
pub const KNOWN_SOURCE_DAYS: i64 = 30;

/// The login's source as the relying party gave it. An address key (`rhost`, `remote_addr`,
/// `ip`) wins; an IPv6 address counts by its /64 (one host usually holds a whole /64, as the
/// connection caps assume) and an IPv4-mapped one as IPv4. A login without an address (a local
/// `su`, `sudo` or console login) is told apart by its terminal: `local:<host>/<tty>`, so one
/// local user's pushes never stop another's on the same host. Empty when none of these is given.
pub fn source_of(context: &Context) -> String {
    let address = SOURCE_KEYS
        .iter()
        .filter_map(|key| context.get(*key))
        .map(|value| value.trim())
        .find(|value| !value.is_empty());
    if let Some(address) = address {
        let bare = address.trim_start_matches('[').trim_end_matches(']');
        return match bare.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            // A host name (PAM_RHOST may hold one): as given.
            Err(_) => address.to_owned(),
        };
    }
    match context
        .get("tty")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        Some(tty) => format!(
            "local:{}/{tty}",
            context.get("host").map(|h| h.trim()).unwrap_or_default()
        ),
        None => String::new(),
    }
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
    /// The user approved a login from this source (and relying party) in the last
    /// [`KNOWN_SOURCE_DAYS`] days: the per-user ceilings do not apply to it.
    pub known_source: bool,
    /// The user's consecutive wrong codes, over all challenges since the last right one or
    /// unlock.
    pub code_failures: u32,
}

/// Why a new challenge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_code_failures` consecutive wrong codes lock every push to the user until an
    /// administrator unlocks.
    CodeLocked,
    /// A recent report locks pushes to the user from this source.
    UserLocked,
    /// The user has the maximum number of open challenges from this source.
    TooManyOpen,
    /// Too many unapproved challenges for the user from this source in the window.
    RateLimited,
    /// The per-user ceiling of open challenges, for a source the user never approved from.
    TooManyOpenForUser,
    /// The per-user ceiling of unapproved challenges in the window, for such a source.
    RateLimitedForUser,
}

impl Refusal {
    /// The stable wire code.
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::CodeLocked | Refusal::UserLocked => ErrorCode::UserLocked,
            Refusal::TooManyOpen | Refusal::TooManyOpenForUser => ErrorCode::TooManyOpenChallenges,
            Refusal::RateLimited | Refusal::RateLimitedForUser => ErrorCode::RateLimited,
        }
    }

    /// What happened and what to do, for people.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::CodeLocked => {
                "too many wrong codes were typed for this user in a row; new pushes to this user \
                 are stopped until an administrator runs pushauthd unlock"
            }
            Refusal::UserLocked => {
                "a recent push to this user from this source was reported as not theirs; new \
                 pushes from it are paused (an administrator can lift this with pushauthd unlock)"
            }
            Refusal::TooManyOpen => {
                "this user already has the maximum number of open challenges from this source"
            }
            Refusal::RateLimited => {
                "too many unanswered or denied challenges for this user from this source; try \
                 again later"
            }
            Refusal::TooManyOpenForUser => {
                "this user has the maximum number of open challenges from all sources; logins \
                 from a place this user approved from recently are not affected"
            }
            Refusal::RateLimitedForUser => {
                "too many unanswered or denied challenges for this user from all sources; logins \
                 from a place this user approved from recently are not affected"
            }
        }
    }
}

/// Start of the rate window ending at `now`.
pub fn window_start(limits: &Limits, now: Millis) -> Millis {
    now.saturating_sub(i64::try_from(limits.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// The earliest approved login that still makes its source known at `now`
/// ([`KNOWN_SOURCE_DAYS`] back): what the store counts from for [`PushState::known_source`].
pub fn known_since(now: Millis) -> Millis {
    now.saturating_sub(KNOWN_SOURCE_DAYS * 24 * 3600 * 1000)
}

/// Lock end after a report at `now`.
pub fn lock_until(limits: &Limits, now: Millis) -> Millis {
    now.saturating_add(
        i64::try_from(limits.report_lockout_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    )
}

/// Decides whether one more challenge may be created.
pub fn check(limits: &Limits, state: &PushState, now: Millis) -> Result<(), Refusal> {
    // First, and for every source: guessing codes is what this lock stops.
    if state.code_failures >= limits.max_code_failures {
        return Err(Refusal::CodeLocked);
    }
    if state.locked_until.is_some_and(|until| until > now) {
        return Err(Refusal::UserLocked);
    }
    if state.open_source >= limits.max_open_per_source {
        return Err(Refusal::TooManyOpen);
    }
    if state.recent_source >= limits.max_new_per_window {
        return Err(Refusal::RateLimited);
    }
    if !state.known_source {
        if state.open_user >= limits.max_open_per_user {
            return Err(Refusal::TooManyOpenForUser);
        }
        if state.recent_user >= limits.max_new_per_user_window {
            return Err(Refusal::RateLimitedForUser);
        }
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
            known_source: false,
            code_failures: 9,
        };
        assert_eq!(check(&limits, &ok, 1000), Ok(()));
        let guessed = PushState {
            code_failures: 10,
            known_source: true,
            ..ok
        };
        assert_eq!(check(&limits, &guessed, 1000), Err(Refusal::CodeLocked));
        assert_eq!(Refusal::CodeLocked.code(), ErrorCode::UserLocked);
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
        assert_eq!(
            check(&limits, &crowded, 1000),
            Err(Refusal::TooManyOpenForUser)
        );
        // A source the user approved from recently is not held by the per-user ceilings.
        let known = PushState {
            known_source: true,
            ..crowded
        };
        assert_eq!(check(&limits, &known, 1000), Ok(()));
        let busy = PushState {
            recent_source: 10,
            ..ok
        };
        assert_eq!(check(&limits, &busy, 1000), Err(Refusal::RateLimited));
        let sprayed = PushState {
            recent_user: 100,
            ..ok
        };
        assert_eq!(
            check(&limits, &sprayed, 1000),
            Err(Refusal::RateLimitedForUser)
        );
        assert_eq!(
            check(
                &limits,
                &PushState {
                    known_source: true,
                    ..sprayed
                },
                1000
            ),
            Ok(())
        );
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
        assert_eq!(
            source_of(&ctx(&[("ip", "2001:db8::1")])),
            "2001:db8:0:0::/64"
        );
        assert_eq!(
            source_of(&ctx(&[("rhost", "2001:db8:7:9:1:2:3:4")])),
            source_of(&ctx(&[("rhost", "[2001:db8:7:9::ff]")])),
            "one /64 is one source"
        );
        assert_eq!(
            source_of(&ctx(&[("rhost", "::ffff:192.0.2.7")])),
            "192.0.2.7"
        );
        assert_eq!(
            source_of(&ctx(&[("rhost", "laptop.example")])),
            "laptop.example"
        );
        assert_eq!(
            source_of(&ctx(&[("remote_addr", "198.51.100.2"), ("ip", "x")])),
            "198.51.100.2"
        );
        assert_eq!(
            source_of(&ctx(&[("rhost", " "), ("ip", "203.0.113.9")])),
            "203.0.113.9"
        );
        assert_eq!(source_of(&ctx(&[("service", "sudo")])), "");
        // Local logins are told apart by their terminal.
        assert_eq!(
            source_of(&ctx(&[
                ("service", "su"),
                ("host", "shared01"),
                ("tty", "pts/7")
            ])),
            "local:shared01/pts/7"
        );
        assert_ne!(
            source_of(&ctx(&[("host", "shared01"), ("tty", "pts/7")])),
            source_of(&ctx(&[("host", "shared01"), ("tty", "pts/2")]))
        );
    }
}
