//! Embeds every file of `app/` and signs the release.
//!
//! For each file: its bytes, a gzip variant, its content type and SHA-256. Then the release
//! manifest `release.json` (`{"version","released","development","release_key","files":{path:
//! sha256-hex}}`) and `release.sig`, the 64-byte ECDSA P-256/SHA-256 signature (r‖s, the form
//! WebCrypto verifies) over the exact bytes of `release.json`.
//!
//! The private key: a PKCS#8 PEM file named by `PUSHAUTH_RELEASE_KEY_FILE` (a packager's key;
//! mode 0600 or stricter), else a development key made once at
//! `<target dir>/pushauth-release-dev.key` (0600, never in the repository), and the manifest
//! says `"development": true`. For a key rotation, `PUSHAUTH_RELEASE_PREVIOUS_KEY_FILE` names
//! the old key, whose signature is appended (`release.sig` is then 128 bytes).

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use flate2::write::GzEncoder;
use flate2::Compression;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::Signature;
use sha2::{Digest, Sha256};

include!("src/types.rs");

#[path = "release_key.rs"]
mod release_key;
use release_key::{previous_key, release_key};

type Res<T> = Result<T, Box<dyn Error>>;

/// Names the build makes; the app may not ship its own.
const RESERVED: [&str; 2] = ["release.json", "release.sig"];

fn main() -> Res<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let app = manifest_dir.join("app");
    println!("cargo:rerun-if-changed=app");
    println!("cargo:rerun-if-env-changed=PUSHAUTH_RELEASE_KEY_FILE");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let mut files = Vec::new();
    walk(&app, &app, &mut files)?;
    files.sort();

    let (key, development) = release_key(&out)?;
    let gz_dir = out.join("gz");
    fs::create_dir_all(&gz_dir)?;

    // (path, source file, content type, sha256, gzip file)
    let mut entries: Vec<(String, PathBuf, &'static str, String, PathBuf)> = Vec::new();
    let mut hashes = BTreeMap::new();
    for (index, rel) in files.iter().enumerate() {
        if RESERVED.contains(&rel.as_str()) {
            return Err(format!("webapp/app/{rel}: this name is made by the build").into());
        }
        let Some(ctype) = content_type(rel) else {
            return Err(format!(
                "webapp/app/{rel}: unknown file type (add its extension to webapp/src/types.rs)"
            )
            .into());
        };
        let source = app.join(rel);
        let bytes = fs::read(&source)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let gz = gz_dir.join(format!("{index}.gz"));
        fs::write(&gz, gzip(&bytes)?)?;
        hashes.insert(rel.clone(), sha.clone());
        entries.push((rel.clone(), source, ctype, sha, gz));
    }

    let verifying = key.verifying_key().to_encoded_point(false);
    let public = verifying.as_bytes();
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(public))
    );
    let files_digest = hex::encode(Sha256::digest(serde_json::to_vec(&hashes)?));
    let version = format!(
        "{}+{}",
        std::env::var("CARGO_PKG_VERSION")?,
        &files_digest[..8]
    );
    let released = released_at()?;
    let manifest = serde_json::json!({
        "format": 1,
        "version": version,
        "released": released,
        "development": development,
        "release_key": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
        "files": hashes,
    });
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    manifest_bytes.push(b'\n');
    let signature: Signature = key.sign(&manifest_bytes);
    let mut signature = signature.to_bytes().to_vec();
    // A key rotation: the previous key signs too, so installed apps that pinned it take this
    // release (and pin the new key); new installs check the first signature.
    if let Some(previous) = previous_key()? {
        let second: Signature = previous.sign(&manifest_bytes);
        signature.extend_from_slice(&second.to_bytes());
    }

    for (name, bytes) in [
        ("release.json", manifest_bytes.as_slice()),
        ("release.sig", signature.as_slice()),
    ] {
        let source = out.join(name);
        fs::write(&source, bytes)?;
        let gz = gz_dir.join(format!("{name}.gz"));
        fs::write(&gz, gzip(bytes)?)?;
        let sha = hex::encode(Sha256::digest(bytes));
        let ctype = content_type(name).ok_or("no content type for the release files")?;
        entries.push((name.to_owned(), source, ctype, sha, gz));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let mut code = String::from(
        "/// Every embedded file, sorted by path.\npub static ASSETS: &[Asset] = &[\n",
    );
    for (path, source, ctype, sha, gz) in &entries {
        code.push_str(&format!(
            "    Asset {{ path: {path:?}, content_type: {ctype:?}, sha256: {sha:?}, \
             bytes: include_bytes!({source:?}), gzip: include_bytes!({gz:?}) }},\n",
        ));
    }
    code.push_str("];\n");
    code.push_str(&format!(
        "/// The embedded release.\npub const RELEASE: Release = Release {{ version: {version:?}, \
         released: {released}, development: {development}, key_fingerprint: {fingerprint:?} }};\n"
    ));
    fs::write(out.join("assets.rs"), code)?;
    Ok(())
}

/// Every regular file under `dir`, as a `/`-separated path relative to `root`; dotfiles and
/// editor backups are left out.
fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) -> Res<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format!("{}: file name is not UTF-8", entry.path().display()).into());
        };
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = entry.path();
        let kind = fs::metadata(&path)?;
        if kind.is_dir() {
            walk(root, &path, files)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(root)?;
            let rel = rel.to_str().ok_or("file name is not UTF-8")?;
            files.push(rel.to_owned());
        }
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> Res<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Seconds since the epoch: `SOURCE_DATE_EPOCH` for a reproducible build, else now. The
/// service worker refuses a release older than the installed one.
fn released_at() -> Res<u64> {
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        return Ok(epoch.trim().parse()?);
    }
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs())
}
