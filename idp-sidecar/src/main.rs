//! pushauth-idp-sidecar: serves the IdP shim API (push logins, enrollment, devices, Keycloak's
//! CIBA channel) in front of pushauthd. `serve --config FILE` runs it; `public-key` prints the
//! key shims verify result tokens with.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use pushauth_idp_sidecar::config::{load_or_create_key, FileConfig};
use pushauth_idp_sidecar::server::{blocking_threads, serve};

#[derive(Parser)]
#[command(
    name = "pushauth-idp-sidecar",
    version,
    about = "pushauth sidecar for identity providers (Keycloak)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the shim API.
    Serve {
        /// The TOML config file.
        #[arg(long, env = "PUSHAUTH_SIDECAR_CONFIG")]
        config: PathBuf,
        /// Override `listen` from the file.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Log lines as text or JSON objects (RUST_LOG sets the level; info by default).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Print the result-token public key (base64url), creating the signing key if missing.
    PublicKey {
        /// The signing key file (`signing_key_file` in the config).
        #[arg(long)]
        signing_key_file: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::PublicKey { signing_key_file } => {
            let key = load_or_create_key(&signing_key_file)?;
            println!("{}", key.public_key().to_b64());
            Ok(())
        }
        Command::Serve {
            config,
            listen,
            log_format,
        } => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                // Colour codes only on a terminal: the journal and log files got raw escape codes.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            match log_format {
                LogFormat::Json => builder.json().init(),
                LogFormat::Text => builder.init(),
            }
            let file = FileConfig::load(&config)?;
            let mut settings = file
                .resolve()
                .with_context(|| format!("in {}", config.display()))?;
            if let Some(listen) = listen {
                settings.listen = listen;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .max_blocking_threads(blocking_threads(&settings))
                .enable_all()
                .build()?;
            let served = runtime.block_on(async move {
                let (stop, stop_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    let mut term = match tokio::signal::unix::signal(
                        tokio::signal::unix::SignalKind::terminate(),
                    ) {
                        Ok(term) => term,
                        Err(_) => return,
                    };
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    stop.send_replace(true);
                });
                serve(settings, stop_rx).await
            });
            // Waiters of pending logins block on long-polls; do not wait out their deadlines.
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            served?;
            Ok(())
        }
    }
}
