//! The state crate's crash test (SIGKILL at random moments, many times)
//! against the bolt backend; afterwards the file must pass real bbolt's check.

use std::path::Path;

use rpod_state::{State, StateOptions};

mod common;

fn open(path: &Path) -> Box<dyn State> {
    rpod_state_bolt::open_bolt(&StateOptions::at(path))
        .unwrap_or_else(|e| panic!("the bolt database must open after a kill: {e}"))
}

fn main() {
    rpod_state::conformance::crash::main(open, |path| {
        common::assert_boltcheck_ok(path);
    });
}
