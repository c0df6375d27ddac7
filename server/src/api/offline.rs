//! Offline-code routes (issue 12) for relying parties: the values a PAM host caches after an
//! approved push, and its report of a code used while pushauthd was down. Thin adapters over
//! [`crate::service::offline`]; the hashing runs in the server's one bounded pool
//! ([`crate::hashing::Hashing`]), off the store thread.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::Json;
use pushauth_proto::offline::{
    OfflineDevice, OfflineRequest, OfflineResponse, OfflineUsedRequest, OfflineUsedResponse,
    OfflineValue,
};

use pushauth_proto::wire::NOTICE_OFFLINE_CODE_USED;

use super::{ApiError, JsonBody};
use crate::clock;
use crate::service::keys::{authenticate, RpKey};
use crate::service::{offline, offline_used};
use crate::state::SharedState;

/// `POST /v1/challenges/{id}/offline`: Argon2id hashes of the values the host lacks, for each
/// active device of the challenge's user (only the relying party that created the challenge,
/// only when it is approved and at most 5 minutes old, one batch per approval: a second call
/// that would hash anything is 409, a busy server 429).
pub async fn values(
    State(state): State<SharedState>,
    key: RpKey,
    Path(id): Path<String>,
    body: Result<JsonBody<OfflineRequest>, ApiError>,
) -> Result<Json<OfflineResponse>, ApiError> {
    let now = clock::now_ms();
    let config = state.config.offline;
    let sealing = state.offline_key.clone();
    let refusals = Arc::clone(&state.signature_failures);
    let planned = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            let JsonBody(req) = body?;
            let off = offline::Offline {
                config: &config,
                key: &sealing,
                refusals: &refusals,
            };
            let planned = offline::plan_values(s, &rp, off, &id, &req, now)?;
            // One batch of hashing per approval (asking for nothing new costs nothing).
            offline::claim_batch(s, &rp, &refusals, &planned, now)?;
            Ok::<_, ApiError>(planned)
        })
        .await?;
    let count = planned.count();
    let values = planned
        .devices
        .iter()
        .flat_map(|d| d.values.iter().map(|(_, v)| v.clone()))
        .collect();
    let started = Instant::now();
    let mut hashes = match crate::offline::hash::hash_all(&state.hashing, values).await {
        Ok(hashes) => hashes.into_iter(),
        Err(e) => {
            // Nothing was handed out: the host may try again on this approval. If the claim
            // cannot be given back now, it ends with its keep time.
            let id = planned.challenge_id.clone();
            let released = state
                .run(move |s| {
                    s.release_offline_batch(&id)
                        .map_err(crate::service::Error::from)
                })
                .await;
            if let Err(error) = released {
                tracing::warn!(%error, "an offline batch claim was not given back");
            }
            return Err(ApiError::from(e));
        }
    };
    if count > 0 {
        tracing::info!(
            values = count,
            ms = started.elapsed().as_millis() as u64,
            "offline values hashed"
        );
    }
    let devices = planned
        .devices
        .iter()
        .map(|d| OfflineDevice {
            device_id: d.device_id.clone(),
            last_used: d.last_used,
            digits: d.digits,
            values: d
                .values
                .iter()
                .filter_map(|(counter, _)| {
                    hashes.next().map(|hash| OfflineValue {
                        counter: *counter,
                        hash,
                    })
                })
                .collect(),
        })
        .collect();
    Ok(Json(OfflineResponse {
        user: planned.user,
        digits: state.config.offline.digits,
        devices,
    }))
}

/// `POST /v1/users/{user}/offline-used`: a code the host accepted while pushauthd was down; the
/// device's counter moves forward (never back), the use is audited and the user's devices
/// told.
pub async fn used(
    State(state): State<SharedState>,
    key: RpKey,
    Path(user): Path<String>,
    body: Result<JsonBody<OfflineUsedRequest>, ApiError>,
) -> Result<Json<OfflineUsedResponse>, ApiError> {
    let now = clock::now_ms();
    let user_for_notice = user.clone();
    let config = state.config.offline;
    let sealing = state.offline_key.clone();
    let refusals = Arc::clone(&state.signature_failures);
    let reported = state
        .run(move |s| {
            let rp = authenticate(s, &key)?;
            let JsonBody(req) = body?;
            let off = offline::Offline {
                config: &config,
                key: &sealing,
                refusals: &refusals,
            };
            Ok::<_, ApiError>(offline_used::report_used(s, &rp, off, &user, &req, now)?)
        })
        .await?;
    // The user's devices' long-polls return, so they fetch their notices.
    state.announce_notice(&user_for_notice, NOTICE_OFFLINE_CODE_USED, &reported.wake);
    Ok(Json(OfflineUsedResponse {
        counter: reported.counter,
    }))
}
