//! Long-poll wakeups: a watch channel per challenge and per device, created while someone
//! waits and dropped when the last waiter leaves. Waiters subscribe before reading the store, so
//! a change between the read and the wait is never missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

type Channels = Mutex<HashMap<String, watch::Sender<()>>>;

fn lock(map: &Channels) -> MutexGuard<'_, HashMap<String, watch::Sender<()>>> {
    map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wakeup channels, keyed by challenge id and by device id.
#[derive(Debug, Default)]
pub struct Waiters {
    challenges: Arc<Channels>,
    devices: Arc<Channels>,
}

/// One waiter's subscription; leaving removes the channel when nobody else listens.
#[derive(Debug)]
pub struct Subscription {
    map: Arc<Channels>,
    key: String,
    rx: Option<watch::Receiver<()>>,
}

impl Subscription {
    /// Resolves when the subject changed since subscribing (or since the last `changed`).
    pub async fn changed(&mut self) {
        match &mut self.rx {
            Some(rx) => {
                if rx.changed().await.is_err() {
                    // The sender is never dropped while a receiver exists; wait forever if so.
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Subscription {
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

fn subscribe(map: &Arc<Channels>, key: &str) -> Subscription {
    let rx = {
        let mut guard = lock(map);
        let tx = guard
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(()).0);
        tx.subscribe()
    };
    Subscription {
        map: Arc::clone(map),
        key: key.to_owned(),
        rx: Some(rx),
    }
}

fn notify(map: &Channels, key: &str) {
    if let Some(tx) = lock(map).get(key) {
        tx.send_replace(());
    }
}

impl Waiters {
    pub fn watch_challenge(&self, id: &str) -> Subscription {
        subscribe(&self.challenges, id)
    }

    pub fn watch_device(&self, id: &str) -> Subscription {
        subscribe(&self.devices, id)
    }

    /// Wakes everyone waiting on a challenge and on the devices it was sent to.
    pub fn challenge_changed(&self, id: &str, devices: &[String]) {
        notify(&self.challenges, id);
        self.devices_changed(devices);
    }

    /// Wakes the long-polls of these devices.
    pub fn devices_changed(&self, devices: &[String]) {
        for device in devices {
            notify(&self.devices, device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_and_cleans_up() {
        let waiters = Waiters::default();
        let mut sub = waiters.watch_challenge("c1");
        waiters.challenge_changed("c1", &["d1".to_owned()]);
        tokio::time::timeout(std::time::Duration::from_secs(1), sub.changed())
            .await
            .unwrap();
        drop(sub);
        assert!(lock(&waiters.challenges).is_empty());
    }
}
