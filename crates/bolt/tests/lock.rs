//! flock exclusion, as bbolt: exclusive for read-write, shared for read-only.

mod common;

use std::time::{Duration, Instant};

use rpod_bolt::{BoltError, Db, OpenOptions};

fn opts(ro: bool, ms: u64) -> OpenOptions {
    OpenOptions::new()
        .read_only(ro)
        .timeout(Some(Duration::from_millis(ms)))
}

#[test]
fn second_read_write_open_times_out_with_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.db");
    let db = Db::open(&p, &opts(false, 1000)).unwrap();
    let p2 = p.clone();
    let start = Instant::now();
    let err = std::thread::spawn(move || Db::open(&p2, &opts(false, 300)).map(drop))
        .join()
        .unwrap()
        .unwrap_err();
    let waited = start.elapsed();
    match &err {
        BoltError::Timeout { path, .. } => assert_eq!(path, &p),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_millis(300),
        "gave up too early: {waited:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("timed out") && msg.contains("l.db"), "{msg}");
    // A read-only open needs a shared lock: also excluded by the writer.
    assert!(matches!(
        Db::open(&p, &opts(true, 100)),
        Err(BoltError::Timeout { .. })
    ));
    // Released on close: the next open succeeds.
    db.close();
    Db::open(&p, &opts(false, 100)).unwrap();
}

#[test]
fn read_only_opens_share_the_lock_but_exclude_writers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.db");
    Db::open(&p, &opts(false, 100))
        .unwrap()
        .update(|tx| tx.create_bucket(b"b").map(drop))
        .unwrap();
    let r1 = Db::open(&p, &opts(true, 100)).unwrap();
    let r2 = Db::open(&p, &opts(true, 100)).unwrap();
    assert!(matches!(
        Db::open(&p, &opts(false, 100)),
        Err(BoltError::Timeout { .. })
    ));
    // Read-only databases refuse writes.
    assert!(matches!(r1.begin(true), Err(BoltError::ReadOnly)));
    assert!(matches!(r1.update(|_| Ok(())), Err(BoltError::ReadOnly)));
    r2.view(|tx| {
        let b = tx.bucket(b"b")?.unwrap();
        assert!(matches!(b.put(b"k", b"v"), Err(BoltError::ReadOnly)));
        assert!(matches!(b.next_sequence(), Err(BoltError::ReadOnly)));
        assert!(matches!(tx.delete_bucket(b"b"), Err(BoltError::ReadOnly)));
        Ok(())
    })
    .unwrap();
    drop((r1, r2));
    Db::open(&p, &opts(false, 100)).unwrap();
}

#[test]
fn another_process_is_excluded_while_we_hold_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.db");
    let db = Db::open(&p, &opts(false, 100)).unwrap();
    db.update(|tx| tx.create_bucket(b"b").map(drop)).unwrap();
    // util-linux flock(1), if present, uses the same flock(2) lock.
    if let Ok(out) = std::process::Command::new("flock")
        .args(["-n", "-s"])
        .arg(&p)
        .arg("true")
        .output()
    {
        assert!(
            !out.status.success(),
            "flock(1) got a shared lock while we hold LOCK_EX"
        );
    }
    if let Some(bin) = common::boltcheck() {
        // Real bbolt (read-only, 2 s timeout) must give up with exit 2.
        let (rc, _, err) = common::run_boltcheck(&bin, &p);
        assert_eq!(rc, 2, "bbolt opened the file while we hold the lock: {err}");
        assert!(err.contains("timeout"), "{err}");
    }
    drop(db);
    if let Some(bin) = common::boltcheck() {
        let (rc, _, err) = common::run_boltcheck(&bin, &p);
        assert_eq!(rc, 0, "{err}");
    }
}

#[test]
fn concurrent_readers_and_writers_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Db::open(dir.path().join("c.db"), &opts(false, 100)).unwrap());
    db.update(|tx| tx.create_bucket(b"n").map(drop)).unwrap();
    let mut hs = Vec::new();
    for t in 0..4u8 {
        let db = db.clone();
        hs.push(std::thread::spawn(move || {
            for i in 0..50u32 {
                if t % 2 == 0 {
                    db.update(|tx| {
                        let b = tx.bucket(b"n")?.unwrap();
                        b.put(&[&[t][..], &i.to_be_bytes()].concat(), &[t; 100])
                    })
                    .unwrap();
                } else {
                    db.view(|tx| {
                        let b = tx.bucket(b"n")?.unwrap();
                        let n = b.iter().count();
                        assert!(n <= 100);
                        Ok(())
                    })
                    .unwrap();
                }
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let n = db
        .view(|tx| Ok(tx.bucket(b"n")?.unwrap().iter().count()))
        .unwrap();
    assert_eq!(n, 100);
    common::assert_self_check(&db);
}
