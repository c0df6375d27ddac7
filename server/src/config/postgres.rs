//! `[store]` for PostgreSQL (issue 13): the connection settings: the `[store] url` in libpq's URL
//! form (several hosts, `target_session_attrs=read-write`, `sslmode`, `sslrootcert=PATH`),
//! the password from `[store] password_file` (never from the URL: it would show in process
//! lists, shell histories and logs) and the pool size. The store connects with them
//! (`store::postgres`).
//!
//! TLS is rustls with the ring provider (as for the HTTPS listener), always verifying the
//! server's certificate against the CA file and its name against the host (libpq's
//! `verify-full`): `require` and `verify-ca` are taken as `verify-full` too, since a
//! certificate nobody checks protects nothing.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use pushauth_files::{Owner, ReadPolicy};
use thiserror::Error;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

/// Connections the pool keeps at most when `[store] pool_size` is not set.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How long a connection attempt to one host may take before the next host is tried (when
/// the URL sets no `connect_timeout`): a dead primary must not hold requests for the
/// kernel's TCP timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long data sent on a connection may stay unacknowledged before the connection is
/// given up (when the URL sets no `tcp_user_timeout`).
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a statement waits for a lock (`lock_timeout`, ms) unless the URL's `options` set
/// it: a lock held by a hung session fails the request instead of freezing every replica.
pub const LOCK_TIMEOUT_MS: u32 = 5_000;

/// After how long the server ends a session left idle inside a transaction
/// (`idle_in_transaction_session_timeout`, ms) unless the URL's `options` set it: the locks
/// of a replica that died mid-transaction are freed then, not after TCP's keepalive hours.
pub const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 15_000;

/// Whether the URL's query sets `key`.
fn query_has(query: &str, key: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == key)
}

/// A `[store] url` (or `--store-url`, `PUSHAUTHD_STORE_URL`) that cannot be used, with what to
/// do about it.
#[derive(Debug, Error)]
pub enum PgConfigError {
    /// The URL carries a password.
    #[error(
        "[store] url must not hold a password (it would show in process lists and logs): write it \
         to a file only pushauthd's user can read (chmod 600) and set [store] password_file"
    )]
    PasswordInUrl,
    /// Not a `postgresql://` URL, or libpq syntax tokio-postgres does not take.
    #[error("[store] url: {0}")]
    Url(String),
    /// The password file was refused or unreadable.
    #[error("[store] password_file {path}: {message}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The CA file was unreadable or held no certificate.
    #[error("[store] url sslrootcert={path}: {message}")]
    RootCert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `[store] pool_size` is out of range.
    #[error("[store] pool_size must be 1 to 1000")]
    PoolSize,
}

