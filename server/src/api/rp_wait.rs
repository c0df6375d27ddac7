//! `GET /v1/challenges?ids=ID,ID&wait=SECS` (issue 14): a relying party waits on several of its
//! challenges at once. An approval by someone else asks each approver with a challenge of its
//! own; the first answer decides, so the relying party must hear whichever comes first, and a
//! PAM module may not start a thread per approver to long-poll each.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use futures_util::future::select_all;
use pushauth_proto::wire::{ChallengeStatuses, MAX_WAIT_IDS};
use pushauth_proto::ChallengeState;
use tokio::time::Instant;

use super::rp::instant_at;
use super::views::challenge_status;
use super::{ApiError, Params};
use crate::clock;
use crate::service::challenges;
use crate::service::keys::{authenticate, RpKey};
use crate::state::SharedState;
use crate::store::ChallengeRecord;
use crate::waiters::{ChallengeNews, Subscription};

/// Longest challenge id accepted in `ids` (ours are 22 characters; a bound keeps a hostile
/// list from costing more than [`MAX_WAIT_IDS`] short lookups).
const MAX_ID_LEN: usize = 64;

/// First pause before the challenges are read again after `store_unavailable`.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest such pause.
const MAX_RETRY: Duration = Duration::from_millis(500);

/// The `ids` parameter: 1 to [`MAX_WAIT_IDS`] distinct ids, comma-separated, each 1 to
/// [`MAX_ID_LEN`] base64url characters.
///
/// # Errors
/// `malformed_request`, naming what is wrong.
pub fn parse_ids(params: &Params) -> Result<Vec<String>, ApiError> {
    let text = params.0.get("ids").ok_or_else(|| {
        ApiError::malformed("ids is required: ids=ID,ID (the challenges to wait on)")
    })?;
    let ids: Vec<String> = text.split(',').map(str::to_owned).collect();
    if ids.len() > MAX_WAIT_IDS {
        return Err(ApiError::malformed(format!(
            "ids names {} challenges; at most {MAX_WAIT_IDS}",
            ids.len()
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        let fine = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !fine {
            return Err(ApiError::malformed(format!(
                "ids item {} is not a challenge id (1 to {MAX_ID_LEN} base64url characters)",
                i + 1
            )));
        }
        if ids[..i].contains(id) {
            return Err(ApiError::malformed(format!(
                "ids names challenge {id} twice"
            )));
        }
    }
    Ok(ids)
}

/// `GET /v1/challenges?ids=ID,ID&wait=SECS`: the statuses of the caller's challenges `ids`, in
/// that order; at once when any is terminal or `wait` is 0, else once any changes state, the
/// earliest expiry arrives or the wait ends. A challenge of another relying party, or none, is
/// `not_found` for the whole request (as for one id: nothing tells another's from none).
pub async fn wait_any(
    State(state): State<SharedState>,
    key: RpKey,
    params: Result<Params, ApiError>,
) -> Result<Json<ChallengeStatuses>, ApiError> {
    let asked = params.and_then(|p| Ok((parse_ids(&p)?, p.wait_secs()?)));
    let started = Instant::now();
    // Subscribed before the first read, so a change between the read and the wait is seen;
    // only ids that parsed are subscribed to, and at most MAX_WAIT_IDS.
    let mut subs: Vec<Subscription<ChallengeNews>> = match &asked {
        Ok((ids, _)) => ids
            .iter()
            .map(|id| state.waiters.watch_challenge(id))
            .collect(),
        Err(_) => Vec::new(),
    };
    let now = clock::now_ms();
    // Checked again by every read after the wait began.
    let again = key.clone();
    // Boxed, as the read below: the handler's future, which lasts the whole wait, would
    // otherwise be as large as the largest store job's future (see `rp::get_challenge`).
    let ((ids, wait), outcomes) = Box::pin(state.run(move |s| {
        let rp = authenticate(s, &key)?;
        let (ids, wait) = asked?;
        let outcomes: Vec<_> = ids
            .iter()
            .map(|id| challenges::get_owned(s, &rp, id, now))
            .collect();
        Ok::<_, ApiError>(((ids, wait), outcomes))
    }))
    .await?;
    let mut found = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        found.push(state.settle(outcome)?);
    }
    let deadline = started + Duration::from_secs(wait);
    if found.iter().any(|c| c.state.is_terminal()) || wait == 0 || state.stopping() {
        return Ok(Json(statuses(&found)));
    }
    let seen: Vec<ChallengeState> = found.iter().map(|c| c.state).collect();
    let wake = found
        .iter()
        .map(|c| instant_at(c.expires_at))
        .fold(deadline, Instant::min);
    drop(found);
    loop {
        let woken = state
            .wait_for(
                select_all(subs.iter_mut().map(|sub| Box::pin(sub.changed()))),
                wake,
            )
            .await;
        drop(woken);
        let fresh = Box::pin(read_all(&state, &again, &ids, &mut subs, deadline)).await?;
        let moved = fresh
            .iter()
            .zip(&seen)
            .any(|(c, before)| c.state != *before || c.state.is_terminal());
        if moved || Instant::now() >= wake || state.stopping() {
            return Ok(Json(statuses(&fresh)));
        }
    }
}

fn statuses(list: &[ChallengeRecord]) -> ChallengeStatuses {
    ChallengeStatuses {
        challenges: list.iter().map(challenge_status).collect(),
    }
}

/// Reads every challenge of `ids` in one store job, checking the caller's key again in it (it
/// may have been revoked while the request waited); while the database cannot be reached,
/// reads again until `deadline` (a wake-up ends a pause early), as a single long-poll does.
async fn read_all(
    state: &SharedState,
    key: &RpKey,
    ids: &[String],
    subs: &mut [Subscription<ChallengeNews>],
    deadline: Instant,
) -> Result<Vec<ChallengeRecord>, ApiError> {
    let mut pause = FIRST_RETRY;
    loop {
        let now = clock::now_ms();
        let (key, ids) = (key.clone(), ids.to_vec());
        let read = state
            .run_ahead(move |s| {
                let rp = authenticate(s, &key)?;
                Ok::<_, ApiError>(
                    ids.iter()
                        .map(|id| challenges::get_owned(s, &rp, id, now))
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .and_then(|outcomes| {
                let mut list = Vec::with_capacity(outcomes.len());
                for outcome in outcomes {
                    list.push(state.settle(outcome)?);
                }
                Ok(list)
            });
        match read {
            Err(e) if e.is_store_unavailable() && !state.stopping() => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
                let wake = deadline.min(Instant::now() + pause);
                let _ = state
                    .wait_for(
                        select_all(subs.iter_mut().map(|sub| Box::pin(sub.changed()))),
                        wake,
                    )
                    .await;
                pause = (pause * 2).min(MAX_RETRY);
            }
            other => return other,
        }
    }
}
