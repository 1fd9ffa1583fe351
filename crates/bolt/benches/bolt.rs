//! put / get / iterate at 1,000 and 10,000 keys, and the cost of a one-key commit.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rpod_bolt::{Db, OpenOptions};

fn key(i: u32) -> [u8; 8] {
    let mut k = *b"key-0000";
    k[4..].copy_from_slice(&i.to_be_bytes());
    k
}

fn filled(dir: &std::path::Path, n: u32) -> Db {
    let db = Db::open(dir.join(format!("b{n}.db")), &OpenOptions::new()).unwrap();
    db.update(|tx| {
        let b = tx.create_bucket_if_not_exists(b"bench")?;
        for i in 0..n {
            b.put(&key(i), &[0x5a; 100])?;
        }
        Ok(())
    })
    .unwrap();
    db
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for n in [1_000u32, 10_000] {
        let mut g = c.benchmark_group(format!("n={n}"));
        g.sample_size(20);
        g.bench_function(BenchmarkId::new("put_all_one_tx", n), |b| {
            b.iter_batched(
                || {
                    let p = dir.path().join("put.db");
                    let _ = std::fs::remove_file(&p);
                    Db::open(&p, &OpenOptions::new()).unwrap()
                },
                |db| {
                    db.update(|tx| {
                        let b = tx.create_bucket(b"bench")?;
                        for i in 0..n {
                            b.put(&key(i), &[0x5a; 100])?;
                        }
                        Ok(())
                    })
                    .unwrap()
                },
                BatchSize::PerIteration,
            )
        });
        let db = filled(dir.path(), n);
        g.bench_function(BenchmarkId::new("get_all", n), |b| {
            b.iter(|| {
                db.view(|tx| {
                    let bk = tx.bucket(b"bench")?.unwrap();
                    for i in 0..n {
                        assert!(bk.get(&key(i))?.is_some());
                    }
                    Ok(())
                })
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("iterate", n), |b| {
            b.iter(|| {
                let count = db
                    .view(|tx| Ok(tx.bucket(b"bench")?.unwrap().iter().count()))
                    .unwrap();
                assert_eq!(count, n as usize);
            })
        });
        let mut i = 0u32;
        g.bench_function(BenchmarkId::new("commit_one_put", n), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                db.update(|tx| tx.bucket(b"bench")?.unwrap().put(&key(i % n), b"updated"))
                    .unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(bolt, benches);
criterion_main!(bolt);
