//! Attacks on pam_push's issue 9 paths, each a scenario that should not skip the push.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use pam_push::authenticate::{
    authenticate, ConvFailed, Conversation, Level, Log, PamCode, PamEnv, PushBackend,
};
use pam_push::config::{Config, Ownership};
use pam_push::context::LoginFacts;
use pam_push::policy::{GroupId, UserGroup};
use pam_push::system::LookupFailed;
use pushauth_client::{ClientError, Context, Outcome, StartOptions};
use zeroize::Zeroizing;

struct Conv;

impl Conversation for Conv {
    fn prompt(&mut self, _text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        Ok(Zeroizing::new(String::new()))
    }
    fn info(&mut self, _text: &str) -> Result<(), ConvFailed> {
        Ok(())
    }
    fn error(&mut self, _text: &str) -> Result<(), ConvFailed> {
        Ok(())
    }
}

#[derive(Default)]
struct Lines(Vec<String>);

impl Log for Lines {
    fn log(&mut self, _level: Level, line: &str) {
        self.0.push(line.to_owned());
    }
}

fn gid_of(name: &str) -> u32 {
    match name {
        "admins" => 2000,
        "users" => 100,
        _ => 9999,
    }
}

/// A host where two accounts exist whose names differ only in case or domain: the directory
/// account `alice@corp` (an administrator) and the local account `alice` (not one).
struct TwoAccounts;

impl PamEnv for TwoAccounts {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: Some("sshd".into()),
            host: Some("web01".into()),
            rhost: Some("192.0.2.7".into()),
            tty: Some("ssh".into()),
            ssh_auth_info: None,
            argv: None,
        }
    }
    fn user_groups(&self, user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed> {
        let names: &[&str] = match user {
            "alice@corp" => &["admins", "users"],
            "alice" => &["users"],
            _ => return Ok(None),
        };
        Ok(Some(
            names
                .iter()
                .map(|n| UserGroup {
                    gid: gid_of(n),
                    name: Some((*n).to_owned()),
                })
                .collect(),
        ))
    }
    fn group_id(&self, name: &str) -> GroupId {
        GroupId::Found(gid_of(name))
    }
}

/// Records whether a push was started.
#[derive(Default)]
struct Backend {
    started: RefCell<Option<String>>,
}

impl PushBackend for Backend {
    type Login = ();
    fn start(
        &self,
        user: &str,
        _context: &Context,
        _opts: &StartOptions,
        _deadline: Instant,
    ) -> Result<(), ClientError> {
        *self.started.borrow_mut() = Some(user.to_owned());
        Err(ClientError::Unauthorized)
    }
    fn challenge_id(_login: &()) -> &str {
        "c"
    }
    fn code(_login: &()) -> Option<&str> {
        None
    }
    fn device_names(_login: &()) -> Vec<String> {
        Vec::new()
    }
    fn wait(&self, _login: &(), _deadline: Instant) -> Result<Outcome, ClientError> {
        Ok(Outcome::Expired)
    }
    fn cancel(&self, _login: &(), _deadline: Instant) -> Result<(), ClientError> {
        Ok(())
    }
}

/// Scenario (item 10 against item 5): `groups = ["admins"]` puts administrators under push, and
/// `user_map = "strip_domain"` makes `alice@corp` push as `alice`. But the group check is made
/// on the *mapped* name, that is on another account (the local `alice`), not on the account that
/// logs in: the directory administrator `alice@corp` gets PAM_IGNORE and logs in with the
/// password alone.
#[test]
fn attack_group_check_uses_the_mapped_name_not_the_account_logging_in() {
    let me = Ownership {
        uid: pushauth_testkit::euid(),
    };
    let cfg = Config::parse(
        Path::new("/test/pam_push.conf"),
        "server = \"http://127.0.0.1:1\"\napi_key = \"k\"\ngroups = [\"admins\"]\n\
         user_map = \"strip_domain\"\n",
        me,
    )
    .unwrap();
    let backend = Backend::default();
    let mut log = Lines::default();
    let code = authenticate(
        &cfg,
        &backend,
        "alice@corp",
        &TwoAccounts,
        &mut Conv,
        &mut log,
        false,
        Instant::now(),
    );
    assert_ne!(
        code,
        PamCode::Ignore,
        "the administrator alice@corp skipped the push: {:?}",
        log.0
    );
    assert_eq!(backend.started.borrow().as_deref(), Some("alice"));
}
