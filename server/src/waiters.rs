//! Long-poll wakeups: a watch channel per challenge and per device, created while someone
//! waits and dropped when the last waiter leaves. Waiters subscribe before reading the store, so
//! a change between the read and the wait is never missed. A challenge's channel carries the
//! committed record of a change made on this replica, so its long-polls can answer without
//! reading the store once more: a terminal record never changes again (and no record handed
//! over later replaces it); an acknowledgement's is what a read made then would have given. Every wake-up of a challenge's
//! waiters also forgets the view [`CreatedHere`] keeps of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::created::CreatedHere;
use crate::shown::ShownHere;
use crate::store::ChallengeRecord;

/// What a challenge's waiters are told: the committed record of a change made here (a terminal
/// one is final; an acknowledgement is what a read made then would give), or `None` ("read it
/// again").
pub type ChallengeNews = Option<Arc<ChallengeRecord>>;

type Channels<T> = Mutex<HashMap<String, watch::Sender<T>>>;

fn lock<T>(map: &Channels<T>) -> MutexGuard<'_, HashMap<String, watch::Sender<T>>> {
    map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wakeup channels, keyed by challenge id and by device id. Clones share the channels (the
/// cross-replica listener, [`crate::wake`], holds one).
#[derive(Debug, Default, Clone)]
pub struct Waiters {
    challenges: Arc<Channels<ChallengeNews>>,
    devices: Arc<Channels<()>>,
    created: Arc<CreatedHere>,
    shown: Arc<ShownHere>,
}

/// One waiter's subscription; leaving removes the channel when nobody else listens.
#[derive(Debug)]
pub struct Subscription<T> {
    map: Arc<Channels<T>>,
    key: String,
    rx: Option<watch::Receiver<T>>,
}

impl<T: Clone> Subscription<T> {
    /// Resolves when the subject changed since subscribing (or since the last `changed`), with
    /// what the change sent.
    pub async fn changed(&mut self) -> T {
        match &mut self.rx {
            Some(rx) => {
                if rx.changed().await.is_err() {
                    // The sender is never dropped while a receiver exists; wait forever if so.
                    std::future::pending::<()>().await;
                }
                rx.borrow_and_update().clone()
            }
            None => std::future::pending().await,
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut map = lock(&self.map);
        if map
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            map.remove(&self.key);
        }
    }
}

fn subscribe<T: Default>(map: &Arc<Channels<T>>, key: &str) -> Subscription<T> {
    let rx = {
        let mut guard = lock(map);
        let tx = guard
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(T::default()).0);
        tx.subscribe()
    };
    Subscription {
        map: Arc::clone(map),
        key: key.to_owned(),
        rx: Some(rx),
    }
}

/// Whether `news` is a terminal record, which never changes.
fn is_final(news: &ChallengeNews) -> bool {
    news.as_ref().is_some_and(|c| c.state.is_terminal())
}

/// Tells a challenge's waiters to read it again, unless they hold its terminal record: that
/// never changes, and a replica hears its own notifications after it handed the record over
/// (replacing it cost every such wait one more read).
fn read_again(tx: &watch::Sender<ChallengeNews>) {
    tx.send_if_modified(|news| {
        if is_final(news) {
            return false;
        }
        *news = None;
        true
    });
}

fn notify<T>(map: &Channels<T>, key: &str, news: impl FnOnce() -> T) {
    if let Some(tx) = lock(map).get(key) {
        tx.send_replace(news());
    }
}

impl Waiters {
    /// Subscribes to changes of challenge `id` (a change made here comes with its record).
    pub fn watch_challenge(&self, id: &str) -> Subscription<ChallengeNews> {
        subscribe(&self.challenges, id)
    }

    /// Subscribes to news for device `id` (a challenge for it was created or changed).
    pub fn watch_device(&self, id: &str) -> Subscription<()> {
        subscribe(&self.devices, id)
    }

    /// The challenges this replica created that nothing changed since ([`CreatedHere`]).
    pub fn created_here(&self) -> &CreatedHere {
        &self.created
    }

    /// The challenges this replica listed to one of their devices ([`ShownHere`]).
    pub fn shown_here(&self) -> &ShownHere {
        &self.shown
    }

    /// Wakes everyone waiting on a challenge and on the devices it was sent to.
    pub fn challenge_changed(&self, id: &str, devices: &[String]) {
        self.created.forget(id);
        notify(&self.challenges, id, || None);
        self.devices_changed(devices);
    }

    /// Like [`Waiters::challenge_changed`], handing the record to the challenge's waiters (a
    /// terminal record they hold stays: see [`ChallengeNews`]). Call only with a record read
    /// after the change was committed.
    pub fn challenge_updated(&self, challenge: &ChallengeRecord) {
        self.created.forget(&challenge.id);
        if challenge.state.is_terminal() {
            self.shown.forget(&challenge.id);
        }
        if let Some(tx) = lock(&self.challenges).get(&challenge.id) {
            tx.send_if_modified(|news| {
                // Two changes' records may be handed over in either order: once the terminal
                // one is there, an earlier change's record is stale.
                if is_final(news) {
                    return false;
                }
                *news = Some(Arc::new(challenge.clone()));
                true
            });
        }
        self.devices_changed(&challenge.devices);
    }

    /// Wakes waiters on challenge `id` to read it again (a change made by another replica,
    /// told by a database notification: it comes without the record).
    pub fn challenge_read_again(&self, id: &str) {
        self.created.forget(id);
        if let Some(tx) = lock(&self.challenges).get(id) {
            read_again(tx);
        }
    }

