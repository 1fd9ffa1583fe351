//! Tests of the backend-independent parts: guards, per-thread relock
//! detection, the dead-owner warning, errors, options and backend lookup.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use rpod_lock::{Acquired, Lock, LockError, LockManager, LockOptions, LockScope, RawLock};

/// An in-process lock with real exclusion, scripted results and counters.
#[derive(Debug, Default)]
struct Toy {
    id: u32,
    state: Mutex<ToyState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct ToyState {
    held: bool,
    locks: u32,
    unlocks: u32,
    next_died: bool,
    fail_unlock: bool,
}

impl Toy {
    fn new(id: u32) -> Arc<Self> {
        Arc::new(Toy {
            id,
            ..Default::default()
        })
    }
    fn take(&self, st: &mut ToyState) -> Acquired {
        st.held = true;
        st.locks += 1;
        if std::mem::take(&mut st.next_died) {
            Acquired::owner_died(Some("pid 4242".into()))
        } else {
            Acquired::clean()
        }
    }
}

impl RawLock for Toy {
    fn id(&self) -> u32 {
        self.id
    }
    fn lock(&self) -> Result<Acquired, LockError> {
        let mut st = self.state.lock().unwrap();
        while st.held {
            st = self.cv.wait(st).unwrap();
        }
        Ok(self.take(&mut st))
    }
    fn try_lock(&self) -> Result<Option<Acquired>, LockError> {
        let mut st = self.state.lock().unwrap();
        Ok((!st.held).then(|| self.take(&mut st)))
    }
    fn unlock(&self) -> Result<(), LockError> {
        let mut st = self.state.lock().unwrap();
        st.held = false;
        st.unlocks += 1;
        self.cv.notify_all();
        if st.fail_unlock {
            return Err(LockError::backend("toy", "scripted unlock failure"));
        }
        Ok(())
    }
}

#[test]
fn guard_releases_once_on_drop_or_explicit_unlock() {
    let toy = Toy::new(1);
    let lock = Lock::new(toy.clone(), LockScope::new("toy-release"));
    drop(lock.lock().unwrap());
    assert_eq!(toy.state.lock().unwrap().unlocks, 1);
    lock.lock().unwrap().unlock().unwrap();
    let st = toy.state.lock().unwrap();
    assert_eq!((st.locks, st.unlocks, st.held), (2, 2, false));
}

#[test]
fn relock_is_detected_per_scope_and_id() {
    let scope = LockScope::new("toy-relock");
    let a = Lock::new(Toy::new(5), scope);
    // Another handle object with the same scope and id is the same lock.
    let a2 = Lock::new(Toy::new(5), LockScope::new("toy-relock"));
    let other_id = Lock::new(Toy::new(6), scope);
    let other_scope = Lock::new(Toy::new(5), LockScope::new("toy-relock-elsewhere"));
    let g = a.lock().unwrap();
    assert!(a.is_held_by_current_thread() && a2.is_held_by_current_thread());
    assert!(matches!(a.lock(), Err(LockError::WouldDeadlock { id: 5 })));
    assert!(matches!(
        a.try_lock(),
        Err(LockError::WouldDeadlock { id: 5 })
    ));
    assert!(matches!(a2.lock(), Err(LockError::WouldDeadlock { id: 5 })));
    let g2 = other_id.lock().unwrap();
    let g3 = other_scope.lock().unwrap();
    drop((g2, g3));
    drop(g);
    assert!(!a2.is_held_by_current_thread());
    a2.lock().unwrap().unlock().unwrap();
}

#[test]
fn another_thread_waits_instead_of_getting_would_deadlock() {
    let lock = Lock::new(Toy::new(2), LockScope::new("toy-threads"));
    let g = lock.lock().unwrap();
    let l = lock.clone();
    let seen = thread::spawn(move || {
        assert!(!l.is_held_by_current_thread());
        let busy = l.try_lock().unwrap().is_none();
        let later = l.lock().map(|g| g.id()).map_err(|e| e.to_string());
        (busy, later)
    });
    thread::sleep(std::time::Duration::from_millis(50));
    drop(g);
    assert_eq!(seen.join().unwrap(), (true, Ok(2)));
}

#[test]
fn failed_unlock_is_reported_and_the_thread_no_longer_holds_it() {
    let toy = Toy::new(3);
    let lock = Lock::new(toy.clone(), LockScope::new("toy-fail-unlock"));
    let g = lock.lock().unwrap();
    toy.state.lock().unwrap().fail_unlock = true;
    let err = g.unlock().unwrap_err();
    assert!(err.to_string().contains("scripted unlock failure"), "{err}");
    assert!(!lock.is_held_by_current_thread());
    // Dropping a guard whose unlock fails logs instead of panicking.
    let g = lock.lock().unwrap();
    drop(g);
    assert_eq!(toy.state.lock().unwrap().unlocks, 2);
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn dead_previous_owner_is_flagged_and_logged() {
    let buf = Buf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer({
            let buf = buf.clone();
            move || buf.clone()
        })
        .with_ansi(false)
        .finish();
    let toy = Toy::new(9);
    let lock = Lock::new(toy.clone(), LockScope::new("toy-died"));
    tracing::subscriber::with_default(sub, || {
        toy.state.lock().unwrap().next_died = true;
        let g = lock.lock().unwrap();
        assert!(g.previous_owner_died());
        assert_eq!(g.acquired().previous_owner.as_deref(), Some("pid 4242"));
        drop(g);
        let g = lock.lock().unwrap();
        assert!(!g.previous_owner_died());
    });
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("previous holder of lock 9 died"), "{log}");
    assert!(log.contains("pid 4242"), "{log}");
    assert_eq!(
        log.matches("died").count(),
        1,
        "only the first acquisition warns: {log}"
    );
}

#[test]
fn error_messages() {
    assert_eq!(
        LockError::Exhausted { limit: 2048 }.to_string(),
        "allocation failed; exceeded num_locks (2048)"
    );
    let m = LockError::CountMismatch {
        location: "/dev/shm/x".into(),
        found: 2048,
        configured: 4096,
    }
    .to_string();
    assert!(
        m.contains("2048") && m.contains("4096") && m.contains("rpod system renumber"),
        "{m}"
    );
    assert_eq!(
        LockError::OutOfRange { id: 40, limit: 32 }.to_string(),
        "lock 40 is out of range: the lock manager has 32 locks (ids 0 to 31)"
    );
    let e = LockError::io(
        "shm",
        std::path::Path::new("/dev/shm/x"),
        "opening the lock segment",
        std::io::Error::from_raw_os_error(libc_eacces()),
    );
    assert_eq!(
        e.to_string(),
        "shm lock backend: opening the lock segment (/dev/shm/x)"
    );
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(
        LockError::WouldDeadlock { id: 7 }.to_string(),
        "lock 7 is already held by this thread; locking it again would deadlock"
    );
}

fn libc_eacces() -> i32 {
    13
}

#[test]
fn check_distinct_names_the_first_duplicate() {
    assert!(rpod_lock::check_distinct(&[3, 1, 2]).is_ok());
    assert!(matches!(
        rpod_lock::check_distinct(&[9, 4, 9, 4]),
        Err(LockError::AlreadyAllocated { id: 4 })
    ));
}

fn test_config(tmp: &std::path::Path) -> rpod_config::RuntimeConfig {
    let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    cfg.tmp_dir = tmp.join("tmp");
    cfg.num_locks = 96;
    cfg
}

#[test]
fn options_from_config() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path());
    let o = LockOptions::from_config(&cfg);
    assert_eq!(o, LockOptions::new(96, tmp.path().join("tmp")));
    assert_eq!(o.location, None);
    cfg.lock_path = "my_segment".into();
    let o = LockOptions::from_config(&cfg);
    assert_eq!(o.location.as_deref(), Some("my_segment"));
    assert!(!o.renumber);
    assert!(o.renumber(true).renumber);
}

