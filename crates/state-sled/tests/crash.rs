//! The state crate's crash test (SIGKILL at random moments, many times)
//! against the sled backend.

use std::path::Path;

use rpod_state::{State, StateOptions};

fn open(path: &Path) -> Box<dyn State> {
    rpod_state_sled::open_sled(&StateOptions::at(path))
        .unwrap_or_else(|e| panic!("the sled database must open after a kill: {e}"))
}

fn main() {
    rpod_state::conformance::crash::main(open, |_| {});
}
