//! The PostgreSQL store (issue 13): several stateless pushauthd replicas over one database.
//!
//! - `connect`: the connection settings (`[store] url`, `password_file`, `pool_size`) and
//!   [`connect_one`];
//! - `db`: the pool, the store's own runtime, and [`Db`](db::Db), the two ways operations
//!   reach the database (a transaction of their own, or the one of an atomic unit);
//! - `schema`: migrations (version numbers shared with SQLite); `error`: the edge to
//!   [`StoreError`](crate::store::StoreError); `rows`: row mapping; `notify`: the NOTIFY
//!   contract with the replicas' listeners; `replicas`: which listeners there are, so that a
//!   replica alone skips the NOTIFYs of a login;
//! - `copy`: `pushauthd store copy` from SQLite;
//! - `kept` and `watched`: what a replica keeps in memory (rows that never change; relying
//!   parties while its listener hears of their changes);
//! - one file per table group, as in `sqlite/`; `store` wires them into the trait.
//!
//! Rules that must hold across replicas are kept by the database: the user's row is locked
//! (`SELECT … FOR NO KEY UPDATE`, which leaves foreign-key checks free) by every operation
//! that counts or changes the user's limits, by every answer and by a device's revocation
//! (so neither is kept after the other), a
//! challenge's row by every transition (then a compare-and-set on its state), nonces by their
//! primary key, sweeping and pruning by a transaction-level advisory lock that one replica
//! holds at a time, and the counts of `counts` (offline batches and reports, push
//! subscription changes) by one `INSERT … ON CONFLICT` statement each.

mod audit;
mod backup_codes;
mod challenges;
mod combine;
mod conn;
mod connect;
mod copy;
mod counts;
mod db;
mod devices;
mod enrollments;
mod error;
mod exclusive;
mod grace;
mod kept;
mod limits;
mod notices;
mod notify;
mod offline;
mod push_subscriptions;
mod relying_parties;
mod replicas;
mod retention;
mod rows;
mod schema;
mod site_keys;
mod store;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_group;
mod timeline;
#[cfg(test)]
mod upgrade_tests;
mod watched;

pub use self::connect::{
    connect_one, is_postgres_url, PgConfigError, PgConnection, PgSettings, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_SIZE,
};
pub use self::copy::{copy_from_sqlite, Copied};
pub use self::db::{PgStore, ATOMIC_LOCK};
pub use self::error::CREDENTIALS_ADVICE;
pub use self::notify::{OwnBackends, CHALLENGE_CHANNEL, DEVICE_CHANNEL};
pub use self::replicas::{
    register, still_under_way, under_way, ReplicaId, OLDER_RELEASES_FOR, REGISTER_TIMEOUT,
};
pub use self::schema::SCHEMA_VERSION;
pub use self::timeline::refuses_stale_primary;
pub use self::watched::{ListenerParts, RelyingPartyCache, KEPT_FOR, RELYING_PARTY_CHANNEL};
