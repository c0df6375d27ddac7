//! Cross-replica wake-ups (issue 13): with several pushauthd replicas over one PostgreSQL
//! database, a device that answers through replica B must wake the relying party's long-poll
//! waiting on replica A within milliseconds.
//!
//! The PostgreSQL store runs `pg_notify('pushauth_challenge', <challenge id>)` in the
//! transaction of every challenge state change and `pg_notify('pushauth_device', <device id>)`
//! for every change a device's long-poll returns; PostgreSQL delivers them at commit. [`listen`]
//! holds one dedicated connection ([`connect_one`], not from the pool) with `LISTEN` on both
//! channels and turns each notification into a local wake-up of [`Waiters`]: a challenge is
//! read again, a device's long-poll returns.
//!
//! A notice sent by one of this replica's own connections ([`OwnBackends`]) tells of a change
//! it made itself, whose handler hands the waiters the committed record right after the commit
//! (`AppState::settle`); reading it again as well cost a login one more read about two times
//! in three (the notice often arrives first). Such a notice wakes the waiters only if the
//! record has not come [`OWN_CHANGE_GRACE`] later (its caller went away before handing it over,
//! or the change hands over no record, as a revocation's): a read delayed by 50 ms at most,
//! never skipped. A process id that another replica's connection reuses delays that replica's
//! notices here the same way. An acknowledgement's record does not count as the record here (a
//! later change may outdate it): its own notice, when it sends one (only while another
//! replica listens, as for an answer), makes the waiters read 50 ms later.
//!
//! It also listens on [`RELYING_PARTY_CHANNEL`] and keeps the store's [`RelyingPartyCache`]
//! true: an entry is forgotten when its relying party changes, and nothing is kept while the
//! listener is not listening.
//!
//! Before it listens, the listener registers its replica (`store/postgres/replicas.rs`): a
//! challenge's creation and answer notify only while another replica's listener is registered
//! and connected, since a replica's own waiters hear of its own changes from its handlers.
//! Each time some of the writes under way at its registration have ended, every waiter reads
//! again.
//!
//! A notification sent while the listener is disconnected is lost, so after every (re)connect
//! every local waiter is woken to read again, and the relying-party cache and the views of
//! challenges created here ([`crate::created`]) start empty: a change is never missed, only
//! read twice. A
//! connection that stops answering (a host gone without a reset) is found by a probe every
//! [`PROBE_EVERY`]; reconnects back off from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`]. Every
//! reconnect is counted (`pushauth_store_listener_reconnects`) and logged with the driver's
//! error, which names hosts, never the password.

use std::future::poll_fn;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

use crate::metrics::WakeMetrics;
use crate::store::postgres::{
    connect_one, register, still_under_way, under_way, ListenerParts, OwnBackends, PgSettings,
    RelyingPartyCache, CHALLENGE_CHANNEL, DEVICE_CHANNEL, REGISTER_TIMEOUT, RELYING_PARTY_CHANNEL,
};
use crate::waiters::Waiters;

/// First pause before connecting again after the listener lost its connection.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between connection attempts (doubling from [`FIRST_BACKOFF`]).
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the listening connection is probed with a query.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long a probe may take before the connection counts as dead.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// First pause before the listener looks whether the writes under way at its registration
/// have ended (`replicas.rs`); doubling up to [`MAX_LOOK`].
pub const FIRST_LOOK: Duration = Duration::from_millis(5);
/// Longest such pause.
pub const MAX_LOOK: Duration = Duration::from_millis(500);
/// How long the waiters on a challenge this replica changed itself are given to receive the
/// committed record from the handler that made the change, before its notice makes them read
/// the challenge again (see the module notes): well above the few milliseconds between a
/// commit and the hand-over at full load, and only waited out when no terminal record comes.
pub const OWN_CHANGE_GRACE: Duration = Duration::from_millis(50);

