//! Speed of the events paths the engine and `rpod events` hit.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_events::file::FileEventer;
use rpod_events::{Event, EventFilter, Eventer, ReadOptions, Status};

fn sample() -> Event {
    Event::container(
        Status::Start,
        "2a88f6259dc6c3a97d516c719bc4b7e7f6dc8c1f20a8f4117c9304fbef374138",
        "web",
        "docker.io/library/busybox:latest",
    )
    .with_attribute("app", "shop")
    .with_attribute("tier", "front")
}

fn bench(c: &mut Criterion) {
    let e = sample();
    let line = e.to_json();

    c.bench_function("event_to_json", |b| b.iter(|| black_box(&e).to_json()));
    c.bench_function("event_from_json", |b| {
        b.iter(|| Event::from_json(black_box(&line)).unwrap())
    });
    c.bench_function("event_to_human", |b| b.iter(|| black_box(&e).to_human()));

    let f = EventFilter::parse(&[
        "event=start",
        "event=died",
        "container=web",
        "label=app=shop",
    ])
    .unwrap();
    c.bench_function("filter_match_4_clauses", |b| {
        b.iter(|| f.matches(black_box(&e)))
    });

    // One locked, checked, appended line (flock + stat + fstat + write).
    let dir = tempfile::tempdir().unwrap();
    let ev = FileEventer::new(dir.path().join("events.log"), 0);
    c.bench_function("file_write_one_event", |b| {
        b.iter(|| ev.write(black_box(&e)).unwrap())
    });

    // Writes with rotation enabled (1 MB limit, podman's default size).
    let rdir = tempfile::tempdir().unwrap();
    let rev = FileEventer::new(rdir.path().join("events.log"), 1_000_000);
    c.bench_function("file_write_one_event_rotating_1mb", |b| {
        b.iter(|| rev.write(black_box(&e)).unwrap())
    });

    // Reading and filtering a 10,000-event log.
    let rdir2 = tempfile::tempdir().unwrap();
    let big = FileEventer::new(rdir2.path().join("events.log"), 0);
    for i in 0..10_000 {
        let status = if i % 10 == 0 {
            Status::Died
        } else {
            Status::Start
        };
        big.write(&Event::container(
            status,
            &format!("id{i}"),
            "web",
            "busybox",
        ))
        .unwrap();
    }
    let all = ReadOptions::default();
    let died = ReadOptions::from_cli(None, None, &["event=died"], false).unwrap();
    let mut g = c.benchmark_group("file_read_10k");
    g.sample_size(20);
    g.bench_function("all", |b| b.iter(|| big.read_all(&all).unwrap().len()));
    g.bench_function("filtered_died", |b| {
        b.iter(|| big.read_all(&died).unwrap().len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
