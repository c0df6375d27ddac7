//! Issue 14 attack review: four-eyes approval in pam_push, with a scripted conversation, host
//! and backend. Each test is a way a requester tried to get past the approver (a rule skipped
//! by how sudo was typed, an exemption matched by a look-alike program, a command too long to
//! show, the requester asked under another name of the same account).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use pam_push::authenticate::{
    authenticate, ConvFailed, Conversation, Level, Log, PamCode, PamEnv, PushBackend,
};
use pam_push::config::{Config, Ownership};
use pam_push::context::LoginFacts;
use pam_push::policy::{GroupId, UserGroup};
use pam_push::system::LookupFailed;
use pushauth_client::{ActionRequest, ClientError, Context, Outcome, StartOptions};
use zeroize::Zeroizing;

const REASON: &str = "ticket OPS-7";

/// Answers every prompt with the reason (the approval flow asks for nothing else under sudo).
#[derive(Default)]
struct Conv {
    prompts: Vec<String>,
    infos: Vec<String>,
    errors: Vec<String>,
}

impl Conversation for Conv {
    fn prompt(&mut self, text: &str) -> Result<Zeroizing<String>, ConvFailed> {
        self.prompts.push(text.to_owned());
        Ok(Zeroizing::new(REASON.to_owned()))
    }
    fn info(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.infos.push(text.to_owned());
        Ok(())
    }
    fn error(&mut self, text: &str) -> Result<(), ConvFailed> {
        self.errors.push(text.to_owned());
        Ok(())
    }
}

/// The host: PAM service, the program's argv, local accounts (name → uid) and groups.
struct Host {
    service: String,
    /// `PAM_RUSER`: the person who runs su (or sudo), when the application sets it.
    ruser: Option<String>,
    argv: Vec<String>,
    uids: BTreeMap<String, Result<u32, LookupFailed>>,
    groups: BTreeMap<String, Vec<String>>,
    /// Each account's own groups (gid, name), for rules' `groups`; none when absent.
    member_of: BTreeMap<String, Vec<(u32, String)>>,
    /// How many accounts were looked up.
    lookups: std::cell::Cell<usize>,
}

impl Host {
    fn sudo(argv: &[&str]) -> Host {
        Host {
            service: "sudo".into(),
            ruser: None,
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            uids: [("bob", 1001), ("alice", 1002)]
                .into_iter()
                .map(|(n, u)| (n.to_owned(), Ok(u)))
                .collect(),
            groups: BTreeMap::new(),
            member_of: BTreeMap::new(),
            lookups: std::cell::Cell::new(0),
        }
    }
}

impl PamEnv for Host {
    fn facts(&self) -> LoginFacts {
        LoginFacts {
            service: Some(self.service.clone()),
            host: Some("web01".into()),
            rhost: None,
            tty: Some("pts/0".into()),
            ssh_auth_info: None,
            argv: Some(self.argv.clone()),
        }
    }
    fn user_groups(&self, user: &str) -> Result<Option<Vec<UserGroup>>, LookupFailed> {
        Ok(self.uids.contains_key(user).then(|| {
            self.member_of
                .get(user)
                .into_iter()
                .flatten()
                .map(|(gid, name)| UserGroup {
                    gid: *gid,
                    name: Some(name.clone()),
                })
                .collect()
        }))
    }
    fn group_id(&self, name: &str) -> GroupId {
        self.member_of
            .values()
            .flatten()
            .find(|(_, n)| n == name)
            .map_or(GroupId::NoSuchGroup, |(gid, _)| GroupId::Found(*gid))
    }
    fn group_members(&self, name: &str) -> Result<Option<Vec<String>>, LookupFailed> {
        Ok(self.groups.get(name).cloned())
    }
    fn user_id(&self, name: &str) -> Result<Option<u32>, LookupFailed> {
        self.lookups.set(self.lookups.get() + 1);
        self.uids.get(name).cloned().transpose()
    }
    fn ruser(&self) -> Option<String> {
        self.ruser.clone()
    }
}

#[derive(Default)]
struct Log0(Vec<String>);

impl Log for Log0 {
    fn log(&mut self, _level: Level, line: &str) {
        self.0.push(line.to_owned());
    }
}

/// Records what was asked: the person's own push (`self_pushes`) and approvals (`actions`);
/// every approval is denied, every own push approved.
#[derive(Default)]
struct Backend {
    self_pushes: RefCell<Vec<String>>,
    actions: RefCell<Vec<ActionRequest>>,
}

