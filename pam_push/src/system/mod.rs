//! The real implementations of the flow's traits: PAM items and environment, the application's
//! conversation, local groups, the host name, and syslog. This is the only module with `unsafe`
//! (FFI to libpam and libc).

mod hooks;
use std::ffi::{c_char, CStr, CString};

use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{RHost, RUser, Service, Tty};
use pam::module::PamHandle;
use zeroize::Zeroizing;

use crate::authenticate::{ConvFailed, Conversation, Level, Log, PamEnv};
use crate::context::LoginFacts;
use crate::policy::{GroupId, UserGroup};

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// PAM items and the host, read through the module's handle.
pub struct HostEnv<'a> {
    /// The handle PAM passed to the entry point.
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

    fn user_groups(&self, user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed> {
        user_groups(user)
    }

    fn group_id(&self, name: &str) -> GroupId {
        group_id(name)
    }

    fn group_members(&self, name: &str) -> Result<Option<Vec<String>>, LookupFailed> {
        group_members(name)
    }

    fn user_id(&self, name: &str) -> Result<Option<u32>, LookupFailed> {
        user_id(name)
    }

    fn ruser(&self) -> Option<String> {
        self.pamh
            .get_item::<RUser>()
            .ok()
            .flatten()
            .and_then(|s| item_text(Some(s.0)))
            .filter(|s| !s.is_empty())
    }

    fn login_grace_time(&self) -> Option<std::time::Duration> {
        sshd_login_grace_time(std::path::Path::new(SSHD_CONFIG))
    }

    fn interrupted(&self) -> bool {
        stop_signal_pending()
    }
}

/// The application's conversation, or none (every call then fails, which cancels).
pub struct PamConversation<'a> {
    conv: Option<Conv<'a>>,
}

impl<'a> PamConversation<'a> {
    /// The handle's conversation function; without one, prompts fail and messages are dropped.
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
    /// Write `Level::Debug` lines too (the `debug` module argument).
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
    Some(argv_from_cmdline(&bytes))
}

/// The arguments in `/proc/PID/cmdline` text: each ends with a NUL. Empty arguments are kept:
/// `sudo -p '' systemctl …` has one, and dropping it made `systemctl` read as the prompt.
pub fn argv_from_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// The first buffer for `getpwnam_r`/`getgrgid_r`/`getgrnam_r`; doubled on `ERANGE`.
const FIRST_BUFFER: usize = 16 * 1024;
/// The largest buffer tried: a group of tens of thousands of members fits; beyond this the
/// lookup counts as failed (and a failed lookup means "push required", never "not in the group").
const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// Why a user's groups could not be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupFailed {
    /// The user database failed (not "no such user").
    Error,
}

/// Calls a `get*_r` function with a growing buffer: `call(buf)` returns the C return code
/// (0, or an errno such as `ERANGE`) and whether a record was found.
fn with_growing_buffer<T>(
    mut call: impl FnMut(&mut [c_char]) -> (libc::c_int, Option<T>),
) -> Result<Option<T>, LookupFailed> {
    let mut size = FIRST_BUFFER;
    loop {
        let mut buf = vec![0 as c_char; size];
        let (rc, found) = call(&mut buf);
        match rc {
            0 => return Ok(found),
            libc::ERANGE if size < MAX_BUFFER => size *= 2,
            // "Not found" may be reported as one of these by some NSS modules.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM if found.is_none() => {
                return Ok(None)
            }
            _ => return Err(LookupFailed::Error),
        }
    }
}

/// The uid of local account `user` (`getpwnam_r`, so a directory that ignores case or an alias
/// resolves as login does); `Ok(None)` when there is no such user; `Err` when the user database
/// failed.
pub fn user_id(user: &str) -> Result<Option<u32>, LookupFailed> {
    passwd_entry(user, |pwd| pwd.pw_uid)
}

