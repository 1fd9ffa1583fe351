//! Benchmarks shared by every backend (included by each backend's bench).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use rpod_state::*;

/// A container id whose first 16 hex digits differ from every other's.
pub fn bench_id(i: u64) -> String {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    format!("{z:016x}").repeat(4)
}

/// A realistic small container config.
pub fn bench_cfg(i: u64) -> ContainerConfig {
    let mut c = ContainerConfig {
        id: bench_id(i),
        name: format!("ctr-{i}"),
        lock_id: i as u32,
        created_time: Timestamp::now(),
        rootfs: "/srv/rootfs".into(),
        spec: serde_json::json!({
            "ociVersion": "1.0.2-dev",
            "process": {"args": ["/bin/sh", "-c", "sleep 1000"], "cwd": "/", "env": ["PATH=/usr/bin:/bin", "TERM=xterm"]},
            "root": {"path": "rootfs"},
            "hostname": format!("ctr-{i}"),
        })
        .into(),
        runtime: "runc".into(),
        network_mode: "none".into(),
        stop_signal: 15,
        stop_timeout: 10,
        log_path: format!("/var/lib/rpod/containers/{i}/ctr.log"),
        ..Default::default()
    };
    c.labels.insert("bench".into(), "yes".into());
    c
}

/// Fills `s` with containers `0..n`.
pub fn fill(s: &dyn State, n: u64) {
    for i in 0..n {
        s.add_container(&bench_cfg(i), &ContainerState::configured())
            .expect("add");
    }
}

/// Runs the benchmark set on a state holding `n` containers.
pub fn bench_state(c: &mut Criterion, backend: &str, s: &dyn State, n: u64, fast_ops: bool) {
    let mut g = c.benchmark_group(format!("{backend}/{n}"));
    g.warm_up_time(Duration::from_millis(300));
    if fast_ops {
        g.measurement_time(Duration::from_secs(1));
    } else {
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(2));
    }
    let mut next = 1_000_000u64;
    g.bench_function(BenchmarkId::new("add", n), |b| {
        b.iter_custom(|iters| {
            let first = next;
            let start = Instant::now();
            for i in 0..iters {
                s.add_container(&bench_cfg(first + i), &ContainerState::configured())
                    .unwrap();
            }
            let took = start.elapsed();
            for i in 0..iters {
                s.remove_container(&bench_id(first + i)).unwrap();
            }
            next += iters;
            took
        })
    });
    g.bench_function(BenchmarkId::new("remove", n), |b| {
        b.iter_custom(|iters| {
            let first = next;
            for i in 0..iters {
                s.add_container(&bench_cfg(first + i), &ContainerState::configured())
                    .unwrap();
            }
            let start = Instant::now();
            for i in 0..iters {
                s.remove_container(&bench_id(first + i)).unwrap();
            }
            next += iters;
            start.elapsed()
        })
    });
    let name = format!("ctr-{}", n / 2);
    g.bench_function(BenchmarkId::new("lookup_name", n), |b| {
        b.iter(|| s.lookup_container(&name).unwrap())
    });
    let prefix = bench_id(n / 2)[..12].to_string();
    g.bench_function(BenchmarkId::new("lookup_prefix", n), |b| {
        b.iter(|| s.lookup_container(&prefix).unwrap())
    });
    let id = bench_id(n / 2);
    g.bench_function(BenchmarkId::new("has_container", n), |b| {
        b.iter(|| s.has_container(&id).unwrap())
    });
    let mut st = ContainerState::configured();
    g.bench_function(BenchmarkId::new("update_state", n), |b| {
        b.iter(|| {
            st.pid += 1;
            s.save_container_state(&id, &st).unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("list_all", n), |b| {
        b.iter(|| {
            let all = s.all_containers().unwrap();
            assert_eq!(all.len() as u64, n);
            all
        })
    });
    g.finish();
}
