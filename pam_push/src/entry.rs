//! Where a PAM hook enters the module: its arguments (`conf=`, `debug`), the config and client
//! before the flow proper ([`run`]), and the stacks other than `auth`, where the module only
//! says it is misplaced ([`log_misplaced`]).

use std::path::PathBuf;
use std::time::Instant;

use crate::authenticate::{authenticate, Conversation, Level, Log, PamCode, PamEnv};
use crate::config::{Config, Ownership, DEFAULT_CONFIG_PATH};
use crate::record::quote;

/// A PAM stack other than `auth`, where the module does nothing useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The `account` stack.
    Account,
    /// The `password` stack.
    Password,
    /// The `session` stack.
    Session,
}

impl Stack {
    /// The stack's name as a PAM line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Account => "account",
            Stack::Password => "password",
            Stack::Session => "session",
        }
    }
}

/// Logs that pam_push was put in a stack other than `auth` (a configuration mistake that
/// would otherwise pass in silence); the hook then fails closed.
pub fn log_misplaced(stack: Stack, user: Option<&str>, pam: &dyn PamEnv, log: &mut dyn Log) {
    let service = pam.facts().service.unwrap_or_default();
    log.log(
        Level::Error,
        &format!(
            "pam_push: user={} service={} outcome=misconfigured: pam_push is in the {} stack of \
             /etc/pam.d/{}; it only works as \"auth required pam_push.so\"; refusing",
            quote(user.unwrap_or("")),
            quote(&service),
            stack.name(),
            for_path(&service)
        ),
    );
}

/// A service name as a file name for a log line.
fn for_path(service: &str) -> String {
    let clean = quote(service);
    if clean == "-" {
        "<service>".into()
    } else {
        clean
    }
}

/// Module arguments: `conf=/path` and `debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Path of the config file (`conf=`; default `/etc/pam_push.conf`).
    pub conf: PathBuf,
    /// `debug`: log debug lines too.
    pub debug: bool,
}

impl Args {
    /// Parses the PAM line's arguments. An unknown argument is an error (fail closed), so a typo
    /// such as `conf /etc/x` cannot silently fall back to another file.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, String> {
        let mut out = Args {
            conf: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
        };
        for arg in args {
            if arg == "debug" {
                out.debug = true;
            } else if let Some(path) = arg.strip_prefix("conf=") {
                if !path.starts_with('/') {
                    return Err(format!("conf={path} must be an absolute path"));
                }
                out.conf = PathBuf::from(path);
            } else {
                return Err(format!(
                    "unknown module argument {arg:?} (expected conf=/path or debug)"
                ));
            }
        }
        Ok(out)
    }
}

/// Everything before the flow proper: arguments, config, client. Returns the PAM code.
pub fn run(
    args: &[&str],
    user: Option<&str>,
    owner: Ownership,
    pam: &dyn PamEnv,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> PamCode {
    let started = Instant::now();
    let service = pam.facts().service.unwrap_or_default();
    let args = match Args::parse(args.iter().copied()) {
        Ok(args) => args,
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "pam_push: service={} {e}; refusing authentication",
                    quote(&service)
                ),
            );
            return PamCode::ServiceErr;
        }
    };
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        log.log(
            Level::Error,
            &format!(
                "pam_push: service={} no user name; refusing authentication",
                quote(&service)
            ),
        );
        return PamCode::UserUnknown;
    };
    let config = match Config::load(&args.conf, owner) {
        Ok(config) => config,
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "pam_push: user={} service={} outcome=config_error: {e}; refusing authentication",
                    quote(user),
                    quote(&service)
                ),
            );
            let _ = conv
                .error("pushauth: this host's push configuration is broken; ask an administrator");
            return PamCode::ServiceErr;
        }
    };
    if args.debug {
        log.log(
            Level::Debug,
            &format!("pam_push: loaded {}: {config:?}", args.conf.display()),
        );
    }
    let client = match pushauth_client::Client::new(config.client_config()) {
        Ok(client) => client,
        Err(e) => {
            log.log(
                Level::Error,
                &format!(
                    "pam_push: user={} service={} outcome=config_error: {e}; refusing authentication",
                    quote(user),
                    quote(&service)
                ),
            );
            return PamCode::ServiceErr;
        }
    };
    authenticate(&config, &client, user, pam, conv, log, args.debug, started)
}
