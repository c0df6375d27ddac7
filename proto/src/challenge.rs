//! The challenge state machine, device decisions and number matching.
//!
//! `pending` → `acknowledged` → one terminal state (`approved`, `denied`, `expired`, `cancelled`).
//! Terminal states never change; stores apply these transitions as compare-and-set.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{random, ProtoError};

/// Where a challenge is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeState {
    /// Created; no device has fetched it yet.
    Pending,
    /// A device fetched it and is showing it.
    Acknowledged,
    /// A device approved it with the right code (terminal).
    Approved,
    /// A device denied or reported it, or the typed code was wrong (terminal).
    Denied,
    /// Nobody answered before `expires_at` (terminal).
    Expired,
    /// The relying party withdrew it (terminal).
    Cancelled,
}

impl ChallengeState {
    /// Every state, in life order.
    pub const ALL: [ChallengeState; 6] = [
        Self::Pending,
        Self::Acknowledged,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Cancelled,
    ];

    /// A terminal state is final: nothing moves a challenge out of it.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Acknowledged)
    }

    /// Whether `self → to` is a legal transition.
    pub fn can_become(self, to: ChallengeState) -> bool {
        match self {
            Self::Pending => to != Self::Pending,
            Self::Acknowledged => to.is_terminal(),
            _ => false,
        }
    }

    /// `Ok(to)` when `self → to` is legal, else the typed error.
    pub fn transition(self, to: ChallengeState) -> Result<ChallengeState, ProtoError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(ProtoError::IllegalTransition { from: self, to })
        }
    }

    /// The wire name (`"pending"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Acknowledged => "acknowledged",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ChallengeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChallengeState {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Self, ProtoError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ProtoError::UnknownValue {
                kind: "state",
                value: s.to_owned(),
            })
    }
}

/// What a device answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The person approved.
    Approve,
    /// The person denied.
    Deny,
    /// "This was not me": denies and locks further pushes to the user for a while.
    Report,
}

impl Decision {
    /// The wire text (`approve`, `deny`, `report`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::Report => "report",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Decision {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Self, ProtoError> {
        match s {
            "approve" => Ok(Self::Approve),
            "deny" => Ok(Self::Deny),
            "report" => Ok(Self::Report),
            _ => Err(ProtoError::UnknownValue {
                kind: "decision",
                value: s.to_owned(),
            }),
        }
    }
}

/// Why a challenge ended `denied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The person pressed deny.
    Denied,
    /// The person said "this was not me".
    Reported,
    /// The person approved but typed the wrong code.
    CodeMismatch,
}

impl Reason {
    /// The wire text (`denied`, `reported`, `code_mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Reported => "reported",
            Self::CodeMismatch => "code_mismatch",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Self, ProtoError> {
        match s {
            "denied" => Ok(Self::Denied),
            "reported" => Ok(Self::Reported),
            "code_mismatch" => Ok(Self::CodeMismatch),
            _ => Err(ProtoError::UnknownValue {
                kind: "reason",
                value: s.to_owned(),
            }),
        }
    }
}

/// The terminal state and reason a device's answer leads to.
///
/// `expected_code` is the challenge's code (None without number matching); `typed_code` is what the
/// person typed on the device. One attempt: a wrong code on approve ends the challenge.
pub fn decide(
    decision: Decision,
    expected_code: Option<&str>,
    typed_code: &str,
) -> (ChallengeState, Option<Reason>) {
    match decision {
        Decision::Deny => (ChallengeState::Denied, Some(Reason::Denied)),
        Decision::Report => (ChallengeState::Denied, Some(Reason::Reported)),
        Decision::Approve => match expected_code {
            Some(expected) if !code_matches(expected, typed_code) => {
                (ChallengeState::Denied, Some(Reason::CodeMismatch))
            }
            _ => (ChallengeState::Approved, None),
        },
    }
}

/// Compares a typed code with the expected one in constant time (for equal lengths).
pub fn code_matches(expected: &str, typed: &str) -> bool {
    let typed = typed.trim();
    expected.len() == typed.len() && bool::from(expected.as_bytes().ct_eq(typed.as_bytes()))
}

/// A fresh number-matching code: two digits, `10` to `99`, so it never starts with a zero that a
/// person might drop.
pub fn generate_code() -> Result<String, ProtoError> {
    loop {
        let [byte] = random::bytes::<1>()?;
        // 90 * 2 = 180 keeps the draw uniform; reject the tail.
        if byte < 180 {
            return Ok((10 + byte % 90).to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChallengeState::*;

    #[test]
    fn terminal_states_never_change() {
        for from in [Approved, Denied, Expired, Cancelled] {
            assert!(from.is_terminal());
            for to in ChallengeState::ALL {
                assert!(!from.can_become(to), "{from} -> {to} must be illegal");
                assert!(from.transition(to).is_err());
            }
        }
    }

    #[test]
    fn open_states_move_forward_only() {
        for to in [Acknowledged, Approved, Denied, Expired, Cancelled] {
            assert!(Pending.can_become(to));
        }
        assert!(!Pending.can_become(Pending));
        assert!(!Acknowledged.can_become(Pending));
        assert!(!Acknowledged.can_become(Acknowledged));
        for to in [Approved, Denied, Expired, Cancelled] {
            assert!(Acknowledged.can_become(to));
        }
    }

    #[test]
    fn names_round_trip() {
        for state in ChallengeState::ALL {
            assert_eq!(state.as_str().parse::<ChallengeState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert!("bogus".parse::<ChallengeState>().is_err());
        assert!("maybe".parse::<Decision>().is_err());
    }

    #[test]
    fn deciding() {
        assert_eq!(
            decide(Decision::Approve, Some("42"), "42"),
            (Approved, None)
        );
        assert_eq!(
            decide(Decision::Approve, Some("42"), " 42\n"),
            (Approved, None)
        );
        assert_eq!(
            decide(Decision::Approve, Some("42"), "24"),
            (Denied, Some(Reason::CodeMismatch))
        );
        assert_eq!(
            decide(Decision::Approve, Some("42"), ""),
            (Denied, Some(Reason::CodeMismatch))
        );
        assert_eq!(decide(Decision::Approve, None, ""), (Approved, None));
        assert_eq!(
            decide(Decision::Deny, Some("42"), "42"),
            (Denied, Some(Reason::Denied))
        );
        assert_eq!(
            decide(Decision::Report, None, ""),
            (Denied, Some(Reason::Reported))
        );
    }

    #[test]
    fn codes_are_two_digits_without_leading_zero() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let code = generate_code().unwrap();
            assert_eq!(code.len(), 2);
            let n: u32 = code.parse().unwrap();
            assert!((10..=99).contains(&n));
            seen.insert(n);
        }
        assert!(seen.len() > 80, "codes should spread over the range");
    }
}
