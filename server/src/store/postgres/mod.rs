//! The PostgreSQL store (issue 13): several stateless pushauthd replicas over one database.
//!
//! - `connect`: the connection settings (`[store] url`, `password_file`, `pool_size`) and
//!   [`connect_one`].

mod connect;

pub use self::connect::{
    connect_one, is_postgres_url, PgConfigError, PgConnection, PgSettings, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_SIZE,
};
