//! Names and ids every part must agree on: user names, device names, challenge and device ids,
//! relying-party ids. One rule each, so a name one part accepts is never refused (or read
//! differently) by another.
//!
//! Names are shown to the person who approves, so they may not hold hidden characters
//! ([`crate::text::is_hidden`]): `alice` and `alice\u{200B}` must not be two users. Ids go into
//! URL paths and log lines, so they are base64url characters only (RFC 4648 §5 alphabet).

use thiserror::Error;

/// Longest user name, in characters (Unicode scalar values).
pub const MAX_USER_CHARS: usize = 256;
/// Longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;
/// Longest relying-party name, in characters.
pub const MAX_RP_NAME_CHARS: usize = 64;
/// Longest challenge, device or enrollment id, in bytes (all ASCII).
pub const MAX_ID_BYTES: usize = 128;
/// Longest relying-party id, in bytes (all ASCII).
pub const MAX_RP_ID_BYTES: usize = 64;

/// Why a name or id was refused. The `Display` text is the fix-it message shown to callers.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NameError {
    /// A user name is empty, too long or holds a hidden character.
    #[error("user must be 1 to {MAX_USER_CHARS} printable characters")]
    User,
    /// A device name is empty, too long or holds a hidden character.
    #[error("device name must be 1 to {MAX_DEVICE_NAME_CHARS} printable characters")]
    DeviceName,
    /// A relying-party name is empty, too long or holds a hidden character.
    #[error("relying-party name must be 1 to {MAX_RP_NAME_CHARS} printable characters")]
    RpName,
    /// An id is empty, too long or holds a character outside base64url.
    #[error("{kind} id must be 1 to {max} characters of A-Z, a-z, 0-9, '-' and '_'")]
    Id {
        /// What kind of id (`challenge`, `device`, `relying-party`).
        kind: &'static str,
        /// Its longest allowed length, in bytes.
        max: usize,
    },
}

/// 1 to `max` characters, none of them hidden ([`crate::text::first_hidden`]).
pub fn printable(text: &str, max: usize) -> bool {
    let count = text.chars().count();
    (1..=max).contains(&count) && crate::text::first_hidden(text).is_none()
}

/// Whether `id` is 1 to `max` bytes of the base64url alphabet (RFC 4648 §5), no padding.
pub fn is_url_safe_id(id: &str, max: usize) -> bool {
    (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A user name: 1 to [`MAX_USER_CHARS`] printable characters.
///
/// # Errors
/// [`NameError::User`] otherwise.
pub fn check_user(user: &str) -> Result<(), NameError> {
    if printable(user, MAX_USER_CHARS) {
        Ok(())
    } else {
        Err(NameError::User)
    }
}

/// A device name: 1 to [`MAX_DEVICE_NAME_CHARS`] printable characters.
///
/// # Errors
/// [`NameError::DeviceName`] otherwise.
pub fn check_device_name(name: &str) -> Result<(), NameError> {
    if printable(name, MAX_DEVICE_NAME_CHARS) {
        Ok(())
    } else {
        Err(NameError::DeviceName)
    }
}

/// A relying-party name: 1 to [`MAX_RP_NAME_CHARS`] printable characters.
///
/// # Errors
/// [`NameError::RpName`] otherwise.
pub fn check_rp_name(name: &str) -> Result<(), NameError> {
    if printable(name, MAX_RP_NAME_CHARS) {
        Ok(())
    } else {
        Err(NameError::RpName)
    }
}

/// A challenge, device or enrollment id: 1 to [`MAX_ID_BYTES`] base64url characters.
/// `kind` names it in the error.
///
/// # Errors
/// [`NameError::Id`] otherwise.
pub fn check_id(kind: &'static str, id: &str) -> Result<(), NameError> {
    if is_url_safe_id(id, MAX_ID_BYTES) {
        Ok(())
    } else {
        Err(NameError::Id {
            kind,
            max: MAX_ID_BYTES,
        })
    }
}

/// A relying-party id: 1 to [`MAX_RP_ID_BYTES`] base64url characters.
///
/// # Errors
/// [`NameError::Id`] otherwise.
pub fn check_rp_id(id: &str) -> Result<(), NameError> {
    if is_url_safe_id(id, MAX_RP_ID_BYTES) {
        Ok(())
    } else {
        Err(NameError::Id {
            kind: "relying-party",
            max: MAX_RP_ID_BYTES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert!(check_user("alice").is_ok());
        assert!(check_user("realm/alice@example.com").is_ok());
        assert!(check_user(&"é".repeat(MAX_USER_CHARS)).is_ok());
        assert_eq!(check_user(""), Err(NameError::User));
        assert_eq!(check_user("alice\u{200B}"), Err(NameError::User));
        assert_eq!(check_user("a\nb"), Err(NameError::User));
        assert_eq!(
            check_user(&"a".repeat(MAX_USER_CHARS + 1)),
            Err(NameError::User)
        );
    }

    #[test]
    fn device_names() {
        assert!(check_device_name("Alice's phone").is_ok());
        assert!(check_device_name(&"x".repeat(64)).is_ok());
        assert!(check_device_name(&"x".repeat(65)).is_err());
        assert!(check_device_name("phone\u{202E}").is_err());
    }

    #[test]
    fn ids() {
        assert!(check_id("challenge", "abc-DEF_123").is_ok());
        assert!(check_id("challenge", &"a".repeat(128)).is_ok());
        assert!(check_id("challenge", &"a".repeat(129)).is_err());
        assert!(check_id("device", "").is_err());
        assert!(check_id("device", "a/b").is_err());
        assert!(check_id("device", "a=").is_err());
        assert!(check_rp_id(&"a".repeat(64)).is_ok());
        assert!(check_rp_id(&"a".repeat(65)).is_err());
        let e = check_id("device", "..").unwrap_err().to_string();
        assert!(e.starts_with("device id must be 1 to 128"), "{e}");
    }
}
