//! How often a device may change its push subscription.
//!
//! Why: every change is written to the store with an audit row, and the store has a size bound
//! above which new challenges are refused for everyone (`[retention] max_db_mb`). Without a
//! bound, one enrolled device re-registering in a loop could fill the store and so stop every
//! user's logins. Browsers change a subscription rarely (a new one after the old expires or
//! the app is reinstalled), so a few changes a day per device is generous. The changes are
//! counted in the store ([`crate::store::CountStore::count_push_change`]), so the bound holds
//! across replicas and restarts; [`crate::service::subscriptions::set`] applies it.

use crate::clock::Millis;

/// Changes one device may make per [`WINDOW_MS`].
pub const MAX_CHANGES: u64 = 24;
/// The window changes are counted in: a day from the device's first change in it.
pub const WINDOW_MS: Millis = 86_400_000;
