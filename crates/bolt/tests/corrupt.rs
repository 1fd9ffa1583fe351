//! Damaged files give errors (mostly `Corrupt`), never panics or silent re-initialisation.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rpod_bolt::{BoltError, Db, OpenOptions};

fn rw() -> OpenOptions {
    OpenOptions::new().timeout(Some(Duration::from_secs(2)))
}

/// A small database with inline, nested, multi-page and overflow buckets, written over
/// several transactions (so both metas and the freelist are non-trivial).
fn build_sample(p: &Path, ps: u32) {
    let db = Db::open(p, &rw().page_size(ps)).unwrap();
    db.update(|tx| {
        let a = tx.create_bucket(b"alpha")?;
        for i in 0..150u32 {
            a.put(
                format!("key-{i:04}").as_bytes(),
                format!("value-{i}").as_bytes(),
            )?;
        }
        let n = a.create_bucket(b"nested")?;
        n.put(b"x", b"y")?;
        n.set_sequence(5)?;
        tx.create_bucket(b"big")?
            .put(b"blob", &vec![0x5a; 3 * ps as usize])?;
        Ok(())
    })
    .unwrap();
    db.update(|tx| {
        let a = tx.bucket(b"alpha")?.unwrap();
        for i in (0..150u32).step_by(3) {
            a.delete(format!("key-{i:04}").as_bytes())?;
        }
        tx.create_bucket(b"small")?.put(b"k", b"v")?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn zero_length_file_is_an_error_and_is_not_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zero.db");
    std::fs::write(&p, b"").unwrap();
    for ro in [false, true] {
        let err = Db::open(&p, &rw().read_only(ro)).unwrap_err();
        assert!(matches!(err, BoltError::EmptyFile { .. }), "{err:?}");
        assert!(err.to_string().contains("empty"), "{err}");
    }
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 0, "file was modified");
}

#[test]
fn missing_file_without_create_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("none.db");
    assert!(matches!(
        Db::open(&p, &rw().create(false)),
        Err(BoltError::NotFound { .. })
    ));
    assert!(matches!(
        Db::open(&p, &rw().read_only(true)),
        Err(BoltError::NotFound { .. })
    ));
    assert!(!p.exists());
    assert!(matches!(
        Db::open(&p, &rw().page_size(1000)),
        Err(BoltError::InvalidOption(_))
    ));
}

#[test]
fn truncated_and_garbage_files_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.db");
    build_sample(&p, 4096);
    let good = std::fs::read(&p).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("10 bytes", good[..10].to_vec()),
        ("one page", good[..4096].to_vec()),
        ("three pages", good[..3 * 4096].to_vec()),
        ("garbage", {
            let mut r = StdRng::seed_from_u64(7);
            (0..65536).map(|_| r.gen()).collect()
        }),
        ("zero pages", vec![0u8; 65536]),
    ];
    for (what, bytes) in cases {
        std::fs::write(&p, &bytes).unwrap();
        for ro in [false, true] {
            match Db::open(&p, &rw().read_only(ro)) {
                Err(BoltError::Corrupt { path, reason, .. }) => {
                    assert_eq!(path, p);
                    assert!(!reason.is_empty());
                }
                other => panic!("{what}: expected Corrupt, got {other:?}"),
            }
        }
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{what}: file modified");
    }
}

#[test]
fn torn_meta_falls_back_to_previous_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("torn.db");
    let db = Db::open(&p, &rw()).unwrap();
    db.update(|tx| tx.create_bucket(b"b")?.put(b"k", b"old"))
        .unwrap();
    let old_txid = db.view(|tx| Ok(tx.id())).unwrap();
    db.update(|tx| tx.bucket(b"b")?.unwrap().put(b"k", b"new"))
        .unwrap();
    let new_txid = db.view(|tx| Ok(tx.id())).unwrap();
    assert_eq!(new_txid, old_txid + 1);
    drop(db);
    // Tear the newest meta page: garble the second half of its meta struct.
    let mut bytes = std::fs::read(&p).unwrap();
    let off = (new_txid % 2) as usize * 4096;
    for b in &mut bytes[off + 48..off + 80] {
        *b = 0xee;
    }
    std::fs::write(&p, &bytes).unwrap();
    let db = Db::open(&p, &rw()).unwrap();
    db.view(|tx| {
        assert_eq!(tx.id(), old_txid);
        assert_eq!(
            tx.bucket(b"b")?.unwrap().get(b"k")?.as_deref(),
            Some(&b"old"[..])
        );
        Ok(())
    })
    .unwrap();
    common::assert_self_check(&db);
    // Writing again works and overwrites the torn meta.
    db.update(|tx| tx.bucket(b"b")?.unwrap().put(b"k", b"newer"))
        .unwrap();
    let l = common::listing(&db).unwrap();
    drop(db);
    common::assert_oracles_accept(&p, &l);
    // Both metas torn: Corrupt naming page 0, never re-initialised.
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[16] ^= 0xff;
    bytes[4096 + 16] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let err = Db::open(&p, &rw()).unwrap_err();
    assert!(matches!(err, BoltError::Corrupt { page: 0, .. }), "{err:?}");
    assert!(
        err.to_string().contains("both meta pages are invalid"),
        "{err}"
    );
}

