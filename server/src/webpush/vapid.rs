//! The VAPID key (RFC 8292): an ECDSA P-256 key pair made on first start, kept in the data
//! directory (0600, the same secret rule as every other secret file), whose public half the app
//! subscribes with and whose private half signs a short JWT on every push.

use std::fmt;
use std::path::Path;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use pushauth_files::{FileError, Owner, ReadPolicy};
use pushauth_proto::b64;
use serde_json::json;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The key file's name in the data directory.
pub const VAPID_KEY_FILE: &str = "vapid-key";

/// Why the VAPID key cannot be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    /// The file is refused by the shared secret-file rule (owner, mode, size) or unreadable.
    #[error("VAPID key file: {0}")]
    File(#[from] FileError),
    /// The file does not hold a key.
    #[error("VAPID key file {path}: {why}; delete it to have a new key made (subscriptions then need renewing)")]
    Bad {
        /// The key file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// No randomness for a new key.
    #[error("cannot make a VAPID key: {0}")]
    Random(String),
}

/// The server's VAPID key pair.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
    public_b64: String,
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A new random key pair.
    ///
    /// # Errors
    /// [`VapidError::Random`].
    pub fn generate() -> Result<VapidKey, VapidError> {
        // A uniform 32-byte string is a valid scalar except with probability ~2^-32.
        for _ in 0..8 {
            let bytes = Zeroizing::new(
                pushauth_proto::random::bytes::<32>()
                    .map_err(|e| VapidError::Random(e.to_string()))?,
            );
            if let Ok(key) = Self::from_scalar(&bytes[..]) {
                return Ok(key);
            }
        }
        Err(VapidError::Random("no valid scalar drawn".into()))
    }

    fn from_scalar(bytes: &[u8]) -> Result<VapidKey, String> {
        let signing = SigningKey::from_slice(bytes).map_err(|_| "not a P-256 private key")?;
        let point = signing.verifying_key().to_encoded_point(false);
        Ok(VapidKey {
            public_b64: b64::encode(point.as_bytes()),
            signing,
        })
    }

    /// Reads the key file, or makes it (0600, never overwriting) with a new key when missing.
    /// The file must belong to the user pushauthd runs as and have no permission bit for group
    /// or others, checked on the opened file.
    ///
    /// # Errors
    /// [`VapidError`], with the fix-it message of [`pushauth_files`] for a refused file.
    pub fn load_or_create(path: &Path) -> Result<VapidKey, VapidError> {
        match Self::load(path) {
            Err(VapidError::File(FileError::NotFound { .. })) => {}
            other => return other,
        }
        let key = Self::generate()?;
        let text = Zeroizing::new(format!("{}\n", b64::encode(key.signing.to_bytes())));
        pushauth_files::write_new(path, text.as_bytes())?;
        tracing::info!(path = %path.display(), "created a new VAPID key for Web Push");
        Ok(key)
    }

    /// Reads an existing key file (base64url of the 32-byte private scalar, one line).
    ///
    /// # Errors
    /// [`VapidError`].
    pub fn load(path: &Path) -> Result<VapidKey, VapidError> {
        let policy = ReadPolicy::secret(Owner::current()).max_bytes(1024);
        let text = pushauth_files::read(path, &policy)?.into_text()?;
        let bad = |why: String| VapidError::Bad {
            path: path.display().to_string(),
            why,
        };
        let bytes = Zeroizing::new(
            b64::decode_array::<32>(text.trim(), "vapid key").map_err(|e| bad(e.to_string()))?,
        );
        Self::from_scalar(&bytes[..]).map_err(bad)
    }

    /// The public key as the app's `applicationServerKey` wants it: the 65-byte uncompressed
    /// point, unpadded base64url.
    pub fn public_b64(&self) -> &str {
        &self.public_b64
    }

    /// The key's fingerprint, recorded in the database so that every replica of a site is
    /// checked to hold the same key (`crate::site_keys`): the first 16 bytes of the SHA-256
    /// of the public key's base64url text, in hex. Public, like the key it names.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex::encode(&Sha256::digest(self.public_b64.as_bytes())[..16])
    }

    /// The `Authorization` header value for a push to `audience` (the endpoint's origin):
    /// `vapid t=<JWT>, k=<public key>` (RFC 8292 §3), the JWT signed with ES256 (RFC 7518
    /// §3.4: the 64-byte r‖s) and carrying `aud`, `exp` (Unix seconds, at most 24 h ahead) and
    /// `sub`.
    pub fn authorization(&self, audience: &str, exp_unix_secs: i64, subject: &str) -> String {
        let header = b64::encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = json!({"aud": audience, "exp": exp_unix_secs, "sub": subject});
        let claims = b64::encode(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        format!(
            "vapid t={signing_input}.{}, k={}",
            b64::encode(signature.to_bytes()),
            self.public_b64
        )
    }

    /// A stable, opaque per-user push `Topic` (RFC 8030 §5.4: at most 32 base64url characters):
    /// an HMAC-SHA256 of the user name keyed by this server's private key, so the push service
    /// cannot tell users' names from it, cut to 24 bytes (32 characters).
    pub fn topic(&self, user: &str) -> String {
        use hmac::{Hmac, Mac};
        let key = Zeroizing::new(self.signing.to_bytes());
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return String::new();
        };
        mac.update(b"pushauth/v1/topic\0");
        mac.update(user.as_bytes());
        let out = mac.finalize().into_bytes();
        b64::encode(&out[..24])
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    use super::*;

    #[test]
    fn made_once_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(VAPID_KEY_FILE);
        let key = VapidKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = VapidKey::load_or_create(&path).unwrap();
        assert_eq!(key.public_b64(), again.public_b64());
        assert_eq!(b64::decode(key.public_b64(), "k").unwrap().len(), 65);
    }

    #[test]
    fn issue11_a_readable_vapid_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(VAPID_KEY_FILE);
        VapidKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = VapidKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("chmod"), "{err}");
        // The refused file is left as it was (not replaced by a new key).
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn the_jwt_verifies_with_the_public_key() {
        let key = VapidKey::generate().unwrap();
        let header = key.authorization("https://push.example", 1_900_000_000, "mailto:a@b.c");
        let rest = header.strip_prefix("vapid t=").unwrap();
        let (jwt, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, key.public_b64());
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = Signature::from_slice(&b64::decode(sig, "sig").unwrap()).unwrap();
        let public = VerifyingKey::from_sec1_bytes(&b64::decode(k, "k").unwrap()).unwrap();
        public.verify(input.as_bytes(), &sig).unwrap();
        let claims = input.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&b64::decode(claims, "c").unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example");
        assert_eq!(claims["exp"], 1_900_000_000);
        assert_eq!(claims["sub"], "mailto:a@b.c");
    }

    #[test]
    fn topics_are_short_opaque_and_per_user() {
        let key = VapidKey::generate().unwrap();
        let t = key.topic("alice");
        assert_eq!(t.len(), 32);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(!t.contains("alice"));
        assert_eq!(t, key.topic("alice"));
        assert_ne!(t, key.topic("bob"));
    }
}
