//! pushauth-server (skeleton)