/// Looks `user` up with `getpwnam_r` (growing the buffer) and copies out what `pick` takes
/// of the entry; `Ok(None)` for no such user (or a name with a NUL byte).
fn passwd_entry<T>(
    user: &str,
    pick: impl Fn(&libc::passwd) -> T,
) -> Result<Option<T>, LookupFailed> {
    let Ok(c_user) = CString::new(user) else {
        return Ok(None);
    };
    with_growing_buffer(|buf| {
        // SAFETY: passwd is plain data; getpwnam_r fills it with pointers into `buf`, which
        // outlives the call; `pick` copies what it needs before `buf` is dropped.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
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
        (rc, (!found.is_null()).then(|| pick(&pwd)))
    })
}

/// Looks group `name` up with `getgrnam_r` (growing the buffer) and copies out what `pick`
/// takes of the entry; `Ok(None)` for no such group (or a name with a NUL byte).
fn group_entry<T>(name: &str, pick: impl Fn(&libc::group) -> T) -> Result<Option<T>, LookupFailed> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(None);
    };
    with_growing_buffer(|buf| {
        // SAFETY: group is plain data; getgrnam_r fills it with pointers into `buf`; `pick`
        // copies what it needs before `buf` is dropped.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        (rc, (!found.is_null()).then(|| pick(&grp)))
    })
}

/// `user`'s groups (primary included) with their names where they resolve; `Ok(None)` when
/// there is no such user; `Err` when the user database failed.
pub fn user_groups(user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed> {
    let Ok(c_user) = CString::new(user) else {
        return Ok(None);
    };
    let primary = passwd_entry(user, |pwd| pwd.pw_gid)?;
    let Some(primary) = primary else {
        return Ok(None);
    };
    let mut count: libc::c_int = 64;
    let mut gids: Vec<libc::gid_t> = Vec::new();
    let mut complete = false;
    for _ in 0..8 {
        let len = usize::try_from(count)
            .map_err(|_| LookupFailed::Error)?
            .max(1);
        gids = vec![0; len];
        let mut n = count;
        // SAFETY: gids holds `n` entries; getgrouplist writes at most `n` and updates it.
        let rc = unsafe { libc::getgrouplist(c_user.as_ptr(), primary, gids.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            gids.truncate(usize::try_from(n).map_err(|_| LookupFailed::Error)?);
            complete = true;
            break;
        }
        // Too small: n now holds the number needed.
        count = n.max(count.saturating_mul(2));
    }
    if !complete {
        return Err(LookupFailed::Error);
    }
    if !gids.contains(&primary) {
        gids.push(primary);
    }
    Ok(Some(
        gids.into_iter()
            .map(|gid| UserGroup {
                gid,
                name: group_name(gid),
            })
            .collect(),
    ))
}

/// A group's name, or `None` when it cannot be resolved (no such group, or a lookup error
/// even with the largest buffer).
fn group_name(gid: libc::gid_t) -> Option<String> {
    with_growing_buffer(|buf| {
        // SAFETY: group is plain data; getgrgid_r fills it with pointers into `buf`; the name
        // is copied out before `buf` is dropped.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found) };
        let name = (!found.is_null() && !grp.gr_name.is_null()).then(|| {
            // SAFETY: gr_name points into `buf`, NUL-terminated.
            unsafe { CStr::from_ptr(grp.gr_name) }
                .to_string_lossy()
                .into_owned()
        });
        (rc, name)
    })
    .ok()
    .flatten()
}

/// The gid of the group called `name` (`getgrnam_r`, growing the buffer).
pub fn group_id(name: &str) -> GroupId {
    let result = group_entry(name, |grp| grp.gr_gid);
    match result {
        Ok(Some(gid)) => GroupId::Found(gid),
        Ok(None) => GroupId::NoSuchGroup,
        Err(_) => GroupId::Failed,
    }
}

/// The members of the group called `name` as the group database lists them (`getgrnam_r`'s
/// `gr_mem`, what `getent group NAME` prints): `Ok(None)` for no such group. A user whose
/// primary group it is but who is not listed is not a member here (issue 14: approvers are
/// named explicitly; nothing enumerates the password database).
pub fn group_members(name: &str) -> Result<Option<Vec<String>>, LookupFailed> {
    group_entry(name, |grp| {
        let mut members = Vec::new();
        let mut at = grp.gr_mem;
        // SAFETY: `at` walks the NULL-terminated gr_mem array of NUL-terminated strings,
        // which live in the lookup's buffer for as long as `pick` runs.
        while !at.is_null() && !unsafe { *at }.is_null() {
            members.push(
                unsafe { CStr::from_ptr(*at) }
                    .to_string_lossy()
                    .into_owned(),
            );
            at = unsafe { at.add(1) };
        }
        members
    })
}

/// Whether SIGINT, SIGQUIT, SIGHUP or SIGTERM is pending (blocked by the host program while
/// PAM runs, as sudo does with SIGINT and SIGQUIT). Only looks (`sigpending`): nothing is
/// consumed or handled, so the host program still sees the signal once it unblocks it.
pub fn stop_signal_pending() -> bool {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; sigpending and
    // sigismember only read and write the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::sigpending(&mut set) != 0 {
            return false;
        }
        [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM]
            .iter()
            .any(|&sig| libc::sigismember(&set, sig) == 1)
    }
}

