//! pushauth-device (skeleton)
