//! sled-specific behaviour: persistence, default path, damaged databases,
//! schema versions, busy databases, read-only access.

use std::path::Path;
use std::time::{Duration, Instant};

use rpod_config::{RuntimeConfig, UserDirs};
use rpod_state::conformance::{ctr_cfg, id_of, running_state};
use rpod_state::*;
use rpod_state_sled::{new_sled, open_sled, DEFAULT_DB_NAME};

fn opts(path: &Path) -> StateOptions {
    StateOptions::at(path)
}

#[track_caller]
fn corrupt(res: Result<Box<dyn State>, StateError>, path: &Path, needle: &str) {
    match res {
        Err(e @ StateError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "message should name the path: {msg}"
            );
            assert!(msg.contains(needle), "message should say {needle:?}: {msg}");
        }
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, but the database opened"),
    }
}

#[test]
fn data_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    {
        let s = open_sled(&opts(&path)).unwrap();
        s.add_container(&ctr_cfg(&id_of('a'), "a"), &running_state())
            .unwrap();
        s.add_exit_code(&id_of('z'), 7).unwrap();
        s.validate_db_config(&DbConfig {
            static_dir: "/s".into(),
            ..Default::default()
        })
        .unwrap();
    }
    let s = open_sled(&opts(&path)).unwrap();
    let r = s.lookup_container("a").unwrap();
    assert_eq!(r.state, running_state());
    assert_eq!(s.exit_code(&id_of('z')).unwrap().code, 7);
    assert_eq!(s.db_config().unwrap().unwrap().static_dir, "/s");
}

#[test]
fn two_handles_see_each_others_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let a = open_sled(&opts(&path)).unwrap();
    let b = open_sled(&opts(&path)).unwrap();
    a.add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured())
        .unwrap();
    assert!(b.has_container(&id_of('a')).unwrap());
    b.remove_container(&id_of('a')).unwrap();
    assert!(!a.has_container(&id_of('a')).unwrap());
}

#[test]
fn default_path_is_under_static_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = RuntimeConfig::defaults(&UserDirs::current());
    cfg.root = tmp.path().join("root");
    cfg.runroot = tmp.path().join("run");
    cfg.static_dir = tmp.path().join("root/static");
    cfg.tmp_dir = tmp.path().join("run/tmp");
    cfg.database_backend = "sled".into();
    let s = rpod_state::open(&cfg).unwrap();
    assert_eq!(s.backend(), "sled");
    let want = tmp.path().join("root/static").join(DEFAULT_DB_NAME);
    assert_eq!(s.path(), Some(want.as_path()));
    assert!(
        want.join("db").is_file(),
        "database created at {}",
        want.display()
    );
    cfg.db_path = tmp.path().join("explicit.db");
    let s = rpod_state::open(&cfg).unwrap();
    assert_eq!(s.path(), Some(tmp.path().join("explicit.db").as_path()));
}

#[test]
fn registered_with_summary() {
    let reg = rpod_registry::lookup(rpod_registry::kinds::STATE, "sled").unwrap();
    assert!(reg.summary.contains("sled"));
    let names = rpod_registry::names(rpod_registry::kinds::STATE);
    assert!(
        names.contains(&"sled".to_string()) && names.contains(&"memory".to_string()),
        "{names:?}"
    );
}

#[test]
fn zero_length_file_is_corrupt_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    std::fs::write(&path, b"").unwrap();
    corrupt(open_sled(&opts(&path)), &path, "0 bytes");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "never replaced");
    assert!(path.is_file());
}

#[test]
fn foreign_file_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    std::fs::write(&path, b"SQLite format 3\0 and more").unwrap();
    corrupt(open_sled(&opts(&path)), &path, "not a sled database");
}

#[test]
fn empty_directory_is_corrupt_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    std::fs::create_dir(&path).unwrap();
    corrupt(open_sled(&opts(&path)), &path, "missing");
    assert_eq!(
        std::fs::read_dir(&path).unwrap().count(),
        0,
        "sled must not create files in it"
    );
}

#[test]
fn sled_database_without_marker_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        db.insert(b"something", b"else").unwrap();
        db.flush().unwrap();
    }
    corrupt(open_sled(&opts(&path)), &path, "no rpod schema marker");
}

#[test]
fn garbled_marker_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    drop(open_sled(&opts(&path)).unwrap());
    {
        let db = sled::open(&path).unwrap();
        db.insert(rpod_state::kv::SCHEMA_KEY, b"\xff\x00garbage")
            .unwrap();
        db.flush().unwrap();
    }
    corrupt(open_sled(&opts(&path)), &path, "garbled");
}

#[test]
fn newer_schema_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    drop(open_sled(&opts(&path)).unwrap());
    {
        let db = sled::open(&path).unwrap();
        db.insert(rpod_state::kv::SCHEMA_KEY, b"rpod-state-schema:99")
            .unwrap();
        db.flush().unwrap();
    }
    match open_sled(&opts(&path)) {
        Err(e @ StateError::WrongSchema { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("99") && msg.contains(&SCHEMA_VERSION.to_string()),
                "{msg}"
            );
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        other => panic!("expected WrongSchema, got {other:?}"),
    }
}

