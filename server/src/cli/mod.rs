//! The `pushauthd` command line: `serve`, and admin subcommands that work directly on the store
//! (`enroll`, `devices`, `revoke`, `rp add|list|revoke|rotate`, `audit`, `unlock`,
//! `backup-codes`, `grace end`, `migrate`, `store copy`) or on the running server (`push`).

mod admin;
mod backup;
mod push;
mod serve;
mod store_copy;
mod store_open;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use thiserror::Error;

use crate::config::ConfigError;
use crate::error::ServerError;
use crate::store::StoreError;

pub use serve::resolve_serve;

/// pushauthd: the pushauth push server and its admin commands.
#[derive(Debug, Parser)]
#[command(name = "pushauthd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Make a single-use enrollment link (and QR code) for a user.
    Enroll(EnrollArgs),
    /// List a user's devices.
    Devices(DevicesArgs),
    /// Revoke a device.
    Revoke(RevokeArgs),
    /// Manage relying parties.
    Rp {
        /// Which relying-party command.
        #[command(subcommand)]
        command: RpCommand,
    },
    /// Show the audit log, newest first.
    Audit(AuditArgs),
    /// Send a test push through the running server and follow it until it ends.
    Push(PushArgs),
    /// Lift a user's report lock-outs and wrong-code lock, and reset their push counters and
    /// count of wrong codes (audited).
    Unlock(UnlockArgs),
    /// Issue a new set of one-time backup codes for a user (voiding the old) and print it once.
    BackupCodes(BackupCodesArgs),
    /// Move the store: `store copy --from sqlite:PATH --to postgresql://…` (issue 13).
    Store {
        /// Which store command.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Create the store's schema or bring it up to this version (`serve` does it on start
    /// unless `--no-migrate`).
    Migrate(StoreArgs),
    /// Grace windows for repeated logins (issue 12).
    Grace {
        /// Which grace command.
        #[command(subcommand)]
        command: GraceCommand,
    },
}

/// `pushauthd store …`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a SQLite store (stop its pushauthd first) into an empty PostgreSQL database:
    /// devices, relying parties, audit, open challenges, everything. Refuses a database that
    /// holds anything.
    Copy(StoreCopyArgs),
}

/// `pushauthd store copy`.
#[derive(Debug, Clone, Args)]
pub struct StoreCopyArgs {
    /// The source: `sqlite:PATH`, PATH the data directory holding pushauthd.sqlite3.
    #[arg(long)]
    pub from: String,
    /// The target: `postgresql://…` (no password in it; see --password-file).
    #[arg(long)]
    pub to: String,
    /// File holding the target database's password (mode 0600).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// `pushauthd grace …`.
#[derive(Debug, Subcommand)]
pub enum GraceCommand {
    /// End every grace window of a user at once: their next login pushes again (audited).
    End(UnlockArgs),
}

/// Where the store is: `--data-dir`, or the `data_dir` of `--config` (else of
/// `/etc/pushauthd/pushauthd.toml` when it exists). Admin commands never create a store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Config file (TOML) [default: /etc/pushauthd/pushauthd.toml if it exists].
    #[arg(long, env = "PUSHAUTHD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Say on stderr which store the command uses and which config file chose it.
    #[arg(long, short)]
    pub verbose: bool,
    /// Data directory holding pushauthd.sqlite3.
    #[arg(long, env = "PUSHAUTHD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: `sqlite:PATH` or `postgresql://…` (no password: see `[store] password_file`)
    /// [default: `[store] url` of the config, else SQLite in the data directory].
    #[arg(long, env = "PUSHAUTHD_STORE_URL")]
    pub store_url: Option<String>,
}

/// `pushauthd serve`: flags override the config file.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Config file (TOML); flags override it.
    #[arg(long, env = "PUSHAUTHD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8443].
    #[arg(long, env = "PUSHAUTHD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: /var/lib/pushauthd].
    #[arg(long, env = "PUSHAUTHD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// File holding the admin token; created (0600) with a fresh token if missing
    /// [default: <data dir>/admin-token].
    #[arg(long, env = "PUSHAUTHD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Base URL for enrollment links [default: http(s)://<listen>].
    #[arg(long)]
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The store: `sqlite:PATH` or `postgresql://…` (no password: see `[store] password_file`)
    /// [default: `[store] url` of the config, else SQLite in the data directory].
    #[arg(long, env = "PUSHAUTHD_STORE_URL")]
    pub store_url: Option<String>,
    /// Do not apply schema migrations on start (a PostgreSQL database must then be at this
    /// version already: run `pushauthd migrate`).
    #[arg(long)]
    pub no_migrate: bool,
}

