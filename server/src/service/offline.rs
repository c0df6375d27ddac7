//! Offline codes (issue 12), the rules: a device's HOTP secret issued at enrollment; the values
//! a PAM host may cache after an approved push of its own (a host's report of a code it
//! accepted while pushauthd was down is [`super::offline_used`]). Values leave the server only as Argon2id hashes (made
//! off the store thread by the caller, [`crate::hashing::Hashing`]).

use pushauth_proto::hotp::{hotp, HotpAlg};
use pushauth_proto::names::check_id;
use pushauth_proto::offline::{EnrollOffline, OfflineRequest, MAX_WINDOW};
use pushauth_proto::{b64, random, ChallengeState};
use zeroize::Zeroizing;

use super::keys::{self, RpCaller};
use super::{no_randomness, secs_to_ms, Error, Result};
use crate::bounds::SignatureFailures;
use crate::clock::Millis;
use crate::offline::{OfflineConfig, OfflineKey};
use crate::store::{AuditEntry, OfflineSecretRecord, Store};

/// How long after its creation an approved challenge still lets its relying party fetch values.
pub const VALUES_MAX_AGE_SECS: u64 = 300;

/// How long after the challenge's creation the claim of an approval's one batch of values is
/// kept ([`crate::store::CountStore::claim_offline_batch`]). Values are served for 5 minutes
/// only, but replicas judge that age and sweep claims each by its own clock: a day outlasts any
/// plausible disagreement between their clocks (attack review r8), and the rows (one per
/// approval that fetched values) are small.
pub const BATCH_KEEP_MS: Millis = 24 * 60 * 60 * 1000;

// The claim of a batch must outlive the time values are served.
const _: () = assert!(BATCH_KEEP_MS > VALUES_MAX_AGE_SECS as i64 * 1000);

/// Most devices in one `have` map (a user has a handful).
const MAX_HAVE_ENTRIES: usize = 64;

/// Makes, seals and stores a new offline secret for a just-enrolled device; `None` when
/// `[offline] enabled = false`. The plain secret is returned once, for the enroll response.
///
/// # Errors
/// [`Error::Internal`] without randomness, [`Error::Store`].
pub fn issue(
    s: &dyn Store,
    config: &OfflineConfig,
    key: &OfflineKey,
    device_id: &str,
    now: Millis,
) -> Result<Option<EnrollOffline>> {
    if !config.enabled {
        return Ok(None);
    }
    let full = Zeroizing::new(random::bytes::<32>().map_err(no_randomness)?);
    let secret = &full[..config.algorithm.secret_len()];
    let sealed = key
        .seal(device_id, secret)
        .map_err(|e| Error::Internal(e.to_string()))?;
    s.set_offline_secret(
        &OfflineSecretRecord {
            device_id: device_id.to_owned(),
            sealed,
            algorithm: config.algorithm.as_str().to_owned(),
            digits: config.digits,
            last_used: 0,
            served_to: 0,
        },
        now,
    )?;
    Ok(Some(EnrollOffline {
        secret: b64::encode(secret),
        digits: config.digits,
        algorithm: config.algorithm.as_str().to_owned(),
        counter: 0,
    }))
}

/// The plain values a host is missing for one device, to be hashed before they leave.
pub struct PlannedDevice {
    /// The device.
    pub device_id: String,
    /// Its last used counter (the host drops what it holds at or below it).
    pub last_used: u64,
    /// Digits of its codes.
    pub digits: u32,
    /// `(counter, value)`, ascending.
    pub values: Vec<(u64, Zeroizing<String>)>,
}

/// What [`plan_values`] found: the user and, per device, the values to hash.
pub struct Planned {
    /// The approved challenge the values are for.
    pub challenge_id: String,
    /// When it was created (by the creating replica's clock).
    pub created_at: Millis,
    /// The challenge's user.
    pub user: String,
    /// Per active device with a secret.
    pub devices: Vec<PlannedDevice>,
}

impl Planned {
    /// Number of values to hash.
    pub fn count(&self) -> usize {
        self.devices.iter().map(|d| d.values.len()).sum()
    }
}