impl PushBackend for Backend {
    type Login = String;
    fn start(
        &self,
        user: &str,
        _context: &Context,
        _opts: &StartOptions,
        _deadline: Instant,
    ) -> Result<String, ClientError> {
        self.self_pushes.borrow_mut().push(user.to_owned());
        Ok(format!("own-{user}"))
    }
    fn challenge_id(login: &String) -> &str {
        login
    }
    fn code(_login: &String) -> Option<&str> {
        None
    }
    fn device_names(_login: &String) -> Vec<String> {
        vec!["phone".into()]
    }
    fn wait(&self, _login: &String, _deadline: Instant) -> Result<Outcome, ClientError> {
        Ok(Outcome::Approved {
            device_id: "d".into(),
            device_name: "phone".into(),
        })
    }
    fn cancel(&self, _login: &String, _deadline: Instant) -> Result<(), ClientError> {
        Ok(())
    }
    fn start_action(
        &self,
        request: &ActionRequest,
        _deadline: Instant,
    ) -> Result<(Vec<(String, String)>, Vec<String>), ClientError> {
        self.actions.borrow_mut().push(request.clone());
        let asked = request
            .approvers
            .iter()
            .map(|a| (a.clone(), format!("appr-{a}")))
            .collect();
        Ok((asked, Vec::new()))
    }
    fn wait_any(
        &self,
        _logins: &[String],
        _deadline: Instant,
    ) -> Result<(Option<usize>, Outcome), ClientError> {
        Ok((
            Some(0),
            Outcome::Denied {
                device_id: "d".into(),
            },
        ))
    }
}

fn config(extra: &str) -> Config {
    Config::parse(
        Path::new("/test/pam_push.conf"),
        &format!("server = \"http://127.0.0.1:1\"\napi_key = \"k\"\n{extra}"),
        Ownership {
            uid: pushauth_testkit::euid(),
        },
    )
    .unwrap()
}

struct Ran {
    code: PamCode,
    conv: Conv,
    log: Vec<String>,
    backend: Backend,
}

impl Ran {
    /// The one approval asked, if any.
    fn action(&self) -> Option<ActionRequest> {
        let actions = self.backend.actions.borrow();
        assert!(actions.len() <= 1, "{:?}", actions.len());
        actions.first().cloned()
    }
}

fn go(cfg: &Config, host: &Host, requester: &str) -> Ran {
    let backend = Backend::default();
    let mut conv = Conv::default();
    let mut log = Log0::default();
    let code = authenticate(
        cfg,
        &backend,
        requester,
        host,
        &mut conv,
        &mut log,
        false,
        Instant::now(),
    );
    Ran {
        code,
        conv,
        log: log.0,
        backend,
    }
}

/// The rule of README's "Four eyes on sudo" (without the groups line).
const RESTART_RULE: &str = "[[approval_rules]]\n\
    services = [\"sudo\"]\n\
    commands = [\"systemctl restart *\", \"systemctl stop *\"]\n\
    approval = \"other\"\n\
    approvers = [\"alice\"]\n";

/// Attack: README's rule names `services = ["sudo"]`, and `sudo -i COMMAND` authenticates
/// through the PAM service `sudo-i` (README: "SSH and sudo"), so the rule was skipped and bob's
/// own push let the restart run. `sudo-i` is sudo for the rules (and `su-l` is su).
#[test]
fn issue14_attack_sudo_i_does_not_skip_a_sudo_rule() {
    let cfg = config(RESTART_RULE);
    let mut host = Host::sudo(&["sudo", "-i", "systemctl", "restart", "nginx"]);
    host.service = "sudo-i".into();
    let ran = go(&cfg, &host, "bob");
    let action = ran.action().expect("the approver is asked");
    assert_eq!(action.approvers, ["alice"]);
    assert_eq!(action.context["command"], "systemctl restart nginx");
    assert!(ran.backend.self_pushes.borrow().is_empty());
    assert_eq!(ran.code, PamCode::AuthErr);

    let cfg = config(
        "[[approval_rules]]\nservices = [\"su\"]\napproval = \"other\"\napprovers = [\"alice\"]\n",
    );
    let mut host = Host::sudo(&["su", "-"]);
    host.service = "su-l".into();
    let ran = go(&cfg, &host, "bob");
    assert!(ran.action().is_some(), "su - (su-l) is su for the rules");
}

