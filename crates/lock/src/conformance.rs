//! The conformance suite every lock backend must pass (feature `conformance`).
//!
//! Each public function checks one part of the [`LockManager`] / [`Lock`](crate::Lock)
//! contract against a backend described by a [`Subject`], using real storage
//! in a fresh temporary directory. [`lock_conformance_tests!`](crate::lock_conformance_tests)
//! expands all of them into individually named `#[test]`s:
//!
//! ```text
//! // tests/conformance.rs of a backend crate
//! use rpod_lock::conformance::Subject;
//!
//! const SUBJECT: Subject = Subject {
//!     backend: "mine",
//!     factory: my_backend::open_factory as rpod_lock::LockFactory,
//!     options: |scratch, n| rpod_lock::LockOptions::new(n, scratch).location(…unique per call…),
//!     limited: true,
//! };
//! rpod_lock::lock_conformance_tests!(SUBJECT);
//! ```
//!
//! Multi-process tests re-execute the current test binary, running only the
//! same test (`<name> --exact`), with [`CHILD_ENV`] set: the test function
//! then plays the child's part instead. This works under `cargo test -p` and
//! a workspace `cargo test` alike, and needs no helper binary.
//!
//! The suite is not semver-stable: tests are added as the contract is refined.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::{LockError, LockFactory, LockManager, LockOptions};

/// The backend under test.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    /// The backend's name, for messages.
    pub backend: &'static str,
    /// Opens the backend.
    pub factory: LockFactory,
    /// Options for a fresh, private storage for `num_locks` locks inside the
    /// scratch directory (or named after it, for storage that lives
    /// elsewhere, like an SHM segment). Each call must give a new location.
    pub options: fn(scratch: &Path, num_locks: u32) -> LockOptions,
    /// Whether the backend has a fixed number of locks (`available()` is `Some`).
    pub limited: bool,
}

/// Set in the environment of child processes to the part they play.
pub const CHILD_ENV: &str = "RPOD_LOCK_CONFORMANCE_CHILD";
const ENV_NUM: &str = "RPOD_LOCK_CONFORMANCE_NUM_LOCKS";
const ENV_LOCATION: &str = "RPOD_LOCK_CONFORMANCE_LOCATION";
const ENV_TMP: &str = "RPOD_LOCK_CONFORMANCE_TMP_DIR";
const ENV_ID: &str = "RPOD_LOCK_CONFORMANCE_ID";
const ENV_DIR: &str = "RPOD_LOCK_CONFORMANCE_DIR";
const ENV_ITER: &str = "RPOD_LOCK_CONFORMANCE_ITERATIONS";
const ENV_INDEX: &str = "RPOD_LOCK_CONFORMANCE_INDEX";
const ENV_BARRIER: &str = "RPOD_LOCK_CONFORMANCE_BARRIER";

const TIMEOUT: Duration = Duration::from_secs(60);

/// The name libtest knows a test by, from the `module_path!()` of the module
/// the test is in (whose first segment is the crate) and the function name.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{name}"),
        None => name.to_string(),
    }
}

/// Expands every conformance test for a [`Subject`] into its own `#[test]`.
#[macro_export]
macro_rules! lock_conformance_tests {
    ($subject:expr $(,)?) => {
        $crate::lock_conformance_tests!(@in_process $subject;
            allocate_lowest_free_first,
            exhaustion_and_available_count,
            retrieve_does_not_allocate,
            allocate_given_marks_allocated,
            free_and_free_all,
            allocated_list_tracks_allocations,
            relock_by_same_thread_is_an_error,
            try_lock_reports_busy,
            handles_share_one_lock,
            handle_after_free_and_reallocation,
            guard_unlock_and_flags,
            reallocate_sets_exact_allocations,
            mutual_exclusion_between_threads,
        );
        $crate::lock_conformance_tests!(@multi_process $subject;
            mutual_exclusion_between_processes,
            allocation_between_processes_is_unique,
            dead_owner_recovery,
            reallocate_with_processes_waiting,
        );
    };
    (@in_process $subject:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$subject);
            }
        )*
    };
    (@multi_process $subject:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(
                    &$subject,
                    &$crate::conformance::test_name(
                        ::core::module_path!(),
                        ::core::stringify!($name),
                    ),
                );
            }
        )*
    };
}

