//! Records of the device notices that are stored (every kind but `device_added`, which the
//! device bindings themselves record): what a user's devices should be told.

use pushauth_proto::Context;

use crate::clock::Millis;

/// One stored notice for a user's devices (`GET /v1/device/notices?kinds=all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    /// The user whose devices are told.
    pub user: String,
    /// One of the `pushauth_proto::wire::NOTICE_*` kinds.
    pub kind: String,
    /// When it happened.
    pub at: Millis,
    /// Address the event came from, if known.
    pub source: Option<String>,
    /// Who acted (`admin`, `cli`, `rp:<id>`, `device:<id>`), if known.
    pub via: Option<String>,
    /// Where it happened (service, host, rhost…), as the relying party said.
    pub context: Context,
    /// A number the kind defines (codes left, codes issued).
    pub count: Option<u32>,
}