/// Attack: sudo's options as sudo reads them (getopt_long: clustered short options, a value
/// glued on or in the next argument, unambiguous abbreviations of long options, `-R`, an empty
/// value). The module read `-ku root` as the option `-ku` and the command `root systemctl …`,
/// so a `commands` rule never matched: bob ran `systemctl restart` with his own push only.
#[test]
fn issue14_attack_sudo_options_do_not_hide_the_command_from_a_rule() {
    let cfg = config(RESTART_RULE);
    for argv in [
        &["sudo", "-ku", "root", "systemctl", "restart", "nginx"][..],
        &["sudo", "-Hu", "root", "systemctl", "restart", "nginx"],
        &["sudo", "-knu", "root", "systemctl", "restart", "nginx"],
        &["sudo", "--us", "root", "systemctl", "restart", "nginx"],
        &["sudo", "--use", "root", "systemctl", "restart", "nginx"],
        &["sudo", "--prom", "x", "systemctl", "restart", "nginx"],
        &["sudo", "-kp", "x", "systemctl", "restart", "nginx"],
        &["sudo", "-R", "/", "systemctl", "restart", "nginx"],
        &["sudo", "--chroot", "/", "systemctl", "restart", "nginx"],
        &["sudo", "-p", "", "systemctl", "restart", "nginx"],
        &["sudo", "--preserve-env", "systemctl", "restart", "nginx"],
        &["sudo", "-E", "systemctl", "restart", "nginx"],
        &["sudo", "-s", "systemctl", "restart", "nginx"],
        &["sudo", "FOO=1", "systemctl", "restart", "nginx"],
        &[
            "sudo",
            "-u",
            "root",
            "--",
            "/usr/bin/systemctl",
            "restart",
            "nginx",
        ],
    ] {
        let ran = go(&cfg, &Host::sudo(argv), "bob");
        let action = ran
            .action()
            .unwrap_or_else(|| panic!("{argv:?}: the rule was skipped"));
        assert!(
            action.context["command"].contains("systemctl restart nginx"),
            "{argv:?}: {:?}",
            action.context
        );
        assert!(
            ran.backend.self_pushes.borrow().is_empty(),
            "{argv:?}: own push only"
        );
    }
}

/// Attack on what the approver reads: `sudoedit FILE` (and `sudo -e FILE`) edits FILE as
/// root; the module showed the bare file name as "the command", and a rule for `sudoedit *`
/// never matched. (`-u www -u root`, which could name the wrong account, sudo refuses.)
#[test]
fn issue14_attack_the_approver_reads_what_sudo_does() {
    let cfg = config(
        "approval = \"other\"\napprovers = [\"alice\"]\n\
         [[approval_rules]]\nservices = [\"sudo\"]\ncommands = [\"sudoedit /etc/*\"]\n\
         approval = \"other\"\napprovers = [\"carol\"]\n",
    );
    for argv in [
        &["sudoedit", "/etc/shadow"][..],
        &["sudo", "-e", "/etc/shadow"],
        &["sudo", "--edit", "/etc/shadow"],
        &["/usr/bin/sudoedit", "-u", "root", "/etc/shadow"],
    ] {
        let ran = go(&cfg, &Host::sudo(argv), "bob");
        let action = ran.action().unwrap();
        assert_eq!(
            action.context["command"], "sudoedit /etc/shadow",
            "{argv:?}"
        );
        assert_eq!(action.approvers, ["carol"], "{argv:?}: the sudoedit rule");
    }
}