#[test]
fn truncated_database_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    {
        let s = open_sled(&opts(&path)).unwrap();
        for i in 0..20 {
            s.add_container(
                &ctr_cfg(&format!("{i:02}{}", "a".repeat(62)), &format!("c{i}")),
                &running_state(),
            )
            .unwrap();
        }
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("db"))
        .unwrap();
    f.set_len(0).unwrap();
    drop(f);
    let res = open_sled(&opts(&path));
    // sled may refuse the file or recover to empty; either way no silent fresh start
    match res {
        Err(StateError::Corrupt { path: p, .. }) => assert_eq!(p, path),
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("a truncated database opened as if it were fine"),
    }
}

#[test]
fn garbled_record_is_corrupt_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    {
        let s = open_sled(&opts(&path)).unwrap();
        s.add_container(&ctr_cfg(&id_of('a'), "a"), &running_state())
            .unwrap();
    }
    {
        let db = sled::open(&path).unwrap();
        let mut k = b"c\0".to_vec();
        k.extend_from_slice(id_of('a').as_bytes());
        db.insert(k, b"{not json").unwrap();
        db.flush().unwrap();
    }
    let s = open_sled(&opts(&path)).unwrap();
    let err = s.container_state(&id_of('a')).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(&id_of('a')), "{err}");
}

#[test]
fn busy_database_times_out_with_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let s = new_sled(&opts(&path).busy_timeout(Duration::from_millis(300))).unwrap();
    // Another holder (as another process would) keeps sled's lock.
    let holder = sled::Config::new().path(&path).open().unwrap();
    let start = Instant::now();
    let err = s.all_containers().unwrap_err();
    let took = start.elapsed();
    match &err {
        StateError::Busy { path: p, waited } => {
            assert_eq!(p, &path);
            assert!(*waited >= Duration::from_millis(300), "{waited:?}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(err.to_string().contains("database busy"), "{err}");
    assert!(
        took < Duration::from_secs(3),
        "gave up in bounded time: {took:?}"
    );
    drop(holder);
    assert!(
        s.all_containers().unwrap().is_empty(),
        "works again once released"
    );
}

#[test]
fn busy_database_is_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let s = new_sled(&opts(&path).busy_timeout(Duration::from_secs(10))).unwrap();
    let holder = sled::Config::new().path(&path).open().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        drop(holder);
    });
    let start = Instant::now();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured())
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "it waited for the holder"
    );
    release.join().unwrap();
    assert!(s.has_container(&id_of('a')).unwrap());
}

#[test]
fn database_is_closed_between_operations() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let s = open_sled(&opts(&path)).unwrap();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured())
        .unwrap();
    // While `s` is alive and idle, anyone can open the database.
    let other = sled::Config::new()
        .path(&path)
        .open()
        .expect("database not held between operations");
    drop(other);
}

#[test]
fn read_only_refuses_writes_and_never_creates() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let ro = open_sled(&opts(&path).read_only(true)).unwrap();
    assert!(ro.all_containers().unwrap().is_empty());
    assert!(
        !path.exists(),
        "a read-only open does not create the database"
    );
    let err = ro
        .add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured())
        .unwrap_err();
    assert!(matches!(err, StateError::ReadOnly { .. }), "{err:?}");
    let rw = open_sled(&opts(&path)).unwrap();
    rw.add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured())
        .unwrap();
    assert!(ro.has_container(&id_of('a')).unwrap());
    assert!(matches!(
        ro.remove_container(&id_of('a')),
        Err(StateError::ReadOnly { .. })
    ));
}

#[test]
fn no_temporary_directories_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    drop(open_sled(&opts(&path)).unwrap());
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("db")]);
}

#[test]
fn hold_keeps_database_open_for_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let s = new_sled(&opts(&path)).unwrap();
    let ns = s.with_namespace("").unwrap();
    {
        let _held = s.store().hold().unwrap();
        // while held, nobody else can open it
        let err = rpod_state_sled::sled_config(&path).open().unwrap_err();
        assert!(err.to_string().contains("lock"), "{err}");
        s.add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured())
            .unwrap();
        // views share the held database
        assert!(ns.has_container(&id_of('a')).unwrap());
        assert!(
            matches!(s.store().hold(), Err(StateError::Invalid { .. })),
            "holding twice is refused"
        );
    }
    // released: another opener gets it, and the write is durable
    drop(
        rpod_state_sled::sled_config(&path)
            .open()
            .expect("released after the batch"),
    );
    let again = open_sled(&opts(&path)).unwrap();
    assert!(again.has_container(&id_of('a')).unwrap());
}

#[test]
fn other_threads_use_the_held_database() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let s = new_sled(&opts(&path)).unwrap();
    let held = s.store().hold().unwrap();
    std::thread::scope(|sc| {
        sc.spawn(|| {
            s.add_container(&ctr_cfg(&id_of('b'), "b"), &ContainerState::configured())
                .unwrap()
        });
    });
    drop(held);
    assert!(s.has_container(&id_of('b')).unwrap());
}
