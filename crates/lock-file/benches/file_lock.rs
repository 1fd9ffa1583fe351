//! Lock + unlock of a file lock on tmpfs (where `tmp_dir` normally is):
//! uncontended, and with a second thread hammering the same lock.
//! Target: under 3 µs uncontended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_lock::{LockManager, LockOptions};
use rpod_lock_file::FileLockManager;

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in("/dev/shm").expect("tmpfs scratch dir");
    let mgr = FileLockManager::open(&LockOptions::new(0, tmp.path())).expect("open");
    let lock = mgr.allocate().expect("allocate");

    c.bench_function("file/uncontended lock+unlock", |b| {
        b.iter(|| drop(lock.lock().expect("lock")))
    });
    c.bench_function("file/uncontended try_lock+unlock", |b| {
        b.iter(|| drop(lock.try_lock().expect("try_lock")))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (stop, lock) = (stop.clone(), mgr.retrieve(lock.id()).expect("retrieve"));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                drop(lock.lock().expect("lock"));
            }
        })
    };
    c.bench_function("file/contended (2 threads) lock+unlock", |b| {
        b.iter(|| drop(lock.lock().expect("lock")))
    });
    stop.store(true, Ordering::Relaxed);
    other.join().expect("thread");
    mgr.destroy().expect("remove lock dir");
}

criterion_group!(benches, bench);
criterion_main!(benches);