/// A private storage, destroyed at the end of the test.
struct Fixture {
    dir: tempfile::TempDir,
    opts: LockOptions,
    mgr: Box<dyn LockManager>,
    subject: Subject,
}

impl Fixture {
    fn new(s: &Subject, num_locks: u32) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rpod-lock-conformance-")
            .tempdir()
            .expect("creating a scratch directory");
        let opts = (s.options)(dir.path(), num_locks);
        let mgr = (s.factory)(&opts).unwrap_or_else(|e| {
            panic!("opening the {} lock manager with {opts:?}: {e}", s.backend)
        });
        Fixture {
            dir,
            opts,
            mgr,
            subject: *s,
        }
    }

    fn reopen(&self) -> Box<dyn LockManager> {
        (self.subject.factory)(&self.opts)
            .unwrap_or_else(|e| panic!("reopening the {} lock manager: {e}", self.subject.backend))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// How many locks the manager has (limited backends).
    fn total(&self) -> u32 {
        self.mgr
            .available()
            .expect("available()")
            .expect("a limited backend reports a count")
    }

    fn spawn(&self, test: &str, role: &str, index: usize, vars: &[(&str, String)]) -> Proc {
        let exe = std::env::current_exe().expect("current_exe");
        let log = self.path(&format!("{role}-{index}.log"));
        let out = fs::File::create(&log).expect("creating a child log");
        let mut cmd = Command::new(exe);
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, role)
            .env(ENV_NUM, self.opts.num_locks.to_string())
            .env(ENV_LOCATION, self.opts.location.clone().unwrap_or_default())
            .env(ENV_TMP, &self.opts.tmp_dir)
            .env(ENV_DIR, self.dir.path())
            .env(ENV_INDEX, index.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("re-executing the test binary for {test}: {e}"));
        Proc { child, log }
    }

    /// Waits for `path` to exist while `proc` runs.
    fn wait_for_file(&self, path: &Path, proc: &mut Proc) {
        let start = Instant::now();
        while !path.exists() {
            if let Some(st) = proc.child.try_wait().expect("try_wait") {
                panic!(
                    "child exited early ({st}) before creating {}:\n{}",
                    path.display(),
                    proc.output()
                );
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "timed out waiting for {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Err(e) = self.mgr.destroy() {
            eprintln!("destroying the {} lock storage: {e}", self.subject.backend);
        }
    }
}

struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for a successful exit.
    fn finish(mut self) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                assert!(st.success(), "child failed ({st}):\n{}", self.output());
                return;
            }
            if start.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child did not finish in {TIMEOUT:?}:\n{}", self.output());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Never leave a child behind (a failed assertion unwinding).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child process: {name} is not set"))
}

fn env_u32(name: &str) -> u32 {
    env(name)
        .parse()
        .unwrap_or_else(|e| panic!("child process: {name}: {e}"))
}

/// Read-modify-write of a counter in a file, with a window for a lost update
/// if the lock does not exclude.
fn bump(path: &Path) {
    let n: u64 = fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    thread::sleep(Duration::from_micros(20));
    fs::write(path, (n + 1).to_string()).expect("writing the counter");
}

fn read_counter(path: &Path) -> u64 {
    fs::read_to_string(path)
        .expect("reading the counter")
        .trim()
        .parse()
        .expect("counter is a number")
}

