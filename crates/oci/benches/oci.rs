//! Benchmarks: spec generation, log parsing, and (as root with runc + conmon)
//! a full container lifecycle through conmon, to compare with podman's floor
//! (conmon + runc create/start/exit/delete ≈ 81 ms on the reference VM).

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_oci::exit::{wait_for_exit, ExitOutcome};
use rpod_oci::logs::{read_all, LogOptions};
use rpod_oci::spec::{self, SpecOptions};
use rpod_oci::{Conmon, ConmonMonitor, CreateRequest, Monitor, OciRuntime};

fn id(n: u64) -> String {
    format!(
        "{:064x}",
        0xbe_0000_0000u64 + n + std::process::id() as u64 * 1_000_000
    )
}

fn bench_spec(c: &mut Criterion) {
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    rpod_oci::rootfs::build_busybox_rootfs(&rootfs, None).expect("busybox rootfs");
    let opts = SpecOptions {
        id: id(0),
        rootfs,
        args: vec!["sh".into(), "-c".into(), "true".into()],
        cgroups_path: "/rpod-bench/x".into(),
        ..SpecOptions::default()
    };
    let bundle = t.path().join("bundle");
    c.bench_function("spec_generate_default_seccomp", |b| {
        b.iter(|| spec::generate(&opts).unwrap())
    });
    c.bench_function("spec_write_bundle", |b| {
        b.iter(|| spec::write_bundle(&opts, &bundle).unwrap())
    });
}

fn bench_logs(c: &mut Criterion) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("ctr.log");
    let mut s = String::new();
    for i in 0..10_000 {
        s.push_str(&format!(
            "2026-12-04T19:38:10.{i:09}+00:00 {} F line number {i} with some text\n",
            if i % 3 == 0 { "stderr" } else { "stdout" }
        ));
    }
    std::fs::write(&p, s).unwrap();
    c.bench_function("logs_read_10k_lines", |b| {
        b.iter(|| read_all(&p, &LogOptions::default()).unwrap())
    });
    c.bench_function("logs_tail_10_of_10k", |b| {
        b.iter(|| {
            read_all(
                &p,
                &LogOptions {
                    tail: Some(10),
                    ..Default::default()
                },
            )
            .unwrap()
        })
    });
}

fn bench_container(c: &mut Criterion) {
    let runc = Path::new("/usr/sbin/runc");
    let conmon = Path::new("/usr/bin/conmon");
    if !runc.is_file() || !conmon.is_file() || !nix::unistd::geteuid().is_root() {
        eprintln!("container benchmark not run: needs root, runc and conmon");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    rpod_oci::rootfs::build_busybox_rootfs(&rootfs, None).unwrap();
    let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    cfg.runroot = t.path().join("run");
    let runtime = OciRuntime::find(&cfg, Some("/usr/sbin/runc")).unwrap();
    let monitor = ConmonMonitor::new(Conmon::find(&cfg, Some(conmon)).unwrap());
    let parent = format!("/rpod-bench-{}", std::process::id());
    let exits = t.path().join("exits");
    let mut n = 0u64;
    let mut g = c.benchmark_group("container");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("conmon_create_start_exit_delete_true", |b| {
        b.iter(|| {
            n += 1;
            let cid = id(n);
            let bundle = t.path().join("b").join(&cid[..16]);
            let opts = SpecOptions {
                id: cid.clone(),
                rootfs: rootfs.clone(),
                args: vec!["/bin/true".into()],
                cgroups_path: format!("{parent}/{cid}"),
                ..SpecOptions::default()
            };
            spec::write_bundle(&opts, &bundle).unwrap();
            let created = monitor
                .create(&runtime, &CreateRequest::new(&cid, &bundle, &exits))
                .unwrap();
            runtime.start(&cid).unwrap();
            let out = wait_for_exit(
                &exits,
                &cid,
                Some(created.monitor_pid),
                Duration::from_secs(10),
            )
            .unwrap();
            assert_eq!(out, ExitOutcome::Exited(0));
            runtime.delete(&cid, true).unwrap();
        })
    });
    g.finish();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join(parent.trim_start_matches('/')));
    }
}

criterion_group!(benches, bench_spec, bench_logs, bench_container);
criterion_main!(benches);
