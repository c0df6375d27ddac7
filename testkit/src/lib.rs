//! pushauth's test kit: one way for every crate's integration tests to "start a pushauthd and
//! enroll a device".
//!
//! - [`TestServer`]: an in-process pushauthd ([`pushauth_server::RunningServer`]) on
//!   `127.0.0.1:0` with a temporary data directory (SQLite store), the admin token
//!   [`ADMIN_TOKEN`], and calls for what an administrator does over HTTP: relying parties
//!   ([`TestServer::add_rp`], [`TestServer::api_key`]), enrollment links
//!   ([`TestServer::enrollment`]) and devices ([`TestServer::enroll`]). Stopped when dropped.
//! - [`TestDevice`]: a device enrolled through the real enrollment API by the device library
//!   ([`pushauth_device::DeviceClient::enroll`]: key pair, proof of possession), with
//!   wait-for helpers and approve/deny.
//! - [`call`] and [`Resp`]: one raw HTTP call with its status, text and JSON, for tests that
//!   speak the API byte by byte; [`assert_error`] for the API's error bodies.
//! - [`dead_url`], [`hung_url`]: loopback addresses where nothing answers.
//! - [`PgCluster`]: a temporary PostgreSQL cluster (initdb/pg_ctl on a loopback port, as an
//!   unprivileged user), with start/stop/kill, a streaming standby and promotion.
//! - [`on_postgres`], [`test_database`], [`test_store_config`]: the store the tests run on,
//!   SQLite or (with `PUSHAUTH_TEST_STORE=postgresql`) PostgreSQL, a database per server.
//! - [`euid`]: the test process's effective uid (the owner file checks expect), without
//!   `unsafe` in the tests.
//!
//! ```
//! use pushauth_proto::ChallengeState;
//! use pushauth_testkit::TestServer;
//! use serde_json::json;
//!
//! let server = TestServer::start_with(|cfg| cfg.limits.max_open_per_user = 5);
//! let key = server.api_key();
//! let phone = server.enroll("alice", "phone");
//! let nonce = "A".repeat(43); // 32 zero bytes, base64url
//! let body = json!({"user": "alice", "context": {"service": "sshd"}, "rp_nonce": nonce});
//! let created = server.rp(&key, "POST", "/v1/challenges", Some(body));
//! assert_eq!(created.status, 201, "{}", created.text);
//! let (id, code) = (&created.json["id"], &created.json["code"]);
//! let status = phone.approve(id.as_str().unwrap(), code.as_str().unwrap());
//! assert_eq!(status.state, ChallengeState::Approved);
//! ```
//!
//! The kit holds no product rule: it never writes store rows, and every device and relying
//! party it makes goes through pushauthd's own API, so a test using it cannot pass where the
//! real enrollment would refuse. It is a dev-dependency only (`publish = false`); a failed
//! step panics with what failed, which fails the test that asked for it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod device;
mod files;
mod http;
mod modules;
mod net;
mod postgres;
mod process;
mod server;
mod store;

pub use device::{find_challenge, TestDevice};
pub use files::write_file;
pub use http::{agent, assert_error, call, call_with, Resp};
pub use modules::{module_cycles, module_graph};
pub use net::{dead_url, hung_url};
pub use postgres::{process_alive, PgCluster, PgOptions, PG_USER, REQUIRE_ENV};
pub use process::euid;
pub use server::{Enrollment, TestRp, TestServer, ADMIN_TOKEN};
pub use store::{on_postgres, test_database, test_store_config, STORE_ENV};