/// `pushauthd enroll USER`.
#[derive(Debug, Clone, Args)]
pub struct EnrollArgs {
    /// The user the link is for (created if new).
    pub user: String,
    /// Lifetime of the link in seconds [default: enrollment_ttl_secs, 600].
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Base URL for the link [default: public_url of the config, else from listen].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `pushauthd devices USER`.
#[derive(Debug, Clone, Args)]
pub struct DevicesArgs {
    /// The user whose devices to list.
    pub user: String,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `pushauthd revoke DEVICE_ID`.
#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The device to revoke.
    pub device_id: String,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `pushauthd rp …`.
#[derive(Debug, Subcommand)]
pub enum RpCommand {
    /// Add a relying party; prints its API key once. Without flags it may push to every user
    /// and may not enroll.
    Add(RpAddArgs),
    /// List relying parties: id, name, users, rights, created, revoked.
    List {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a relying party: its key is refused from the next request on.
    Revoke {
        /// The relying party\'s id.
        id: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a relying party a new key (printed once); the old one is refused from the next
    /// request on.
    Rotate {
        /// The relying party\'s id.
        id: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `pushauthd rp add NAME`.
#[derive(Debug, Clone, Args)]
pub struct RpAddArgs {
    /// Its name, shown on devices.
    pub name: String,
    /// A user it may act for: an exact name, a prefix ending in `*` (`kc/*`), or `*` for every
    /// user; repeat for several [default: *].
    #[arg(long = "user", value_name = "PATTERN")]
    pub users: Vec<String>,
    /// May request enrollment links and revoke devices of its users.
    #[arg(long)]
    pub enroll: bool,
    /// May enroll a first device for a user who has none (needs --enroll).
    #[arg(long)]
    pub bootstrap: bool,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

impl RpAddArgs {
    /// `rp add NAME` without flags: every user, no enrollment.
    pub fn everyone(name: &str, store: StoreArgs) -> RpAddArgs {
        RpAddArgs {
            name: name.to_owned(),
            users: Vec::new(),
            enroll: false,
            bootstrap: false,
            store,
        }
    }
}

/// `pushauthd audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// How many events.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only this user's events.
    #[arg(long)]
    pub user: Option<String>,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `pushauthd unlock USER` and `pushauthd grace end USER`.
#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    /// The user whose locks and counters (or grace windows) go.
    pub user: String,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `pushauthd backup-codes USER [--count N | --void]`.
#[derive(Debug, Clone, Args)]
pub struct BackupCodesArgs {
    /// The user the codes are for (must be known: enrolled at least once).
    pub user: String,
    /// Codes in the set [default: `[backup_codes] count` of the config, else 10].
    #[arg(long)]
    pub count: Option<u32>,
    /// Void every code of the user and issue none (a lost or stolen sheet).
    #[arg(long, conflicts_with = "count")]
    pub void: bool,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `pushauthd push USER`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The user to push to.
    pub user: String,
    /// Server URL [default: public_url of the config, else from listen].
    #[arg(long)]
    pub server: Option<String>,
    /// Turn number matching off.
    #[arg(long)]
    pub no_code: bool,
    /// Config file (for the server URL and admin token file) [default:
    /// /etc/pushauthd/pushauthd.toml if it exists].
    #[arg(long, env = "PUSHAUTHD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Admin token file.
    #[arg(long, env = "PUSHAUTHD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for an HTTPS server with a private CA.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// A failed command, with a message for the person at the keyboard.
#[derive(Debug, Error)]
pub enum CliError {
    /// The config file or a secret file was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// Writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The command was refused; the text says why.
    #[error("{0}")]
    Failed(String),
}

/// Runs an admin subcommand (everything but `serve`), writing its output to `out`.
pub fn run_admin(command: Command, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        Command::Serve(_) => Err(CliError::Failed("serve is run by the binary's main".into())),
        Command::Enroll(args) => admin::enroll(&args, out),
        Command::Devices(args) => admin::devices(&args, out),
        Command::Revoke(args) => admin::revoke(&args, out),
        Command::Rp { command } => match command {
            RpCommand::Add(args) => admin::rp_add(&args, out),
            RpCommand::List { store } => admin::rp_list(&store, out),
            RpCommand::Revoke { id, store } => admin::rp_revoke(&id, &store, out),
            RpCommand::Rotate { id, store } => admin::rp_rotate(&id, &store, out),
        },
        Command::Audit(args) => admin::audit(&args, out),
        Command::Push(args) => push::push(&args, out),
        Command::Unlock(args) => admin::unlock(&args, out),
        Command::BackupCodes(args) => backup::backup_codes(&args, out),
        Command::Grace {
            command: GraceCommand::End(args),
        } => admin::grace_end(&args, out),
        Command::Migrate(args) => admin::migrate(&args, out),
        Command::Store {
            command: StoreCommand::Copy(args),
        } => store_copy::copy(&args, out),
    }
}
