//! [`DeviceClient`]: the device's side of the API, from an in-memory [`Profile`].

use std::path::Path;
use std::time::Duration;

use pushauth_proto::context::validate_context;
use pushauth_proto::signing::{enroll_message, response_message, ResponseFields};
use pushauth_proto::wire::{
    ChallengeStatus, DeviceNotice, DeviceResponse, EnrollRequest, EnrollResponse, NoticeList,
    PendingChallenge, PendingList,
};
use pushauth_proto::{b64, context_digest, names, Alg, Decision, DeviceSigningKey, MAX_WAIT_SECS};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::Url;
use zeroize::Zeroizing;

use crate::link::{base_url, parse_enroll_link};
use crate::transport::{build_agent, send, CALL_TIMEOUT};
use crate::{DeviceError, Profile};

/// A device speaking to pushauthd. Cheap to build from a profile; no disk access unless the
/// profile names a CA file (use [`DeviceClient::with_agent`] to share one agent).
pub struct DeviceClient {
    agent: ureq::Agent,
    /// `scheme://host:port`; requests go to `origin + path`.
    origin: String,
    /// Path of the server's base URL (empty, or `/prefix`), part of what requests sign.
    prefix: String,
    user: String,
    device_id: String,
    key: DeviceSigningKey,
}

impl std::fmt::Debug for DeviceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceClient")
            .field("origin", &self.origin)
            .field("prefix", &self.prefix)
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

fn encode_json(value: &impl Serialize) -> Result<Vec<u8>, DeviceError> {
    serde_json::to_vec(value).map_err(|e| DeviceError::Profile(format!("cannot encode JSON: {e}")))
}

/// Splits a base URL into origin and path prefix.
fn split_base(server: &str) -> Result<(String, String), DeviceError> {
    let base = base_url(server)?;
    let url = Url::parse(&base).map_err(|e| DeviceError::BadLink(e.to_string()))?;
    let origin = url.origin().ascii_serialization();
    let prefix = url.path().trim_end_matches('/').to_owned();
    Ok((origin, prefix))
}

/// RFC 3339 UTC text for now, to whole seconds.
fn now_rfc3339() -> Result<String, DeviceError> {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .map_err(|e| DeviceError::Profile(format!("cannot format the time: {e}")))
}

impl DeviceClient {
    /// Enrolls a new device from an enrollment link: makes an Ed25519 key, proves possession, and
    /// returns the profile to store. `ca_file` is an extra PEM CA bundle for a private CA.
    pub fn enroll(link: &str, name: &str, ca_file: Option<&Path>) -> Result<Profile, DeviceError> {
        Self::enroll_alg(link, name, ca_file, Alg::Ed25519)
    }

    /// As [`DeviceClient::enroll`], with a key of `alg` (`es256`: ECDSA P-256, as a browser
    /// without Ed25519 enrolls).
    pub fn enroll_alg(
        link: &str,
        name: &str,
        ca_file: Option<&Path>,
        alg: Alg,
    ) -> Result<Profile, DeviceError> {
        let link = parse_enroll_link(link)?;
        let name = name.trim();
        // The server's rule (64 characters, nothing hidden), checked before a key is made.
        names::check_device_name(name).map_err(|e| DeviceError::Profile(format!("the {e}")))?;
        let agent = build_agent(ca_file)?;
        let (origin, prefix) = split_base(&link.server)?;
        let key = DeviceSigningKey::generate_alg(alg)
            .map_err(|e| DeviceError::Profile(format!("cannot make a key: {e}")))?;
        let public = key.public_key();
        let proof = key.sign_b64(&enroll_message(
            &link.token,
            public.alg().as_str(),
            &public.to_bytes(),
        ));
        let request = EnrollRequest {
            token: link.token.clone(),
            name: name.to_owned(),
            alg: public.alg().as_str().to_owned(),
            public_key: public.to_b64(),
            proof,
        };
        let answer: EnrollResponse = send(
            &agent,
            &origin,
            &format!("{prefix}/v1/device/enroll"),
            "POST",
            Some(encode_json(&request)?),
            None,
            CALL_TIMEOUT,
        )?;
        // Both are stored in the profile: the id goes into every request's header, the user is
        // shown. A server cannot hand out ids that break the header or names that read as others.
        if names::check_id("device", &answer.device_id).is_err() {
            return Err(DeviceError::BadAnswer(format!(
                "device id {:?} is not URL-safe",
                answer.device_id
            )));
        }
        if names::check_user(&answer.user).is_err() {
            return Err(DeviceError::BadAnswer(format!(
                "user name {:?} is empty, too long or holds hidden characters",
                answer.user
            )));
        }
        Ok(Profile {
            server: link.server,
            user: answer.user,
            device_id: answer.device_id,
            name: name.to_owned(),
            alg: key.alg(),
            key_seed: Zeroizing::new(b64::encode(key.secret().as_slice())),
            ca_file: ca_file.map(Path::to_path_buf),
        })
    }

