//! The HTTP layer: the route table and middleware ([`routes`]), extractors ([`extract`]), the
//! one error type ([`ApiError`]), wire views of records ([`views`]), and the handlers, one
//! module per caller (relying parties, devices, admins, operations, the web app) and Web Push. Handlers extract, call
//! the service layer ([`crate::service`]) in one store job, and convert.

pub mod admin;
pub mod backup;
pub mod device;
pub mod device_self;
pub mod error;
pub mod extract;
pub mod grace;
pub mod offline;
pub mod ops;
pub mod push;
pub mod routes;
pub mod rp;
pub mod rp_wait;
pub mod views;
pub mod web;

pub use error::ApiError;
pub use extract::{parse_json, AdminCaller, JsonBody, Params, PeerAddr, RawBody};
pub use routes::{route_list, router, routes, Route};
