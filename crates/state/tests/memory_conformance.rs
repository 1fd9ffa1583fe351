//! The conformance kit and the model test against the `memory` backend.

use rpod_state::conformance::Fresh;

fn fresh() -> Fresh {
    Fresh::memory()
}

rpod_state::conformance_tests!(fresh);
rpod_state::model_test!(fresh);

#[test]
fn every_conformance_test_is_listed_once() {
    let mut names: Vec<&str> = rpod_state::conformance::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate names in the conformance list");
    assert!(n >= 120, "only {n} conformance tests");
}
