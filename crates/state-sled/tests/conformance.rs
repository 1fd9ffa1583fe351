//! The conformance kit and the model test against the `sled` backend.

use rpod_state::conformance::Fresh;
use rpod_state::StateOptions;

fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = rpod_state_sled::open_sled(&StateOptions::at(dir.path().join("state.db")))
        .expect("open sled");
    Fresh::new(state, dir)
}

rpod_state::conformance_tests!(fresh);
rpod_state::model_test!(fresh);
