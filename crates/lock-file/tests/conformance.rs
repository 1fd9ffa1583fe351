//! The lock conformance suite against the file backend (real lock files in a
//! private temporary directory per test).

use std::path::Path;

use rpod_lock::conformance::Subject;
use rpod_lock::LockOptions;

fn options(scratch: &Path, num_locks: u32) -> LockOptions {
    LockOptions::new(num_locks, scratch.join("tmp"))
}

const SUBJECT: Subject = Subject {
    backend: "file",
    factory: rpod_lock_file::open_factory as rpod_lock::LockFactory,
    options,
    limited: false,
};

rpod_lock::lock_conformance_tests!(SUBJECT);
