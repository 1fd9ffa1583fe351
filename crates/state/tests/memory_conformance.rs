//! The conformance kit against the `memory` backend, and a check that the
//! model-test driver catches a backend that differs from the reference.

use rpod_state::conformance::Fresh;

fn fresh() -> Fresh {
    Fresh::memory()
}

rpod_state::conformance_tests!(fresh);

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

/// A store that lists in reverse key order: a subtly wrong backend.
#[derive(Debug)]
struct Reversed(rpod_state::MemoryKv);

struct RevRead<'a>(&'a dyn rpod_state::kv::KvRead);

impl rpod_state::kv::KvRead for RevRead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, rpod_state::StateError> {
        self.0.get(key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<rpod_state::kv::Entries, rpod_state::StateError> {
        let mut v = self.0.scan(prefix)?;
        v.reverse();
        Ok(v)
    }
}

impl rpod_state::kv::KvStore for Reversed {
    fn backend(&self) -> &str {
        "memory"
    }
    fn path(&self) -> Option<&std::path::Path> {
        None
    }
    fn read_only(&self) -> bool {
        false
    }
    fn transact(
        &self,
        f: &mut dyn FnMut(
            &dyn rpod_state::kv::KvRead,
        ) -> Result<rpod_state::kv::Batch, rpod_state::StateError>,
    ) -> Result<(), rpod_state::StateError> {
        self.0.transact(&mut |r| f(&RevRead(r)))
    }
}

#[test]
fn model_driver_catches_a_divergent_backend() {
    let broken = || {
        Fresh::new(
            Box::new(rpod_state::kv::KvState::new(
                Reversed(rpod_state::MemoryKv::new(false)),
                "",
            )),
            (),
        )
    };
    let result = std::panic::catch_unwind(|| rpod_state::conformance::model::run(&broken, 64));
    assert!(
        result.is_err(),
        "the model test must fail for a backend that lists in the wrong order"
    );
    // and the same driver passes for the reference itself
    rpod_state::conformance::model::run(&fresh, 8);
}
