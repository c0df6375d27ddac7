//! Checking a decided answer against what this client sent, so that a server cannot approve on
//! its own: the device must be one the challenge went to (and pinned, where the user has pins),
//! its signature must cover our challenge id, user, rp_nonce and context digest, and the state
//! must follow from the signed decision and code.

use pushauth_proto::challenge::code_matches;
use pushauth_proto::signing::{response_message, ResponseFields};
use pushauth_proto::wire::ChallengeStatus;
use pushauth_proto::{ChallengeState, Decision, DevicePublicKey, Reason};

use crate::{ClientError, Outcome, PendingLogin};

fn bad(msg: impl Into<String>) -> ClientError {
    ClientError::BadAnswer(msg.into())
}

/// The outcome a terminal status stands for, after verifying it. `None` for an open challenge.
pub(crate) fn outcome(
    login: &PendingLogin,
    status: &ChallengeStatus,
) -> Result<Option<Outcome>, ClientError> {
    if status.id != login.id {
        return Err(bad(format!(
            "status is for challenge {:?}, not {:?}",
            status.id, login.id
        )));
    }
    match status.state {
        ChallengeState::Pending | ChallengeState::Acknowledged => Ok(None),
        // Neither lets anyone in, so there is nothing to verify.
        ChallengeState::Expired => Ok(Some(Outcome::Expired)),
        ChallengeState::Cancelled => Ok(Some(Outcome::Cancelled)),
        ChallengeState::Approved | ChallengeState::Denied => {
            verify_decided(login, status).map(Some)
        }
    }
}

