//! Who must own a file: a uid, named the way the fix-it message should name it.

use std::fmt;

/// The owner a file or directory must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Any owner: only the mode is checked (a client reading a token another user's service
    /// made, as root).
    Any,
    /// root or the effective user this process runs as (sshd's `StrictModes` rule for
    /// `authorized_keys`): for files that decide who is trusted, which any other user must
    /// not be able to choose.
    RootOrCurrent,
    /// Exactly this uid. `name` is what `chown` is told in the fix-it message (`root`,
    /// `_pushauth-idp`); `None` names the uid itself.
    Uid {
        /// The required owner's numeric user id.
        uid: u32,
        /// How messages name it; `None`: "uid N".
        name: Option<String>,
    },
}

impl Owner {
    /// uid 0, named `root`.
    pub fn root() -> Owner {
        Owner::named(0, "root")
    }

    /// The effective user this process runs as (its service user in production).
    pub fn current() -> Owner {
        Owner::Uid {
            uid: rustix::process::geteuid().as_raw(),
            name: None,
        }
    }

    /// A uid that messages call `name` (e.g. the root check of `pam_push`, made against the
    /// test's own uid in unit tests but still meaning root).
    pub fn named(uid: u32, name: &str) -> Owner {
        Owner::Uid {
            uid,
            name: Some(name.to_owned()),
        }
    }

    /// Whether a file owned by `uid` satisfies this rule.
    pub fn allows(&self, uid: u32) -> bool {
        match self {
            Owner::Any => true,
            Owner::RootOrCurrent => uid == 0 || uid == rustix::process::geteuid().as_raw(),
            Owner::Uid { uid: want, .. } => *want == uid,
        }
    }

    /// What to pass to `chown` to fix the owner.
    pub(crate) fn chown_arg(&self) -> String {
        match self {
            Owner::Any => String::new(),
            Owner::RootOrCurrent => "root".to_owned(),
            Owner::Uid {
                name: Some(name), ..
            } => name.clone(),
            Owner::Uid { uid, name: None } => uid.to_string(),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Any => f.write_str("any user"),
            Owner::RootOrCurrent => write!(
                f,
                "root or uid {} (the user this runs as)",
                rustix::process::geteuid().as_raw()
            ),
            Owner::Uid {
                name: Some(name), ..
            } => f.write_str(name),
            Owner::Uid { uid, name: None } => write!(f, "uid {uid} (the user this runs as)"),
        }
    }
}