/// What the offline rules need from the server: its settings, the key that opens the devices'
/// secrets, and where refusals are counted.
#[derive(Debug, Clone, Copy)]
pub struct Offline<'a> {
    /// `[offline]`.
    pub config: &'a OfflineConfig,
    /// Opens the sealed secrets.
    pub key: &'a OfflineKey,
    /// Refusals, one audit row a minute per subject and relying party ([`SignatureFailures`]).
    pub refusals: &'a SignatureFailures,
}

/// Audits `offline_values_refused`, one row a minute per relying party and reason with a
/// count (a relying party can repeat these at will).
fn refuse(
    refusals: &SignatureFailures,
    s: &dyn Store,
    rp: &RpCaller,
    challenge_id: &str,
    why: &str,
) {
    refusals.record_entry(
        s,
        &format!("offline_values_refused:{why}"),
        &format!("rp:{}", rp.rp_id),
        AuditEntry {
            kind: "offline_values_refused",
            challenge_id: Some(challenge_id.to_owned()),
            detail: Some(format!(
                "{why} (rp {}); further ones within a minute are counted here",
                rp.rp_id
            )),
            ..AuditEntry::default()
        },
    );
}

/// Checks that `rp` may fetch values on `challenge_id` (its own challenge, approved, created at
/// most [`VALUES_MAX_AGE_SECS`] ago) and computes, for each active device of the user with a
/// secret, the values for counters `last_used+1 ..= last_used+window` above what `have` says the
/// host holds. A refusal never tells another relying party's challenge from a missing one.
/// Writes only refusals: [`claim_batch`] audits what is then handed out.
///
/// # Errors
/// [`Error::Invalid`] for a bad `have`, [`Error::NotFound`] (no such challenge, or another
/// relying party's), [`Error::WrongState`] (not approved), [`Error::Expired`] (too old),
/// [`Error::Forbidden`] (offline codes off, user out of scope), [`Error::Internal`] (a secret
/// that does not open), [`Error::Store`].
pub fn plan_values(
    s: &dyn Store,
    rp: &RpCaller,
    off: Offline<'_>,
    challenge_id: &str,
    req: &OfflineRequest,
    now: Millis,
) -> Result<Planned> {
    let Offline {
        config,
        key,
        refusals,
    } = off;
    check_id("challenge", challenge_id)?;
    if req.have.len() > MAX_HAVE_ENTRIES {
        return Err(Error::Invalid(format!(
            "have lists more than {MAX_HAVE_ENTRIES} devices"
        )));
    }
    for id in req.have.keys() {
        check_id("device", id)?;
    }
    let Some((challenge, _)) = s.get_challenge(challenge_id, now)? else {
        return Err(Error::NotFound("challenge"));
    };
    if challenge.rp_id != rp.rp_id {
        refuse(
            refusals,
            s,
            rp,
            challenge_id,
            "another relying party's challenge",
        );
        return Err(Error::NotFound("challenge"));
    }
    if !config.enabled {
        return Err(Error::Forbidden(
            "offline codes are off on this server".into(),
        ));
    }
    rp.require_user(&challenge.user, "fetch offline values of")?;
    if challenge.state != ChallengeState::Approved {
        refuse(refusals, s, rp, challenge_id, "challenge not approved");
        return Err(Error::WrongState(challenge.state));
    }
    if now.saturating_sub(challenge.created_at) > secs_to_ms(VALUES_MAX_AGE_SECS) {
        refuse(
            refusals,
            s,
            rp,
            challenge_id,
            "challenge older than 5 minutes",
        );
        return Err(Error::Expired);
    }
    let window = config.window.min(MAX_WINDOW);
    let mut devices = Vec::new();
    for secret in s.offline_secrets(&challenge.user)? {
        let alg: HotpAlg = secret
            .algorithm
            .parse()
            .map_err(|e: pushauth_proto::hotp::HotpError| Error::Internal(e.to_string()))?;
        let plain = key
            .open(&secret.device_id, &secret.sealed)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let held = req.have.get(&secret.device_id).copied().unwrap_or(0);
        let first = secret.last_used.max(held).saturating_add(1);
        let last = secret.last_used.saturating_add(window);
        let mut values = Vec::new();
        for counter in first..=last {
            let code = hotp(alg, &plain, counter, secret.digits)
                .map_err(|e| Error::Internal(e.to_string()))?;
            values.push((counter, code));
        }
        devices.push(PlannedDevice {
            device_id: secret.device_id,
            last_used: secret.last_used,
            digits: secret.digits,
            values,
        });
    }
    Ok(Planned {
        challenge_id: challenge_id.to_owned(),
        created_at: challenge.created_at,
        user: challenge.user,
        devices,
    })
}

