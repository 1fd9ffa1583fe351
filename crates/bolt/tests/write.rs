//! Files we write must be read back identically and pass real bbolt's `tx.Check()`
//! (boltcheck) and boltdump's checker.

mod common;

use common::{assert_oracles_accept, assert_self_check, listing, read_db, MBucket, MEntry};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rpod_bolt::{BoltError, Db, OpenOptions};

fn rw() -> OpenOptions {
    OpenOptions::new().timeout(Some(std::time::Duration::from_secs(5)))
}

#[test]
fn fresh_database_is_valid_and_bbolt_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.db");
    let db = Db::open(&p, &rw().page_size(4096)).unwrap();
    let l = listing(&db).unwrap();
    assert_eq!(l, "txid=1 size=16384 pagesize=4096\n");
    assert_self_check(&db);
    drop(db);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 16384);
    assert_oracles_accept(&p, &l);
}

#[test]
fn random_workload_over_many_transactions_passes_bbolt_check() {
    for (seed, ps) in [(1u64, 4096u32), (2, 1024), (3, 16384)] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.db");
        let db = Db::open(&p, &rw().page_size(ps)).unwrap();
        let mut model = MBucket::default();
        let mut rng = StdRng::seed_from_u64(seed);
        let tops: Vec<Vec<u8>> = (0..6).map(|i| format!("top-{i}").into_bytes()).collect();
        for txn in 0..12 {
            db.update(|tx| {
                for _ in 0..rng.gen_range(100..700) {
                    let top = &tops[rng.gen_range(0..tops.len())];
                    let b = tx.create_bucket_if_not_exists(top)?;
                    let mtop = match model
                        .entries
                        .entry(top.clone())
                        .or_insert_with(|| MEntry::Bkt(MBucket::default()))
                    {
                        MEntry::Bkt(m) => m,
                        MEntry::Val(_) => unreachable!(),
                    };
                    // Optionally descend into a nested bucket.
                    let (b, m) = if rng.gen_bool(0.3) {
                        let name = format!("sub-{}", rng.gen_range(0..4)).into_bytes();
                        let sb = b.create_bucket_if_not_exists(&name)?;
                        let e = mtop
                            .entries
                            .entry(name)
                            .or_insert_with(|| MEntry::Bkt(MBucket::default()));
                        match e {
                            MEntry::Bkt(m) => (sb, m),
                            MEntry::Val(_) => unreachable!(),
                        }
                    } else {
                        (b, mtop)
                    };
                    let key = format!("key-{:05}", rng.gen_range(0..3000)).into_bytes();
                    match rng.gen_range(0..100) {
                        0..=59 => {
                            let len = if rng.gen_bool(0.02) {
                                rng.gen_range(5000..60000)
                            } else {
                                rng.gen_range(0..200)
                            };
                            let v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                            b.put(&key, &v)?;
                            m.entries.insert(key, MEntry::Val(v));
                        }
                        60..=89 => {
                            b.delete(&key)?;
                            m.entries.remove(&key);
                        }
                        90..=94 => {
                            let s = b.next_sequence()?;
                            m.seq += 1;
                            assert_eq!(s, m.seq);
                        }
                        _ => {
                            let v = rng.gen_range(0..1_000_000);
                            b.set_sequence(v)?;
                            m.seq = v;
                        }
                    }
                }
                // Occasionally drop a whole bucket tree.
                if txn % 4 == 3 {
                    let top = &tops[rng.gen_range(0..tops.len())];
                    match tx.delete_bucket(top) {
                        Ok(()) => assert!(model.entries.remove(top).is_some()),
                        Err(BoltError::BucketNotFound) => assert!(!model.entries.contains_key(top)),
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(read_db(&db).unwrap(), model, "seed {seed} txn {txn}");
            assert_self_check(&db);
        }
        let l = listing(&db).unwrap();
        drop(db);
        assert_oracles_accept(&p, &l);
        // Reopen: same content.
        let db = Db::open(&p, &rw()).unwrap();
        assert_eq!(read_db(&db).unwrap(), model);
        assert_eq!(db.page_size(), ps);
    }
}

#[test]
fn reopen_after_close_persists_everything() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.db");
    {
        let db = Db::open(&p, &rw()).unwrap();
        db.update(|tx| {
            let b = tx.create_bucket(b"alpha")?;
            b.put(b"k1", b"v1")?;
            b.put(b"empty", b"")?;
            b.set_sequence(41)?;
            assert_eq!(b.next_sequence()?, 42);
            let n = b.create_bucket(b"nested")?;
            n.put(b"deep", &vec![7u8; 10_000])?;
            Ok(())
        })
        .unwrap();
        db.close();
    }
    let db = Db::open(&p, &rw()).unwrap();
    db.view(|tx| {
        let b = tx.bucket(b"alpha")?.expect("alpha");
        assert_eq!(b.get(b"k1")?.as_deref(), Some(&b"v1"[..]));
        assert_eq!(b.get(b"empty")?.as_deref(), Some(&b""[..]));
        assert_eq!(b.get(b"missing")?, None);
        assert_eq!(b.sequence()?, 42);
        assert_eq!(b.get(b"nested")?, None, "bucket key reads as None");
        let n = b.bucket(b"nested")?.expect("nested");
        assert_eq!(n.get(b"deep")?.unwrap(), vec![7u8; 10_000]);
        assert_ne!(n.root(), 0, "a 10 KB value cannot be inline");
        Ok(())
    })
    .unwrap();
    let l = listing(&db).unwrap();
    drop(db);
    assert_oracles_accept(&p, &l);
}

#[test]
fn api_errors_mirror_bbolt() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("e.db"), &rw()).unwrap();
    db.update(|tx| {
        let b = tx.create_bucket(b"b")?;
        assert!(matches!(
            tx.create_bucket(b"b"),
            Err(BoltError::BucketExists)
        ));
        assert!(matches!(
            tx.delete_bucket(b"nope"),
            Err(BoltError::BucketNotFound)
        ));
        assert!(matches!(tx.create_bucket(b""), Err(BoltError::KeyRequired)));
        b.put(b"v", b"1")?;
        b.create_bucket(b"sub")?;
        assert!(matches!(
            b.put(b"sub", b"x"),
            Err(BoltError::IncompatibleValue)
        ));
        assert!(matches!(
            b.delete(b"sub"),
            Err(BoltError::IncompatibleValue)
        ));
        assert!(matches!(
            b.create_bucket(b"v"),
            Err(BoltError::IncompatibleValue)
        ));
        assert!(matches!(
            b.delete_bucket(b"v"),
            Err(BoltError::IncompatibleValue)
        ));
        assert!(matches!(
            b.create_bucket_if_not_exists(b"v"),
            Err(BoltError::IncompatibleValue)
        ));
        assert!(b.bucket(b"v")?.is_none());
        assert!(matches!(
            b.put(&vec![1u8; 32769], b""),
            Err(BoltError::KeyTooLarge { len: 32769 })
        ));
        b.put(&vec![1u8; 32768], b"max key ok")?;
        assert!(matches!(b.put(b"", b"x"), Err(BoltError::KeyRequired)));
        // A handle on a deleted bucket stops working.
        let sub = b.bucket(b"sub")?.unwrap();
        let subsub = sub.create_bucket(b"inner")?;
        b.delete_bucket(b"sub")?;
        assert!(matches!(
            sub.put(b"a", b"b"),
            Err(BoltError::BucketNotFound)
        ));
        assert!(matches!(subsub.get(b"a"), Err(BoltError::BucketNotFound)));
        Ok(())
    })
    .unwrap();
    // Rollback on error: nothing from the failed closure is visible.
    let r: Result<(), _> = db.update(|tx| {
        tx.create_bucket(b"ghost")?;
        Err(BoltError::BucketNotFound)
    });
    assert!(r.is_err());
    db.view(|tx| {
        assert!(tx.bucket(b"ghost")?.is_none());
        assert!(tx.bucket(b"b")?.unwrap().get(&vec![1u8; 32768])?.is_some());
        assert!(matches!(tx.create_bucket(b"x"), Err(BoltError::ReadOnly)));
        Ok(())
    })
    .unwrap();
    assert_self_check(&db);
}

