//! Multi-process test: several processes add and remove containers with
//! clashing names in one database at once. Afterwards names are unique,
//! nothing acknowledged is lost, nothing acknowledged as removed remains, and
//! no process saw a "database busy" error or anything unexpected.
//!
//! The binary re-executes itself as the workers (env `RPOD_MP_CHILD`).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use rand::Rng;
use rpod_state::conformance::ctr_cfg;
use rpod_state::*;
use rpod_state_sled::open_sled;

const CHILD_ENV: &str = "RPOD_MP_CHILD";
const WORKERS: usize = 4;
const ITERATIONS: u32 = 30;
const NAMES: [&str; 6] = ["clash0", "clash1", "clash2", "clash3", "clash4", "clash5"];

fn child(path: &str, worker: usize) {
    let s = open_sled(&StateOptions::at(path)).expect("worker opens the database");
    let mut rng = rand::thread_rng();
    let mut out = std::io::stdout().lock();
    for i in 0..ITERATIONS {
        let id = format!("{worker:08x}{i:08x}{}", "d".repeat(48));
        let name = NAMES[rng.gen_range(0..NAMES.len())];
        match s.add_container(&ctr_cfg(&id, name), &ContainerState::configured()) {
            Ok(()) => writeln!(out, "add {id} {name}").unwrap(),
            Err(StateError::NameInUse { .. }) => {}
            Err(e) => panic!("worker {worker}: unexpected error adding: {e}"),
        }
        out.flush().unwrap();
        let victim = NAMES[rng.gen_range(0..NAMES.len())];
        if rng.gen_bool(0.5) {
            match s.lookup_container(victim) {
                Ok(r) => match s.remove_container(&r.config.id) {
                    Ok(()) => writeln!(out, "rm {}", r.config.id).unwrap(),
                    Err(StateError::NotFound { .. }) => {}
                    Err(e) => panic!("worker {worker}: unexpected error removing: {e}"),
                },
                Err(StateError::NotFound { .. }) => {}
                Err(e) => panic!("worker {worker}: unexpected error looking up: {e}"),
            }
            out.flush().unwrap();
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (path, worker) = spec.rsplit_once(':').expect("path:worker");
        child(path, worker.parse().expect("worker"));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mp.db");
    drop(open_sled(&StateOptions::at(&path)).unwrap());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(&exe)
                .env(CHILD_ENV, format!("{}:{w}", path.display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let mut added = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed: {:?}", out.status);
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["add", id, _name] => assert!(added.insert(id.to_string()), "id added twice"),
                ["rm", id] => assert!(removed.insert(id.to_string()), "removed twice: {id}"),
                other => panic!("bad worker output {other:?}"),
            }
        }
    }
    assert!(
        removed.is_subset(&added),
        "only added containers were removed"
    );
    let s = open_sled(&StateOptions::at(&path)).unwrap();
    let all = s.all_containers().unwrap();
    let ids: BTreeSet<String> = all.iter().map(|r| r.config.id.clone()).collect();
    let want: BTreeSet<String> = added.difference(&removed).cloned().collect();
    assert_eq!(
        ids, want,
        "exactly the acknowledged adds minus the acknowledged removes"
    );
    let names: BTreeSet<&str> = all.iter().map(|r| r.config.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "names are unique");
    for r in &all {
        assert_eq!(
            s.lookup_container(&r.config.name).unwrap().config.id,
            r.config.id
        );
    }
    assert!(
        added.len() >= NAMES.len(),
        "workers made progress: {} adds",
        added.len()
    );
    println!(
        "multiprocess test: {WORKERS} workers, {} adds, {} removes, {} left: ok",
        added.len(),
        removed.len(),
        all.len()
    );
}