/// sshd's main config file.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// sshd's default `LoginGraceTime`.
pub const DEFAULT_LOGIN_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// sshd's `LoginGraceTime` as the files say (`sshd -T` cannot be run inside PAM): the first
/// value found in `main` and the files its `Include` lines name (globs, relative to
/// `/etc/ssh`), in sshd's order; 120 s when none is set; `None` when it is 0 (no limit) or the
/// main file cannot be read.
pub fn sshd_login_grace_time(main: &std::path::Path) -> Option<std::time::Duration> {
    let mut budget = 64;
    match grace_from_file(main, &mut budget) {
        Ok(Some(0)) => None,
        Ok(Some(secs)) => Some(std::time::Duration::from_secs(secs)),
        Ok(None) => Some(DEFAULT_LOGIN_GRACE),
        Err(()) => None,
    }
}

fn grace_from_file(path: &std::path::Path, budget: &mut u32) -> Result<Option<u64>, ()> {
    if *budget == 0 {
        return Ok(None);
    }
    *budget -= 1;
    let text = std::fs::read_to_string(path).map_err(drop)?;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        let Some(keyword) = words.next() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("match") {
            // LoginGraceTime is not allowed in Match blocks; nothing after this is global.
            break;
        }
        if keyword.eq_ignore_ascii_case("include") {
            for pattern in words {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_owned()
                } else {
                    format!("/etc/ssh/{pattern}")
                };
                for file in glob_files(&pattern) {
                    if let Ok(Some(secs)) = grace_from_file(&file, budget) {
                        return Ok(Some(secs));
                    }
                }
            }
            continue;
        }
        if keyword.eq_ignore_ascii_case("logingracetime") {
            if let Some(secs) = words.next().and_then(parse_sshd_time) {
                return Ok(Some(secs));
            }
        }
    }
    Ok(None)
}