#[test]
fn inline_buckets_are_inline_and_big_ones_spill() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.db");
    let db = Db::open(&p, &rw().page_size(4096)).unwrap();
    db.update(|tx| {
        let small = tx.create_bucket(b"small")?;
        small.put(b"a", b"1")?;
        small.set_sequence(9)?;
        tx.create_bucket(b"empty")?;
        let big = tx.create_bucket(b"big")?;
        for i in 0..200 {
            big.put(format!("{i:04}").as_bytes(), b"0123456789")?;
        }
        tx.create_bucket(b"parent")?.create_bucket(b"child")?;
        Ok(())
    })
    .unwrap();
    db.view(|tx| {
        assert_eq!(tx.bucket(b"small")?.unwrap().root(), 0);
        assert_eq!(tx.bucket(b"small")?.unwrap().sequence()?, 9);
        assert_eq!(tx.bucket(b"empty")?.unwrap().root(), 0);
        assert_ne!(tx.bucket(b"big")?.unwrap().root(), 0);
        // A bucket holding a sub-bucket is never inline.
        let parent = tx.bucket(b"parent")?.unwrap();
        assert_ne!(parent.root(), 0);
        assert_eq!(parent.bucket(b"child")?.unwrap().root(), 0);
        Ok(())
    })
    .unwrap();
    // Shrinking a spilled bucket makes it inline again, freeing its pages.
    db.update(|tx| {
        let big = tx.bucket(b"big")?.unwrap();
        for i in 1..200 {
            big.delete(format!("{i:04}").as_bytes())?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|tx| {
        assert_eq!(tx.bucket(b"big")?.unwrap().root(), 0);
        Ok(())
    })
    .unwrap();
    assert_self_check(&db);
    let l = listing(&db).unwrap();
    drop(db);
    assert_oracles_accept(&p, &l);
}

#[test]
fn iteration_is_ordered_and_survives_modification() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("it.db"), &rw().page_size(1024)).unwrap();
    let mut keys: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    keys.push(vec![0xff]);
    keys.push(vec![0x00, 0x00]);
    db.update(|tx| {
        let b = tx.create_bucket(b"k")?;
        for k in keys.iter().rev() {
            b.put(k, k)?;
        }
        Ok(())
    })
    .unwrap();
    keys.sort();
    db.update(|tx| {
        let b = tx.bucket(b"k")?.unwrap();
        let got: Vec<Vec<u8>> = b
            .iter()
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(got, keys);
        let from: Vec<Vec<u8>> = b
            .iter_from(&1000u32.to_be_bytes())
            .take(3)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            from,
            keys[keys
                .iter()
                .position(|k| k == &1000u32.to_be_bytes())
                .unwrap()..][..3]
        );
        // Delete every other key while iterating (switches from disk to memory mid-way).
        let mut n = 0;
        for (i, r) in b.iter().enumerate() {
            let (k, v) = r?;
            assert_eq!(Some(&k), v.as_ref());
            if i % 2 == 0 {
                b.delete(&k)?;
            }
            n += 1;
        }
        assert_eq!(n, keys.len());
        Ok(())
    })
    .unwrap();
    db.view(|tx| {
        let b = tx.bucket(b"k")?.unwrap();
        let got: Vec<Vec<u8>> = b
            .iter()
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        let want: Vec<Vec<u8>> = keys.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(got, want);
        Ok(())
    })
    .unwrap();
    assert_self_check(&db);
}

