//! The crash test driver, shared by every persistent backend.
//!
//! A child process writes in a loop and is killed with SIGKILL at random
//! moments, many times. After each kill the database must open, hold every
//! operation the child acknowledged, and contain no half-applied operation: it
//! must equal the model state after the acknowledged operations, or after one
//! more (the one in flight).
//!
//! A backend runs it from a test target with `harness = false`:
//!
//! ```no_run
//! # fn open(p: &std::path::Path) -> Box<dyn rpod_state::State> { unimplemented!() }
//! fn main() {
//!     rpod_state::conformance::crash::main(open, |_path| {});
//! }
//! ```
//!
//! The test binary re-executes itself as the child (env `RPOD_CRASH_CHILD`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::conformance::{ctr_cfg, vol_cfg};
use crate::*;
use rand::Rng;

/// Opens the backend's database at a path.
pub type Open = fn(&Path) -> Box<dyn State>;

const CHILD_ENV: &str = "RPOD_CRASH_CHILD";

/// The deterministic operation sequence: op `n` of a run that starts at `base`.
#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    Save(u64, i32),
    Remove(u64),
}

fn op(n: u64) -> Op {
    // add k, save k, and every third step remove an older one
    let k = n / 3;
    match n % 3 {
        0 => Op::Add(k),
        1 => Op::Save(k, (k % 250) as i32 + 1),
        _ if k >= 2 && k % 2 == 0 => Op::Remove(k - 2),
        _ => Op::Save(k, -1),
    }
}

fn cid(k: u64) -> String {
    format!("{k:016x}{}", "c".repeat(48))
}

/// Model: name -> pid of each container.
type Model = BTreeMap<String, i32>;

fn apply_model(m: &mut Model, o: &Op) {
    match o {
        Op::Add(k) => {
            m.insert(cid(*k), 0);
        }
        Op::Save(k, pid) => {
            if let Some(p) = m.get_mut(&cid(*k)) {
                *p = *pid;
            }
        }
        Op::Remove(k) => {
            m.remove(&cid(*k));
        }
    }
}

fn apply_state(s: &dyn State, o: &Op) -> Result<(), StateError> {
    match o {
        Op::Add(k) => {
            let mut c = ctr_cfg(&cid(*k), &format!("ctr-{k}"));
            c.dependencies = vec![cid(u64::MAX)];
            c.named_volumes = vec![NamedVolume {
                name: "vol".into(),
                dest: "/v".into(),
                options: vec![],
            }];
            s.add_container(&c, &ContainerState::configured())
        }
        Op::Save(k, pid) => {
            let st = ContainerState {
                state: ContainerStatus::Running,
                pid: *pid,
                ..Default::default()
            };
            if s.has_container(&cid(*k))? {
                s.save_container_state(&cid(*k), &st)
            } else {
                Ok(())
            }
        }
        Op::Remove(k) => match s.remove_container(&cid(*k)) {
            Err(StateError::NotFound { .. }) => Ok(()),
            r => r,
        },
    }
}

fn child(open: Open, path: &str, start: u64) {
    let s = open(Path::new(path));
    let mut out = std::io::stdout().lock();
    let mut n = start;
    loop {
        apply_state(&*s, &op(n)).unwrap_or_else(|e| panic!("child op {n}: {e}"));
        writeln!(out, "{n}").and_then(|_| out.flush()).expect("ack");
        n += 1;
    }
}

/// What the database holds, as a model; also checks every invariant.
fn observe(open: Open, path: &Path) -> Model {
    let s = open(path);
    let all = s.all_containers().expect("every record decodes");
    let mut m = Model::new();
    let base_dependents = s.container_dependents(&cid(u64::MAX)).unwrap();
    let users = s.volume_users("vol").unwrap();
    for r in &all {
        let id = &r.config.id;
        if *id == cid(u64::MAX) {
            continue;
        }
        // the name registry, dependency and volume edges agree with the record
        assert_eq!(
            &s.lookup_container(&r.config.name).unwrap().config.id,
            id,
            "name registry"
        );
        assert!(base_dependents.contains(id), "dependency edge of {id}");
        assert!(users.contains(id), "volume edge of {id}");
        m.insert(id.clone(), r.state.pid);
    }
    assert_eq!(
        base_dependents.len(),
        m.len(),
        "no dangling dependency edges"
    );
    assert_eq!(users.len(), m.len(), "no dangling volume edges");
    m
}

fn parent(open: Open, after: fn(&Path)) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("crash.db");
    {
        let s = open(&path);
        s.add_volume(&vol_cfg("vol"), &VolumeState::default())
            .unwrap();
        s.add_container(
            &ctr_cfg(&cid(u64::MAX), "base"),
            &ContainerState::configured(),
        )
        .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut model = Model::new();
    let mut next: u64 = 0;
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut kills = 0;
    let mut total_acks = 0;
    while kills < 150 && Instant::now() < deadline {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, format!("{}:{next}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(n) = line.trim().parse() {
                    let _ = tx.send(n);
                }
            }
        });
        // wait for the first ack (the child is up), then kill at a random moment
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("child acknowledges its first operation");
        assert_eq!(first, next);
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..80_000)));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "child was killed");
        reader.join().unwrap();
        let mut last = first;
        for n in rx.try_iter() {
            assert_eq!(n, last + 1, "acks in order");
            last = n;
        }
        for n in next..=last {
            apply_model(&mut model, &op(n));
        }
        total_acks += last + 1 - next;
        let got = observe(open, &path);
        let mut with_inflight = model.clone();
        apply_model(&mut with_inflight, &op(last + 1));
        if got == with_inflight && got != model {
            // the in-flight operation completed before the kill
            model = with_inflight;
            next = last + 2;
        } else {
            assert_eq!(
                got, model,
                "after kill {kills}: database differs from the acknowledged operations 0..={last}"
            );
            next = last + 1;
        }
        kills += 1;
    }
    assert!(kills >= 20, "only {kills} kills in the time budget");
    after(&path);
    println!("crash test: {kills} kills, {total_acks} acknowledged operations, {} containers at the end: ok", model.len());
}

/// Runs the crash test (as the parent) or the child's loop (when re-executed).
/// `open` must panic with a clear message when the database cannot be opened;
/// `after` runs extra checks on the database left by the last kill.
pub fn main(open: Open, after: fn(&Path)) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (path, start) = spec.rsplit_once(':').expect("path:start");
        child(open, path, start.parse().expect("start"));
        return;
    }
    parent(open, after);
}
