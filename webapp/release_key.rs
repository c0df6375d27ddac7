//! The release signing keys, for `build.rs` (and the crate's tests): a packager's key file
//! (PKCS#8 PEM, P-256, mode 0600 or stricter) or the development key kept in the target
//! directory.

use std::error::Error;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p256::SecretKey;

type Res<T> = Result<T, Box<dyn Error>>;

/// `PUSHAUTH_RELEASE_PREVIOUS_KEY_FILE`: the key installed apps pinned, when rotating.
pub fn previous_key() -> Res<Option<SigningKey>> {
    println!("cargo:rerun-if-env-changed=PUSHAUTH_RELEASE_PREVIOUS_KEY_FILE");
    match std::env::var_os("PUSHAUTH_RELEASE_PREVIOUS_KEY_FILE") {
        Some(path) => Ok(Some(read_key(
            Path::new(&path),
            "PUSHAUTH_RELEASE_PREVIOUS_KEY_FILE",
        )?)),
        None => Ok(None),
    }
}

/// A packager's key file: PKCS#8 PEM, P-256, no permission bit for group or others.
pub fn read_key(path: &Path, var: &str) -> Res<SigningKey> {
    println!("cargo:rerun-if-changed={}", path.display());
    let mode = fs::metadata(path)
        .map_err(|e| format!("{var} {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{var} {}: readable by group or others; chmod 600 it",
            path.display()
        )
        .into());
    }
    let pem = fs::read_to_string(path)?;
    let secret = SecretKey::from_pkcs8_pem(&pem).map_err(|e| {
        format!(
            "{var} {}: not a PKCS#8 PEM P-256 private key ({e})",
            path.display()
        )
    })?;
    Ok(SigningKey::from(&secret))
}

/// The signing key and whether it is the development key.
pub fn release_key(out: &Path) -> Res<(SigningKey, bool)> {
    if let Some(path) = std::env::var_os("PUSHAUTH_RELEASE_KEY_FILE") {
        return Ok((
            read_key(Path::new(&path), "PUSHAUTH_RELEASE_KEY_FILE")?,
            false,
        ));
    }
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: the key lives in <target>, so every
    // profile and rebuild signs with the same development key.
    let target = out
        .ancestors()
        .nth(4)
        .ok_or("OUT_DIR has no target directory above it")?;
    let path = target.join("pushauth-release-dev.key");
    println!("cargo:rerun-if-changed={}", path.display());
    Ok((dev_key(&path)?, true))
}

/// The development key at `path`: read when it exists, else made (0600, never replaced).
pub fn dev_key(path: &Path) -> Res<SigningKey> {
    if let Ok(pem) = fs::read_to_string(path) {
        let secret = SecretKey::from_pkcs8_pem(&pem)
            .map_err(|e| format!("{}: not a PKCS#8 PEM P-256 key ({e})", path.display()))?;
        return Ok(SigningKey::from(&secret));
    }
    let secret = loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
        // Almost every 32-byte string is a valid scalar; retry the rare one that is not.
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let pem = secret.to_pkcs8_pem(LineEnding::LF)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(pem.as_bytes())?;
    Ok(SigningKey::from(&secret))
}
