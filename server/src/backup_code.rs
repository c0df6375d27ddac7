//! Backup codes as values (NIST SP 800-63B-4 §3.1.2, saved recovery codes): how one is drawn,
//! shown, read back from what a person typed, and hashed. No store, no policy (that is
//! [`crate::service::backup_codes`]).
//!
//! A code is [`CODE_LEN`] characters from [`ALPHABET`] (digits and capitals without the
//! look-alikes 0, O, 1, I, L and U), shown in groups of four: `K7QM-3XHT-9RWD-PC4N`.
//! The first [`TAG_LEN`] characters are a *tag* that is not secret: it picks the one stored row
//! an attempt is checked against, so an attempt costs one Argon2id verify, not one per code.
//! The other 14 characters are the secret: 30^14 ≈ 2^68.7, more than the 64 bits asked.
//!
//! Codes are stored only as Argon2id PHC strings ([`hash`]); [`verify`] compares in constant
//! time through the `argon2` crate and reads the parameters from the stored string, so raising
//! [`ARGON2_M_KIB`] later keeps older codes usable. Both are slow on purpose: call them off the
//! async runtime (see [`crate::hashing::Hashing`]).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use zeroize::Zeroizing;

pub use pushauth_proto::backup::{ALPHABET, CODE_LEN, GROUP, TAG_LEN};

pub use crate::hashing::{ARGON2_M_KIB, ARGON2_P, ARGON2_T};

/// Why a backup code could not be drawn, read or hashed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    /// What was typed is not a backup code (length or characters); the text says what one is.
    #[error(
        "a backup code is {CODE_LEN} letters and digits (groups of four; dashes and spaces are \
         optional, case does not matter)"
    )]
    Malformed,
    /// No randomness, or the hash library refused (never says anything about the code).
    #[error("{0}")]
    Internal(String),
}

/// A code in its canonical form: [`CODE_LEN`] upper-case characters of [`ALPHABET`], no
/// separators. Zeroized on drop; its `Debug` shows only the tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(Zeroizing<String>);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({}…)", self.tag())
    }
}

impl Code {
    /// Draws a fresh code from the operating system's randomness (uniform over [`ALPHABET`]).
    ///
    /// # Errors
    /// [`CodeError::Internal`] without randomness.
    pub fn generate() -> Result<Code, CodeError> {
        let mut out = Zeroizing::new(String::with_capacity(CODE_LEN));
        while out.len() < CODE_LEN {
            let bytes = Zeroizing::new(
                pushauth_proto::random::bytes::<32>()
                    .map_err(|e| CodeError::Internal(format!("no randomness: {e}")))?,
            );
            // 240 = 8 × 30: rejecting 240..=255 keeps every symbol equally likely.
            for b in bytes.iter().filter(|b| **b < 240) {
                if out.len() < CODE_LEN {
                    out.push(char::from(ALPHABET[usize::from(*b % 30)]));
                }
            }
        }
        Ok(Code(out))
    }

    /// A fresh code whose tag is not in `taken` (tags within one user's set are distinct, so a
    /// tag names one row).
    ///
    /// # Errors
    /// As [`Code::generate`].
    pub fn generate_avoiding(taken: &[String]) -> Result<Code, CodeError> {
        loop {
            let code = Code::generate()?;
            if !taken.iter().any(|t| t == code.tag()) {
                return Ok(code);
            }
        }
    }

