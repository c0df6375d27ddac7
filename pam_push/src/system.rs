//! The real implementations of the flow's traits: PAM items and environment, the application's
//! conversation, local groups, the host name, and syslog. This is the only module with `unsafe`
//! (FFI to libpam and libc).

use std::ffi::{c_char, CStr, CString};

use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{RHost, Service, Tty};
use pam::module::PamHandle;
use zeroize::Zeroizing;

use crate::authenticate::{ConvFailed, Conversation, Level, Log, PamEnv};
use crate::context::LoginFacts;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// PAM items and the host, read through the module's handle.
pub struct HostEnv<'a> {
    pub pamh: &'a PamHandle,
}

fn item_text(item: Option<&CStr>) -> Option<String> {
    item.map(|c| String::from_utf8_lossy(c.to_bytes()).into_owned())
}

impl HostEnv<'_> {
    /// A variable of the PAM environment (`pam_getenv`), where sshd puts `SSH_AUTH_INFO_0`.
    fn pam_env(&self, name: &str) -> Option<String> {
        let name = CString::new(name).ok()?;
        let handle = std::ptr::from_ref(self.pamh).cast_mut();
        // SAFETY: the handle is the live one PAM gave this call; pam_getenv only reads it and
        // returns a pointer into the handle's environment, valid until it changes; we copy at once.
        let value = unsafe { pam_getenv(handle, name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated string owned by libpam.
        let text = unsafe { CStr::from_ptr(value) };
        Some(String::from_utf8_lossy(text.to_bytes()).into_owned())
    }
}

impl PamEnv for HostEnv<'_> {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: self
                .pamh
                .get_item::<Service>()
                .ok()
                .flatten()
                .and_then(|s| item_text(Some(s.0))),
            host: hostname(),
            rhost: self
                .pamh
                .get_item::<RHost>()
                .ok()
                .flatten()
                .and_then(|s| item_text(Some(s.0))),
            tty: self
                .pamh
                .get_item::<Tty>()
                .ok()
                .flatten()
                .and_then(|s| item_text(Some(s.0))),
            ssh_auth_info: self.pam_env("SSH_AUTH_INFO_0"),
            argv: own_argv(),
        }
    }

    fn user_groups(&self, user: &str) -> Option<Vec<String>> {
        user_groups(user)
    }
}

/// The application's conversation, or none (every call then fails, which cancels).
pub struct PamConversation<'a> {
    conv: Option<Conv<'a>>,
}

impl<'a> PamConversation<'a> {
    pub fn new(pamh: &'a PamHandle) -> PamConversation<'a> {
        PamConversation {
            conv: pamh.get_item::<Conv>().ok().flatten(),
        }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        let conv = self.conv.as_ref().ok_or(ConvFailed)?;
        match conv.send(PAM_PROMPT_ECHO_ON, text) {
            // SecretBytes zeroizes its copy; ours is zeroized too.
            Ok(Some(reply)) => Ok(Zeroizing::new(
                String::from_utf8_lossy(reply.as_bytes()).into_owned(),
            )),
            Ok(None) => Ok(Zeroizing::new(String::new())),
            Err(_) => Err(ConvFailed),
        }
    }

    fn info(&mut self, text: &str) -> Result<(), ConvFailed> {
        let conv = self.conv.as_ref().ok_or(ConvFailed)?;
        conv.send(PAM_TEXT_INFO, text)
            .map(drop)
            .map_err(|_| ConvFailed)
    }

    fn error(&mut self, text: &str) -> Result<(), ConvFailed> {
        let conv = self.conv.as_ref().ok_or(ConvFailed)?;
        conv.send(PAM_ERROR_MSG, text)
            .map(drop)
            .map_err(|_| ConvFailed)
    }
}

/// Syslog to `authpriv` without `openlog`, so the host program keeps its identity and facility.
pub struct Syslog {
    pub debug: bool,
}

impl Log for Syslog {
    fn log(&mut self, level: Level, line: &str) {
        let priority = match level {
            Level::Error => libc::LOG_ERR,
            Level::Warning => libc::LOG_WARNING,
            Level::Notice => libc::LOG_NOTICE,
            Level::Info => libc::LOG_INFO,
            Level::Debug if self.debug => libc::LOG_DEBUG,
            Level::Debug => return,
        };
        let clean: String = line
            .chars()
            .map(|c| if c == '\0' { '?' } else { c })
            .collect();
        let Ok(text) = CString::new(clean) else {
            return;
        };
        // SAFETY: "%s" with one valid NUL-terminated argument.
        unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// The host name (`gethostname`).
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// This process's argv (`/proc/self/cmdline`): the sudo command lives there.
pub fn own_argv() -> Option<Vec<String>> {
    let bytes = std::fs::read("/proc/self/cmdline").ok()?;
    Some(
        bytes
            .split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect(),
    )
}

/// The names of `user`'s groups, primary group included; `None` when there is no such user.
pub fn user_groups(user: &str) -> Option<Vec<String>> {
    let c_user = CString::new(user).ok()?;
    // SAFETY: passwd is plain data; getpwnam_r fills it with pointers into `buf`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            c_user.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    let primary = pwd.pw_gid;
    let mut count: libc::c_int = 64;
    let mut gids: Vec<libc::gid_t> = Vec::new();
    for _ in 0..4 {
        let len = usize::try_from(count).ok()?.max(1);
        gids = vec![0; len];
        let mut n = count;
        // SAFETY: gids holds `n` entries; getgrouplist writes at most `n` and updates it.
        let rc = unsafe { libc::getgrouplist(c_user.as_ptr(), primary, gids.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            gids.truncate(usize::try_from(n).ok()?);
            break;
        }
        // Too small: n now holds the number needed.
        count = n.max(count.saturating_mul(2));
        gids.clear();
    }
    if gids.is_empty() {
        gids.push(primary);
    }
    Some(gids.into_iter().map(group_name).collect())
}

/// A group's name, or its number when it has none.
fn group_name(gid: libc::gid_t) -> String {
    // SAFETY: group is plain data; getgrgid_r fills it with pointers into `buf`.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || grp.gr_name.is_null() {
        return gid.to_string();
    }
    // SAFETY: gr_name points into `buf`, NUL-terminated.
    unsafe { CStr::from_ptr(grp.gr_name) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_in_group_root() {
        let groups = user_groups("root").expect("root exists");
        assert!(groups.iter().any(|g| g == "root"), "{groups:?}");
        assert_eq!(user_groups("no-such-user-pushauth-test"), None);
        assert_eq!(user_groups("nul\0user"), None);
    }

    #[test]
    fn host_facts() {
        assert!(hostname().is_some_and(|h| !h.is_empty()));
        let argv = own_argv().unwrap();
        assert!(!argv.is_empty());
    }
}
