//! Benchmarks of the `bolt` backend at 10 and 1,000 containers, with the
//! `sled` backend at 1,000 side by side (same operations, from
//! `crates/state/benches/common.rs`). Every operation opens the file, works,
//! commits (fdatasync) if it wrote, and closes it, so each figure includes
//! that cost; `open_only` is an operation that does nothing but open and close.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_state::kv::{Batch, KvStore};
use rpod_state::StateOptions;
use rpod_state_bolt::new_bolt;
use rpod_state_sled::new_sled;

#[path = "../../state/benches/common.rs"]
mod common;

fn benches(c: &mut Criterion) {
    for n in [10u64, 1_000] {
        let dir = tempfile::tempdir().unwrap();
        let s = new_bolt(&StateOptions::at(dir.path().join("bolt_state.db"))).unwrap();
        common::fill(&s, n);
        let mut g = c.benchmark_group(format!("bolt/{n}"));
        g.measurement_time(Duration::from_secs(2));
        g.bench_function("open_only", |b| {
            b.iter(|| s.store().transact(&mut |_| Ok(Batch::default())).unwrap())
        });
        g.finish();
        common::bench_state(c, "bolt", &s, n, false);
    }
    let dir = tempfile::tempdir().unwrap();
    let s = new_sled(&StateOptions::at(dir.path().join("sled_state.db"))).unwrap();
    common::fill(&s, 1_000);
    common::bench_state(c, "sled", &s, 1_000, false);
}

criterion_group!(group, benches);
criterion_main!(group);
