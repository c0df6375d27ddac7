//! The admin token file: made 0600 with a fresh token when missing, read under the secret rule
//! of [`pushauth_files`] (no permission bit for group or others, checked on the opened file).

use std::fs;
use std::path::Path;

use pushauth_files::{FileError, Owner, ReadPolicy};
use zeroize::Zeroizing;

use super::ConfigError;

fn token_error(path: &Path, message: String) -> ConfigError {
    ConfigError::AdminToken {
        path: path.to_owned(),
        message,
    }
}

/// Reads the admin token file, or creates it (0600) with a fresh random token if it is missing.
/// The file must belong to the user pushauthd runs as and have no permission bit for group or
/// others: it grants full control of the server.
pub fn load_or_create_admin_token(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    let err = |message: String| token_error(path, message);
    match read_token(path, Owner::current()) {
        Err(ConfigError::File(FileError::NotFound { .. })) => {}
        other => return other,
    }
    let token =
        Zeroizing::new(pushauth_proto::random::secret_token().map_err(|e| err(e.to_string()))?);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| err(format!("cannot create its folder: {e}")))?;
    }
    let text = Zeroizing::new(format!("{}\n", token.as_str()));
    pushauth_files::write_new(path, text.as_bytes())
        .map_err(|e| err(format!("cannot create it: {e}")))?;
    tracing::info!(path = %path.display(), "created a new admin token file");
    Ok(token)
}

/// Reads an existing admin token file (the `push` subcommand uses it as a client, possibly as
/// root: any owner, but no permission bit for group or others).
pub fn read_admin_token(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    read_token(path, Owner::Any).map_err(|e| match e {
        ConfigError::File(file) => token_error(path, file.to_string()),
        other => other,
    })
}

/// The trimmed token; a missing file is `ConfigError::File(FileError::NotFound)`, any other
/// refusal an [`ConfigError::AdminToken`] with the shared fix-it message.
fn read_token(path: &Path, owner: Owner) -> Result<Zeroizing<String>, ConfigError> {
    let err = |message: String| token_error(path, message);
    let text = match pushauth_files::read(path, &ReadPolicy::secret(owner)) {
        Ok(contents) => contents.into_text().map_err(|e| err(e.to_string()))?,
        Err(e @ FileError::NotFound { .. }) => return Err(e.into()),
        Err(e) => return Err(err(e.to_string())),
    };
    let token = Zeroizing::new(text.trim().to_owned());
    if token.is_empty() {
        return Err(err(
            "it is empty; delete it to have a new token made, or write one in".into(),
        ));
    }
    Ok(token)
}
