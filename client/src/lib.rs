//! pushauth-client (skeleton)