#[test]
fn large_freelist_uses_the_0xffff_form() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fl.db");
    let db = Db::open(&p, &rw().page_size(1024)).unwrap();
    // A 70 MB value spans ~70k 1 KiB pages; deleting it frees them all.
    db.update(|tx| {
        tx.create_bucket(b"b")?
            .put(b"huge", &vec![0xab; 70_000 * 1024])
    })
    .unwrap();
    db.update(|tx| tx.bucket(b"b")?.unwrap().delete(b"huge"))
        .unwrap();
    db.update(|tx| tx.bucket(b"b")?.unwrap().put(b"small", b"x"))
        .unwrap();
    assert_self_check(&db);
    let l = listing(&db).unwrap();
    drop(db);
    // Find the freelist page through the active meta and check its header count.
    let bytes = std::fs::read(&p).unwrap();
    let meta = |i: usize| {
        let m = &bytes[i * 1024 + 16..i * 1024 + 80];
        let txid = u64::from_le_bytes(m[48..56].try_into().unwrap());
        let fl = u64::from_le_bytes(m[32..40].try_into().unwrap());
        (txid, fl)
    };
    let (fl_page, _) = [meta(0), meta(1)]
        .into_iter()
        .map(|(t, f)| (f, t))
        .max_by_key(|x| x.1)
        .unwrap();
    let off = fl_page as usize * 1024;
    assert_eq!(u16::from_le_bytes([bytes[off + 8], bytes[off + 9]]), 0x10);
    assert_eq!(
        u16::from_le_bytes([bytes[off + 10], bytes[off + 11]]),
        0xFFFF
    );
    let n = u64::from_le_bytes(bytes[off + 16..off + 24].try_into().unwrap());
    assert!(n > 0xFFFF, "freelist holds {n} ids");
    assert_oracles_accept(&p, &l);
    // And we read it back in read-write mode (freelist decoded) and can keep writing.
    let db = Db::open(&p, &rw()).unwrap();
    db.update(|tx| tx.bucket(b"b")?.unwrap().put(b"again", &vec![1; 5000]))
        .unwrap();
    assert_self_check(&db);
    let size_before = std::fs::metadata(&p).unwrap().len();
    db.update(|tx| tx.bucket(b"b")?.unwrap().put(b"more", &vec![2; 500_000]))
        .unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        size_before,
        "freed pages are reused"
    );
}