/// Attack: an exemption (`approval = "self"` for `ls *` under a top level of `other`) matched
/// the command with its program's directory dropped, so bob's own script `/home/bob/ls` (or
/// `./ls`) ran as root with his own push only. A rule that asks nobody else matches the command
/// only as typed; a rule that asks an approver still matches by program name.
#[test]
fn issue14_attack_an_exemption_is_not_matched_by_a_look_alike_program() {
    let cfg = config(
        "approval = \"other\"\napprovers = [\"alice\"]\n\
         [[approval_rules]]\nservices = [\"sudo\"]\ncommands = [\"ls *\"]\napproval = \"self\"\n",
    );
    for argv in [
        &["sudo", "/home/bob/ls", "/root"][..],
        &["sudo", "./ls", "/root"],
        &["sudo", "LD_PRELOAD=/tmp/x.so", "ls", "/root"],
    ] {
        let ran = go(&cfg, &Host::sudo(argv), "bob");
        assert!(
            ran.action().is_some(),
            "{argv:?}: the exemption applied to a look-alike"
        );
        assert!(ran.backend.self_pushes.borrow().is_empty());
    }
    let ran = go(&cfg, &Host::sudo(&["sudo", "ls", "/root"]), "bob");
    assert!(ran.action().is_none(), "the exemption as written");
    assert_eq!(*ran.backend.self_pushes.borrow(), ["bob"]);
    assert_eq!(ran.code, PamCode::Success);
}

/// Attack: a command longer than a context value (1024 bytes) was cut without a mark, so the
/// approver read a harmless beginning (`sh -c : ………`) and approved what came after it. An
/// approval whose command cannot be shown in full is refused before anyone is asked.
#[test]
fn issue14_attack_a_command_too_long_to_show_is_refused() {
    let cfg = config("approval = \"other\"\napprovers = [\"alice\"]\n");
    let script = format!(": {}; rm -rf /srv/data", "x".repeat(1100));
    let argv = ["sudo", "sh", "-c", script.as_str()];
    let ran = go(&cfg, &Host::sudo(&argv), "bob");
    assert!(ran.action().is_none(), "nobody is asked");
    assert_eq!(ran.code, PamCode::AuthErr);
    assert!(
        ran.conv.errors.iter().any(|e| e.contains("too long")),
        "{:?}",
        ran.conv.errors
    );
    assert!(ran.conv.prompts.is_empty(), "no reason asked");
    assert!(
        ran.log
            .iter()
            .any(|l| l.contains("outcome=command_too_long")),
        "{:?}",
        ran.log
    );
    // Just under the bound: asked, in full.
    let script = format!(": {}", "x".repeat(1000));
    let argv = ["sudo", "sh", "-c", script.as_str()];
    let ran = go(&cfg, &Host::sudo(&argv), "bob");
    let action = ran.action().unwrap();
    assert_eq!(action.context["command"], format!("sh -c {script}"));
}

/// Attack: the requester under another name of the same account. With a directory that
/// ignores case (sssd's AD provider) `ssh BOB@host` logs in to bob's account as PAM user
/// `BOB`, and an alias with bob's uid (`bob2`) is bob too; the approver group lists `bob`, so
/// bob was asked to approve his own login. Names that resolve to the requester's uid are left
/// out; when the requester's account cannot be looked up, nobody is asked.
#[test]
fn issue14_attack_the_requester_under_another_name_is_never_asked() {
    let cfg = config("approval = \"other\"\napprovers = [\"%leads\", \"bob\"]\n");
    let mut host = Host::sudo(&["sshd: BOB [priv]"]);
    host.service = "sshd".into();
    host.uids.insert("BOB".into(), Ok(1001));
    host.uids.insert("bob2".into(), Ok(1001));
    host.groups
        .insert("leads".into(), vec!["bob".into(), "alice".into()]);
    for requester in ["BOB", "bob2"] {
        let ran = go(&cfg, &host, requester);
        let action = ran.action().expect("alice is asked");
        assert_eq!(action.approvers, ["alice"], "{requester}");
    }
    // Only bob in the group: nobody to ask.
    host.groups.insert("leads".into(), vec!["bob".into()]);
    let ran = go(&cfg, &host, "BOB");
    assert!(ran.action().is_none());
    assert_eq!(ran.code, PamCode::AuthErr);
    // The requester's account cannot be looked up: nobody is asked.
    host.groups
        .insert("leads".into(), vec!["bob".into(), "alice".into()]);
    host.uids.insert("BOB".into(), Err(LookupFailed::Error));
    let ran = go(&cfg, &host, "BOB");
    assert!(ran.action().is_none());
    assert_ne!(ran.code, PamCode::Success);
    // An approver whose account cannot be looked up is not asked (fewer, never more).
    host.uids.insert("BOB".into(), Ok(1001));
    host.uids.insert("alice".into(), Err(LookupFailed::Error));
    host.groups
        .insert("leads".into(), vec!["alice".into(), "carol".into()]);
    let ran = go(&cfg, &host, "BOB");
    // carol is no local account here (a pushauth name only): asked.
    assert_eq!(ran.action().unwrap().approvers, ["carol"]);
}

