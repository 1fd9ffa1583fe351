//! file-specific behaviour: directory and file layout, holder records and
//! dead-holder detection, foreign files, freed ids, renumbering, registry.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rpod_lock::{LockError, LockManager, LockOptions};
use rpod_lock_file::{FileLockManager, RECORD_LEN};

fn open(tmp: &Path) -> FileLockManager {
    FileLockManager::open(&LockOptions::new(0, tmp.join("tmp"))).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn record(p: &Path) -> String {
    let bytes = fs::read(p).unwrap();
    String::from_utf8_lossy(&bytes)
        .trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace())
        .to_string()
}

#[test]
fn one_private_file_per_allocated_lock_in_tmp_dir_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let mgr = open(tmp.path());
    let dir = tmp.path().join("tmp/locks");
    assert_eq!(mgr.dir(), dir);
    assert_eq!(mgr.location(), dir.display().to_string());
    assert_eq!(mode(&dir), 0o711);
    for _ in 0..3 {
        mgr.allocate().unwrap();
    }
    mgr.allocate_given(10).unwrap();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["0", "1", "10", "2"]);
    assert_eq!(mode(&dir.join("10")), 0o600);
    assert_eq!(mgr.lock_file(10), dir.join("10"));
    mgr.free(1).unwrap();
    assert!(!dir.join("1").exists());
    assert_eq!(mgr.available().unwrap(), None);
}

#[test]
fn explicit_location_must_be_an_absolute_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let at = tmp.path().join("elsewhere/locks");
    let mgr =
        FileLockManager::open(&LockOptions::new(0, "/unused").location(at.display().to_string()))
            .unwrap();
    assert_eq!(mgr.dir(), at);
    assert!(at.is_dir());
    let err = FileLockManager::open(&LockOptions::new(0, "/unused").location("relative/locks"))
        .unwrap_err();
    assert!(err.to_string().contains("absolute"), "{err}");
    let file = tmp.path().join("a-file");
    fs::write(&file, "").unwrap();
    let err =
        FileLockManager::open(&LockOptions::new(0, "/unused").location(file.display().to_string()))
            .unwrap_err();
    assert!(matches!(err, LockError::Backend { .. }), "{err:?}");
}

#[test]
fn holder_record_is_written_while_held_and_cleared_on_release() {
    let tmp = tempfile::tempdir().unwrap();
    let mgr = open(tmp.path());
    let lock = mgr.allocate().unwrap();
    let path = mgr.lock_file(lock.id());
    assert_eq!(record(&path), "");
    let g = lock.lock().unwrap();
    let rec = record(&path);
    let pid: u32 = rec.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(pid, std::process::id(), "{rec:?}");
    assert_eq!(
        rec.split_whitespace().count(),
        2,
        "pid and start time: {rec:?}"
    );
    drop(g);
    assert_eq!(record(&path), "");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        RECORD_LEN as u64,
        "zeroed in place"
    );
}

#[test]
fn a_leftover_record_means_the_previous_holder_died() {
    let tmp = tempfile::tempdir().unwrap();
    let mgr = open(tmp.path());
    let lock = mgr.allocate().unwrap();
    // What a holder killed while holding leaves behind.
    fs::write(mgr.lock_file(lock.id()), "31337 12345\n").unwrap();
    let g = lock.lock().unwrap();
    assert!(g.previous_owner_died());
    assert_eq!(
        g.acquired().previous_owner.as_deref(),
        Some("pid 31337 (start time 12345)")
    );
    drop(g);
    let g = lock.try_lock().unwrap().unwrap();
    assert!(!g.previous_owner_died());
}

#[test]
fn foreign_files_are_ignored_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mgr = open(tmp.path());
    let dir = mgr.dir().to_path_buf();
    for foreign in ["README", "007", "+1", "-3", "4294967296"] {
        fs::write(dir.join(foreign), "").unwrap();
    }
    mgr.allocate_given(4).unwrap();
    assert_eq!(mgr.allocated().unwrap(), vec![4]);
    assert_eq!(mgr.allocate().unwrap().id(), 0);
    mgr.free_all().unwrap();
    assert_eq!(mgr.allocated().unwrap(), Vec::<u32>::new());
    mgr.destroy().unwrap();
    assert!(
        dir.join("README").exists() && dir.join("007").exists(),
        "only lock files are removed"
    );
    fs::remove_dir_all(&dir).unwrap();
    mgr.destroy().unwrap(); // nothing left: not an error
    let clean = open(tmp.path());
    clean.allocate().unwrap();
    clean.destroy().unwrap();
    assert!(!clean.dir().exists());
}

#[test]
fn a_freed_lock_without_file_cannot_be_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let mgr = open(tmp.path());
    let lock = mgr.allocate().unwrap();
    mgr.free(lock.id()).unwrap();
    assert!(matches!(
        lock.lock(),
        Err(LockError::NotAllocated { id: 0 })
    ));
    assert!(matches!(
        lock.try_lock(),
        Err(LockError::NotAllocated { id: 0 })
    ));
    assert!(!lock.is_held_by_current_thread());
    // retrieve never creates the file.
    let ghost = mgr.retrieve(77).unwrap();
    assert!(ghost.lock().is_err());
    assert!(!mgr.lock_file(77).exists());
}

#[test]
fn waiter_on_a_recreated_file_moves_to_the_new_one() {
    // Free + allocate_given while a thread waits: the waiter ends up
    // holding the new file, so it excludes newcomers.
    let tmp = tempfile::tempdir().unwrap();
    let mgr = open(tmp.path());
    let lock = mgr.allocate().unwrap();
    let g = lock.lock().unwrap();
    let waiter = mgr.retrieve(0).unwrap();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let g = waiter.lock().unwrap();
        tx.send(()).unwrap();
        go_rx.recv().unwrap();
        drop(g);
    });
    thread::sleep(Duration::from_millis(50));
    mgr.free(0).unwrap();
    mgr.allocate_given(0).unwrap();
    drop(g);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("waiter acquired");
    let newcomer = mgr.retrieve(0).unwrap();
    let n = newcomer.clone();
    let busy = thread::spawn(move || n.try_lock().map(|g| g.is_none()).map_err(|e| e.to_string()));
    assert_eq!(
        busy.join().unwrap(),
        Ok(true),
        "the waiter must hold the new file"
    );
    go_tx.send(()).unwrap();
    t.join().unwrap();
    newcomer.lock().unwrap().unlock().unwrap();
}

#[test]
fn registered_and_opened_from_the_config() {
    let reg = rpod_registry::lookup(rpod_registry::kinds::LOCK, "file").unwrap();
    assert!(reg.summary.contains("lock file"));
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    cfg.tmp_dir = tmp.path().join("run/tmp");
    cfg.lock_type = "file".into();
    let mgr = rpod_lock::open(&cfg).unwrap();
    assert_eq!(mgr.backend(), "file");
    assert_eq!(
        mgr.location(),
        tmp.path().join("run/tmp/locks").display().to_string()
    );
    assert_eq!(mgr.allocate().unwrap().id(), 0);
    // Renumbering does not apply to an unlimited backend: same directory, same locks.
    cfg.num_locks = 4096;
    let again = rpod_lock::open_for_renumber(&cfg).unwrap();
    assert_eq!(again.allocated().unwrap(), vec![0]);
}
