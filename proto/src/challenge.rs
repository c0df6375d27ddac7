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

/// Shortest code `code_digits` allows.
pub const MIN_CODE_DIGITS: u8 = 2;
/// Longest code `code_digits` allows.
pub const MAX_CODE_DIGITS: u8 = 8;
/// The default code length, and the shortest that meets NIST SP 800-63B-4 (final, section
/// 3.1.7.3 via 2.2.1 "out-of-band authenticators": a secret transferred from the primary
/// channel has at least six decimal digits). Shorter codes are allowed for compatibility but
/// are weaker than 800-63B-4 asks.
pub const DEFAULT_CODE_DIGITS: u8 = 6;

/// The length of number-matching codes, [`MIN_CODE_DIGITS`] to [`MAX_CODE_DIGITS`] decimal
/// digits. Read from config as a plain integer; out of range is a [`CodeDigitsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "u64")]
pub struct CodeDigits(u8);

impl TryFrom<u64> for CodeDigits {
    type Error = CodeDigitsError;
    fn try_from(digits: u64) -> Result<Self, CodeDigitsError> {
        CodeDigits::new(digits)
    }
}

/// A code length outside [`MIN_CODE_DIGITS`]..=[`MAX_CODE_DIGITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("code_digits = {0} must be {MIN_CODE_DIGITS} to {MAX_CODE_DIGITS}")]
pub struct CodeDigitsError(pub u64);

impl CodeDigits {
    /// A checked length.
    ///
    /// # Errors
    /// [`CodeDigitsError`] outside 2 to 8.
    pub fn new(digits: u64) -> Result<Self, CodeDigitsError> {
        match u8::try_from(digits) {
            Ok(d) if (MIN_CODE_DIGITS..=MAX_CODE_DIGITS).contains(&d) => Ok(CodeDigits(d)),
            _ => Err(CodeDigitsError(digits)),
        }
    }

    /// The number of digits.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Whether this length meets NIST SP 800-63B-4 (six digits or more).
    pub fn meets_nist(self) -> bool {
        self.0 >= DEFAULT_CODE_DIGITS
    }
}

impl Default for CodeDigits {
    fn default() -> Self {
        CodeDigits(DEFAULT_CODE_DIGITS)
    }
}

/// Compares a typed code with the expected one in constant time (for equal lengths). The typed
/// code is read as [`normalize_typed_code`] reads it, so `"482 913"` matches `482913`.
pub fn code_matches(expected: &str, typed: &str) -> bool {
    let typed = normalize_typed_code(typed);
    expected.len() == typed.len() && bool::from(expected.as_bytes().ct_eq(typed.as_bytes()))
}

/// A fresh number-matching code of `digits` decimal digits, uniform over all `10^digits`
/// strings: a leading zero is allowed (`"048213"`). Codes are text on every surface (shown,
/// typed, signed and compared as strings, never parsed as numbers), and every device checks a
/// typed code's length before it sends it ([`check_typed_code`]), so a dropped zero is a local
/// "the code has 6 digits" message, not a burned attempt.
///
/// # Errors
/// [`ProtoError::Random`] if the system random source fails.
pub fn generate_code(digits: CodeDigits) -> Result<String, ProtoError> {
    let space = 10u64.pow(u32::from(digits.get()));
    // Reject the tail above the largest multiple of `space`, so every code is equally likely.
    let zone = u64::MAX - (u64::MAX % space);
    loop {
        let draw = u64::from_be_bytes(random::bytes::<8>()?);
        if draw < zone {
            let width = usize::from(digits.get());
            return Ok(format!("{:0width$}", draw % space));
        }
    }
}

/// The typed code as it is signed and sent: surrounding white space and the spaces a person
/// copies from a grouped display ([`group_code`]) removed. Nothing else changes.
pub fn normalize_typed_code(typed: &str) -> String {
    typed.trim().chars().filter(|c| *c != ' ').collect()
}

/// Why a typed code is not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedCodeError {
    /// Nothing was typed.
    #[error("no code typed: type the {0}-digit code shown on the login screen")]
    Empty(u8),
    /// Something other than digits (and grouping spaces).
    #[error("the code is digits only: type the {0}-digit code shown on the login screen")]
    NotDigits(u8),
    /// Too few or too many digits.
    #[error("the code shown on the login screen has {expected} digits; you typed {got}")]
    WrongLength {
        /// Digits the challenge's code has.
        expected: u8,
        /// Digits typed.
        got: usize,
    },
}

