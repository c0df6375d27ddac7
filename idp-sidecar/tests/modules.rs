//! Issue 10 item 5: no module of `idp-sidecar/src` imports a module that imports it back (`api`
//! and `ciba` used to import each other), read from the source.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on what it did not expect

#[test]
fn issue10_item5_no_module_cycle_in_the_sidecar() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = pushauth_testkit::module_graph(&src);
    assert!(graph.len() >= 15, "{graph:?}");
    assert!(graph["api"].contains("ciba"), "{graph:?}");
    assert_eq!(
        pushauth_testkit::module_cycles(&graph),
        vec![],
        "{graph:#?}"
    );
}
