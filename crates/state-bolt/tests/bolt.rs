//! The bolt backend's own behaviour: files real bbolt accepts, damage and
//! foreign files reported (never re-initialised), busy files, read-only
//! opens, registration and the default path.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use rpod_bolt::{Db, OpenOptions};
use rpod_state::conformance::{ctr_cfg, pod_cfg, pod_state, running_state, vol_cfg};
use rpod_state::*;
use rpod_state_bolt::{new_bolt, open_bolt, Layout, DEFAULT_DB_NAME};

fn id(n: u32) -> String {
    format!("{n:08x}{}", "a".repeat(56))
}

/// Fills a state with a bit of everything, including removals.
fn populate(s: &dyn State) {
    s.add_volume(&vol_cfg("data"), &VolumeState::default())
        .unwrap();
    s.add_pod(&pod_cfg(&"p".repeat(64), "pod1"), &pod_state())
        .unwrap();
    for n in 0..60 {
        let mut c = ctr_cfg(&id(n), &format!("ctr-{n}"));
        if n % 3 == 0 {
            c.named_volumes = vec![NamedVolume {
                name: "data".into(),
                dest: "/d".into(),
                options: vec![],
            }];
        }
        if n % 5 == 0 {
            c.pod = Some("p".repeat(64));
        }
        if n > 1 && n % 7 == 0 && n % 5 != 0 {
            c.dependencies = vec![id(1)];
        }
        // a big value (overflow pages)
        c.labels
            .insert("big".into(), "x".repeat(if n == 1 { 20_000 } else { 10 }));
        s.add_container(&c, &ContainerState::configured()).unwrap();
    }
    for n in (0..60).step_by(2) {
        s.save_container_state(&id(n), &running_state()).unwrap();
    }
    for n in [59, 58, 57, 13, 11] {
        s.remove_container(&id(n)).unwrap();
    }
    s.record_exit_code(
        &id(4),
        ExitCode {
            code: 3,
            time: Timestamp::now(),
        },
    )
    .unwrap();
}

#[test]
fn files_pass_real_bbolt_check_and_reopen_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    let s = open_bolt(&StateOptions::at(&db)).unwrap();
    populate(&*s);
    let before = s.all_containers().unwrap();
    assert_eq!(before.len(), 55);
    // bbolt's tx.Check() and our own page accounting
    common::assert_boltcheck_ok(&db);
    let bolt = Db::open(&db, &OpenOptions::new().read_only(true)).unwrap();
    let problems = bolt.view(|tx| tx.check()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    // the layout: rpod's buckets
    let names = bolt.view(|tx| tx.bucket_names()).unwrap();
    for b in [&b"m"[..], b"c", b"i", b"n", b"v", b"x"] {
        assert!(
            names.iter().any(|n| n == b),
            "bucket {:?} in {names:?}",
            String::from_utf8_lossy(b)
        );
    }
    drop(bolt);
    // everything reads back the same from a new handle
    let again = open_bolt(&StateOptions::at(&db)).unwrap();
    assert_eq!(again.all_containers().unwrap(), before);
    assert_eq!(again.volume_users("data").unwrap().len(), 19);
    assert_eq!(again.exit_code(&id(4)).unwrap().code, 3);
    // removing everything leaves a checkable file, and no empty per-object buckets
    for r in before.iter().rev() {
        again.remove_container(&r.config.id).unwrap();
    }
    again.remove_pod(&"p".repeat(64)).unwrap();
    again.remove_volume("data").unwrap();
    common::assert_boltcheck_ok(&db);
    let bolt = Db::open(&db, &OpenOptions::new().read_only(true)).unwrap();
    let left = bolt
        .view(|tx| Ok(tx.bucket(b"c")?.map(|b| b.iter().count()).unwrap_or(0)))
        .unwrap();
    assert_eq!(left, 0, "container buckets pruned");
}

fn assert_corrupt(r: Result<impl std::fmt::Debug, StateError>, db: &Path, what: &str) -> String {
    match r {
        Err(e @ StateError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&db.display().to_string()),
                "{what}: error names the path: {msg}"
            );
            msg
        }
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn zero_length_file_is_corrupt_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    std::fs::write(&db, b"").unwrap();
    assert_corrupt(open_bolt(&StateOptions::at(&db)), &db, "zero-length");
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "never re-initialised"
    );
}

#[test]
fn truncated_and_garbage_files_are_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.db");
    populate(&*open_bolt(&StateOptions::at(&good)).unwrap());
    let bytes = std::fs::read(&good).unwrap();
    // truncated to a few pages
    let cut = tmp.path().join("cut.db");
    std::fs::write(&cut, &bytes[..3 * 4096]).unwrap();
    let r = open_bolt(&StateOptions::at(&cut)).and_then(|s| s.all_containers().map(|_| ()));
    assert_corrupt(r, &cut, "truncated");
    assert_eq!(
        std::fs::metadata(&cut).unwrap().len(),
        3 * 4096,
        "left as it was"
    );
    // garbage
    let junk = tmp.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 16384]).unwrap();
    assert_corrupt(open_bolt(&StateOptions::at(&junk)), &junk, "garbage");
    // a directory
    let dir = tmp.path().join("dir.db");
    std::fs::create_dir(&dir).unwrap();
    assert_corrupt(open_bolt(&StateOptions::at(&dir)), &dir, "directory");
}