/// Listens for the store's notifications and wakes `waiters`, reconnecting for ever, until
/// `shutdown` turns true. Spawn it once per server when the store is PostgreSQL.
pub async fn listen(
    settings: PgSettings,
    waiters: Waiters,
    metrics: WakeMetrics,
    parts: ListenerParts,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let session = listen_once(&settings, &waiters, &metrics, &parts, connected_before);
        let ended = tokio::select! {
            ended = session => ended,
            _ = shutdown.changed() => return,
        };
        metrics.connected.set(0);
        match ended {
            Ended::AfterListening(why) => {
                connected_before = true;
                backoff = FIRST_BACKOFF;
                tracing::warn!(error = %why, "store listener disconnected; reconnecting");
            }
            Ended::BeforeListening(why) => {
                tracing::warn!(
                    error = %why,
                    retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "store listener cannot connect"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// How one listening session ended, with the reason for the log.
enum Ended {
    /// It never got to `LISTEN` (no primary, refused, a standby that cannot LISTEN).
    BeforeListening(String),
    /// It listened, then the connection closed, failed or stopped answering.
    AfterListening(String),
}

/// One connection: connect, `LISTEN`, wake everyone (anything may have changed while nobody
/// listened), then forward notifications until the connection ends.
async fn listen_once(
    settings: &PgSettings,
    waiters: &Waiters,
    metrics: &WakeMetrics,
    parts: &ListenerParts,
    reconnect: bool,
) -> Ended {
    let relying_parties = &parts.relying_parties;
    let (client, mut connection) = match connect_one(settings).await {
        Ok(pair) => pair,
        Err(e) => return Ended::BeforeListening(e.to_string()),
    };
    // The connection makes progress only while polled: a task of its own drives it and hands
    // the notifications over. It ends when the connection does; the channel closing says so.
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<AsyncMessage, String>>();
    let driver = tokio::spawn(async move {
        loop {
            let why = match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(message)) => {
                    if tx.send(Ok(message)).is_err() {
                        return;
                    }
                    continue;
                }
                Some(Err(e)) => e.to_string(),
                None => "the server closed the connection".to_owned(),
            };
            let _ = tx.send(Err(why));
            return;
        }
    });
    let _abort = AbortOnDrop(driver.abort_handle());
    // Registered, listening, and the writes that might not have seen the registration noted
    // (`replicas.rs`): every change of another replica from here on is heard, or read once
    // those writes have ended. They are noted before `wake_all` below: one that ended before
    // it is read by the waiters it wakes.
    let listening = tokio::time::timeout(REGISTER_TIMEOUT, async {
        register(&client, &parts.replica)
            .await
            .map_err(|e| e.to_string())?;
        client
            .batch_execute(&format!(
                "LISTEN {CHALLENGE_CHANNEL}; LISTEN {DEVICE_CHANNEL}; LISTEN {RELYING_PARTY_CHANNEL}"
            ))
            .await
            .map_err(|e| e.to_string())?;
        under_way(&client).await.map_err(|e| e.to_string())
    })
    .await;
    let mut under_way = match listening {
        Ok(Ok(holders)) => holders,
        Ok(Err(e)) => return Ended::BeforeListening(e),
        Err(_) => {
            return Ended::BeforeListening("registering and LISTEN got no answer in time".into())
        }
    };
    // From here until the session ends, whichever way (the future dropped at shutdown too),
    // every change to a relying party is heard.
    relying_parties.listening();
    waiters.created_here().hearing(true);
    let _heard = NotListeningOnDrop(relying_parties, waiters);
    metrics.connected.set(1);
    if reconnect {
        metrics.reconnects.inc();
        tracing::info!("store listener connected again; every waiter reads again");
    }
    waiters.wake_all();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe.tick().await;
    // One pause, not restarted by every notice (a busy site's stream of notices would put the
    // look off for ever; review of session 15).
    let mut look_again = FIRST_LOOK;
    let look = tokio::time::sleep(look_again);
    tokio::pin!(look);
    loop {
        tokio::select! {
            // The writes under way at the registration: each time some of them have ended,
            // a change one of them made without a notice is read.
            () = &mut look, if !under_way.is_empty() => {
                match tokio::time::timeout(PROBE_TIMEOUT, still_under_way(&client, &under_way)).await {
                    Ok(Ok(left)) => {
                        if left.len() < under_way.len() {
                            waiters.wake_all();
                        } else {
                            look_again = (look_again * 2).min(MAX_LOOK);
                        }
                        under_way = left;
                        look.as_mut().reset(tokio::time::Instant::now() + look_again);
                    }
                    Ok(Err(e)) => return Ended::AfterListening(e.to_string()),
                    Err(_) => return Ended::AfterListening("the connection stopped answering".into()),
                }
            }
            message = rx.recv() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    metrics.notifications.inc();
                    match n.channel() {
                        CHALLENGE_CHANNEL => challenge_changed(
                            waiters,
                            &parts.own_backends,
                            n.process_id(),
                            n.payload(),
                        ),
                        DEVICE_CHANNEL => waiters.devices_changed(&[n.payload().to_owned()]),
                        RELYING_PARTY_CHANNEL => relying_parties.changed(n.payload()),
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(why)) => return Ended::AfterListening(why),
                None => return Ended::AfterListening("the connection ended".into()),
            },
            _ = probe.tick() => {
                match tokio::time::timeout(PROBE_TIMEOUT, client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Ended::AfterListening(e.to_string()),
                    Err(_) => return Ended::AfterListening("the connection stopped answering".into()),
                }
            }
        }
    }
}

/// A notice that challenge `id` changed, sent by server process `pid`: its waiters read it
/// again, at once for another replica's change, after [`OWN_CHANGE_GRACE`] for this one's if
/// its record has not been handed to them by then (see the module notes).
fn challenge_changed(waiters: &Waiters, own: &OwnBackends, pid: i32, id: &str) {
    // Whoever made it, a changed challenge has no view to start a long-poll from.
    waiters.created_here().forget(id);
    if !own.contains(pid) {
        waiters.challenge_read_again(id);
        return;
    }
    if !waiters.challenge_awaits_record(id) {
        return;
    }
    // One short task per committed change of a challenge someone here waits on: only a
    // caller's committed change sends a notice, never an unauthenticated request.
    let (waiters, id) = (waiters.clone(), id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(OWN_CHANGE_GRACE).await;
        waiters.challenge_read_again(&id);
    });
}

/// Tells the relying-party cache and the views of challenges created here ([`crate::created`]) that
/// nobody listens once the session ends, whichever way.
struct NotListeningOnDrop<'a>(&'a RelyingPartyCache, &'a Waiters);

impl Drop for NotListeningOnDrop<'_> {
    fn drop(&mut self) {
        self.0.not_listening();
        self.1.created_here().hearing(false);
    }
}

/// Stops the connection's driver task when the session ends, whichever way.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
