//! The `file` backend across real processes: concurrent writers, following
//! another process's events, rotation under concurrent writers.
//!
//! `harness = false`: this binary is also the child process. Run with
//! `RPOD_EVENTS_CHILD=writer` it writes events and exits; otherwise it runs the
//! tests below (a name given as first argument selects tests by substring).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rpod_events::file::FileEventer;
use rpod_events::{Event, Eventer, ReadOptions, Status, Timestamp};

const CHILD: &str = "RPOD_EVENTS_CHILD";

fn env_u64(k: &str) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Child: writes `N` events tagged `w<WRITER>-<seq>` to `LOG`, rotating past `MAX`.
fn child_writer() {
    let log = PathBuf::from(std::env::var("LOG").expect("LOG"));
    let ev = FileEventer::new(&log, env_u64("MAX"));
    let writer = env_u64("WRITER");
    let pad = "p".repeat(env_u64("PAD") as usize);
    let pause = Duration::from_micros(env_u64("PAUSE_US"));
    for seq in 0..env_u64("N") {
        let mut e = Event::container(
            Status::Start,
            &format!("w{writer}-{seq:06}"),
            &format!("writer{writer}"),
            "busybox",
        )
        .with_attribute("seq", &seq.to_string());
        if !pad.is_empty() {
            e = e.with_attribute("pad", &pad);
        }
        ev.write(&e).expect("write");
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

fn spawn_writer(log: &Path, writer: u64, n: u64, max: u64, pad: u64, pause_us: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "writer")
        .env("LOG", log)
        .env("WRITER", writer.to_string())
        .env("N", n.to_string())
        .env("MAX", max.to_string())
        .env("PAD", pad.to_string())
        .env("PAUSE_US", pause_us.to_string())
        .spawn()
        .expect("spawn writer")
}

fn wait_all(children: Vec<Child>) {
    for mut c in children {
        let st = c.wait().unwrap();
        assert!(st.success(), "writer failed: {st}");
    }
}

fn parse_id(id: &str) -> (u64, u64) {
    let (w, s) = id.trim_start_matches('w').split_once('-').unwrap();
    (w.parse().unwrap(), s.parse().unwrap())
}

/// 8 processes × 1,000 events, no size limit: exactly 8,000 intact lines, each
/// writer's events all present and in its own order.
fn eight_writers_leave_8000_intact_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let children: Vec<_> = (0..8)
        .map(|w| spawn_writer(&log, w, 1000, 0, 0, 0))
        .collect();
    wait_all(children);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8000);
    let mut per: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for l in &lines {
        let e = Event::from_json(l).unwrap_or_else(|err| panic!("torn line {l:?}: {err}"));
        assert_eq!(&e.to_json(), l);
        let (w, s) = parse_id(&e.id);
        assert_eq!(e.attributes()["seq"], s.to_string());
        per.entry(w).or_default().push(s);
    }
    assert_eq!(per.len(), 8);
    for (w, seqs) in per {
        assert_eq!(seqs, (0..1000).collect::<Vec<_>>(), "writer {w}");
    }
    let ev = FileEventer::new(&log, 0);
    assert_eq!(ev.read_all(&ReadOptions::default()).unwrap().len(), 8000);
}

/// A follower sees an event written by another process within a second.
fn follow_sees_another_process_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let ev = FileEventer::new(&log, 0);
    ev.write(&Event::system(Status::Refresh)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(Event, Timestamp)>();
    let mut opts = ReadOptions::from_cli(None, None, &["type=container"], true)
        .unwrap()
        .with_stop(Arc::clone(&stop));
    opts.poll_interval = Duration::from_millis(50);
    let follower = std::thread::spawn(move || {
        ev.read(&opts, &mut |e| {
            let _ = tx.send((e, Timestamp::now()));
            ControlFlow::Continue(())
        })
    });
    std::thread::sleep(Duration::from_millis(200));
    wait_all(vec![spawn_writer(&log, 7, 3, 0, 0, 0)]);
    let mut got = Vec::new();
    while got.len() < 3 {
        let (e, seen_at) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("event from the other process");
        let lag = seen_at.unix_nanos() - e.time.unix_nanos();
        assert!(lag < 1_000_000_000, "seen {lag} ns after it was written");
        got.push(e.id);
    }
    assert_eq!(got, ["w7-000000", "w7-000001", "w7-000002"]);
    stop.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    follower.join().unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
}