fn wait_for_all(dir: &Path, prefix: &str, n: usize) {
    let start = Instant::now();
    while (0..n).any(|i| !dir.join(format!("{prefix}-{i}")).exists()) {
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out waiting for {n} {prefix} files"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// If this process is a child of a multi-process test, plays its part and
/// returns `true` (the test function then returns at once).
pub fn run_child_if_requested(s: &Subject) -> bool {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let location = env(ENV_LOCATION);
    let opts = LockOptions {
        num_locks: env_u32(ENV_NUM),
        location: (!location.is_empty()).then_some(location),
        tmp_dir: env(ENV_TMP).into(),
        renumber: false,
    };
    let dir = PathBuf::from(env(ENV_DIR));
    let index = env(ENV_INDEX);
    let mgr = (s.factory)(&opts).unwrap_or_else(|e| panic!("child: opening the lock manager: {e}"));
    match role.as_str() {
        // Increment the counter ITER times, each under the lock.
        "count" => {
            let lock = mgr.retrieve(env_u32(ENV_ID)).expect("child: retrieve");
            let iterations = env_u32(ENV_ITER);
            fs::write(dir.join(format!("started-{index}")), "").expect("child: started file");
            if let Ok(n) = std::env::var(ENV_BARRIER) {
                wait_for_all(&dir, "started", n.parse().expect("barrier count"));
            }
            for _ in 0..iterations {
                let guard = lock.lock().expect("child: lock");
                bump(&dir.join("counter"));
                guard.unlock().expect("child: unlock");
            }
        }
        // Allocate ITER locks and write their ids down.
        "allocate" => {
            let iterations = env_u32(ENV_ITER);
            fs::write(dir.join(format!("started-{index}")), "").expect("child: started file");
            if let Ok(n) = std::env::var(ENV_BARRIER) {
                wait_for_all(&dir, "started", n.parse().expect("barrier count"));
            }
            let mut ids = String::new();
            for _ in 0..iterations {
                let lock = mgr.allocate().expect("child: allocate");
                ids.push_str(&format!("{}\n", lock.id()));
            }
            fs::write(dir.join(format!("ids-{index}")), ids).expect("child: ids file");
        }
        // Take the lock, say so, and wait to be killed.
        "hold" => {
            let lock = mgr.retrieve(env_u32(ENV_ID)).expect("child: retrieve");
            let _guard = lock.lock().expect("child: lock");
            let mut f = fs::File::create(dir.join(format!("ready-{index}"))).expect("child: ready");
            f.write_all(b"held").expect("child: ready");
            drop(f);
            thread::sleep(TIMEOUT);
            panic!("child: was not killed");
        }
        other => panic!("child: unknown role {other:?}"),
    }
    true
}

fn allocate_n(mgr: &dyn LockManager, n: u32) -> Vec<u32> {
    (0..n)
        .map(|_| mgr.allocate().expect("allocate").id())
        .collect()
}

// ---------------------------------------------------------------------------
// In-process tests
// ---------------------------------------------------------------------------

/// Allocation hands out distinct ids, lowest free first, and reuses a freed id.
pub fn allocate_lowest_free_first(s: &Subject) {
    let fx = Fixture::new(s, 64);
    assert_eq!(allocate_n(&*fx.mgr, 5), vec![0, 1, 2, 3, 4]);
    fx.mgr.free(2).expect("free 2");
    assert_eq!(
        fx.mgr.allocate().expect("allocate").id(),
        2,
        "lowest free id first"
    );
    assert_eq!(fx.mgr.allocate().expect("allocate").id(), 5);
}

/// A limited backend allocates exactly its count, then fails with the
/// message users know; an unlimited one reports `None` and keeps going.
pub fn exhaustion_and_available_count(s: &Subject) {
    let fx = Fixture::new(s, 40);
    if !s.limited {
        assert_eq!(fx.mgr.available().expect("available"), None);
        let ids = allocate_n(&*fx.mgr, 100);
        assert_eq!(ids, (0..100).collect::<Vec<_>>());
        assert_eq!(fx.mgr.available().expect("available"), None);
        return;
    }
    let total = fx.total();
    assert!(total >= 40, "asked for 40 locks, got {total}");
    let ids = allocate_n(&*fx.mgr, total);
    assert_eq!(ids, (0..total).collect::<Vec<_>>());
    assert_eq!(fx.mgr.available().expect("available"), Some(0));
    let err = fx
        .mgr
        .allocate()
        .expect_err("allocating past the limit must fail");
    assert!(
        matches!(err, LockError::Exhausted { limit } if limit == total),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("allocation failed; exceeded num_locks ({total})")
    );
    fx.mgr.free(7).expect("free 7");
    assert_eq!(fx.mgr.available().expect("available"), Some(1));
    assert_eq!(fx.mgr.allocate().expect("allocate after free").id(), 7);
}

/// `retrieve` returns the id asked for and allocates nothing.
pub fn retrieve_does_not_allocate(s: &Subject) {
    let fx = Fixture::new(s, 32);
    let before = fx.mgr.available().expect("available");
    let lock = fx.mgr.retrieve(5).expect("retrieve 5");
    assert_eq!(lock.id(), 5);
    assert_eq!(fx.mgr.allocated().expect("allocated"), Vec::<u32>::new());
    assert_eq!(fx.mgr.available().expect("available"), before);
    assert_eq!(fx.mgr.allocate().expect("allocate").id(), 0);
    if s.limited {
        let total = fx.total() + 1;
        let err = fx.mgr.retrieve(total).expect_err("retrieve out of range");
        assert!(
            matches!(err, LockError::OutOfRange { id, limit } if id == total && limit == total),
            "{err:?}"
        );
    }
}

/// `allocate_given` marks that id, refuses it twice, and allocation skips it.
pub fn allocate_given_marks_allocated(s: &Subject) {
    let fx = Fixture::new(s, 32);
    assert_eq!(fx.mgr.allocate_given(7).expect("allocate_given 7").id(), 7);
    let err = fx.mgr.allocate_given(7).expect_err("allocating 7 twice");
    assert!(
        matches!(err, LockError::AlreadyAllocated { id: 7 }),
        "{err:?}"
    );
    assert_eq!(allocate_n(&*fx.mgr, 8), vec![0, 1, 2, 3, 4, 5, 6, 8]);
    let err = fx
        .mgr
        .allocate_given(3)
        .expect_err("allocating an allocated id");
    assert!(
        matches!(err, LockError::AlreadyAllocated { id: 3 }),
        "{err:?}"
    );
    if s.limited {
        let total = fx.total() + 9;
        let err = fx
            .mgr
            .allocate_given(total)
            .expect_err("allocate_given out of range");
        assert!(
            matches!(err, LockError::OutOfRange { id, limit } if id == total && limit == total),
            "{err:?}"
        );
    }
}

/// Freeing an unallocated id is an error; `free_all` empties everything.
pub fn free_and_free_all(s: &Subject) {
    let fx = Fixture::new(s, 32);
    let err = fx.mgr.free(3).expect_err("freeing an unallocated lock");
    assert!(matches!(err, LockError::NotAllocated { id: 3 }), "{err:?}");
    let initial = fx.mgr.available().expect("available");
    allocate_n(&*fx.mgr, 3);
    fx.mgr.free(1).expect("free 1");
    assert_eq!(fx.mgr.allocated().expect("allocated"), vec![0, 2]);
    let err = fx.mgr.free(1).expect_err("freeing twice");
    assert!(matches!(err, LockError::NotAllocated { id: 1 }), "{err:?}");
    fx.mgr.free_all().expect("free_all");
    assert_eq!(fx.mgr.allocated().expect("allocated"), Vec::<u32>::new());
    assert_eq!(fx.mgr.available().expect("available"), initial);
    assert_eq!(fx.mgr.allocate().expect("allocate").id(), 0);
    fx.mgr.free_all().expect("free_all of almost nothing");
    fx.mgr.free_all().expect("free_all of nothing");
}

/// `allocated` and `available` follow allocations, frees and given ids, and
/// another manager on the same storage sees the same.
pub fn allocated_list_tracks_allocations(s: &Subject) {
    let fx = Fixture::new(s, 64);
    let initial = fx.mgr.available().expect("available");
    fx.mgr.allocate_given(40).expect("allocate_given 40");
    allocate_n(&*fx.mgr, 3);
    fx.mgr.allocate_given(20).expect("allocate_given 20");
    fx.mgr.free(1).expect("free 1");
    assert_eq!(fx.mgr.allocated().expect("allocated"), vec![0, 2, 20, 40]);
    if let Some(initial) = initial {
        assert_eq!(fx.mgr.available().expect("available"), Some(initial - 4));
    }
    let other = fx.reopen();
    assert_eq!(other.allocated().expect("allocated"), vec![0, 2, 20, 40]);
    assert_eq!(
        other.allocate().expect("allocate via second manager").id(),
        1
    );
    assert_eq!(
        fx.mgr.allocated().expect("allocated"),
        vec![0, 1, 2, 20, 40]
    );
}

/// A thread locking what it holds gets `WouldDeadlock`, through any handle.
pub fn relock_by_same_thread_is_an_error(s: &Subject) {
    let fx = Fixture::new(s, 32);
    let lock = fx.mgr.allocate().expect("allocate");
    let id = lock.id();
    let other = fx.mgr.allocate().expect("allocate");
    let guard = lock.lock().expect("lock");
    assert!(lock.is_held_by_current_thread());
    let is_deadlock = |r: Result<(), LockError>, how: &str| match r {
        Err(LockError::WouldDeadlock { id: got }) if got == id => {}
        other => panic!("{how}: expected WouldDeadlock {{ id: {id} }}, got {other:?}"),
    };
    is_deadlock(lock.lock().map(drop), "lock again");
    is_deadlock(lock.try_lock().map(drop), "try_lock again");
    is_deadlock(
        fx.mgr.retrieve(id).expect("retrieve").lock().map(drop),
        "lock via a second handle",
    );
    let second = fx.reopen();
    is_deadlock(
        second.retrieve(id).expect("retrieve").lock().map(drop),
        "lock via a second manager",
    );
    // Other locks are unaffected, and other threads simply find it busy.
    let g2 = other.lock().expect("a different lock");
    let l = lock.clone();
    let busy = thread::spawn(move || l.try_lock().map(|g| g.is_some()).map_err(|e| e.to_string()))
        .join()
        .expect("thread");
    assert_eq!(busy, Ok(false), "another thread must see the lock busy");
    drop(g2);
    drop(guard);
    assert!(!lock.is_held_by_current_thread());
    lock.lock()
        .expect("lock after release")
        .unlock()
        .expect("unlock");
}

/// `try_lock` takes a free lock, reports a held one as busy, and `lock`
/// blocks until the holder releases.
pub fn try_lock_reports_busy(s: &Subject) {
    let fx = Fixture::new(s, 32);
    let lock = fx.mgr.allocate().expect("allocate");
    let guard = lock
        .try_lock()
        .expect("try_lock")
        .expect("a free lock is taken");
    assert!(!guard.previous_owner_died());
    let l = lock.clone();
    let busy = thread::spawn(move || l.try_lock().map(|g| g.is_none()).map_err(|e| e.to_string()));
    assert_eq!(busy.join().expect("thread"), Ok(true));
    drop(guard);
    let l = lock.clone();
    let free = thread::spawn(move || l.try_lock().map(|g| g.is_some()).map_err(|e| e.to_string()));
    assert_eq!(free.join().expect("thread"), Ok(true));

    // lock() waits for the holder.
    let released = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (l, r) = (lock.clone(), released.clone());
    let holder = thread::spawn(move || {
        let g = l.lock().expect("holder lock");
        tx.send(()).expect("send");
        thread::sleep(Duration::from_millis(100));
        r.store(true, Ordering::SeqCst);
        drop(g);
    });
    rx.recv().expect("holder started");
    let g = lock.lock().expect("lock");
    assert!(
        released.load(Ordering::SeqCst),
        "lock() returned while another thread held the lock"
    );
    drop(g);
    holder.join().expect("holder");
}

/// Two handles of one id, from one or two managers, are one lock.
pub fn handles_share_one_lock(s: &Subject) {
    let fx = Fixture::new(s, 32);
    let id = fx.mgr.allocate().expect("allocate").id();
    let second = fx.reopen();
    let a = fx.mgr.retrieve(id).expect("retrieve");
    let b = fx.mgr.retrieve(id).expect("retrieve");
    let c = second.retrieve(id).expect("retrieve via second manager");
    let g = a.lock().expect("lock");
    let (b2, c2) = (b.clone(), c.clone());
    let res = thread::spawn(move || {
        let b = b2
            .try_lock()
            .map(|g| g.is_none())
            .map_err(|e| e.to_string());
        let c = c2
            .try_lock()
            .map(|g| g.is_none())
            .map_err(|e| e.to_string());
        (b, c)
    })
    .join()
    .expect("thread");
    assert_eq!(
        res,
        (Ok(true), Ok(true)),
        "other handles of a held lock must find it busy"
    );
    drop(g);
    let g = c.lock().expect("lock via second manager");
    let a2 = a.clone();
    let busy = thread::spawn(move || {
        a2.try_lock()
            .map(|g| g.is_none())
            .map_err(|e| e.to_string())
    });
    assert_eq!(busy.join().expect("thread"), Ok(true));
    drop(g);
}

/// A handle of a freed id either still locks (as in libpod) or fails with
/// `NotAllocated`, never anything else; once the id is allocated again, old
/// and new handles are one lock.
pub fn handle_after_free_and_reallocation(s: &Subject) {
    let fx = Fixture::new(s, 32);
    let lock = fx.mgr.allocate().expect("allocate");
    let id = lock.id();
    fx.mgr.free(id).expect("free");
    match lock.lock() {
        Ok(g) => {
            let l = lock.clone();
            let busy =
                thread::spawn(move || l.try_lock().map(|g| g.is_none()).map_err(|e| e.to_string()));
            assert_eq!(busy.join().expect("thread"), Ok(true));
            g.unlock().expect("unlock after free");
        }
        Err(LockError::NotAllocated { id: got }) => assert_eq!(got, id),
        Err(e) => panic!("locking a freed lock: expected success or NotAllocated, got {e:?}"),
    }
    let again = fx.mgr.allocate().expect("allocate again");
    assert_eq!(again.id(), id, "lowest free id is reused");
    let g = lock.lock().expect("old handle of a reallocated id");
    let a = again.clone();
    let busy = thread::spawn(move || a.try_lock().map(|g| g.is_none()).map_err(|e| e.to_string()));
    assert_eq!(
        busy.join().expect("thread"),
        Ok(true),
        "old and new handles must be one lock"
    );
    drop(g);
    again
        .try_lock()
        .expect("try_lock")
        .expect("free")
        .unlock()
        .expect("unlock");
}

/// Guards report their id, a clean acquisition, and release explicitly.
pub fn guard_unlock_and_flags(s: &Subject) {
    let fx = Fixture::new(s, 32);
    fx.mgr.allocate().expect("allocate");
    let lock = fx.mgr.allocate().expect("allocate");
    let guard = lock.lock().expect("lock");
    assert_eq!(guard.id(), 1);
    assert!(!guard.previous_owner_died());
    assert!(!guard.acquired().previous_owner_died);
    guard.unlock().expect("explicit unlock");
    assert!(!lock.is_held_by_current_thread());
    let l = lock.clone();
    let free = thread::spawn(move || l.try_lock().map(|g| g.is_some()).map_err(|e| e.to_string()));
    assert_eq!(
        free.join().expect("thread"),
        Ok(true),
        "explicit unlock must release"
    );
}

/// `reallocate` leaves exactly the given ids allocated; a duplicate changes nothing.
pub fn reallocate_sets_exact_allocations(s: &Subject) {
    let fx = Fixture::new(s, 32);
    allocate_n(&*fx.mgr, 4);
    fx.mgr.reallocate(&[5, 1, 9]).expect("reallocate");
    assert_eq!(fx.mgr.allocated().expect("allocated"), vec![1, 5, 9]);
    let err = fx.mgr.reallocate(&[2, 3, 2]).expect_err("duplicate ids");
    assert!(
        matches!(err, LockError::AlreadyAllocated { id: 2 }),
        "{err:?}"
    );
    assert_eq!(
        fx.mgr.allocated().expect("allocated"),
        vec![1, 5, 9],
        "a refused reallocate changes nothing"
    );
    assert_eq!(fx.mgr.allocate().expect("allocate").id(), 0);
    fx.mgr.reallocate(&[]).expect("reallocate nothing");
    assert_eq!(fx.mgr.allocated().expect("allocated"), Vec::<u32>::new());
    if s.limited {
        let total = fx.total();
        let err = fx.mgr.reallocate(&[1, total]).expect_err("out of range");
        assert!(matches!(err, LockError::OutOfRange { .. }), "{err:?}");
    }
}

/// Threads incrementing a counter non-atomically under one lock (through
/// shared and separate handles) never lose an update.
pub fn mutual_exclusion_between_threads(s: &Subject) {
    const THREADS: u64 = 4;
    const ITER: u64 = 300;
    let fx = Fixture::new(s, 32);
    let id = fx.mgr.allocate().expect("allocate").id();
    let shared = fx.mgr.retrieve(id).expect("retrieve");
    let counter = Arc::new(AtomicU64::new(0));
    let inside = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let lock = if t % 2 == 0 {
                shared.clone()
            } else {
                fx.mgr.retrieve(id).expect("retrieve")
            };
            let (counter, inside) = (counter.clone(), inside.clone());
            thread::spawn(move || {
                for i in 0..ITER {
                    let g = lock.lock().expect("lock");
                    assert!(
                        !inside.swap(true, Ordering::SeqCst),
                        "two threads inside the lock"
                    );
                    let n = counter.load(Ordering::SeqCst);
                    if i % 8 == 0 {
                        thread::sleep(Duration::from_micros(10));
                    } else {
                        thread::yield_now();
                    }
                    counter.store(n + 1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                    drop(g);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread");
    }
    assert_eq!(counter.load(Ordering::SeqCst), THREADS * ITER);
}

// ---------------------------------------------------------------------------
// Multi-process tests
// ---------------------------------------------------------------------------

/// Processes incrementing a counter file (read, pause, write) under one lock
/// never lose an update: the total is exactly processes × iterations.
pub fn mutual_exclusion_between_processes(s: &Subject, test: &str) {
    if run_child_if_requested(s) {
        return;
    }
    const PROCS: usize = 3;
    const ITER: u32 = 100;
    let fx = Fixture::new(s, 32);
    let id = fx.mgr.allocate().expect("allocate").id();
    fs::write(fx.path("counter"), "0").expect("counter");
    let vars = [
        (ENV_ID, id.to_string()),
        (ENV_ITER, ITER.to_string()),
        (ENV_BARRIER, PROCS.to_string()),
    ];
    let procs: Vec<_> = (0..PROCS)
        .map(|i| fx.spawn(test, "count", i, &vars))
        .collect();
    for p in procs {
        p.finish();
    }
    assert_eq!(
        read_counter(&fx.path("counter")),
        PROCS as u64 * u64::from(ITER)
    );
}

/// Processes allocating at the same time never get the same id.
pub fn allocation_between_processes_is_unique(s: &Subject, test: &str) {
    if run_child_if_requested(s) {
        return;
    }
    const PROCS: usize = 3;
    const ITER: u32 = 16;
    let fx = Fixture::new(s, 64);
    let vars = [
        (ENV_ITER, ITER.to_string()),
        (ENV_BARRIER, PROCS.to_string()),
    ];
    let procs: Vec<_> = (0..PROCS)
        .map(|i| fx.spawn(test, "allocate", i, &vars))
        .collect();
    for p in procs {
        p.finish();
    }
    let mut all = Vec::new();
    for i in 0..PROCS {
        let text = fs::read_to_string(fx.path(&format!("ids-{i}"))).expect("ids file");
        all.extend(text.lines().map(|l| l.parse::<u32>().expect("id")));
    }
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "an id was handed out twice");
    assert_eq!(n, PROCS * ITER as usize);
    assert_eq!(fx.mgr.allocated().expect("allocated"), all);
    assert_eq!(
        all,
        (0..n as u32).collect::<Vec<_>>(),
        "lowest free first, together"
    );
}

/// A process SIGKILLed while holding a lock does not block the next holder,
/// who is told the previous owner died; later holders are not.
pub fn dead_owner_recovery(s: &Subject, test: &str) {
    if run_child_if_requested(s) {
        return;
    }
    let fx = Fixture::new(s, 32);
    fx.mgr.allocate().expect("allocate");
    let lock = fx.mgr.allocate().expect("allocate");
    let id = lock.id();
    let vars = [(ENV_ID, id.to_string())];

    // A waiter blocked in lock() is woken by the holder's death.
    let mut holder = fx.spawn(test, "hold", 0, &vars);
    fx.wait_for_file(&fx.path("ready-0"), &mut holder);
    assert!(
        lock.try_lock().expect("try_lock").is_none(),
        "a lock held by a live process must be busy"
    );
    let (tx, rx) = mpsc::channel();
    let waiter = fx.mgr.retrieve(id).expect("retrieve");
    let t = thread::spawn(move || {
        let res = waiter.lock().map(|g| g.previous_owner_died());
        tx.send(res.map_err(|e| e.to_string())).expect("send");
    });
    thread::sleep(Duration::from_millis(100));
    assert!(
        matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)),
        "lock() returned while a live process held the lock"
    );
    holder.child.kill().expect("SIGKILL the holder");
    let status = holder.child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "holder should die by SIGKILL");
    let died = rx
        .recv_timeout(TIMEOUT)
        .expect("the lock stayed blocked after its holder was killed")
        .expect("lock after the holder died");
    assert!(died, "the next holder must be told the previous owner died");
    t.join().expect("waiter thread");
    let g = lock.lock().expect("lock again");
    assert!(
        !g.previous_owner_died(),
        "only the first holder after the death is told"
    );
    drop(g);

    // try_lock after the death also recovers the lock and reports it.
    let mut holder = fx.spawn(test, "hold", 1, &vars);
    fx.wait_for_file(&fx.path("ready-1"), &mut holder);
    holder.child.kill().expect("SIGKILL the holder");
    holder.child.wait().expect("wait");
    let g = lock
        .try_lock()
        .expect("try_lock after the holder died")
        .expect("the lock of a dead holder is free");
    assert!(g.previous_owner_died());
    drop(g);
    let g = lock.try_lock().expect("try_lock").expect("free");
    assert!(!g.previous_owner_died());
}

/// Renumbering (`reallocate`) while other processes wait on a lock: the
/// waiters still exclude each other and the holder, and the allocation
/// becomes exactly the given ids.
pub fn reallocate_with_processes_waiting(s: &Subject, test: &str) {
    if run_child_if_requested(s) {
        return;
    }
    const PROCS: usize = 3;
    const ITER: u32 = 50;
    let fx = Fixture::new(s, 64);
    allocate_n(&*fx.mgr, 5);
    let lock = fx.mgr.retrieve(3).expect("retrieve");
    fs::write(fx.path("counter"), "0").expect("counter");
    let guard = lock.lock().expect("lock");
    let vars = [(ENV_ID, "3".to_string()), (ENV_ITER, ITER.to_string())];
    let procs: Vec<_> = (0..PROCS)
        .map(|i| fx.spawn(test, "count", i, &vars))
        .collect();
    wait_for_all(fx.dir.path(), "started", PROCS);
    thread::sleep(Duration::from_millis(200)); // let them block in lock()
    assert_eq!(
        read_counter(&fx.path("counter")),
        0,
        "a waiter got in while the lock was held"
    );

    fx.mgr.reallocate(&[3, 9]).expect("reallocate");
    assert_eq!(fx.mgr.allocated().expect("allocated"), vec![3, 9]);
    // A newcomer (fresh manager and handle) is excluded as well.
    let newcomer = fx.reopen().retrieve(3).expect("retrieve");
    let busy = thread::spawn(move || {
        newcomer
            .try_lock()
            .map(|g| g.is_none())
            .map_err(|e| e.to_string())
    });
    assert_eq!(
        busy.join().expect("thread"),
        Ok(true),
        "a lock held across reallocate must stay held"
    );
    bump(&fx.path("counter"));
    thread::sleep(Duration::from_millis(20));
    drop(guard);
    for p in procs {
        p.finish();
    }
    assert_eq!(
        read_counter(&fx.path("counter")),
        PROCS as u64 * u64::from(ITER) + 1
    );
    let err = fx.mgr.allocate_given(3).expect_err("3 stays allocated");
    assert!(
        matches!(err, LockError::AlreadyAllocated { id: 3 }),
        "{err:?}"
    );
    assert_eq!(fx.mgr.allocate().expect("allocate").id(), 0);
    // The renumbered lock still excludes across handles.
    let g = fx.mgr.retrieve(3).expect("retrieve").lock().expect("lock");
    let l = lock.clone();
    let busy = thread::spawn(move || l.try_lock().map(|g| g.is_none()).map_err(|e| e.to_string()));
    assert_eq!(busy.join().expect("thread"), Ok(true));
    drop(g);
}
