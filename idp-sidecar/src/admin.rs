//! The three pushauthd admin calls the sidecar needs for enrollment and device removal
//! (`pushauth-client` speaks only the relying-party API). Blocking, like the client: run them on
//! the blocking pool. Candidates to move into `pushauth-client` as an admin module.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pushauth_proto::wire::{
    CreateEnrollment, DeviceInfo, DeviceList, EnrollmentCreated, ErrorBody,
};
use pushauth_proto::MAX_BODY_BYTES;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::ApiError;

const TIMEOUT: Duration = Duration::from_secs(10);

/// An admin-token session with pushauthd.
pub struct Admin {
    agent: ureq::Agent,
    servers: Vec<String>,
    authorization: Zeroizing<String>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

/// Path segment encoding for user names and ids.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Admin {
    /// `ca_file` is the same extra PEM CA the relying-party client trusts.
    pub fn new(servers: &[String], token: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .redirects(0)
            .user_agent(concat!("pushauth-idp-sidecar/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = ca_file {
            builder = builder.tls_config(tls_config(ca_file)?);
        }
        Ok(Admin {
            agent: builder.build(),
            servers: servers
                .iter()
                .map(|s| s.trim_end_matches('/').to_owned())
                .collect(),
            authorization: Zeroizing::new(format!("Bearer {token}")),
        })
    }

    /// Tries each server in order; only "no answer" moves on.
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<Option<T>, ApiError> {
        let mut last = String::new();
        for base in &self.servers {
            let request = self
                .agent
                .request(method, &format!("{base}{path}"))
                .set("Authorization", &self.authorization);
            let result = match &body {
                Some(body) => request
                    .set("Content-Type", "application/json")
                    .send_string(body),
                None => request.call(),
            };
            match result {
                Ok(response) => {
                    if response.status() == 204 {
                        return Ok(None);
                    }
                    let text = read_body(response)?;
                    if text.is_empty() {
                        return Ok(None);
                    }
                    return serde_json::from_str(&text).map(Some).map_err(|e| {
                        ApiError::new(
                            502,
                            "upstream_error",
                            format!("bad answer from pushauthd: {e}"),
                        )
                    });
                }
                Err(ureq::Error::Status(status, response)) => {
                    let text = read_body(response).unwrap_or_default();
                    let error: Option<ErrorBody> = serde_json::from_str(&text).ok();
                    return Err(match (status, error) {
                        (401, _) => {
                            tracing::error!("pushauthd refused the sidecar's admin token");
                            ApiError::new(502, "upstream_refused", "pushauthd refused the sidecar's admin token; check admin_token_file")
                        }
                        (404, Some(e)) => ApiError::new(404, e.error.as_str(), e.message),
                        (s, Some(e)) if (400..500).contains(&s) => {
                            ApiError::new(s, e.error.as_str(), e.message)
                        }
                        (s, _) => {
                            ApiError::new(502, "upstream_error", format!("pushauthd answered {s}"))
                        }
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        tracing::warn!(error = %last, "pushauthd unreachable for an admin call");
        Err(ApiError::new(
            502,
            "upstream_unreachable",
            "the pushauth server cannot be reached",
        ))
    }

    /// `POST /v1/admin/enrollments`.
    pub fn create_enrollment(
        &self,
        user: &str,
        ttl_secs: Option<u64>,
    ) -> Result<EnrollmentCreated, ApiError> {
        let body = serde_json::to_string(&CreateEnrollment {
            user: user.to_owned(),
            ttl_secs,
        })
        .map_err(|_| ApiError::internal())?;
        self.call("POST", "/v1/admin/enrollments", Some(body))?
            .ok_or_else(|| ApiError::new(502, "upstream_error", "empty enrollment answer"))
    }

    /// `GET /v1/admin/users/{user}/devices`; an unknown user has none.
    pub fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, ApiError> {
        let path = format!("/v1/admin/users/{}/devices", segment(user));
        match self.call::<DeviceList>("GET", &path, None) {
            Ok(list) => Ok(list.map(|l| l.devices).unwrap_or_default()),
            Err(e) if e.code == "unknown_user" || e.code == "no_device" => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/admin/devices/{id}`.
    pub fn remove_device(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/v1/admin/devices/{}", segment(id));
        self.call::<serde_json::Value>("DELETE", &path, None)
            .map(|_| ())
    }
}

/// The webpki roots plus the certificates of `ca_file`.
fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let pem = std::fs::read(ca_file)
        .map_err(|e| format!("cannot read CA file {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|e| format!("CA file {} is not valid PEM: {e}", ca_file.display()))?;
        roots.add(cert).map_err(|e| {
            format!(
                "CA file {} holds an unusable certificate: {e}",
                ca_file.display()
            )
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(format!(
            "CA file {} holds no PEM certificate",
            ca_file.display()
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn read_body(response: ureq::Response) -> Result<String, ApiError> {
    let mut text = String::new();
    response
        .into_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            ApiError::new(
                502,
                "upstream_error",
                format!("cannot read pushauthd's answer: {e}"),
            )
        })?;
    if text.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            502,
            "upstream_error",
            "pushauthd's answer is too large",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(segment("alice"), "alice");
        assert_eq!(segment("a b/c@d"), "a%20b%2Fc%40d");
    }
}