    /// A client for an enrolled device, with its own agent (reads the profile's CA file if any).
    pub fn new(profile: &Profile) -> Result<DeviceClient, DeviceError> {
        let agent = build_agent(profile.ca_file.as_deref())?;
        Self::with_agent(profile, agent)
    }

    /// A client for an enrolled device using a given agent: no disk access at all.
    pub fn with_agent(profile: &Profile, agent: ureq::Agent) -> Result<DeviceClient, DeviceError> {
        let (origin, prefix) = split_base(&profile.server)?;
        let key = profile.signing_key()?;
        Ok(DeviceClient {
            agent,
            origin,
            prefix,
            user: profile.user.clone(),
            device_id: profile.device_id.clone(),
            key,
        })
    }

    /// The device id pushauthd gave at enrollment (base64url).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The device's public key (its fingerprint is what a person compares with the server's list).
    pub fn public_key(&self) -> pushauth_proto::DevicePublicKey {
        self.key.public_key()
    }

    /// The user this device is enrolled for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `GET /v1/device/notices?kinds=all`: what this device's user should know from the last
    /// 30 days, newest first: devices added (never this device itself), backup codes used or
    /// issued, and kinds this version does not know yet. Their text comes from the server:
    /// sanitise it before printing.
    pub fn notices(&self) -> Result<Vec<DeviceNotice>, DeviceError> {
        let list: NoticeList =
            self.signed("GET", "/v1/device/notices?kinds=all", None, CALL_TIMEOUT)?;
        Ok(list.notices)
    }

    pub(crate) fn signed<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<T, DeviceError> {
        send(
            &self.agent,
            &self.origin,
            &format!("{}{path}", self.prefix),
            method,
            body,
            Some((&self.key, &self.device_id)),
            timeout,
        )
    }

    /// The device's open challenges; long-polls up to `wait_secs` (at most 30) for one to appear.
    pub fn pending(&self, wait_secs: u64) -> Result<Vec<PendingChallenge>, DeviceError> {
        let wait = wait_secs.min(MAX_WAIT_SECS);
        let list: PendingList = self.signed(
            "GET",
            &format!("/v1/device/challenges?wait={wait}"),
            None,
            CALL_TIMEOUT + Duration::from_secs(wait),
        )?;
        Ok(list.challenges)
    }

    /// Tells the server the challenge was opened on this device.
    pub fn ack(&self, id: &str) -> Result<(), DeviceError> {
        let _: serde_json::Value = self.signed(
            "POST",
            &format!("/v1/device/challenges/{}/ack", check_id(id)?),
            Some(Vec::new()),
            CALL_TIMEOUT,
        )?;
        Ok(())
    }