#[test]
fn foreign_bolt_files_and_missing_marker_are_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    // an empty bbolt file (no buckets)
    let empty = tmp.path().join("empty.db");
    Db::open(&empty, &OpenOptions::new()).unwrap();
    assert_corrupt(
        open_bolt(&StateOptions::at(&empty)),
        &empty,
        "empty bolt file",
    );
    // someone else's buckets
    let other = tmp.path().join("other.db");
    Db::open(&other, &OpenOptions::new())
        .unwrap()
        .update(|tx| tx.create_bucket(b"widgets")?.put(b"k", b"v"))
        .unwrap();
    let msg = assert_corrupt(
        open_bolt(&StateOptions::at(&other)),
        &other,
        "foreign layout",
    );
    assert!(msg.contains("widgets"), "{msg}");
    // rpod's meta bucket without the marker, or a garbled one
    let nomark = tmp.path().join("nomark.db");
    Db::open(&nomark, &OpenOptions::new())
        .unwrap()
        .update(|tx| tx.create_bucket(b"m")?.put(b"other", b"v"))
        .unwrap();
    assert_corrupt(open_bolt(&StateOptions::at(&nomark)), &nomark, "no marker");
    let garbled = tmp.path().join("garbled.db");
    Db::open(&garbled, &OpenOptions::new())
        .unwrap()
        .update(|tx| tx.create_bucket(b"m")?.put(b"schema", b"hello"))
        .unwrap();
    assert_corrupt(
        open_bolt(&StateOptions::at(&garbled)),
        &garbled,
        "garbled marker",
    );
}

#[test]
fn newer_schema_is_wrong_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    open_bolt(&StateOptions::at(&db)).unwrap();
    Db::open(&db, &OpenOptions::new())
        .unwrap()
        .update(|tx| {
            tx.bucket(b"m")?
                .expect("meta bucket")
                .put(b"schema", b"rpod-state-schema:99")
        })
        .unwrap();
    match open_bolt(&StateOptions::at(&db)) {
        Err(e @ StateError::WrongSchema { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("99") && msg.contains(&db.display().to_string()),
                "{msg}"
            );
        }
        other => panic!("expected WrongSchema, got {other:?}"),
    }
}

#[test]
fn a_held_file_is_busy_after_the_timeout_then_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    let s = open_bolt(&StateOptions::at(&db).busy_timeout(Duration::from_millis(300))).unwrap();
    // another holder of bbolt's exclusive flock (as a podman or rpod process would)
    let holder = Db::open(&db, &OpenOptions::new()).unwrap();
    let start = Instant::now();
    match s.all_containers() {
        Err(StateError::Busy { path, waited }) => {
            assert_eq!(path, db);
            assert!(waited >= Duration::from_millis(300));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(3), "bounded wait");
    drop(holder);
    s.add_container(&ctr_cfg(&id(1), "after"), &ContainerState::configured())
        .unwrap();
    assert_eq!(s.lookup_container("after").unwrap().config.id, id(1));
}

#[test]
fn read_only_option_refuses_writes_and_never_creates() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.db");
    let ro = open_bolt(&StateOptions::at(&missing).read_only(true)).unwrap();
    assert!(ro.all_containers().unwrap().is_empty());
    assert!(matches!(
        ro.add_container(&ctr_cfg(&id(1), "x"), &ContainerState::configured()),
        Err(StateError::ReadOnly { .. })
    ));
    assert!(!missing.exists(), "read-only open never creates the file");

    let db = tmp.path().join("bolt_state.db");
    populate(&*open_bolt(&StateOptions::at(&db)).unwrap());
    let before = std::fs::read(&db).unwrap();
    let ro = open_bolt(&StateOptions::at(&db).read_only(true)).unwrap();
    assert_eq!(ro.all_containers().unwrap().len(), 55);
    assert!(matches!(
        ro.remove_container(&id(1)),
        Err(StateError::ReadOnly { .. })
    ));
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn registered_as_bolt_with_default_path_under_static_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    cfg.static_dir = tmp.path().join("static");
    cfg.tmp_dir = tmp.path().join("tmp");
    cfg.root = tmp.path().join("root");
    cfg.runroot = tmp.path().join("run");
    cfg.database_backend = "bolt".into();
    cfg.db_path = std::path::PathBuf::new();
    let s = rpod_state::open(&cfg).unwrap();
    assert_eq!(s.backend(), "bolt");
    s.add_container(&ctr_cfg(&id(7), "reg"), &ContainerState::configured())
        .unwrap();
    let file = tmp.path().join("static").join(DEFAULT_DB_NAME);
    assert!(file.is_file(), "default file {}", file.display());
    assert_eq!(s.path(), Some(file.as_path()));
    // db_path wins
    cfg.db_path = tmp.path().join("elsewhere.db");
    let s2 = rpod_state::open(&cfg).unwrap();
    assert!(s2.all_containers().unwrap().is_empty());
    assert!(tmp.path().join("elsewhere.db").is_file());
    // the layout is rpod's
    assert_eq!(
        new_bolt(&StateOptions::at(&file)).unwrap().store().layout(),
        Some(Layout::Rpod)
    );
}

#[test]
fn two_handles_and_threads_share_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    let a = open_bolt(&StateOptions::at(&db)).unwrap();
    let b = open_bolt(&StateOptions::at(&db)).unwrap();
    std::thread::scope(|sc| {
        for t in 0..4u32 {
            let (a, b) = (&a, &b);
            sc.spawn(move || {
                for n in 0..15u32 {
                    let s = if n % 2 == 0 { a } else { b };
                    s.add_container(
                        &ctr_cfg(&id(t * 100 + n), &format!("t{t}-{n}")),
                        &ContainerState::configured(),
                    )
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(a.all_containers().unwrap().len(), 60);
    assert_eq!(b.all_containers().unwrap().len(), 60);
    common::assert_boltcheck_ok(&db);
}
