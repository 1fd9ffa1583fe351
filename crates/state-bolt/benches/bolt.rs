//! Benchmarks of the `bolt` backend at 10, 1,000 and 10,000 containers, with
//! the `sled` backend at 1,000 and 10,000 side by side (same operations, from
//! `crates/state/benches/common.rs`), and reading every container of each
//! podman 4.3.1 fixture database. Every operation opens the file, works,
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
    let sizes: Vec<u64> = match std::env::var("RPOD_BENCH_SMALL") {
        Ok(_) => vec![10, 1_000],
        Err(_) => vec![10, 1_000, 10_000],
    };
    for &n in &sizes {
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
    for &n in sizes.iter().filter(|n| **n >= 1_000) {
        let dir = tempfile::tempdir().unwrap();
        let s = new_sled(&StateOptions::at(dir.path().join("sled_state.db"))).unwrap();
        common::fill(&s, n);
        common::bench_state(c, "sled", &s, n, false);
    }
    podman_fixtures(c);
}

/// Opening a podman database read-only and listing all its containers.
fn podman_fixtures(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/podman-4.3.1");
    let Ok(entries) = std::fs::read_dir(&root) else {
        eprintln!(
            "podman fixtures not found at {}: skipping that group",
            root.display()
        );
        return;
    };
    let mut g = c.benchmark_group("podman-4.3.1");
    g.measurement_time(Duration::from_secs(2));
    for e in entries.flatten() {
        let db = e.path().join("bolt_state.db");
        if !db.exists() {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("bolt_state.db");
        std::fs::copy(&db, &copy).unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        g.bench_function(format!("{name}/all_containers"), |b| {
            b.iter(|| {
                let s = new_bolt(&StateOptions::at(&copy)).unwrap();
                let all = rpod_state::ContainerStore::all_containers(&s).unwrap();
                assert!(!all.is_empty());
            })
        });
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
