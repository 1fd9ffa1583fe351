//! The conformance kit and the model test against the `bolt` backend.

use rpod_state::conformance::Fresh;
use rpod_state::StateOptions;

fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = rpod_state_bolt::open_bolt(&StateOptions::at(dir.path().join("bolt_state.db")))
        .expect("open bolt");
    Fresh::new(state, dir)
}

rpod_state::conformance_tests!(fresh);
rpod_state::model_test!(fresh);