/// Rotation under 4 concurrent writer processes: the files on disk hold a
/// contiguous newest run of every writer's events (nothing lost after the
/// oldest kept event, every line intact), and a follower running throughout
/// sees every event exactly once.
fn rotation_under_concurrent_writers_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let max: u64 = 128 * 1024;
    let (writers, n) = (4u64, 1500u64);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<String>();
    let mut opts = ReadOptions {
        stream: true,
        ..ReadOptions::default()
    }
    .with_stop(Arc::clone(&stop));
    opts.poll_interval = Duration::from_millis(2);
    let follower = {
        let ev = FileEventer::new(&log, max);
        std::thread::spawn(move || {
            ev.read(&opts, &mut |e| {
                let _ = tx.send(e.id);
                ControlFlow::Continue(())
            })
        })
    };
    let children: Vec<_> = (0..writers)
        .map(|w| spawn_writer(&log, w, n, max, 200, 200))
        .collect();
    wait_all(children);

    // on disk: both generations within the limit, the newest events kept
    let ev = FileEventer::new(&log, max);
    let cur = std::fs::metadata(ev.path()).unwrap().len();
    let old = std::fs::metadata(ev.rotated_path()).unwrap().len();
    assert!(
        cur <= max && old <= max && cur + old > max,
        "cur {cur} old {old}"
    );
    let kept = ev.read_all(&ReadOptions::default()).unwrap();
    let raw = std::fs::read_to_string(ev.rotated_path()).unwrap()
        + &std::fs::read_to_string(ev.path()).unwrap();
    assert_eq!(
        raw.lines().count(),
        kept.len(),
        "every line on disk is an intact event"
    );
    let mut per: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &kept {
        let (w, s) = parse_id(&e.id);
        per.entry(w).or_default().push(s);
    }
    assert_eq!(per.len() as u64, writers);
    for (w, seqs) in &per {
        let first = seqs[0];
        assert_eq!(
            seqs,
            &(first..n).collect::<Vec<_>>(),
            "writer {w}: a hole after rotation"
        );
    }

    // the follower: everything, exactly once
    let total = (writers * n) as usize;
    let mut seen = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < total && Instant::now() < deadline {
        if let Ok(id) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(id);
        }
    }
    stop.store(true, Ordering::SeqCst);
    follower.join().unwrap().unwrap();
    seen.extend(rx.try_iter());
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates delivered");
    assert_eq!(seen.len(), total, "follower missed events across rotations");
}

fn main() {
    if std::env::var(CHILD).as_deref() == Ok("writer") {
        child_writer();
        return;
    }
    let tests: &[(&str, fn())] = &[
        (
            "eight_writers_leave_8000_intact_lines",
            eight_writers_leave_8000_intact_lines,
        ),
        (
            "follow_sees_another_process_within_a_second",
            follow_sees_another_process_within_a_second,
        ),
        (
            "rotation_under_concurrent_writers_loses_nothing",
            rotation_under_concurrent_writers_loses_nothing,
        ),
    ];
    let select: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in tests {
        if !select.is_empty() && !select.iter().any(|s| name.contains(s.as_str())) {
            continue;
        }
        ran += 1;
        let t0 = Instant::now();
        let ok = std::panic::catch_unwind(f).is_ok();
        println!(
            "test {name} ... {} ({:.2?})",
            if ok { "ok" } else { "FAILED" },
            t0.elapsed()
        );
        if !ok {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