    /// Answers a challenge: signs the response message over the challenge's fields, with
    /// `code` being what the person typed ("" without number matching). Refuses a challenge
    /// whose context does not hash to its `context_digest`, one for another user, and an
    /// approval of a context that [`validate_context`] refuses.
    pub fn respond(
        &self,
        challenge: &PendingChallenge,
        decision: Decision,
        code: &str,
    ) -> Result<ChallengeStatus, DeviceError> {
        let id = check_id(&challenge.id)?;
        let digest = b64::decode_array::<32>(&challenge.context_digest, "context_digest")
            .map_err(|e| DeviceError::BadChallenge(e.to_string()))?;
        // The digest is what the RP checks; the context is what the person saw. They must agree.
        if digest != context_digest(&challenge.context) {
            return Err(DeviceError::BadChallenge(format!(
                "challenge {id}: the context shown does not match its digest"
            )));
        }
        // Never approve what the protocol forbids showing (hidden characters could make the
        // context read as something else); deny and report stay possible.
        if decision == Decision::Approve {
            validate_context(&challenge.context)
                .map_err(|e| DeviceError::BadChallenge(format!("challenge {id}: {e}")))?;
        }
        if challenge.user != self.user {
            return Err(DeviceError::BadChallenge(format!(
                "challenge {id} is for user {:?}, this device is enrolled for {:?}",
                challenge.user, self.user
            )));
        }
        let rp_nonce = b64::decode(&challenge.rp_nonce, "rp_nonce")
            .map_err(|e| DeviceError::BadChallenge(e.to_string()))?;
        let code = code.trim();
        let responded_at = now_rfc3339()?;
        let signature = self.key.sign_b64(&response_message(&ResponseFields {
            challenge_id: id,
            user: &challenge.user,
            device_id: &self.device_id,
            rp_nonce: &rp_nonce,
            context_digest: &digest,
            decision,
            code,
            responded_at: &responded_at,
        }));
        let body = DeviceResponse {
            decision,
            code: code.to_owned(),
            responded_at,
            signature,
        };
        self.signed(
            "POST",
            &format!("/v1/device/challenges/{id}/response"),
            Some(encode_json(&body)?),
            CALL_TIMEOUT,
        )
    }
}

/// A challenge id goes into a URL path: only base64url characters.
fn check_id(id: &str) -> Result<&str, DeviceError> {
    names::check_id("challenge", id)
        .map(|()| id)
        .map_err(|_| DeviceError::BadChallenge(format!("challenge id {id:?} is not URL-safe")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_proto::{ChallengeState, Context};

    fn client() -> DeviceClient {
        let profile = Profile {
            // Requests are never expected to succeed here.
            server: "http://127.0.0.1:9".into(),
            user: "alice".into(),
            device_id: "dev1".into(),
            name: "phone".into(),
            alg: Alg::Ed25519,
            key_seed: Zeroizing::new(b64::encode([1u8; 32])),
            ca_file: None,
        };
        DeviceClient::new(&profile).unwrap()
    }

    fn challenge() -> PendingChallenge {
        let context: Context = [("service".to_string(), "sshd".to_string())].into();
        PendingChallenge {
            id: "chal1".into(),
            user: "alice".into(),
            state: ChallengeState::Pending,
            context_digest: b64::encode(context_digest(&context)),
            context,
            rp_nonce: b64::encode([2u8; 32]),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-01T00:01:00Z".into(),
            code_required: true,
            code_length: Some(2),
            rp_name: None,
        }
    }

    #[test]
    fn refuses_to_sign_what_was_not_shown() {
        let client = client();
        // The genuine challenge passes the checks and gets as far as the network.
        let genuine = client.respond(&challenge(), Decision::Approve, "42");
        assert!(
            !matches!(genuine, Err(DeviceError::BadChallenge(_))),
            "{genuine:?}"
        );
        let mut swapped = challenge();
        swapped.context.insert("service".into(), "sudo".into());
        match client.respond(&swapped, Decision::Approve, "42") {
            Err(DeviceError::BadChallenge(msg)) => assert!(msg.contains("digest"), "{msg}"),
            other => panic!("expected BadChallenge, got {other:?}"),
        }
        let mut other_user = challenge();
        other_user.user = "bob".into();
        assert!(matches!(
            client.respond(&other_user, Decision::Approve, "42"),
            Err(DeviceError::BadChallenge(_))
        ));
        let mut bad_id = challenge();
        bad_id.id = "../admin".into();
        assert!(matches!(
            client.respond(&bad_id, Decision::Deny, ""),
            Err(DeviceError::BadChallenge(_))
        ));
    }

    #[test]
    fn base_urls_split_into_origin_and_prefix() {
        assert_eq!(
            split_base("https://push.example.com/pa/").unwrap(),
            ("https://push.example.com".to_string(), "/pa".to_string())
        );
        assert_eq!(
            split_base("http://127.0.0.1:8443").unwrap(),
            ("http://127.0.0.1:8443".to_string(), String::new())
        );
        assert!(now_rfc3339().unwrap().ends_with('Z'));
    }
}
