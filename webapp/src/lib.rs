//! The pushauth web authenticator, embedded in the binary.
//!
//! `build.rs` walks `webapp/app/` and embeds every file ([`Asset`]: bytes, gzip bytes, content
//! type, SHA-256), then writes and signs the release manifest, which is embedded as two more
//! assets: `release.json` and `release.sig` (ECDSA P-256 with SHA-256 over the exact bytes of
//! `release.json`, 64 bytes r‖s as WebCrypto's `verify` takes it; 128 bytes during a key
//! rotation, the previous key's signature second). The service worker (`app/sw.js`, with the
//! checks in `app/release-verify.js`) takes an update only when it is signed by the release key
//! it pinned at first install; see [`Release`].
//!
//! Build-time environment: `PUSHAUTH_RELEASE_KEY_FILE` (PKCS#8 PEM P-256 private key, mode
//! 0600; unset: a development key kept at `<target dir>/pushauth-release-dev.key`),
//! `PUSHAUTH_RELEASE_PREVIOUS_KEY_FILE` (the key being rotated away from), `SOURCE_DATE_EPOCH`
//! (the release time; updates must be strictly newer).

mod types;

pub use types::content_type;

/// One embedded file of the app.
#[derive(Debug)]
pub struct Asset {
    /// The path below `/app/`, `/`-separated, no leading slash (`index.html`, `icons/192.png`).
    pub path: &'static str,
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// SHA-256 of [`Asset::bytes`], lowercase hex (64 characters): the `ETag`, and the value
    /// `release.json` lists for the file.
    pub sha256: &'static str,
    /// The file as built.
    pub bytes: &'static [u8],
    /// The same bytes gzip-compressed (RFC 1952), for `Content-Encoding: gzip`.
    pub gzip: &'static [u8],
}

/// The release these files belong to (the fields of `release.json` a person is shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// `<crate version>+<first 8 hex digits of the SHA-256 of the file list>`.
    pub version: &'static str,
    /// When it was built, in seconds since the Unix epoch (`SOURCE_DATE_EPOCH` when set).
    pub released: u64,
    /// Signed with the development key (no `PUSHAUTH_RELEASE_KEY_FILE` at build time).
    pub development: bool,
    /// `SHA256:` and the unpadded base64 of the SHA-256 of the release public key (the 65-byte
    /// uncompressed SEC1 point), as the app shows it in settings.
    pub key_fingerprint: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file at `path` (below `/app/`, no leading slash), if there is one.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .and_then(|i| ASSETS.get(i))
}

/// Every embedded file, sorted by path.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The embedded release: version, release-key fingerprint, development build or not.
pub fn release() -> Release {
    RELEASE
}

#[cfg(test)]
#[allow(dead_code)] // build.rs uses the rest
#[path = "../release_key.rs"]
mod release_key;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_asset_is_found_and_its_gzip_round_trips() {
        assert!(get("index.html").is_some());
        assert!(get("release.json").is_some() && get("release.sig").is_some());
        assert!(get("nope.html").is_none() && get("").is_none());
        for asset in assets() {
            assert!(std::ptr::eq(get(asset.path).unwrap(), asset));
            let mut plain = Vec::new();
            gunzip(asset.gzip, &mut plain);
            assert_eq!(plain, asset.bytes, "{}", asset.path);
            assert_eq!(asset.sha256.len(), 64);
        }
    }

    #[test]
    fn the_manifest_lists_every_app_file_with_its_hash() {
        let manifest: serde_json::Value =
            serde_json::from_slice(get("release.json").unwrap().bytes).unwrap();
        let files = manifest["files"].as_object().unwrap();
        assert_eq!(files.len() + 2, assets().len());
        for (path, sha) in files {
            assert_eq!(get(path).unwrap().sha256, sha.as_str().unwrap());
        }
        assert_eq!(manifest["version"], release().version);
        assert_eq!(manifest["development"], release().development);
        assert_eq!(get("release.sig").unwrap().bytes.len() % 64, 0);
    }

    #[test]
    fn the_signature_verifies_with_the_key_in_the_manifest() {
        use p256::ecdsa::signature::Verifier;
        use p256::ecdsa::{Signature, VerifyingKey};
        let manifest = get("release.json").unwrap().bytes;
        let parsed: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        let key = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            parsed["release_key"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(key.len(), 65);
        let key = VerifyingKey::from_sec1_bytes(&key).unwrap();
        let sig = Signature::from_slice(&get("release.sig").unwrap().bytes[..64]).unwrap();
        key.verify(manifest, &sig).unwrap();
        let mut changed = manifest.to_vec();
        changed[10] ^= 1;
        assert!(key.verify(&changed, &sig).is_err());
    }

    /// Issue 11 target: the app's first load under 100 KB compressed. The worker downloads
    /// every file of the release once at install; the page's own first requests are a subset.
    #[test]
    fn issue11_first_load_transfer_is_under_100_kb_compressed() {
        let gzip: usize = assets().iter().map(|a| a.gzip.len()).sum();
        let plain: usize = assets().iter().map(|a| a.bytes.len()).sum();
        println!(
            "app: {} files, {plain} bytes, {gzip} bytes gzip-compressed",
            assets().len()
        );
        assert!(gzip < 100_000, "{gzip} bytes compressed");
    }

    #[test]
    fn issue11_a_packagers_key_file_others_can_read_or_that_is_not_pkcs8_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("made.key");
        let key = crate::release_key::dev_key(&made).unwrap();
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Read back (as PUSHAUTH_RELEASE_KEY_FILE): the same key.
        let read = crate::release_key::read_key(&made, "KEY").unwrap();
        assert_eq!(read.verifying_key(), key.verifying_key());
        // The development key is stable: made once, then read.
        let again = crate::release_key::dev_key(&made).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = crate::release_key::read_key(&made, "KEY")
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        let bad = dir.path().join("bad.key");
        std::fs::write(
            &bad,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = crate::release_key::read_key(&bad, "KEY")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PKCS#8 PEM P-256"), "{err}");
        // A broken development key file is an error, never silently replaced.
        assert!(crate::release_key::dev_key(&bad).is_err());
        assert!(crate::release_key::read_key(&dir.path().join("none"), "KEY").is_err());
        // The key the README tells packagers to make, where openssl is installed.
        let openssl = dir.path().join("openssl.key");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&openssl)
            .status();
        if made.is_ok_and(|s| s.success()) {
            std::fs::set_permissions(&openssl, std::fs::Permissions::from_mode(0o600)).unwrap();
            crate::release_key::read_key(&openssl, "KEY").unwrap();
        }
    }

    fn gunzip(gz: &[u8], out: &mut Vec<u8>) {
        flate2::read::GzDecoder::new(gz).read_to_end(out).unwrap();
    }
}
