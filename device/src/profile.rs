//! Profiles: one enrolled device per TOML file in the config directory, private to its owner
//! (file 0600, directory 0700), since each holds the device's private key.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use pushauth_files::{FileError, Owner, ReadPolicy};
use pushauth_proto::{b64, Alg, DeviceSigningKey};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::DeviceError;

/// Name of the profile used when none is given.
pub const DEFAULT_PROFILE: &str = "default";

/// One enrolled device.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Server base URL.
    pub server: String,
    /// The pushauth user the device belongs to.
    pub user: String,
    /// The device id the server assigned at enrollment.
    pub device_id: String,
    /// The device's friendly name.
    pub name: String,
    /// The key's algorithm. Profiles written before `es256` existed have no `alg` line and are
    /// Ed25519.
    #[serde(default = "ed25519")]
    pub alg: Alg,
    /// The key's 32 secret bytes, base64url: the Ed25519 seed, or the P-256 scalar big-endian
    /// ([`DeviceSigningKey::secret`]). Never printed.
    pub key_seed: Zeroizing<String>,
    /// Extra PEM CA bundle for the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The offline-code secret (issue 12), when the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<crate::offline::OfflineSecret>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("name", &self.name)
            .field("alg", &self.alg)
            .field("key_seed", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .field("offline", &self.offline)
            .finish()
    }
}

fn ed25519() -> Alg {
    Alg::Ed25519
}

impl Profile {
    /// The device's signing key, from `alg` and `key_seed`.
    ///
    /// # Errors
    /// [`DeviceError::Profile`] when `key_seed` is not 32 bytes of base64url, or not a valid key of
    /// `alg`.
    pub fn signing_key(&self) -> Result<DeviceSigningKey, DeviceError> {
        let secret = Zeroizing::new(
            b64::decode_array::<32>(&self.key_seed, "key_seed")
                .map_err(|e| err(format!("profile key: {e}")))?,
        );
        DeviceSigningKey::from_secret(self.alg, secret.as_slice())
            .map_err(|e| err(format!("profile key ({}): {e}", self.alg)))
    }
}

fn err(msg: String) -> DeviceError {
    DeviceError::Profile(msg)
}

/// The default config directory: `$PUSHAUTH_DEVICE_DIR`, else `$XDG_CONFIG_HOME/pushauth-device`,
/// else `~/.config/pushauth-device`.
pub fn default_config_dir() -> Result<PathBuf, DeviceError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("PUSHAUTH_DEVICE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = non_empty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(xdg).join("pushauth-device"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("pushauth-device"));
    }
    Err(err(
        "no config directory: set --config-dir, PUSHAUTH_DEVICE_DIR or HOME".into(),
    ))
}

/// The file of profile `name` in `dir`. Names are plain words, so they cannot leave `dir`.
pub fn profile_path(dir: &Path, name: &str) -> Result<PathBuf, DeviceError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(err(format!(
            "profile name {name:?} must be 1 to 64 of A-Z, a-z, 0-9, '-', '_', '.'"
        )));
    }
    Ok(dir.join(format!("{name}.toml")))
}

/// Whether profile `name` exists in `dir`.
pub fn profile_exists(dir: &Path, name: &str) -> Result<bool, DeviceError> {
    let path = profile_path(dir, name)?;
    Ok(fs::symlink_metadata(path).is_ok())
}