/// Claims the one batch of hashing an approval pays for (in the store, so a second replica
/// refuses it too; kept [`BATCH_KEEP_MS`] after the challenge's creation), records each device's highest counter handed out
/// (the most a host may later report) and audits `offline_values_issued`, in one unit; a plan
/// with nothing to hash needs no claim and writes nothing. Release the claim
/// ([`crate::store::CountStore::release_offline_batch`]) when the hashing then fails.
///
/// # Errors
/// [`Error::Conflict`] (audited as `offline_values_refused`) when the approval had its batch,
/// [`Error::Store`].
pub fn claim_batch(
    s: &dyn Store,
    rp: &RpCaller,
    refusals: &SignatureFailures,
    planned: &Planned,
    now: Millis,
) -> Result<()> {
    let count = planned.count();
    if count == 0 {
        return Ok(());
    }
    let id = &planned.challenge_id;
    let claimed = keys::atomically_for(s, rp, |s| {
        let keep_until = now.max(planned.created_at).saturating_add(BATCH_KEEP_MS);
        if !s.claim_offline_batch(id, keep_until)? {
            return Ok(false);
        }
        for device in &planned.devices {
            if let Some((top, _)) = device.values.last() {
                s.offline_served_to(&device.device_id, *top)?;
            }
        }
        s.audit(
            &AuditEntry {
                kind: "offline_values_issued",
                user: Some(planned.user.clone()),
                challenge_id: Some(id.clone()),
                detail: Some(format!(
                    "{count} value hashes for {} device(s) to rp {}",
                    planned.devices.len(),
                    rp.rp_id
                )),
                ..AuditEntry::default()
            },
            now,
        )?;
        Ok(true)
    })?;
    if !claimed {
        refuse(
            refusals,
            s,
            rp,
            id,
            "values already handed out for this approval",
        );
        return Err(Error::Conflict(
            "offline values were already handed out for this approval; the next approved \
             login brings the missing ones"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::{claim_batch, Planned, PlannedDevice, BATCH_KEEP_MS};
    use crate::bounds::SignatureFailures;
    use crate::service::keys::RpCaller;
    use crate::service::Error;
    use crate::store::tests::{enrolled, store};

    fn planned(created_at: i64) -> Planned {
        Planned {
            challenge_id: "c1".into(),
            created_at,
            user: "alice".into(),
            devices: vec![PlannedDevice {
                device_id: "d1".into(),
                last_used: 0,
                digits: 6,
                values: vec![(1, Zeroizing::new("123456".to_owned()))],
            }],
        }
    }

    /// Session 8 review (fix 5): the one batch an approval pays for stays claimed a day after
    /// the challenge's creation, whatever the claiming replica's clock says and however often
    /// the store is swept meanwhile; only then may it be claimed again.
    #[test]
    fn issue13_an_approvals_batch_stays_claimed_a_day_after_its_challenge() {
        let s = store();
        enrolled(&*s, "alice", "d1");
        let rp = RpCaller::admin();
        let refusals = SignatureFailures::default();
        let created = 1_000_000;
        // Claimed by a replica whose clock is 5 minutes behind the creating one's.
        claim_batch(&*s, &rp, &refusals, &planned(created), created - 300_000).unwrap();
        for later in [7 * 60_000, 60 * 60_000, BATCH_KEEP_MS - 1] {
            s.sweep(created + later, 100).unwrap();
            let again = claim_batch(&*s, &rp, &refusals, &planned(created), created + later);
            assert!(
                matches!(again, Err(Error::Conflict(_))),
                "{later} ms after creation: {again:?}"
            );
        }
        s.sweep(created + BATCH_KEEP_MS, 100).unwrap();
        claim_batch(
            &*s,
            &rp,
            &refusals,
            &planned(created),
            created + BATCH_KEEP_MS,
        )
        .unwrap();
    }
}