    /// Whether anyone waits on challenge `id` without its terminal record yet.
    pub fn challenge_awaits_record(&self, id: &str) -> bool {
        lock(&self.challenges)
            .get(id)
            .is_some_and(|tx| !is_final(&tx.borrow()))
    }

    /// Wakes every waiter to read again: after the cross-replica listener was disconnected,
    /// any change may have been missed.
    pub fn wake_all(&self) {
        self.created.forget_all();
        for tx in lock(&self.challenges).values() {
            read_again(tx);
        }
        for tx in lock(&self.devices).values() {
            tx.send_replace(());
        }
    }

    /// Wakes the long-polls of these devices.
    pub fn devices_changed(&self, devices: &[String]) {
        for device in devices {
            notify(&self.devices, device, || ());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use pushauth_proto::{ChallengeState, Context};

    fn record(state: ChallengeState) -> ChallengeRecord {
        ChallengeRecord {
            id: "c1".into(),
            user: "alice".into(),
            rp_id: "rp".into(),
            state,
            context: Context::new(),
            context_digest: [0; 32],
            rp_nonce: vec![1; 32],
            code: None,
            devices: vec!["d1".into()],
            created_at: 0,
            expires_at: 60_000,
            device_id: None,
            decision: None,
            reason: None,
            typed_code: None,
            responded_at: None,
            signature: None,
        }
    }

    /// Session 19: a change made here that ends a challenge ends what its listing lets go
    /// ahead (`crate::shown`); one that leaves it open (an acknowledgement) does not.
    #[test]
    fn a_terminal_change_ends_a_listed_challenge_s_requests_ahead() {
        let waiters = Waiters::default();
        waiters.shown_here().shown("c1", "d1", 60_000, 1_000);
        waiters.challenge_updated(&record(ChallengeState::Acknowledged));
        assert!(waiters.shown_here().take_ahead("c1", "d1", 1_000));
        waiters.challenge_updated(&record(ChallengeState::Approved));
        assert!(!waiters.shown_here().take_ahead("c1", "d1", 1_000));
    }

    #[tokio::test]
    async fn wakes_and_cleans_up() {
        let waiters = Waiters::default();
        let mut sub = waiters.watch_challenge("c1");
        let mut device = waiters.watch_device("d1");
        waiters.challenge_changed("c1", &["d1".to_owned()]);
        let news = tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        assert!(news.is_none());
        tokio::time::timeout(Duration::from_secs(1), device.changed())
            .await
            .unwrap();
        drop(sub);
        drop(device);
        assert!(lock(&waiters.challenges).is_empty());
        assert!(lock(&waiters.devices).is_empty());
    }

    #[tokio::test]
    async fn wake_all_wakes_every_challenge_and_device_waiter() {
        let waiters = Waiters::default();
        let shared = waiters.clone();
        let mut c1 = waiters.watch_challenge("c1");
        let mut c2 = waiters.watch_challenge("c2");
        let mut d1 = waiters.watch_device("d1");
        shared.wake_all();
        for sub in [&mut c1, &mut c2] {
            let news = tokio::time::timeout(Duration::from_secs(1), sub.changed())
                .await
                .unwrap();
            assert!(news.is_none(), "a wake-all never carries a record");
        }
        tokio::time::timeout(Duration::from_secs(1), d1.changed())
            .await
            .unwrap();
        shared.challenge_read_again("c1");
        tokio::time::timeout(Duration::from_secs(1), c1.changed())
            .await
            .unwrap();
        // c2 was not named: it stays asleep.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), c2.changed())
                .await
                .is_err()
        );
    }

    /// Session 11: a replica hears its own notifications. The NOTIFY of an answer it made
    /// arrived after the answer had handed its waiters the terminal record, and replaced it
    /// with "read again": one more round trip on the answer→return path, for nothing (a
    /// terminal record never changes).
    #[tokio::test]
    async fn a_later_read_again_keeps_a_terminal_record() {
        let waiters = Waiters::default();
        let mut sub = waiters.watch_challenge("c1");
        waiters.challenge_updated(&record(ChallengeState::Approved));
        waiters.challenge_read_again("c1");
        waiters.wake_all();
        let news = tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        assert_eq!(news.map(|c| c.state), Some(ChallengeState::Approved));
        // Not terminal: read again as before.
        let mut other = waiters.watch_challenge("c2");
        waiters.challenge_read_again("c2");
        let news = tokio::time::timeout(Duration::from_secs(1), other.changed())
            .await
            .unwrap();
        assert!(news.is_none());
    }

    /// Session 23: an acknowledgement's record is handed over too (a long-poll answers with it
    /// without a read); a read-again notice replaces it, and the terminal record replaces it
    /// and is not replaced by a stale one handed over late.
    #[tokio::test]
    async fn records_are_handed_over_and_a_terminal_one_stays() {
        let waiters = Waiters::default();
        let mut sub = waiters.watch_challenge("c1");
        waiters.challenge_updated(&record(ChallengeState::Acknowledged));
        let news = tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        assert_eq!(news.map(|c| c.state), Some(ChallengeState::Acknowledged));
        assert!(waiters.challenge_awaits_record("c1"));
        waiters.challenge_read_again("c1");
        let news = tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        assert!(news.is_none(), "another replica's change must be read");
        waiters.challenge_updated(&record(ChallengeState::Approved));
        let news = tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        assert_eq!(news.map(|c| c.state), Some(ChallengeState::Approved));
        assert!(!waiters.challenge_awaits_record("c1"));
        // The acknowledgement's record handed over after the approval's: stale, not kept.
        waiters.challenge_updated(&record(ChallengeState::Acknowledged));
        waiters.challenge_read_again("c1");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), sub.changed())
                .await
                .is_err(),
            "nothing replaces a terminal record"
        );
    }
}