/// Verifies an `approved` or `denied` answer and names its outcome.
pub(crate) fn verify_decided(
    login: &PendingLogin,
    status: &ChallengeStatus,
) -> Result<Outcome, ClientError> {
    let device_id = status
        .device_id
        .as_deref()
        .ok_or_else(|| bad("decided challenge without device_id"))?;
    let device = login
        .devices
        .iter()
        .find(|d| d.id == device_id)
        .ok_or_else(|| {
            bad(format!(
                "answer from device {device_id:?}, which the challenge was not sent to"
            ))
        })?;
    let key = DevicePublicKey::from_wire(&device.alg, &device.public_key)
        .map_err(|e| bad(format!("device {device_id:?} key: {e}")))?;
    if let Some(pinned) = &login.pinned {
        if !pinned.contains(&key) {
            return Err(bad(format!(
                "device {device_id:?} ({}) is not in the user's pinned device keys",
                device.name
            )));
        }
    }
    let decision: Decision = status
        .decision
        .ok_or_else(|| bad("decided challenge without decision"))?;
    let responded_at = status
        .responded_at
        .as_deref()
        .ok_or_else(|| bad("decided challenge without responded_at"))?;
    let signature = status
        .signature
        .as_deref()
        .ok_or_else(|| bad("decided challenge without signature"))?;
    let typed_code = status.typed_code.as_deref().unwrap_or("");
    // Everything but the device's own fields comes from what this client sent.
    let message = response_message(&ResponseFields {
        challenge_id: &login.id,
        user: &login.user,
        device_id,
        rp_nonce: &login.rp_nonce,
        context_digest: &login.context_digest,
        decision,
        code: typed_code,
        responded_at,
    });
    key.verify_b64(&message, signature).map_err(|e| {
        bad(format!(
            "device {device_id:?} signature does not cover this challenge: {e}"
        ))
    })?;

    let code_ok = match login.code.as_deref() {
        Some(code) => code_matches(code, typed_code),
        None => true,
    };
    let device_id = device_id.to_owned();
    match (status.state, status.reason, decision) {
        (ChallengeState::Approved, None, Decision::Approve) if code_ok => Ok(Outcome::Approved {
            device_id,
            device_name: device.name.clone(),
        }),
        (ChallengeState::Denied, Some(Reason::Denied), Decision::Deny) => {
            Ok(Outcome::Denied { device_id })
        }
        (ChallengeState::Denied, Some(Reason::Reported), Decision::Report) => {
            Ok(Outcome::Reported { device_id })
        }
        (ChallengeState::Denied, Some(Reason::CodeMismatch), Decision::Approve)
            if login.code.is_some() && !code_ok =>
        {
            Ok(Outcome::CodeMismatch { device_id })
        }
        (state, reason, decision) => Err(bad(format!(
            "state {state} (reason {}) does not follow from the signed decision {decision}",
            reason.map_or("none", |r| r.as_str())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushauth_proto::wire::DeviceInfo;
    use pushauth_proto::DeviceSigningKey;

    const CHALLENGE: &str = "chal-1";
    const RESPONDED_AT: &str = "2026-11-23T10:00:00Z";

    fn device(seed: u8, id: &str) -> (DeviceSigningKey, DeviceInfo) {
        let key = DeviceSigningKey::from_seed(&[seed; 32]);
        let info = DeviceInfo {
            id: id.into(),
            name: format!("{id}'s name"),
            alg: "ed25519".into(),
            public_key: key.public_key().to_b64(),
            created_at: RESPONDED_AT.into(),
            last_seen_at: None,
        };
        (key, info)
    }

    fn login(devices: Vec<DeviceInfo>) -> PendingLogin {
        PendingLogin {
            id: CHALLENGE.into(),
            user: "alice".into(),
            code: Some("42".into()),
            devices,
            expires_at: RESPONDED_AT.into(),
            grace: None,
            rp_nonce: [7; 32],
            context_digest: [9; 32],
            server: 0,
            pinned: None,
        }
    }

    /// What the device would sign, with every field overridable to simulate tampering.
    struct Answer<'a> {
        challenge_id: &'a str,
        user: &'a str,
        device_id: &'a str,
        rp_nonce: [u8; 32],
        digest: [u8; 32],
        decision: Decision,
        code: &'a str,
    }

    impl Default for Answer<'_> {
        fn default() -> Self {
            Answer {
                challenge_id: CHALLENGE,
                user: "alice",
                device_id: "dev-a",
                rp_nonce: [7; 32],
                digest: [9; 32],
                decision: Decision::Approve,
                code: "42",
            }
        }
    }

    fn status(
        key: &DeviceSigningKey,
        answer: &Answer<'_>,
        state: ChallengeState,
        reason: Option<Reason>,
    ) -> ChallengeStatus {
        let message = response_message(&ResponseFields {
            challenge_id: answer.challenge_id,
            user: answer.user,
            device_id: answer.device_id,
            rp_nonce: &answer.rp_nonce,
            context_digest: &answer.digest,
            decision: answer.decision,
            code: answer.code,
            responded_at: RESPONDED_AT,
        });
        ChallengeStatus {
            id: CHALLENGE.into(),
            state,
            expires_at: RESPONDED_AT.into(),
            device_id: Some(answer.device_id.into()),
            decision: Some(answer.decision),
            reason,
            responded_at: Some(RESPONDED_AT.into()),
            signature: Some(key.sign_b64(&message)),
            typed_code: Some(answer.code.into()),
        }
    }

    fn assert_bad(result: Result<Outcome, ClientError>, needle: &str) {
        match result {
            Err(ClientError::BadAnswer(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("expected BadAnswer containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn genuine_answers_verify() {
        let (key, info) = device(1, "dev-a");
        let login = login(vec![info]);
        let ok = status(&key, &Answer::default(), ChallengeState::Approved, None);
        assert_eq!(
            verify_decided(&login, &ok).unwrap(),
            Outcome::Approved {
                device_id: "dev-a".into(),
                device_name: "dev-a's name".into()
            }
        );
        let deny = Answer {
            decision: Decision::Deny,
            code: "",
            ..Answer::default()
        };
        let s = status(&key, &deny, ChallengeState::Denied, Some(Reason::Denied));
        assert_eq!(
            verify_decided(&login, &s).unwrap(),
            Outcome::Denied {
                device_id: "dev-a".into()
            }
        );
        let report = Answer {
            decision: Decision::Report,
            code: "",
            ..Answer::default()
        };
        let s = status(
            &key,
            &report,
            ChallengeState::Denied,
            Some(Reason::Reported),
        );
        assert!(matches!(
            verify_decided(&login, &s).unwrap(),
            Outcome::Reported { .. }
        ));
        let wrong = Answer {
            code: "24",
            ..Answer::default()
        };
        let s = status(
            &key,
            &wrong,
            ChallengeState::Denied,
            Some(Reason::CodeMismatch),
        );
        assert!(matches!(
            verify_decided(&login, &s).unwrap(),
            Outcome::CodeMismatch { .. }
        ));
    }

    #[test]
    fn tampered_signature_is_refused() {
        let (key, info) = device(1, "dev-a");
        let login = login(vec![info]);
        let mut s = status(&key, &Answer::default(), ChallengeState::Approved, None);
        let mut sig = pushauth_proto::b64::decode(s.signature.as_deref().unwrap(), "sig").unwrap();
        sig[10] ^= 0x40;
        s.signature = Some(pushauth_proto::b64::encode(&sig));
        assert_bad(verify_decided(&login, &s), "signature");
        // A valid signature over a different responded_at is refused too.
        let mut s = status(&key, &Answer::default(), ChallengeState::Approved, None);
        s.responded_at = Some("2026-11-23T10:00:01Z".into());
        assert_bad(verify_decided(&login, &s), "signature");
        // A signature by another key claiming to be dev-a.
        let (other, _) = device(2, "dev-a");
        let s = status(&other, &Answer::default(), ChallengeState::Approved, None);
        assert_bad(verify_decided(&login, &s), "signature");
    }

    #[test]
    fn answers_to_other_challenges_are_refused() {
        let (key, info) = device(1, "dev-a");
        let login = login(vec![info]);
        for (answer, what) in [
            (
                Answer {
                    rp_nonce: [8; 32],
                    ..Answer::default()
                },
                "rp_nonce",
            ),
            (
                Answer {
                    digest: [1; 32],
                    ..Answer::default()
                },
                "context digest",
            ),
            (
                Answer {
                    user: "mallory",
                    ..Answer::default()
                },
                "user",
            ),
            (
                Answer {
                    challenge_id: "chal-2",
                    ..Answer::default()
                },
                "challenge id",
            ),
        ] {
            let s = status(&key, &answer, ChallengeState::Approved, None);
            match verify_decided(&login, &s) {
                Err(ClientError::BadAnswer(msg)) => assert!(msg.contains("signature"), "{what}"),
                other => panic!("wrong {what} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn device_not_in_the_challenge_is_refused() {
        let (key_a, info_a) = device(1, "dev-a");
        let (key_b, _) = device(2, "dev-b");
        let login = login(vec![info_a]);
        let answer = Answer {
            device_id: "dev-b",
            ..Answer::default()
        };
        assert_bad(
            verify_decided(
                &login,
                &status(&key_b, &answer, ChallengeState::Approved, None),
            ),
            "not sent to",
        );
        let mut s = status(&key_a, &Answer::default(), ChallengeState::Approved, None);
        s.device_id = None;
        assert_bad(verify_decided(&login, &s), "device_id");
    }

    #[test]
    fn pinned_keys_are_enforced() {
        let (key, info) = device(1, "dev-a");
        let (_, other) = device(2, "dev-b");
        let mut login = login(vec![info.clone()]);
        let s = status(&key, &Answer::default(), ChallengeState::Approved, None);
        login.pinned = Some(vec![DevicePublicKey::from_wire(
            "ed25519",
            &other.public_key,
        )
        .unwrap()]);
        assert_bad(verify_decided(&login, &s), "pinned");
        login.pinned = Some(vec![]);
        assert_bad(verify_decided(&login, &s), "pinned");
        login.pinned = Some(vec![
            DevicePublicKey::from_wire("ed25519", &other.public_key).unwrap(),
            DevicePublicKey::from_wire("ed25519", &info.public_key).unwrap(),
        ]);
        assert!(matches!(
            verify_decided(&login, &s).unwrap(),
            Outcome::Approved { .. }
        ));
    }

    /// An ES256 device's answer verifies with its key; pinned, it counts; unpinned (or pinned
    /// only under another key) it does not; a forged or truncated ES256 signature never does.
    #[test]
    fn issue11_es256_answers_and_pinning() {
        let key = DeviceSigningKey::from_secret(pushauth_proto::Alg::Es256, &[3; 32]).unwrap();
        let info = DeviceInfo {
            id: "dev-a".into(),
            name: "browser".into(),
            alg: "es256".into(),
            public_key: key.public_key().to_b64(),
            created_at: RESPONDED_AT.into(),
            last_seen_at: None,
        };
        let (_, ed_other) = device(2, "dev-b");
        let mut login = login(vec![info.clone()]);
        let s = status(&key, &Answer::default(), ChallengeState::Approved, None);
        assert!(matches!(
            verify_decided(&login, &s).unwrap(),
            Outcome::Approved { .. }
        ));
        let mut forged = s.clone();
        let mut sig = pushauth_proto::b64::decode(s.signature.as_deref().unwrap(), "s").unwrap();
        sig[10] ^= 1;
        forged.signature = Some(pushauth_proto::b64::encode(&sig));
        assert_bad(verify_decided(&login, &forged), "signature");
        forged.signature = Some(pushauth_proto::b64::encode(&sig[..63]));
        assert_bad(verify_decided(&login, &forged), "signature");

        let unpinned = DeviceSigningKey::from_secret(pushauth_proto::Alg::Es256, &[4; 32])
            .unwrap()
            .public_key();
        login.pinned = Some(vec![
            DevicePublicKey::from_wire("ed25519", &ed_other.public_key).unwrap(),
            unpinned,
        ]);
        assert_bad(verify_decided(&login, &s), "pinned");
        login.pinned = Some(vec![
            DevicePublicKey::from_wire("es256", &info.public_key).unwrap()
        ]);
        assert!(matches!(
            verify_decided(&login, &s).unwrap(),
            Outcome::Approved { .. }
        ));
    }

    #[test]
    fn state_must_follow_from_the_decision() {
        let (key, info) = device(1, "dev-a");
        let login = login(vec![info]);
        // Approved with the wrong code.
        let wrong = Answer {
            code: "24",
            ..Answer::default()
        };
        assert_bad(
            verify_decided(
                &login,
                &status(&key, &wrong, ChallengeState::Approved, None),
            ),
            "does not follow",
        );
        // "Code mismatch" claimed for the right code.
        assert_bad(
            verify_decided(
                &login,
                &status(
                    &key,
                    &Answer::default(),
                    ChallengeState::Denied,
                    Some(Reason::CodeMismatch),
                ),
            ),
            "does not follow",
        );
        // Approved from a signed deny.
        let deny = Answer {
            decision: Decision::Deny,
            ..Answer::default()
        };
        assert_bad(
            verify_decided(&login, &status(&key, &deny, ChallengeState::Approved, None)),
            "does not follow",
        );
        // Reported from a signed deny.
        assert_bad(
            verify_decided(
                &login,
                &status(&key, &deny, ChallengeState::Denied, Some(Reason::Reported)),
            ),
            "does not follow",
        );
    }

    #[test]
    fn open_and_undecided_states() {
        let (_, info) = device(1, "dev-a");
        let login = login(vec![info]);
        let mut s = ChallengeStatus {
            id: CHALLENGE.into(),
            state: ChallengeState::Acknowledged,
            expires_at: RESPONDED_AT.into(),
            device_id: None,
            decision: None,
            reason: None,
            responded_at: None,
            signature: None,
            typed_code: None,
        };
        assert_eq!(outcome(&login, &s).unwrap(), None);
        s.state = ChallengeState::Expired;
        assert_eq!(outcome(&login, &s).unwrap(), Some(Outcome::Expired));
        s.state = ChallengeState::Cancelled;
        assert_eq!(outcome(&login, &s).unwrap(), Some(Outcome::Cancelled));
        s.id = "chal-2".into();
        assert!(matches!(
            outcome(&login, &s),
            Err(ClientError::BadAnswer(_))
        ));
    }
}
