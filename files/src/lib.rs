//! One rule for the files pushauth reads secrets and state from, shared by pushauthd,
//! `pam_push`, the IdP sidecar and the device CLI.
//!
//! - Reading ([`read`]): the file is opened first (`O_CLOEXEC`, and `O_NOFOLLOW` when the policy
//!   refuses symlinks) and the *opened* file is checked with `fstat`, so nothing can swap it
//!   between the check and the read: a regular file, owned by the expected user, with a mode the
//!   policy allows (a secret: no group or other bits at all, i.e. 0600 or 0400; a config file:
//!   not group- or world-writable), no larger than the size cap. The bytes land in a
//!   [`zeroize::Zeroizing`] buffer.
//! - Writing ([`write_new`], [`replace`]): mode 0600 from the first byte; `write_new` never
//!   overwrites (`O_CREAT|O_EXCL`), `replace` writes a 0600 temporary file beside the target,
//!   syncs it and renames it over the target.
//! - Directories ([`create_private_dir`], [`check_dir`]): created 0700; an existing one must be
//!   owned by the expected user and not writable by group or others.
//!
//! Every refusal is a [`FileError`] whose `Display` is the fix-it message (`chmod 600 /path`,
//! `chown root /path`, "is a symlink", "is larger than N bytes").

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dir;
mod error;
mod owner;
mod read;
mod toml_error;
mod write;

pub use dir::{check_dir, create_private_dir};
pub use error::FileError;
pub use owner::Owner;
pub use read::{open, read, require_private, Contents, Kind, ReadPolicy, MAX_FILE_BYTES};
pub use toml_error::toml_error;
pub use write::{replace, write_new};

#[cfg(test)]
mod tests;
