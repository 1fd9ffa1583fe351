//! Benchmarks of the `sled` backend at 10, 1,000 and 10,000 containers.
//!
//! `sled/N/*`: every operation opens the database, works, flushes if it
//! wrote, and closes it (what a CLI command pays); `open_only` does nothing
//! but open and close. `sled-held/N/*`: the same operations while the
//! database is kept open with `SledKv::hold` (a short batch).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_state::kv::{Batch, KvStore};
use rpod_state::StateOptions;
use rpod_state_sled::new_sled;

#[path = "../../state/benches/common.rs"]
mod common;

fn benches(c: &mut Criterion) {
    for n in [10u64, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let s = new_sled(&StateOptions::at(dir.path().join("bench.db"))).unwrap();
        {
            let _held = s.store().hold().unwrap();
            common::fill(&s, n);
        }
        let mut g = c.benchmark_group(format!("sled/{n}"));
        g.measurement_time(Duration::from_secs(2));
        g.bench_function("open_only", |b| {
            b.iter(|| s.store().transact(&mut |_| Ok(Batch::default())).unwrap())
        });
        g.finish();
        common::bench_state(c, "sled", &s, n, false);
        let held = s.store().hold().unwrap();
        common::bench_state(c, "sled-held", &s, n, false);
        drop(held);
    }
}

criterion_group!(group, benches);
criterion_main!(group);
