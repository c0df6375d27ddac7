//! The shared state every handler sees, built once from [`Settings`].

use std::sync::Arc;
use std::time::Duration;

use pushauth_client::Client;
use zeroize::Zeroizing;

use crate::backup::Issuances;
use crate::config::{CibaSettings, Settings};
use crate::enroll::Enrollments;
use crate::logins::Logins;
use crate::metrics::Metrics;
use crate::realms::Realms;
use crate::result_token::ResultSigner;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The secret shims present as `Authorization: Bearer …`.
    pub shared_secret: Zeroizing<String>,
    /// Signs result tokens.
    pub signer: ResultSigner,
    /// Pending and recently ended logins (and add-device approvals).
    pub logins: Logins,
    /// Enrollments in progress.
    pub enrollments: Enrollments,
    /// Backup-code issuances in progress.
    pub backup_codes: Issuances,
    /// The counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Lifetime of a login's challenge.
    pub login_ttl: Duration,
    /// Lifetime of a result token.
    pub result_ttl: Duration,
    /// Hard deadline for the pushauthd calls one shim request makes.
    pub call_timeout: Duration,
    /// How IdP realms map to pushauthd users.
    pub realms: Realms,
    /// Keycloak's CIBA channel, when `[ciba]` is configured.
    pub ciba: Option<Ciba>,
    /// The runtime that serves (its blocking pool runs the pushauthd calls).
    pub runtime: tokio::runtime::Handle,
}

/// CIBA settings plus the agent that calls Keycloak back.
pub struct Ciba {
    /// `[ciba]` from the config.
    pub settings: CibaSettings,
    /// Calls Keycloak back (no redirects, 10 s timeout).
    pub agent: ureq::Agent,
}

impl std::fmt::Debug for Ciba {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ciba")
            .field("keycloak_url", &self.settings.keycloak_url)
            .finish_non_exhaustive()
    }
}

/// The state as handlers hold it.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Builds the client and registries; must run inside the tokio runtime that serves.
    pub fn new(settings: Settings) -> Result<SharedState, pushauth_client::ClientError> {
        let client = Arc::new(Client::new(settings.client)?);
        let metrics = Arc::new(Metrics::default());
        let ciba = settings.ciba.map(|settings| Ciba {
            settings,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .redirects(0)
                .build(),
        });
        Ok(Arc::new(AppState {
            shared_secret: settings.shared_secret,
            signer: ResultSigner::new(settings.signing_key),
            logins: Logins::new(client, settings.max_pending, metrics.clone()),
            enrollments: Enrollments::new(settings.max_pending),
            backup_codes: Issuances::new(settings.max_pending),
            metrics,
            login_ttl: settings.login_ttl,
            result_ttl: settings.result_ttl,
            call_timeout: settings.call_timeout,
            realms: settings.realms,
            ciba,
            runtime: tokio::runtime::Handle::current(),
        }))
    }
}
