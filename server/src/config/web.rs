//! `[web]`: where the web app's files come from.

use std::path::PathBuf;

use pushauth_files::Owner;
use serde::Deserialize;

use super::{ConfigError, FileConfig};

/// The web app's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfig {
    /// Serve the app from this directory instead of the files built into the binary (for
    /// development, and for tests that make pushauthd serve a changed app). `None`: built in.
    pub app_dir: Option<PathBuf>,
}

/// `[web]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWeb {
    /// `app_dir`: a directory holding the app's files, `release.json` and `release.sig`.
    pub app_dir: Option<PathBuf>,
}

impl FileConfig {
    /// The `[web]` settings. `app_dir` must be a directory that group and others cannot write
    /// (anyone who can write it can change the app that approves logins).
    pub fn web_config(&self) -> Result<WebConfig, ConfigError> {
        let Some(web) = &self.web else {
            return Ok(WebConfig::default());
        };
        if let Some(dir) = &web.app_dir {
            check_app_dir(dir)?;
        }
        Ok(WebConfig {
            app_dir: web.app_dir.clone(),
        })
    }
}

/// Refuses an `app_dir` that is not a directory, or that group or others can write.
pub fn check_app_dir(dir: &std::path::Path) -> Result<(), ConfigError> {
    pushauth_files::check_dir(dir, &Owner::Any)
        .map_err(|e| ConfigError::Invalid(format!("[web] app_dir: {e}")))
}
