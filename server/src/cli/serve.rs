//! Turns `serve` flags, environment and config file into a [`ServerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{CliError, ServeArgs};
use crate::config::{
    load_or_create_admin_token, ConfigError, FileConfig, ServerConfig, TlsConfig, DEFAULT_DATA_DIR,
    DEFAULT_LISTEN, MAX_BACKUP_CODES,
};

fn default_listen() -> Result<SocketAddr, CliError> {
    DEFAULT_LISTEN
        .parse()
        .map_err(|_| CliError::Failed("bad built-in listen address".into()))
}

/// Flags override the file; the file overrides defaults.
pub fn resolve_serve(args: &ServeArgs) -> Result<ServerConfig, CliError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let listen = match args.listen.or(file.listen) {
        Some(listen) => listen,
        None => default_listen()?,
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let token_file = args
        .admin_token_file
        .clone()
        .or_else(|| file.admin_token_file.clone())
        .unwrap_or_else(|| data_dir.join("admin-token"));
    // Checked before anything is created: a refused config changes nothing.
    let webhook = file.webhook_config()?;
    if file.limits.is_some_and(|l| l.max_code_failures == 0) {
        return Err(ConfigError::Invalid(
            "[limits] max_code_failures must be 1 or more (0 would refuse every push)".into(),
        )
        .into());
    }
    if file.limits.is_some_and(|l| l.max_backup_code_failures == 0) {
        return Err(ConfigError::Invalid(
            "[limits] max_backup_code_failures must be 1 or more (0 would refuse every backup code)"
                .into(),
        )
        .into());
    }
    if let Some(b) = file.backup_codes {
        if b.count == 0 || b.count > MAX_BACKUP_CODES {
            return Err(ConfigError::Invalid(format!(
                "[backup_codes] count must be 1 to {MAX_BACKUP_CODES}"
            ))
            .into());
        }
    }
    let web_push = file.web_push.clone().unwrap_or_default().resolve()?;
    let web = file.web_config()?;
    let offline = file.offline_config()?;
    let store = file
        .store
        .clone()
        .unwrap_or_default()
        .resolve(args.store_url.as_deref())?;
    let admin_token = load_or_create_admin_token(&token_file)?;
    let mut config = ServerConfig::new(listen, data_dir, String::new());
    config.webhook = webhook;
    config.web_push = web_push;
    config.web = web;
    config.offline = offline;
    config.store = store;
    config.migrate = !args.no_migrate;
    config.admin_token = admin_token;
    config.public_url = args.public_url.clone().or_else(|| file.public_url.clone());
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => file.tls.clone(),
    };
    if let Some(retention) = file.retention {
        config.retention = retention;
    }
    if let Some(limits) = file.limits {
        config.limits = limits;
    }
    if let Some(b) = file.backup_codes {
        config.backup_codes = b;
    }
    if let Some(v) = file.default_ttl_secs {
        config.default_ttl_secs = v;
    }
    if let Some(v) = file.max_ttl_secs {
        config.max_ttl_secs = v;
    }
    if let Some(v) = file.enrollment_ttl_secs {
        config.enrollment_ttl_secs = v;
    }
    if let Some(v) = file.sweep_interval_secs {
        config.sweep_interval_secs = v;
    }
    if let Some(v) = file.code_digits {
        config.code_digits = v;
    }
    if !config.code_digits.meets_nist() {
        tracing::warn!(
            code_digits = config.code_digits.get(),
            "code_digits below 6 is weaker than NIST SP 800-63B-4 asks"
        );
    }
    if config.default_ttl_secs == 0 || config.default_ttl_secs > config.max_ttl_secs {
        return Err(ConfigError::Invalid(
            "default_ttl_secs must be between 1 and max_ttl_secs".into(),
        )
        .into());
    }
    Ok(config)
}