/// Checks a code a person typed before a device sends it, so a typo costs nothing: the one
/// attempt per challenge is spent only on a code of the right length. `length` is the
/// challenge's `code_length` (`None` from a server that predates it: any length from
/// [`MIN_CODE_DIGITS`] to [`MAX_CODE_DIGITS`]). Returns the normalized code
/// ([`normalize_typed_code`]). A wrong code of the right length passes: only the server knows
/// the code.
///
/// # Errors
/// [`TypedCodeError`] naming what is wrong.
pub fn check_typed_code(typed: &str, length: Option<u8>) -> Result<String, TypedCodeError> {
    let shown = length.unwrap_or(DEFAULT_CODE_DIGITS);
    let code = normalize_typed_code(typed);
    if code.is_empty() {
        return Err(TypedCodeError::Empty(shown));
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TypedCodeError::NotDigits(shown));
    }
    let fits = match length {
        Some(expected) => code.len() == usize::from(expected),
        None => (usize::from(MIN_CODE_DIGITS)..=usize::from(MAX_CODE_DIGITS)).contains(&code.len()),
    };
    if fits {
        Ok(code)
    } else {
        Err(TypedCodeError::WrongLength {
            expected: shown,
            got: code.len(),
        })
    }
}

/// A code grouped for reading: up to four digits as they are, longer ones split in two with a
/// space, the first group the longer (`"482 913"`, `"4829 135"`, `"482 91"`). Devices accept a
/// typed code with or without the space ([`normalize_typed_code`]).
pub fn group_code(code: &str) -> String {
    if code.len() <= 4 || !code.is_ascii() {
        return code.to_owned();
    }
    let split = code.len().div_ceil(2);
    format!("{} {}", &code[..split], &code[split..])
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
    fn code_lengths() {
        assert!(CodeDigits::new(1).is_err());
        assert!(CodeDigits::new(9).is_err());
        assert!(CodeDigits::new(u64::MAX).is_err());
        assert_eq!(CodeDigits::new(2).unwrap().get(), 2);
        assert_eq!(CodeDigits::default().get(), 6);
        assert!(CodeDigits::default().meets_nist());
        assert!(!CodeDigits::new(5).unwrap().meets_nist());
        let err = CodeDigits::new(12).unwrap_err().to_string();
        assert!(
            err.contains("code_digits") && err.contains("2 to 8"),
            "{err}"
        );
    }

    #[test]
    fn issue11_codes_have_the_configured_length_and_cover_it_uniformly() {
        for digits in 2..=8 {
            let d = CodeDigits::new(digits).unwrap();
            for _ in 0..200 {
                let code = generate_code(d).unwrap();
                assert_eq!(code.len(), usize::try_from(digits).unwrap(), "{code}");
                assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
            }
        }
        // Two digits: all 100 codes, 00 to 99, show up, each near 1 %.
        let two = CodeDigits::new(2).unwrap();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            *counts.entry(generate_code(two).unwrap()).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 100);
        assert!(counts.contains_key("00") && counts.contains_key("07"));
        for (code, n) in &counts {
            assert!((800..1200).contains(n), "{code}: {n}");
        }
        // Six digits: each digit position uniform, a leading zero included.
        let mut first = [0u32; 10];
        for _ in 0..20_000 {
            let code = generate_code(CodeDigits::default()).unwrap();
            first[usize::from(code.as_bytes()[0] - b'0')] += 1;
        }
        for n in first {
            assert!((1700..2300).contains(&n), "{first:?}");
        }
    }

    #[test]
    fn issue11_typed_codes_are_checked_locally_and_grouping_is_accepted() {
        assert_eq!(check_typed_code("482913", Some(6)), Ok("482913".into()));
        assert_eq!(check_typed_code(" 482 913\n", Some(6)), Ok("482913".into()));
        assert_eq!(check_typed_code("048213", Some(6)), Ok("048213".into()));
        assert_eq!(
            check_typed_code("48213", Some(6)),
            Err(TypedCodeError::WrongLength {
                expected: 6,
                got: 5
            })
        );
        assert_eq!(
            check_typed_code("48a913", Some(6)),
            Err(TypedCodeError::NotDigits(6))
        );
        assert_eq!(
            check_typed_code("٤٨٢٩١٣", Some(6)),
            Err(TypedCodeError::NotDigits(6))
        );
        assert_eq!(
            check_typed_code("  ", Some(6)),
            Err(TypedCodeError::Empty(6))
        );
        assert_eq!(check_typed_code("42", None), Ok("42".into()));
        assert!(check_typed_code("1", None).is_err());
        assert!(check_typed_code("123456789", None).is_err());
        let msg = check_typed_code("4821", Some(6)).unwrap_err().to_string();
        assert!(msg.contains("6 digits") && msg.contains("typed 4"), "{msg}");
        assert_eq!(group_code("482913"), "482 913");
        assert_eq!(group_code("48291"), "482 91");
        assert_eq!(group_code("4829135"), "4829 135");
        assert_eq!(group_code("48291357"), "4829 1357");
        assert_eq!(group_code("4829"), "4829");
        assert_eq!(group_code("42"), "42");
        assert!(code_matches("482913", &group_code("482913")));
        assert!(!code_matches("482913", "482 914"));
        assert!(!code_matches("048213", "48213"));
    }
}