/// Stores a profile with mode 0600 through [`pushauth_files`] (the directory is created 0700
/// if missing; an existing one must be the user's and not writable by group or others).
/// Refuses to replace an existing profile unless `force`; with `force` the old file is
/// replaced atomically (0600 temporary file, fsync, rename), so a crash never leaves half a
/// key file.
pub fn save_profile(
    dir: &Path,
    name: &str,
    profile: &Profile,
    force: bool,
) -> Result<PathBuf, DeviceError> {
    let path = profile_path(dir, name)?;
    pushauth_files::create_private_dir(dir, &Owner::current()).map_err(|e| err(e.to_string()))?;
    let exists = || {
        err(format!(
            "profile {name:?} already exists ({}); use --force to replace it",
            path.display()
        ))
    };
    if !force && fs::symlink_metadata(&path).is_ok() {
        return Err(exists());
    }
    let text = Zeroizing::new(
        toml::to_string(profile).map_err(|e| err(format!("cannot encode the profile: {e}")))?,
    );
    let written = match force {
        true => pushauth_files::replace(&path, text.as_bytes()),
        false => pushauth_files::write_new(&path, text.as_bytes()),
    };
    match written {
        Ok(()) => Ok(path),
        Err(FileError::Exists { .. }) => Err(exists()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Loads a profile through [`pushauth_files`]: it must be the user's own regular file with no
/// permission bit for group or others (it holds the private key), checked on the opened file.
pub fn load_profile(dir: &Path, name: &str) -> Result<Profile, DeviceError> {
    let path = profile_path(dir, name)?;
    let text = match pushauth_files::read(&path, &ReadPolicy::secret(Owner::current())) {
        Ok(contents) => contents.into_text().map_err(|e| err(e.to_string()))?,
        Err(FileError::NotFound { .. }) => {
            return Err(err(format!(
                "no profile {name:?} ({}); enroll first with `pushauth-device enroll URL`",
                path.display()
            )))
        }
        Err(e) => return Err(err(e.to_string())),
    };
    toml::from_str(&text)
        .map_err(|e| err(format!("{} is not a valid profile: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Profile {
        Profile {
            server: "http://127.0.0.1:1".into(),
            user: "alice".into(),
            device_id: "dev1".into(),
            name: "phone".into(),
            alg: Alg::Ed25519,
            key_seed: Zeroizing::new(pushauth_proto::b64::encode([5u8; 32])),
            ca_file: None,
            offline: None,
        }
    }

    #[test]
    fn save_load_round_trip_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg");
        let path = save_profile(&dir, "default", &sample(), false).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(load_profile(&dir, "default").unwrap(), sample());
        // No replacing without force.
        assert!(save_profile(&dir, "default", &sample(), false).is_err());
        let mut other = sample();
        other.name = "laptop".into();
        save_profile(&dir, "default", &other, true).unwrap();
        assert_eq!(load_profile(&dir, "default").unwrap().name, "laptop");
    }

    #[test]
    fn readable_profiles_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = save_profile(tmp.path(), "p", &sample(), false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let msg = load_profile(tmp.path(), "p").unwrap_err().to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
    }

    /// Issue 10 item 3: profiles get the one secret rule of `pushauth_files`: any group or
    /// other bit is refused with the shared `chmod 600 <path>` message; a forced replace
    /// leaves a 0600 file; a config directory others can write is refused on save.
    #[test]
    fn issue10_item3_pushauth_device_refuses_readable_profiles_and_open_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg");
        let path = save_profile(&dir, "p", &sample(), false).unwrap();
        for mode in [0o640, 0o604, 0o620, 0o610] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let msg = load_profile(&dir, "p").unwrap_err().to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{mode:o}: {msg}"
            );
        }
        save_profile(&dir, "p", &sample(), true).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_profile(&dir, "p").unwrap(), sample());
        let msg = save_profile(&dir, "p", &sample(), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("--force"), "{msg}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let msg = save_profile(&dir, "q", &sample(), false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("chmod go-w {}", dir.display())),
            "{msg}"
        );
        assert!(!dir.join("q.toml").exists());
    }

    /// A profile written before `es256` (no `alg` line) loads as Ed25519 with the same key; an
    /// es256 profile round-trips with its algorithm; a P-256 scalar out of range is refused.
    #[test]
    fn issue11_profiles_without_alg_are_ed25519_and_es256_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let old = "server = \"http://127.0.0.1:1\"\nuser = \"alice\"\ndevice_id = \"dev1\"\n\
                   name = \"phone\"\nkey_seed = \"BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU\"\n";
        pushauth_files::write_new(&tmp.path().join("old.toml"), old.as_bytes()).unwrap();
        let loaded = load_profile(tmp.path(), "old").unwrap();
        assert_eq!(loaded, sample());
        assert_eq!(loaded.signing_key().unwrap().alg(), Alg::Ed25519);
        assert_eq!(
            loaded.signing_key().unwrap().public_key(),
            DeviceSigningKey::from_seed(&[5u8; 32]).public_key()
        );

        let mut es = sample();
        es.alg = Alg::Es256;
        save_profile(tmp.path(), "es", &es, false).unwrap();
        let text = fs::read_to_string(tmp.path().join("es.toml")).unwrap();
        assert!(text.contains("alg = \"es256\""), "{text}");
        let loaded = load_profile(tmp.path(), "es").unwrap();
        assert_eq!(loaded, es);
        assert_eq!(loaded.signing_key().unwrap().alg(), Alg::Es256);

        es.key_seed = Zeroizing::new(pushauth_proto::b64::encode([0xffu8; 32]));
        assert!(es.signing_key().is_err());
        es.alg = Alg::Ed25519;
        assert!(es.signing_key().is_ok());
    }

    #[test]
    fn debug_hides_the_key_and_names_are_checked() {
        let text = format!("{:?}", sample());
        assert!(!text.contains(sample().key_seed.as_str()));
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(profile_path(Path::new("/tmp"), bad).is_err(), "{bad:?}");
        }
        assert!(profile_path(Path::new("/tmp"), "work-2").is_ok());
    }
}
