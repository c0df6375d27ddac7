//! pushauthd: the pushauth push server binary. Parses the command line and hands over to the
//! `pushauth_server` library: `serve` runs the server, the other subcommands administer it.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Parser;
use pushauth_server::cli::{resolve_serve, run_admin, Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: the journal and log files got raw escape codes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Serve(args) => {
            let config = resolve_serve(&args)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            let result = runtime.block_on(pushauth_server::serve(config, shutdown_signal()));
            // Do not hang on a slow webhook delivery still running on the blocking pool.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            Ok(result?)
        }
        other => {
            let mut stdout = std::io::stdout().lock();
            run_admin(other, &mut stdout)?;
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