#[test]
fn modifying_a_podman_fixture_keeps_it_valid() {
    let fixtures = common::fixtures();
    let dir = tempfile::tempdir().unwrap();
    for (i, f) in fixtures.iter().enumerate() {
        let p = common::copy_to(f, dir.path(), &format!("m{i}.db"));
        let db = Db::open(&p, &rw()).unwrap();
        let before = read_db(&db).unwrap();
        db.update(|tx| {
            let ctr = tx.bucket(b"ctr")?.expect("ctr bucket");
            let c = ctr.create_bucket(b"zz-new-container")?;
            c.put(b"config", &vec![b'{'; 12_000])?;
            c.put(b"state", b"{\"state\":1}")?;
            c.create_bucket(b"dependencies")?;
            tx.bucket(b"all-ctrs")?
                .unwrap()
                .put(b"zz-new-container", b"new-ctr")?;
            tx.bucket(b"runtime-config")?
                .unwrap()
                .put(b"os", b"linux")?;
            Ok(())
        })
        .unwrap();
        db.update(|tx| {
            // Remove the first pre-existing container bucket entirely.
            let ctr = tx.bucket(b"ctr")?.unwrap();
            let first = ctr.iter().next().unwrap()?.0;
            ctr.delete_bucket(&first)?;
            Ok(())
        })
        .unwrap();
        assert_self_check(&db);
        let after = read_db(&db).unwrap();
        assert_ne!(before, after);
        let l = listing(&db).unwrap();
        assert!(l.contains("[zz-new-container] root="));
        drop(db);
        assert_oracles_accept(&p, &l);
    }
}

/// Number of non-meta pages whose bytes differ between two images of a database file.
fn pages_changed(before: &[u8], after: &[u8], ps: usize) -> usize {
    let n = before.len().max(after.len()).div_ceil(ps);
    (2..n)
        .filter(|&i| {
            let r = |b: &[u8]| {
                b.get(i * ps..((i + 1) * ps).min(b.len()))
                    .map(<[u8]>::to_vec)
            };
            r(before) != r(after)
        })
        .count()
}