/// Everything needed to connect to the PostgreSQL store. Its `Debug` shows no password.
#[derive(Clone)]
pub struct PgSettings {
    /// The parsed connection settings, password included.
    pub config: tokio_postgres::Config,
    /// The TLS connector (used only when `sslmode` asks for TLS).
    pub tls: MakeRustlsConnect,
    /// Connections the pool keeps at most.
    pub pool_size: usize,
    /// The URL as given (it holds no password: those are refused).
    pub url: String,
    /// Where the newest database timeline seen is kept across restarts (the store's
    /// refusal of a stale primary); `None` keeps it in memory only. Set by
    /// [`crate::store::open::open`] to a file in the data directory.
    pub timeline_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.url)
            .field("pool_size", &self.pool_size)
            .field(
                "password",
                &self.config.get_password().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Whether `url` names the PostgreSQL backend (`postgresql://` or `postgres://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgresql://") || url.starts_with("postgres://")
}

impl PgSettings {
    /// Parses `url` (libpq URL syntax, several hosts allowed), reads the password from
    /// `password_file` (mode 0600 or stricter, any owner: the admin commands run as root on
    /// the service's file) and loads the CA file named by `sslrootcert`.
    ///
    /// # Errors
    /// [`PgConfigError`] naming what to fix; nothing is connected.
    pub fn parse(
        url: &str,
        password_file: Option<&Path>,
        pool_size: Option<usize>,
    ) -> Result<PgSettings, PgConfigError> {
        if !is_postgres_url(url) {
            return Err(PgConfigError::Url(
                "must start with postgresql:// (or postgres://)".into(),
            ));
        }
        let pool_size = pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if !(1..=1000).contains(&pool_size) {
            return Err(PgConfigError::PoolSize);
        }
        // tokio-postgres takes libpq's URL but not `sslrootcert`, and only disable, prefer
        // and require as `sslmode`: those two are ours.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut root_cert = None;
        let mut ssl_mode = None;
        let mut kept = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "password" => return Err(PgConfigError::PasswordInUrl),
                "sslrootcert" => root_cert = Some(PathBuf::from(value.into_owned())),
                "sslmode" => ssl_mode = Some(value.into_owned()),
                _ => {
                    kept.append_pair(&key, &value);
                }
            }
        }
        // The form encoding writes a space as `+` (and a `+` as `%2B`), which the driver's URL
        // parser would keep as a `+`: `options=-c%20lock_timeout%3D1000` became
        // `-c+lock_timeout=1000`, refused by the server.
        let kept = kept.finish().replace('+', "%20");
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{kept}")
        };
        let mut config = tokio_postgres::Config::from_str(&rebuilt)
            .map_err(|e| PgConfigError::Url(e.to_string()))?;
        if config.get_password().is_some() {
            return Err(PgConfigError::PasswordInUrl);
        }
        let mode = match (ssl_mode.as_deref(), &root_cert) {
            (Some("disable"), _) => SslMode::Disable,
            (None | Some("allow" | "prefer"), None) => SslMode::Disable,
            (None, Some(_)) => SslMode::Require,
            // With a CA file TLS is required: "prefer" would let anyone on the path answer
            // "no TLS" and read (or ask for) the password in the clear.
            (Some("allow" | "prefer"), Some(_)) => SslMode::Require,
            (Some("require" | "verify-ca" | "verify-full"), Some(_)) => SslMode::Require,
            (Some("require" | "verify-ca" | "verify-full"), None) => {
                return Err(PgConfigError::Url(
                    "sslmode asks for TLS: add sslrootcert=PATH, the CA file (PEM) that signed \
                     the server's certificate"
                        .into(),
                ))
            }
            (Some(other), _) => {
                return Err(PgConfigError::Url(format!(
                    "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        config.ssl_mode(mode);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        // A host that vanished without closing its connections (power loss, a partition):
        // a statement sent to it fails after this instead of hanging for TCP's minutes, and
        // idle connections (the LISTEN one) are probed every half minute.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
        }
        if !query_has(query, "keepalives_idle") {
            config.keepalives_idle(Duration::from_secs(30));
        }
        // A session that holds a lock and then hangs (its replica lost power mid-transaction)
        // must not stop every replica's writes: waiting for a lock gives up after
        // LOCK_TIMEOUT (answered as a failure, fail closed), and the server ends a session
        // idle inside a transaction after IDLE_IN_TRANSACTION_TIMEOUT, freeing its locks.
        let mut options = config.get_options().unwrap_or_default().to_owned();
        for (key, value) in [
            ("lock_timeout", LOCK_TIMEOUT_MS),
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT_MS,
            ),
        ] {
            if !options.contains(key) {
                if !options.is_empty() {
                    options.push(' ');
                }
                options.push_str(&format!("-c {key}={value}"));
            }
        }
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("pushauthd");
        }
        if let Some(path) = password_file {
            let password = read_password(path)?;
            config.password(password.as_bytes());
        }
        let tls = MakeRustlsConnect::new(tls_config(root_cert.as_deref())?);
        Ok(PgSettings {
            config,
            tls,
            pool_size,
            url: url.to_owned(),
            timeline_file: None,
        })
    }
}

/// The password file's first line (trailing newline and spaces cut).
fn read_password(path: &Path) -> Result<Zeroizing<String>, PgConfigError> {
    let err = |message: String| PgConfigError::PasswordFile {
        path: path.to_owned(),
        message,
    };
    let text = pushauth_files::read(path, &ReadPolicy::secret(Owner::Any))
        .map_err(|e| err(e.to_string()))?
        .into_text()
        .map_err(|e| err(e.to_string()))?;
    let password = Zeroizing::new(text.lines().next().unwrap_or("").trim_end().to_owned());
    if password.is_empty() {
        return Err(err("it is empty; write the database password in it".into()));
    }
    Ok(password)
}

/// rustls settings trusting only the CA file (none: a connector that is never used, since
/// `sslmode` is then `disable`).
fn tls_config(root_cert: Option<&Path>) -> Result<rustls::ClientConfig, PgConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = root_cert {
        let err = |message: String| PgConfigError::RootCert {
            path: path.to_owned(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let mut reader = std::io::BufReader::new(&pem[..]);
        for cert in rustls_pemfile::certs(&mut reader) {
            let cert = cert.map_err(|e| err(format!("not PEM: {e}")))?;
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(err("holds no certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgConfigError::Url(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

impl PgSettings {
    /// How long the pool may take to make one connection: every host's `connect_timeout` in
    /// turn plus a margin, so that a URL listing a dead primary first still reaches the
    /// standby promoted after it (libpq tries the hosts one after the other).
    pub fn create_timeout(&self) -> Duration {
        let per_host = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let hosts = u32::try_from(self.config.get_hosts().len().max(1)).unwrap_or(u32::MAX);
        per_host.saturating_mul(hosts) + Duration::from_secs(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_password_in_the_url_is_refused_with_the_fix() {
        for url in [
            "postgresql://pushauth:secret@db1/pushauth",
            "postgresql://pushauth@db1/pushauth?password=secret",
        ] {
            let err = PgSettings::parse(url, None, None).unwrap_err();
            assert!(matches!(err, PgConfigError::PasswordInUrl), "{url}");
            let text = err.to_string();
            assert!(
                text.contains("password_file") && !text.contains("secret"),
                "{text}"
            );
        }
    }

    #[test]
    fn several_hosts_read_write_and_a_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url =
            "postgresql://pushauth@db1:5432,db2:5433/pushauth?target_session_attrs=read-write";
        let err = PgSettings::parse(url, Some(&file), None).unwrap_err();
        assert!(matches!(err, PgConfigError::PasswordFile { .. }), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = PgSettings::parse(url, Some(&file), Some(4)).unwrap();
        assert_eq!(s.config.get_hosts().len(), 2);
        assert_eq!(s.config.get_ports(), &[5432, 5433]);
        assert_eq!(s.config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(
            s.config.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(s.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(s.pool_size, 4);
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn tls_needs_a_ca_file() {
        let url = "postgresql://db1/pushauth?sslmode=verify-full";
        let err = PgSettings::parse(url, None, None).unwrap_err();
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let url = format!("postgresql://db1/pushauth?sslrootcert={}", ca.display());
        let err = PgSettings::parse(&url, None, None).unwrap_err();
        assert!(matches!(err, PgConfigError::RootCert { .. }), "{err}");
        let cert = rcgen::generate_simple_self_signed(vec!["db1".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let s = PgSettings::parse(&url, None, None).unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Require);
        // A CA file makes TLS required even where the URL says "prefer" or "allow": no
        // downgrade to plain text by whoever answers the TLS request with "no".
        for mode in ["prefer", "allow"] {
            let s = PgSettings::parse(&format!("{url}&sslmode={mode}"), None, None).unwrap();
            assert_eq!(s.config.get_ssl_mode(), SslMode::Require, "{mode}");
        }
        assert!(PgSettings::parse("mysql://db1/x", None, None).is_err());
        assert!(PgSettings::parse("postgresql://db1/x?sslmode=bogus", None, None).is_err());
        assert!(matches!(
            PgSettings::parse("postgresql://db1/x", None, Some(0)),
            Err(PgConfigError::PoolSize)
        ));
    }

    #[test]
    fn issue13_lock_waits_and_idle_transactions_are_bounded() {
        let s = PgSettings::parse("postgresql://db1,db2,db3/x", None, None).unwrap();
        let options = s.config.get_options().unwrap();
        assert!(options.contains("-c lock_timeout=5000"), "{options}");
        assert!(
            options.contains("-c idle_in_transaction_session_timeout=15000"),
            "{options}"
        );
        // Three hosts tried in turn, 3 s each, plus the margin.
        assert_eq!(s.create_timeout(), Duration::from_secs(11));
        // The URL's own settings win and are kept.
        let s = PgSettings::parse(
            "postgresql://db1/x?options=-c%20lock_timeout%3D1000&connect_timeout=10",
            None,
            None,
        )
        .unwrap();
        let options = s.config.get_options().unwrap();
        assert!(options.contains("-c lock_timeout=1000"), "{options}");
        assert!(!options.contains("lock_timeout=5000"), "{options}");
        assert!(options.contains("idle_in_transaction_session_timeout=15000"));
        assert_eq!(s.create_timeout(), Duration::from_secs(12));
    }
}