/// A manager that records the options it was opened with.
#[derive(Debug)]
struct Recorder(LockOptions);

impl LockManager for Recorder {
    fn backend(&self) -> &str {
        "recorder"
    }
    fn location(&self) -> String {
        format!("{:?}", self.0)
    }
    fn allocate(&self) -> Result<Lock, LockError> {
        Err(LockError::Exhausted { limit: 0 })
    }
    fn retrieve(&self, id: u32) -> Result<Lock, LockError> {
        Ok(Lock::new(Toy::new(id), LockScope::new("recorder")))
    }
    fn allocate_given(&self, id: u32) -> Result<Lock, LockError> {
        Err(LockError::AlreadyAllocated { id })
    }
    fn free(&self, id: u32) -> Result<(), LockError> {
        Err(LockError::NotAllocated { id })
    }
    fn free_all(&self) -> Result<(), LockError> {
        Err(LockError::backend("recorder", "free_all was called"))
    }
    fn available(&self) -> Result<Option<u32>, LockError> {
        Ok(Some(0))
    }
    fn allocated(&self) -> Result<Vec<u32>, LockError> {
        Ok(vec![])
    }
    fn destroy(&self) -> Result<(), LockError> {
        Ok(())
    }
}

fn open_recorder(o: &LockOptions) -> Result<Box<dyn LockManager>, LockError> {
    Ok(Box::new(Recorder(o.clone())))
}

#[test]
fn open_finds_the_configured_backend_in_the_registry() {
    rpod_registry::register(rpod_registry::Registration {
        kind: rpod_registry::kinds::LOCK,
        name: "recorder",
        summary: "test backend",
        origin: "rpod-lock tests",
        factory: &(open_recorder as rpod_lock::LockFactory),
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path());
    cfg.lock_type = "recorder".into();
    cfg.lock_path = "somewhere".into();
    let mgr = rpod_lock::open(&cfg).unwrap();
    assert_eq!(mgr.backend(), "recorder");
    let expected = LockOptions::new(96, tmp.path().join("tmp")).location("somewhere");
    assert_eq!(mgr.location(), format!("{expected:?}"));
    let mgr = rpod_lock::open_for_renumber(&cfg).unwrap();
    assert_eq!(mgr.location(), format!("{:?}", expected.renumber(true)));
    // The default reallocate refuses duplicates before freeing anything.
    assert!(matches!(
        mgr.reallocate(&[1, 1]),
        Err(LockError::AlreadyAllocated { id: 1 })
    ));
    let err = mgr.reallocate(&[1]).unwrap_err();
    assert!(err.to_string().contains("free_all was called"), "{err}");
}

#[test]
fn unknown_backend_lists_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = test_config(tmp.path());
    cfg.lock_type = "nope".into();
    let err = rpod_lock::open(&cfg).unwrap_err();
    assert!(
        matches!(err, LockError::UnknownBackend { ref name, .. } if name == "nope"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("unknown lock.v1 backend \"nope\""),
        "{err}"
    );
    // An empty lock_type means shm, as in libpod (not linked into this test).
    cfg.lock_type = String::new();
    let err = rpod_lock::open(&cfg).unwrap_err();
    assert!(
        matches!(err, LockError::UnknownBackend { ref name, .. } if name == "shm"),
        "{err:?}"
    );
}