/// Commits are copy-on-write per node: putting one key into a big bucket rewrites only the
/// path from the bucket root to the leaf (plus the root bucket and the freelist), however
/// big the bucket is.
#[test]
fn small_change_to_big_bucket_writes_few_pages() {
    let mut written = Vec::new();
    for n in [5_000u32, 50_000] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cow.db");
        let db = Db::open(&p, &rw().page_size(4096)).unwrap();
        db.update(|tx| {
            let b = tx.create_bucket(b"big")?;
            for i in 0..n {
                b.put(format!("key{i:08}").as_bytes(), &[7u8; 40])?;
            }
            // Many small (inline) sub-buckets, as the state backend's container buckets.
            let c = tx.create_bucket(b"c")?;
            for i in 0..n / 10 {
                c.create_bucket(format!("ctr{i:08}").as_bytes())?
                    .put(b"config", &[1u8; 100])?;
            }
            Ok(())
        })
        .unwrap();
        let size_before = std::fs::metadata(&p).unwrap().len();
        for (round, step) in [
            ("put", 0),
            ("overwrite", 1),
            ("delete", 2),
            ("new sub-bucket", 3),
        ] {
            let before = std::fs::read(&p).unwrap();
            db.update(|tx| {
                match step {
                    0 => tx.bucket(b"big")?.unwrap().put(b"key00002500x", b"v")?,
                    1 => tx.bucket(b"big")?.unwrap().put(b"key00000100", b"w")?,
                    2 => tx.bucket(b"big")?.unwrap().delete(b"key00001000")?,
                    _ => {
                        let c = tx.bucket(b"c")?.unwrap();
                        c.create_bucket(b"ctr00000042x")?.put(b"config", b"x")?;
                    }
                }
                Ok(())
            })
            .unwrap();
            let after = std::fs::read(&p).unwrap();
            let changed = pages_changed(&before, &after, 4096);
            // Leaf + branches of the bucket (depth <= 3), the root bucket, the freelist.
            assert!(changed <= 8, "n={n}, {round}: {changed} pages written");
            written.push(changed);
        }
        assert_eq!(std::fs::metadata(&p).unwrap().len(), size_before);
        db.view(|tx| {
            let b = tx.bucket(b"big")?.unwrap();
            assert_eq!(b.get(b"key00002500x")?.as_deref(), Some(&b"v"[..]));
            assert_eq!(b.get(b"key00000100")?.as_deref(), Some(&b"w"[..]));
            assert_eq!(b.get(b"key00001000")?, None);
            assert_eq!(b.iter().count() as u32, n);
            let c = tx.bucket(b"c")?.unwrap();
            assert!(c.bucket(b"ctr00000042x")?.is_some());
            assert_eq!(c.iter().count() as u32, n / 10 + 1);
            Ok(())
        })
        .unwrap();
        assert_self_check(&db);
        let l = listing(&db).unwrap();
        drop(db);
        assert_oracles_accept(&p, &l);
    }
    eprintln!("pages written per small commit: {written:?}");
}

/// Deleting most keys of a big bucket, a few per transaction, merges underfull leaves: the
/// tree collapses back to a single leaf (here small enough to become an inline bucket) and
/// stays bbolt-valid.
#[test]
fn deletions_rebalance_underfull_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shrink.db");
    let db = Db::open(&p, &rw().page_size(4096)).unwrap();
    let key = |i: u32| format!("key{i:08}").into_bytes();
    db.update(|tx| {
        let b = tx.create_bucket(b"big")?;
        for i in 0..5_000 {
            b.put(&key(i), &[7u8; 40])?;
        }
        Ok(())
    })
    .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut live: Vec<u32> = (0..5_000).collect();
    while live.len() > 5 {
        db.update(|tx| {
            let b = tx.bucket(b"big")?.unwrap();
            for _ in 0..97 {
                if live.len() > 5 {
                    let k = live.swap_remove(rng.gen_range(0..live.len()));
                    b.delete(&key(k))?;
                }
            }
            Ok(())
        })
        .unwrap();
    }
    live.sort_unstable();
    db.view(|tx| {
        let b = tx.bucket(b"big")?.unwrap();
        let keys: Vec<Vec<u8>> = b.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, live.iter().map(|&i| key(i)).collect::<Vec<_>>());
        assert_eq!(
            b.root(),
            0,
            "5 small keys left: the bucket must be inline again"
        );
        Ok(())
    })
    .unwrap();
    assert_self_check(&db);
    let l = listing(&db).unwrap();
    drop(db);
    assert_oracles_accept(&p, &l);
}