/// Opens, lists, checks and modifies a (possibly damaged) file. Returns the first error.
fn exercise(p: &Path) -> Result<(), BoltError> {
    {
        let db = Db::open(p, &rw().read_only(true))?;
        common::listing(&db)?;
        db.view(|tx| tx.check())?;
    }
    let db = Db::open(p, &rw())?;
    common::read_db(&db)?;
    db.update(|tx| {
        let b = tx.create_bucket_if_not_exists(b"alpha")?;
        b.put(b"key-0001", b"rewritten")?;
        b.delete(b"key-0002")?;
        tx.create_bucket_if_not_exists(b"fresh")?.put(b"a", b"b")?;
        if tx.bucket(b"big")?.is_some() {
            tx.delete_bucket(b"big")?;
        }
        Ok(())
    })?;
    common::read_db(&db)?;
    Ok(())
}

#[test]
fn single_byte_corruptions_never_panic() {
    let dir = common::fast_tempdir();
    let src = dir.path().join("src.db");
    build_sample(&src, 1024);
    let good = std::fs::read(&src).unwrap();
    let hwm_bytes = {
        // Only bytes below the high-water mark matter.
        let db = Db::open(&src, &rw().read_only(true)).unwrap();
        db.view(|tx| Ok(tx.size())).unwrap() as usize
    };
    let p = dir.path().join("fuzz.db");
    let mut rng = StdRng::seed_from_u64(0xb017);
    // Every header byte of every page, plus random positions anywhere.
    let mut positions: Vec<usize> = (0..hwm_bytes / 1024)
        .flat_map(|pg| (0..96).map(move |o| pg * 1024 + o))
        .collect();
    positions.extend((0..1500).map(|_| rng.gen_range(0..hwm_bytes)));
    let (mut ok, mut corrupt, mut other) = (0, 0, 0);
    for (i, &pos) in positions.iter().enumerate() {
        let mut bytes = good.clone();
        bytes[pos] ^= rng.gen_range(1..=255u8);
        std::fs::write(&p, &bytes).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| exercise(&p)));
        match r {
            Err(_) => panic!(
                "panic on corruption #{i} at byte {pos} (page {})",
                pos / 1024
            ),
            Ok(Ok(())) => ok += 1,
            Ok(Err(BoltError::Corrupt { reason, .. })) => {
                assert!(!reason.is_empty());
                corrupt += 1
            }
            Ok(Err(e)) => {
                // API-level errors caused by damaged data (e.g. a bucket flag flipped on a
                // value) are acceptable; I/O errors are not.
                assert!(
                    !matches!(e, BoltError::Io { .. } | BoltError::Timeout { .. }),
                    "{e:?}"
                );
                other += 1
            }
        }
    }
    eprintln!("single-byte corruptions: {ok} ok, {corrupt} corrupt, {other} other errors");
    assert!(corrupt > 100, "too few corruptions detected: {corrupt}");
    assert!(ok > 0);
}

#[test]
fn multi_byte_garbage_in_pages_never_panics() {
    let dir = common::fast_tempdir();
    let src = dir.path().join("src.db");
    build_sample(&src, 4096);
    let good = std::fs::read(&src).unwrap();
    let p = dir.path().join("g.db");
    let mut rng = StdRng::seed_from_u64(99);
    let mut corrupt = 0;
    for _ in 0..300 {
        let mut bytes = good.clone();
        let pg = rng.gen_range(2..bytes.len() / 4096);
        let start = pg * 4096 + rng.gen_range(0..4096);
        let len = rng.gen_range(1..64).min(bytes.len() - start);
        rng.fill(&mut bytes[start..start + len]);
        if rng.gen_bool(0.2) {
            bytes.truncate(rng.gen_range(2 * 4096..bytes.len()));
        }
        std::fs::write(&p, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| exercise(&p))) {
            Err(_) => panic!("panic on garbage at page {pg}"),
            Ok(Err(BoltError::Corrupt { .. })) => corrupt += 1,
            Ok(_) => {}
        }
    }
    assert!(corrupt > 0);
}
