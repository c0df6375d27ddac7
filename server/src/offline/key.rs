//! The key that seals the devices' offline secrets at rest: 32 random bytes in
//! `<data_dir>/offline-key` (0600, made on first start, read under the same secret-file rule as
//! `vapid-key`). Each secret is sealed with AES-256-GCM under a fresh 96-bit nonce, with the
//! device id as associated data, so a sealed secret copied to another device's row does not
//! open.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use pushauth_files::{FileError, Owner, ReadPolicy};
use pushauth_proto::b64;
use zeroize::Zeroizing;

/// The key file's name in the data directory.
pub const OFFLINE_KEY_FILE: &str = "offline-key";

/// AES-GCM nonce length, in bytes.
const NONCE_LEN: usize = 12;

/// Why the key cannot be loaded or made, or a secret not sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum OfflineKeyError {
    /// The file is refused by the shared secret-file rule (owner, mode, size) or unreadable.
    #[error("offline key file: {0}")]
    File(#[from] FileError),
    /// The file does not hold a key.
    #[error("offline key file {path}: {why}; restore it from a backup (a new key makes every device's offline secret unusable: they would need enrolling again)")]
    Bad {
        /// The key file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// No randomness.
    #[error("no randomness for the offline key or a nonce: {0}")]
    Random(String),
    /// A sealed secret that does not open under this key for this device.
    #[error("a stored offline secret does not open with the offline key (was the key replaced?)")]
    Open,
    /// The key file is gone while the store holds secrets sealed under it.
    #[error("offline key file {path} is missing, but the database holds offline secrets sealed with it. On a new replica of a site, copy {path} and the VAPID key file (vapid-key unless [web_push] vapid_key_file names another) from the first replica's data directory (mode 0600, owned by the user pushauthd runs as); otherwise restore it from a backup (or, to give up every device's offline codes, delete the offline_secrets rows and re-enroll the devices)")]
    Missing {
        /// The key file.
        path: String,
    },
}

/// The sealing key.
#[derive(Clone)]
pub struct OfflineKey {
    cipher: Aes256Gcm,
    fingerprint: String,
}

impl fmt::Debug for OfflineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OfflineKey(<redacted>)")
    }
}

impl OfflineKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> OfflineKey {
        use sha2::Digest;
        // Domain-separated, so the fingerprint is no other use's hash of the key.
        let mut hash = sha2::Sha256::new();
        hash.update(b"pushauth offline-key fingerprint\0");
        hash.update(bytes);
        OfflineKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
            fingerprint: hex::encode(&hash.finalize()[..16]),
        }
    }

    /// Reads the key file, or makes it (0600, never overwriting) with a new key when missing.
    /// The file must belong to the user pushauthd runs as and have no permission bit for group
    /// or others, checked on the opened file.
    ///
    /// # Errors
    /// [`OfflineKeyError`], with the fix-it message of [`pushauth_files`] for a refused file.
    pub fn load_or_create(path: &Path) -> Result<OfflineKey, OfflineKeyError> {
        match Self::load(path) {
            Err(OfflineKeyError::File(FileError::NotFound { .. })) => {}
            other => return other,
        }
        let bytes = Zeroizing::new(
            pushauth_proto::random::bytes::<32>()
                .map_err(|e| OfflineKeyError::Random(e.to_string()))?,
        );
        let text = Zeroizing::new(format!("{}\n", b64::encode(&bytes[..])));
        pushauth_files::write_new(path, text.as_bytes())?;
        tracing::info!(path = %path.display(), "created a new key for offline-code secrets");
        Ok(Self::from_bytes(&bytes))
    }

    /// Reads an existing key file (base64url of 32 bytes, one line).
    ///
    /// # Errors
    /// [`OfflineKeyError`].
    pub fn load(path: &Path) -> Result<OfflineKey, OfflineKeyError> {
        let policy = ReadPolicy::secret(Owner::current()).max_bytes(1024);
        let text = pushauth_files::read(path, &policy)?.into_text()?;
        let bytes = Zeroizing::new(b64::decode_array::<32>(text.trim(), "offline key").map_err(
            |e| OfflineKeyError::Bad {
                path: path.display().to_string(),
                why: e.to_string(),
            },
        )?);
        Ok(Self::from_bytes(&bytes))
    }

    /// The key's fingerprint, recorded in the database so that every replica of a site is
    /// checked to hold the same key (`crate::site_keys`): the first 16 bytes, in hex, of a
    /// SHA-256 of the key under a label of its own. One-way: it tells keys apart and gives
    /// nothing about the key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `secret` for `device_id`: nonce ‖ ciphertext ‖ tag.
    ///
    /// # Errors
    /// [`OfflineKeyError::Random`] without randomness for the nonce.
    pub fn seal(&self, device_id: &str, secret: &[u8]) -> Result<Vec<u8>, OfflineKeyError> {
        let nonce = pushauth_proto::random::bytes::<NONCE_LEN>()
            .map_err(|e| OfflineKeyError::Random(e.to_string()))?;
        let payload = Payload {
            msg: secret,
            aad: device_id.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| OfflineKeyError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`OfflineKey::seal`] made for `device_id`.
    ///
    /// # Errors
    /// [`OfflineKeyError::Open`] when it was sealed under another key or for another device,
    /// or was changed.
    pub fn open(
        &self,
        device_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OfflineKeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(OfflineKeyError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: body,
            aad: device_id.as_bytes(),
        };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| OfflineKeyError::Open)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn made_once_0600_seals_per_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFLINE_KEY_FILE);
        let key = OfflineKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = key.seal("dev1", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let again = OfflineKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("dev1", &sealed).unwrap().as_slice(), b"secret");
        assert!(again.open("dev2", &sealed).is_err());
        let mut changed = sealed.clone();
        changed[20] ^= 1;
        assert!(again.open("dev1", &changed).is_err());
        let other = OfflineKey::from_bytes(&[7; 32]);
        assert!(other.open("dev1", &sealed).is_err());
    }

    #[test]
    fn issue12_a_readable_offline_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFLINE_KEY_FILE);
        OfflineKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = OfflineKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("chmod"), "{err}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}
