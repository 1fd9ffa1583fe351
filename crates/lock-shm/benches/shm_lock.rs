//! Lock + unlock of an shm lock: uncontended, and with a second thread
//! hammering the same lock. Target: under 100 ns uncontended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use criterion::{criterion_group, criterion_main, Criterion};
use rpod_lock::{LockManager, LockOptions};
use rpod_lock_shm::ShmLockManager;

fn bench(c: &mut Criterion) {
    let name = format!("rpod_bench_{}", std::process::id());
    let mgr = ShmLockManager::open(&LockOptions::new(64, "/nonexistent").location(name.clone()))
        .expect("open segment");
    let lock = mgr.allocate().expect("allocate");

    c.bench_function("shm/uncontended lock+unlock", |b| {
        b.iter(|| drop(lock.lock().expect("lock")))
    });
    c.bench_function("shm/uncontended try_lock+unlock", |b| {
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
    c.bench_function("shm/contended (2 threads) lock+unlock", |b| {
        b.iter(|| drop(lock.lock().expect("lock")))
    });
    stop.store(true, Ordering::Relaxed);
    other.join().expect("thread");
    mgr.destroy().expect("remove segment");
}

criterion_group!(benches, bench);
criterion_main!(benches);
