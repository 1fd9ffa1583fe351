//! Benchmarks of the `memory` backend at 10, 1,000 and 10,000 containers.

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_state::{open_memory, StateOptions};

mod common;

fn benches(c: &mut Criterion) {
    for n in [10u64, 1_000, 10_000] {
        let s = open_memory(&StateOptions::at("/nonexistent/bench")).unwrap();
        common::fill(&*s, n);
        common::bench_state(c, "memory", &*s, n, true);
    }
}

criterion_group!(group, benches);
criterion_main!(group);