    /// A fresh code with the given tag (a replacement takes the tag of the code it replaces,
    /// whose row it takes over).
    ///
    /// # Errors
    /// As [`Code::generate`]; [`CodeError::Malformed`] for a tag that is not [`TAG_LEN`]
    /// characters of [`ALPHABET`].
    pub fn generate_with_tag(tag: &str) -> Result<Code, CodeError> {
        if tag.len() != TAG_LEN || !tag.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(CodeError::Malformed);
        }
        let fresh = Code::generate()?;
        let mut text = Zeroizing::new(String::with_capacity(CODE_LEN));
        text.push_str(tag);
        text.push_str(&fresh.0[TAG_LEN..]);
        Ok(Code(text))
    }

    /// Reads what a person typed: case does not matter, and spaces, dashes and dots between
    /// characters are ignored.
    ///
    /// # Errors
    /// [`CodeError::Malformed`] for anything but [`CODE_LEN`] characters of [`ALPHABET`].
    pub fn parse(typed: &str) -> Result<Code, CodeError> {
        pushauth_proto::backup::normalize(typed)
            .map(Code)
            .ok_or(CodeError::Malformed)
    }

    /// The tag: the first [`TAG_LEN`] characters (not secret).
    pub fn tag(&self) -> &str {
        self.0.get(..TAG_LEN).unwrap_or("")
    }

    /// The code as shown to people: groups of [`GROUP`] joined by dashes.
    pub fn grouped(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars
            .chunks(GROUP)
            .map(|g| g.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The Argon2id PHC string of `code` ([`crate::hashing::phc`]). Slow (tens of milliseconds):
/// call it off the async runtime.
///
/// # Errors
/// [`CodeError::Internal`] without randomness or when the library refuses.
pub fn hash(code: &Code) -> Result<String, CodeError> {
    crate::hashing::phc(code.0.as_bytes()).map_err(CodeError::Internal)
}

/// True when `code` matches the PHC string `stored`; a string that does not parse matches
/// nothing. With `stored` `None` (no row has the code's tag) it checks against a fixed hash of
/// a random value, so an attempt takes the same time whether or not a row was found.
pub fn verify(code: &Code, stored: Option<&str>) -> bool {
    let (phc, real) = match stored {
        Some(phc) => (phc, true),
        None => match decoy() {
            Some(phc) => (phc, false),
            None => return false,
        },
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(hasher) = crate::hashing::argon2() else {
        return false;
    };
    hasher.verify_password(code.0.as_bytes(), &parsed).is_ok() && real
}

/// The decoy hash [`verify`] checks against when no row was found (made once).
fn decoy() -> Option<&'static str> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    DECOY
        .get_or_init(|| Code::generate().ok().and_then(|c| hash(&c).ok()))
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue12_codes_are_drawn_from_the_alphabet_and_read_back_loosely() {
        let code = Code::generate().unwrap();
        let shown = code.grouped();
        assert_eq!(shown.len(), CODE_LEN + CODE_LEN / GROUP - 1, "{shown}");
        assert!(shown.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)));
        assert_eq!(Code::parse(&shown).unwrap(), code);
        assert_eq!(Code::parse(&shown.to_lowercase()).unwrap(), code);
        assert_eq!(Code::parse(&shown.replace('-', " ")).unwrap(), code);
        assert_eq!(Code::parse(&shown.replace('-', "")).unwrap(), code);
        for bad in [
            "",
            "K7QM-3XHT-9RWD-PC4",
            "K7QM-3XHT-9RWD-PC4NN",
            "K7QM-3XHT-9RWD-PC40",
            "O7QM-3XHT-9RWD-PC4N",
            "K7QM-3XHT-9RWD-PC4Ñ",
        ] {
            assert_eq!(Code::parse(bad), Err(CodeError::Malformed), "{bad}");
        }
        assert!(
            !format!("{code:?}").contains(&shown[5..]),
            "Debug hides the secret"
        );
        // The secret part carries at least 64 bits.
        let bits = ((CODE_LEN - TAG_LEN) as f64) * (ALPHABET.len() as f64).log2();
        assert!(bits >= 64.0, "{bits}");
        let tagged = Code::generate_with_tag("K7").unwrap();
        assert_eq!(tagged.tag(), "K7");
        assert_eq!(Code::generate_with_tag("K0"), Err(CodeError::Malformed));
        let avoid: Vec<String> = ALPHABET[..29]
            .iter()
            .flat_map(|a| {
                ALPHABET
                    .iter()
                    .map(move |b| format!("{}{}", *a as char, *b as char))
            })
            .collect();
        assert_eq!(
            Code::generate_avoiding(&avoid).unwrap().tag().as_bytes()[0],
            b'Z'
        );
    }

    #[test]
    fn issue12_hashes_verify_only_their_code() {
        let code = Code::generate().unwrap();
        let other = Code::generate().unwrap();
        let phc = hash(&code).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains(code.0.as_str()));
        assert!(verify(&code, Some(&phc)));
        assert!(!verify(&other, Some(&phc)));
        assert!(!verify(&code, None), "the decoy never matches");
        assert!(!verify(&code, Some("not a phc string")));
        assert_ne!(hash(&code).unwrap(), phc, "salted");
        // What one attempt costs (printed with --nocapture; the README quotes it).
        let started = std::time::Instant::now();
        for _ in 0..5 {
            assert!(verify(&code, Some(&phc)));
        }
        eprintln!(
            "issue12: one Argon2id verify (m={ARGON2_M_KIB} KiB, t={ARGON2_T}, p={ARGON2_P}) took {:?}",
            started.elapsed() / 5
        );
    }
}
