//! The grace window for repeated logins (issue 12): which logins count as "the same" as one a
//! device approved a moment ago, so that pushauthd can let them in without a new push, and so
//! that a PAM host can check the server's claim against its own record.
//!
//! The grace key is SHA-256 over `"pushauth/v1/grace"`, the user, then the context's `service`,
//! `host`, `rhost` and `ssh_key`, each as its name and value (an absent entry as its name and
//! the single byte 0, so "absent" never equals "empty"), every item length-framed as in
//! [`crate::signing`]. pushauthd also scopes windows by relying party, so the key of one host's
//! logins never opens another's.

use sha2::{Digest, Sha256};

use crate::signing::Framer;
use crate::Context;

/// Domain string that starts the grace key's input.
pub const GRACE_DOMAIN: &str = "pushauth/v1/grace";

/// The context entries that make two logins "the same" for the grace window: the user comes
/// first, then these in this order. The sudo command and the tty are not among them.
pub const GRACE_FIELDS: [&str; 4] = ["service", "host", "rhost", "ssh_key"];

/// Longest grace window a relying party may ask for, in seconds (one hour): a window is meant
/// for a burst of automated logins, not for a working day.
pub const MAX_GRACE_SECS: u64 = 3600;

/// The grace key of a login of `user` with `context` (see the module docs).
pub fn grace_key(user: &str, context: &Context) -> [u8; 32] {
    let mut framer = Framer::new(GRACE_DOMAIN);
    framer.push(user.as_bytes());
    for name in GRACE_FIELDS {
        framer.push(name.as_bytes());
        match context.get(name) {
            Some(value) => framer.push(value.as_bytes()),
            // No value is one byte long, so absence differs from an empty string.
            None => framer.push(&[0]),
        };
    }
    Sha256::digest(framer.finish()).into()
}

/// Whether `service` is sudo or one of its variants (`sudo`, `sudo-i`, …): those never take
/// grace unless the PAM host's `sudo_grace = true`.
pub fn is_sudo_service(service: &str) -> bool {
    service.starts_with("sudo")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn issue12_grace_key_covers_user_service_host_rhost_and_key_only() {
        let base = ctx(&[
            ("service", "sshd"),
            ("host", "web01"),
            ("rhost", "192.0.2.7"),
            ("ssh_key", "ssh-ed25519 SHA256:abc"),
            ("tty", "ssh"),
        ]);
        let key = grace_key("alice", &base);
        assert_eq!(key, grace_key("alice", &base));
        assert_ne!(key, grace_key("bob", &base));
        for (name, other) in [
            ("service", "sudo"),
            ("host", "web02"),
            ("rhost", "192.0.2.8"),
            ("ssh_key", "ssh-ed25519 SHA256:abd"),
        ] {
            let mut changed = base.clone();
            changed.insert(name.into(), other.into());
            assert_ne!(key, grace_key("alice", &changed), "{name}");
            let mut absent = base.clone();
            absent.remove(name);
            assert_ne!(key, grace_key("alice", &absent), "{name} absent");
            let mut empty = base.clone();
            empty.insert(name.into(), String::new());
            assert_ne!(
                grace_key("alice", &absent),
                grace_key("alice", &empty),
                "{name}"
            );
        }
        // Neither the tty nor a sudo command nor a message changes the key.
        let mut more = base.clone();
        more.insert("tty".into(), "pts/3".into());
        more.insert("command".into(), "id".into());
        more.insert("message".into(), "hi".into());
        assert_eq!(key, grace_key("alice", &more));
        // Framing: moving bytes between the user and a value changes the key.
        let a = grace_key("ab", &ctx(&[("service", "c")]));
        let b = grace_key("a", &ctx(&[("service", "bc")]));
        assert_ne!(a, b);
    }

    #[test]
    fn issue12_sudo_services() {
        assert!(is_sudo_service("sudo"));
        assert!(is_sudo_service("sudo-i"));
        assert!(!is_sudo_service("sshd"));
        assert!(!is_sudo_service("su"));
    }
}
