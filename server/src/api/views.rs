//! Store records as the wire shows them ([`pushauth_proto::wire`]): devices, bindings,
//! challenges (for relying parties and for devices), relying parties, enrollment links.

use pushauth_proto::b64;
use pushauth_proto::wire::{
    ChallengeStatus, DeviceBinding, DeviceInfo, DeviceNotice, EnrollmentCreated, PendingChallenge,
    RelyingPartyInfo, NOTICE_DEVICE_ADDED,
};

use crate::clock;
use crate::service::enrollments::{enrollment_url, Issued};
use crate::service::notices::Notice;
use crate::store::{ChallengeRecord, DeviceRecord, RelyingPartyRecord};

/// A device as relying parties and admins see it.
pub fn device_info(device: &DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: device.id.clone(),
        name: device.name.clone(),
        alg: device.alg.clone(),
        public_key: device.public_key.clone(),
        created_at: clock::rfc3339(device.created_at),
        last_seen_at: device.last_seen_at.map(clock::rfc3339),
    }
}

/// A device with how it was bound (the admin listing).
pub fn device_binding(d: &DeviceRecord) -> DeviceBinding {
    DeviceBinding {
        device: device_info(d),
        revoked_at: d.revoked_at.map(clock::rfc3339),
        source: d.source.clone(),
        via: d.via.clone(),
        approved_by: d.approved_by.clone(),
    }
}

/// A new binding as a user's other devices see it (`GET /v1/device/notices`).
pub fn device_notice(d: DeviceRecord) -> DeviceNotice {
    DeviceNotice {
        kind: NOTICE_DEVICE_ADDED.to_owned(),
        device_id: Some(d.id),
        device_name: Some(d.name),
        at: clock::rfc3339(d.created_at),
        source: d.source,
        via: d.via,
        context: Default::default(),
        count: None,
    }
}

/// Any notice as the user's devices see it (`GET /v1/device/notices`).
pub fn notice(n: Notice) -> DeviceNotice {
    match n {
        Notice::Binding(d) => device_notice(d),
        Notice::Stored(n) => DeviceNotice {
            kind: n.kind,
            device_id: None,
            device_name: None,
            at: clock::rfc3339(n.at),
            source: n.source,
            via: n.via,
            context: n.context,
            count: n.count,
        },
    }
}

/// A challenge's status as returned to relying parties and devices.
pub fn challenge_status(c: &ChallengeRecord) -> ChallengeStatus {
    ChallengeStatus {
        id: c.id.clone(),
        state: c.state,
        expires_at: clock::rfc3339(c.expires_at),
        device_id: c.device_id.clone(),
        decision: c.decision,
        reason: c.reason,
        responded_at: c.responded_at.clone(),
        signature: c.signature.clone(),
        typed_code: c.typed_code.clone(),
    }
}

/// The device's view of a challenge; `rp_name` names the relying party that asked.
pub fn pending_view(c: &ChallengeRecord, rp_name: Option<String>) -> PendingChallenge {
    PendingChallenge {
        id: c.id.clone(),
        user: c.user.clone(),
        state: c.state,
        context: c.context.clone(),
        context_digest: b64::encode(c.context_digest),
        rp_nonce: b64::encode(&c.rp_nonce),
        created_at: clock::rfc3339(c.created_at),
        expires_at: clock::rfc3339(c.expires_at),
        code_required: c.code.is_some(),
        // The challenge's own length: a change of `code_digits` does not alter open ones.
        code_length: c
            .code
            .as_ref()
            .and_then(|code| u8::try_from(code.len()).ok()),
        rp_name,
    }
}

/// A relying party as listed (never its key).
pub fn relying_party_info(rp: &RelyingPartyRecord) -> RelyingPartyInfo {
    RelyingPartyInfo {
        id: rp.id.clone(),
        name: rp.name.clone(),
        users: rp.users.clone(),
        enroll: rp.enroll,
        bootstrap: rp.bootstrap,
        created_at: clock::rfc3339(rp.created_at),
        revoked_at: rp.revoked_at.map(clock::rfc3339),
    }
}

/// An enrollment link just issued, with its URL under `base_url`.
pub fn enrollment_created(base_url: &str, issued: Issued) -> EnrollmentCreated {
    EnrollmentCreated {
        url: enrollment_url(base_url, &issued.token),
        token: issued.token,
        expires_at: clock::rfc3339(issued.expires_at),
        replacement: None,
        remaining: None,
    }
}