/// Attack: under su (and sudo with `targetpw` or `rootpw`) the PAM user is the account being
/// switched to, not the person asking, who is `PAM_RUSER`. bob, in the approver group, ran
/// `su -` (he knows root's password, the first factor): the approval named "root" as the
/// requester and went to the group minus root, so to bob's own phone, and he approved himself.
/// The person who runs su is the requester: named as such, and never asked.
#[test]
fn issue14_attack_su_names_the_person_and_never_asks_them() {
    let cfg = config("approval = \"other\"\napprovers = [\"%leads\"]\n");
    let mut host = Host::sudo(&["su", "-"]);
    host.service = "su-l".into();
    host.ruser = Some("bob".into());
    host.uids.insert("root".into(), Ok(0));
    host.groups
        .insert("leads".into(), vec!["bob".into(), "alice".into()]);
    let ran = go(&cfg, &host, "root");
    let action = ran.action().expect("alice is asked");
    assert_eq!(action.approvers, ["alice"]);
    assert_eq!(action.context["requester"], "bob");
    assert_eq!(action.context["target_user"], "root");
    assert!(
        action
            .message
            .starts_with("bob asks to act as root on web01"),
        "{}",
        action.message
    );
    assert!(
        ran.log.iter().any(|l| l.contains("requester=bob ")),
        "{:?}",
        ran.log
    );
    // bob alone in the group: nobody to ask.
    host.groups.insert("leads".into(), vec!["bob".into()]);
    let ran = go(&cfg, &host, "root");
    assert!(ran.action().is_none());
    assert_eq!(ran.code, PamCode::AuthErr);
    // sudo with targetpw: PAM user root, PAM_RUSER bob; the command and target as typed.
    host.service = "sudo".into();
    host.argv = ["sudo", "-u", "www", "id"].map(String::from).to_vec();
    host.groups
        .insert("leads".into(), vec!["bob".into(), "alice".into()]);
    let ran = go(&cfg, &host, "www");
    let action = ran.action().unwrap();
    assert_eq!(action.approvers, ["alice"]);
    assert_eq!(action.context["requester"], "bob");
    assert_eq!(action.context["target_user"], "www");
}

/// Each approver is looked up (to tell the requester under another name): a huge approver
/// group stops at the first name over the limit rather than looking up every member inside
/// sudo, and refuses as a configuration error.
#[test]
fn issue14_a_huge_approver_group_stops_early() {
    let cfg = config("approval = \"other\"\napprovers = [\"%everyone\"]\n");
    let mut host = Host::sudo(&["sudo", "id"]);
    host.groups.insert(
        "everyone".into(),
        (0..20_000).map(|i| format!("user{i}")).collect(),
    );
    let ran = go(&cfg, &host, "bob");
    assert_eq!(ran.code, PamCode::ServiceErr);
    assert!(ran.action().is_none());
    assert!(host.lookups.get() < 40, "{} lookups", host.lookups.get());
}

/// New-user review: a rule's `groups` are the requester's. Under su (and sudo's targetpw) the
/// PAM user is the account switched to; the rule was matched against root's groups, so a rule
/// for the ops team never applied to `su -` by one of them, who got their own push alone.
#[test]
fn issue14_a_rule_s_groups_are_the_person_s_under_su() {
    let cfg = config(
        "[[approval_rules]]\nservices = [\"su\"]\ngroups = [\"ops\"]\napproval = \"other\"\napprovers = [\"alice\"]\n",
    );
    let mut host = Host::sudo(&["su", "-"]);
    host.service = "su-l".into();
    host.ruser = Some("bob".into());
    host.uids.insert("root".into(), Ok(0));
    host.member_of
        .insert("bob".into(), vec![(50, "ops".into())]);
    let ran = go(&cfg, &host, "root");
    let action = ran.action().expect("the ops rule applies to bob's su");
    assert_eq!(action.approvers, ["alice"]);
    assert!(ran.backend.self_pushes.borrow().is_empty());
    // Someone outside ops: the rule does not apply; their own push (as root's) is asked.
    host.ruser = Some("alice".into());
    let ran = go(&cfg, &host, "root");
    assert!(ran.action().is_none());
    assert_eq!(*ran.backend.self_pushes.borrow(), ["root"]);
}