/// The files matching `pattern` where only the last component may hold `*` and `?`, sorted
/// (as sshd's glob(3) returns them).
fn glob_files(pattern: &str) -> Vec<std::path::PathBuf> {
    let path = std::path::Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return vec![path.to_owned()];
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| crate::policy::glob(name, n))
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// sshd's time format: `120`, `2m`, `1m30s`, `1h` (units s, m, h, d, w; none = seconds).
pub fn parse_sshd_time(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if let Some(n) = number {
        total = total.checked_add(n)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_in_group_root() {
        let groups = user_groups("root").unwrap().expect("root exists");
        assert!(
            groups
                .iter()
                .any(|g| g.name.as_deref() == Some("root") && g.gid == 0),
            "{groups:?}"
        );
        assert_eq!(user_groups("no-such-user-pushauth-test"), Ok(None));
        assert_eq!(user_groups("nul\0user"), Ok(None));
        assert_eq!(group_id("root"), GroupId::Found(0));
        assert_eq!(
            group_id("no-such-group-pushauth-test"),
            GroupId::NoSuchGroup
        );
    }

    #[test]
    fn issue9_item8_sshd_login_grace_time_is_read_from_the_files() {
        assert_eq!(parse_sshd_time("120"), Some(120));
        assert_eq!(parse_sshd_time("2m"), Some(120));
        assert_eq!(parse_sshd_time("1m30s"), Some(90));
        assert_eq!(parse_sshd_time("1h"), Some(3600));
        assert_eq!(parse_sshd_time("x"), None);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("sshd_config.d");
        std::fs::create_dir(&d).unwrap();
        let main = dir.path().join("sshd_config");
        std::fs::write(
            &main,
            format!(
                "Include {}/*.conf\nLoginGraceTime 2m\nMatch user x\n",
                d.display()
            ),
        )
        .unwrap();
        // Without drop-ins the main file's value counts.
        assert_eq!(
            sshd_login_grace_time(&main),
            Some(std::time::Duration::from_secs(120))
        );
        // A drop-in included first wins, as in sshd (first value obtained is used).
        std::fs::write(d.join("10-grace.conf"), "logingracetime=30\n").unwrap();
        assert_eq!(
            sshd_login_grace_time(&main),
            Some(std::time::Duration::from_secs(30))
        );
        std::fs::write(d.join("00-nolimit.conf"), "LoginGraceTime 0\n").unwrap();
        assert_eq!(sshd_login_grace_time(&main), None);
        // Nothing set: sshd's default.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "Port 22\n").unwrap();
        assert_eq!(sshd_login_grace_time(&plain), Some(DEFAULT_LOGIN_GRACE));
        assert_eq!(sshd_login_grace_time(&dir.path().join("missing")), None);
    }

    #[test]
    fn issue9_item18_a_blocked_sigint_is_seen_as_pending() {
        // SAFETY: blocks SIGINT in this test thread only, raises it at the thread, checks, then
        // consumes it with sigwait and restores the mask; nothing else in the test process uses
        // SIGINT.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            assert!(!stop_signal_pending());
            libc::pthread_kill(libc::pthread_self(), libc::SIGINT);
            assert!(stop_signal_pending());
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            assert_eq!(sig, libc::SIGINT);
            assert!(!stop_signal_pending());
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }

    #[test]
    fn host_facts() {
        assert!(hostname().is_some_and(|h| !h.is_empty()));
        let argv = own_argv().unwrap();
        assert!(!argv.is_empty());
    }

    #[test]
    fn issue14_user_ids() {
        assert_eq!(user_id("root"), Ok(Some(0)));
        assert_eq!(user_id("no-such-user-pushauth-test"), Ok(None));
        assert_eq!(user_id("nul\0inside"), Ok(None));
    }

    /// Issue 14 attack review: an empty argument stays one (`sudo -p '' systemctl restart x`
    /// was read as `-p systemctl` and the command `restart x`, which no rule matched).
    #[test]
    fn issue14_cmdline_keeps_empty_arguments() {
        let argv = argv_from_cmdline(b"sudo\0-p\0\0systemctl\0restart\0nginx\0");
        assert_eq!(argv, ["sudo", "-p", "", "systemctl", "restart", "nginx"]);
        assert_eq!(
            crate::context::sudo_command(&argv).as_deref(),
            Some("systemctl restart nginx")
        );
        assert_eq!(argv_from_cmdline(b"sudo\0\0"), ["sudo", ""]);
        assert_eq!(argv_from_cmdline(b"sshd: bob"), ["sshd: bob"]);
        assert!(argv_from_cmdline(b"").is_empty());
    }
}
