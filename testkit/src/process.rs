//! The test process's own identity, without `unsafe` in the tests.

/// The effective uid of the test process: the owner the product's file checks expect of the
/// files a test writes.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
