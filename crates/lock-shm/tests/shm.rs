//! shm-specific behaviour: rounding, naming, count mismatch and renumber,
//! validation of foreign or damaged segments, the creation race, registry.
//!
//! Every test uses its own segment name under /dev/shm and removes it; none
//! touches podman's `libpod_lock` or rpod's default `rpod_lock_<uid>`.

use std::fs;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use rpod_lock::{LockError, LockManager, LockOptions};
use rpod_lock_shm::{remove_segment, segment_path, segment_size, ShmLockManager};

/// A unique segment name, removed on drop.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        Name(format!(
            "rpod_test_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
    fn path(&self) -> PathBuf {
        segment_path(&self.0).unwrap()
    }
    fn opts(&self, n: u32) -> LockOptions {
        LockOptions::new(n, "/nonexistent-tmp").location(self.0.clone())
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = remove_segment(&self.0);
    }
}

fn leftovers(name: &Name) -> Vec<String> {
    fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&name.0) && *n != name.0)
        .collect()
}

#[test]
fn num_locks_is_rounded_up_to_a_multiple_of_32() {
    assert_eq!(rpod_lock_shm::round_up_num_locks(7), 32);
    assert_eq!(rpod_lock_shm::round_up_num_locks(0), 32);
    assert_eq!(rpod_lock_shm::round_up_num_locks(64), 64);
    assert_eq!(rpod_lock_shm::round_up_num_locks(2050), 2080);
    let name = Name::new("round");
    let mgr = ShmLockManager::open(&name.opts(7)).unwrap();
    assert_eq!(mgr.num_locks(), 32);
    assert_eq!(mgr.available().unwrap(), Some(32));
    // 2040 and 2048 agree after rounding, as in libpod.
    let name = Name::new("round2");
    ShmLockManager::open(&name.opts(2048)).unwrap();
    assert_eq!(
        ShmLockManager::open(&name.opts(2040)).unwrap().num_locks(),
        2048
    );
}

#[test]
fn segment_is_private_sized_and_published_without_leftovers() {
    let name = Name::new("mode");
    let mgr = ShmLockManager::open(&name.opts(64)).unwrap();
    assert_eq!(mgr.path(), name.path());
    let meta = fs::metadata(name.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    assert_eq!(meta.len(), segment_size(64) as u64);
    assert_eq!(segment_size(2048), 128 + 256 + 2048 * 64);
    let head = fs::File::open(name.path()).unwrap();
    let mut magic = [0u8; 8];
    head.read_exact_at(&mut magic, 0).unwrap();
    assert_eq!(&magic, b"RPODSHML");
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    assert_eq!(mgr.location(), name.path().display().to_string());
}

#[test]
fn names_default_per_user_and_are_validated() {
    let uid = nix::unistd::geteuid().as_raw();
    assert_eq!(
        rpod_lock_shm::default_segment_name(),
        format!("rpod_lock_{uid}")
    );
    assert_eq!(
        segment_path("/libpod_style").unwrap(),
        PathBuf::from("/dev/shm/libpod_style")
    );
    assert_eq!(
        segment_path("plain").unwrap(),
        PathBuf::from("/dev/shm/plain")
    );
    for bad in ["", "/", "a/b", "..", ".hidden", "//x", "nul\0byte"] {
        let err = segment_path(bad).unwrap_err();
        assert!(
            err.to_string().contains("invalid segment name"),
            "{bad:?}: {err}"
        );
        let err = ShmLockManager::open(&LockOptions::new(32, "/t").location(bad)).unwrap_err();
        assert!(matches!(err, LockError::Backend { .. }), "{bad:?}: {err:?}");
    }
}

#[test]
fn count_mismatch_is_an_error_unless_renumbering() {
    let name = Name::new("mismatch");
    let old = ShmLockManager::open(&name.opts(64)).unwrap();
    old.allocate_given(5).unwrap();
    let err = ShmLockManager::open(&name.opts(96)).unwrap_err();
    assert!(
        matches!(
            err,
            LockError::CountMismatch {
                found: 64,
                configured: 96,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("rpod system renumber"), "{err}");
    assert!(err.to_string().contains(&name.0), "{err}");
    // The failed open changed nothing.
    assert_eq!(
        ShmLockManager::open(&name.opts(64))
            .unwrap()
            .allocated()
            .unwrap(),
        vec![5]
    );

    let new = ShmLockManager::open(&name.opts(96).renumber(true)).unwrap();
    assert_eq!(new.num_locks(), 96);
    assert_eq!(
        new.allocated().unwrap(),
        Vec::<u32>::new(),
        "a recreated segment starts empty"
    );
    assert_eq!(
        fs::metadata(name.path()).unwrap().len(),
        segment_size(96) as u64
    );
    // Everyone now opens the new count; renumber with a matching count keeps allocations.
    new.allocate_given(70).unwrap();
    let again = ShmLockManager::open(&name.opts(96).renumber(true)).unwrap();
    assert_eq!(again.allocated().unwrap(), vec![70]);
    // The old mapping keeps working on the old (unlinked) memory.
    assert_eq!(old.allocated().unwrap(), vec![5]);
    assert!(leftovers(&name).is_empty());
}

fn write_file(name: &Name, bytes: &[u8]) {
    fs::write(name.path(), bytes).unwrap();
    fs::set_permissions(name.path(), fs::Permissions::from_mode(0o600)).unwrap();
}

fn open_err(name: &Name, renumber: bool) -> String {
    let err = ShmLockManager::open(&name.opts(32).renumber(renumber)).unwrap_err();
    assert!(matches!(err, LockError::Backend { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn foreign_or_damaged_segments_are_refused_and_kept() {
    // Not ours at all (e.g. another program's segment).
    let name = Name::new("foreign");
    write_file(&name, &vec![0x5a; segment_size(32)]);
    let msg = open_err(&name, true);
    assert!(msg.contains("not an rpod lock segment"), "{msg}");
    assert!(
        name.path().exists(),
        "a foreign segment must never be removed"
    );

    // Too small to hold a header.
    let name = Name::new("tiny");
    write_file(&name, b"short");
    assert!(open_err(&name, false).contains("not the size of an rpod lock segment"));

    // Valid segments whose header is then damaged.
    let patch = |tag: &str, off: u64, bytes: &[u8]| {
        let name = Name::new(tag);
        drop(ShmLockManager::open(&name.opts(32)).unwrap());
        let f = fs::OpenOptions::new()
            .write(true)
            .open(name.path())
            .unwrap();
        f.write_all_at(bytes, off).unwrap();
        let msg = open_err(&name, false);
        (name, msg)
    };
    let (_n, msg) = patch("version", 8, &2u32.to_le_bytes());
    assert!(msg.contains("layout version 2"), "{msg}");
    let (_n, msg) = patch("mutexsize", 24, &48u32.to_le_bytes());
    assert!(msg.contains("another architecture or C library"), "{msg}");
    let (_n, msg) = patch("count", 12, &33u32.to_le_bytes());
    assert!(msg.contains("corrupt lock segment header"), "{msg}");
    let (_n, msg) = patch("size", 32, &1u64.to_le_bytes());
    assert!(msg.contains("corrupt lock segment header"), "{msg}");

    // Truncated: the header says 32 locks, the file is shorter.
    let name = Name::new("trunc");
    drop(ShmLockManager::open(&name.opts(32)).unwrap());
    fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap()
        .set_len(1000)
        .unwrap();
    assert!(open_err(&name, false).contains("corrupt lock segment header"));
}

#[test]
fn a_segment_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run this test as root"
        );
        eprintln!("not root: cannot create a segment owned by another user; nothing checked");
        return;
    }
    let name = Name::new("owner");
    drop(ShmLockManager::open(&name.opts(32)).unwrap());
    std::os::unix::fs::chown(name.path(), Some(65534), Some(65534)).unwrap();
    let msg = open_err(&name, true);
    assert!(msg.contains("owned by uid 65534"), "{msg}");
}

#[test]
fn concurrent_creators_agree_on_one_segment() {
    const THREADS: usize = 8;
    for round in 0..5 {
        let name = Name::new(&format!("race{round}"));
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (opts, barrier) = (name.opts(64), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let mgr = ShmLockManager::open(&opts).map_err(|e| e.to_string())?;
                    let id = mgr.allocate().map_err(|e| e.to_string())?.id();
                    Ok::<_, String>((mgr, id))
                })
            })
            .collect();
        let mut ids: Vec<u32> = Vec::new();
        let mut mgrs = Vec::new();
        for h in handles {
            let (mgr, id) = h.join().unwrap().unwrap();
            ids.push(id);
            mgrs.push(mgr);
        }
        ids.sort_unstable();
        assert_eq!(
            ids,
            (0..THREADS as u32).collect::<Vec<_>>(),
            "every opener used the same segment"
        );
        for m in &mgrs {
            assert_eq!(m.allocated().unwrap().len(), THREADS);
        }
        assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    }
}

#[test]
fn destroy_and_remove_segment() {
    let name = Name::new("destroy");
    let mgr = ShmLockManager::open(&name.opts(32)).unwrap();
    let lock = mgr.allocate().unwrap();
    mgr.destroy().unwrap();
    assert!(!name.path().exists());
    mgr.destroy().unwrap(); // idempotent
                            // Handles keep working on the old memory.
    lock.lock().unwrap().unlock().unwrap();
    let fresh = ShmLockManager::open(&name.opts(32)).unwrap();
    assert_eq!(fresh.allocated().unwrap(), Vec::<u32>::new());
    assert!(remove_segment(&name.0).unwrap());
    assert!(!remove_segment(&name.0).unwrap());
}

#[test]
fn too_many_locks_is_refused() {
    let name = Name::new("huge");
    let err = ShmLockManager::open(&name.opts(rpod_lock_shm::MAX_LOCKS + 1)).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
    assert!(!name.path().exists());
}

#[test]
fn registered_and_opened_from_the_config() {
    let reg = rpod_registry::lookup(rpod_registry::kinds::LOCK, "shm").unwrap();
    assert!(reg.summary.contains("shared-memory"));
    let name = Name::new("config");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = rpod_config::ConfigLoader {
        system_file: "/nonexistent".into(),
        override_file: "/nonexistent".into(),
        user: rpod_config::UserDirs::current(),
        config_file: None,
        options: rpod_config::Options::new()
            .root(tmp.path().join("root"))
            .runroot(tmp.path().join("run"))
            .lock_type("shm")
            .lock_path(&name.0)
            .num_locks(40),
    }
    .load()
    .unwrap();
    let mgr = rpod_lock::open(&cfg).unwrap();
    assert_eq!(mgr.backend(), "shm");
    assert_eq!(mgr.location(), name.path().display().to_string());
    assert_eq!(mgr.available().unwrap(), Some(64));
    mgr.allocate().unwrap();
    // Renumbering to another count through the config.
    let mut cfg2 = cfg.values().clone();
    cfg2.num_locks = 128;
    assert!(matches!(
        rpod_lock::open(&cfg2),
        Err(LockError::CountMismatch { .. })
    ));
    let mgr = rpod_lock::open_for_renumber(&cfg2).unwrap();
    assert_eq!(mgr.available().unwrap(), Some(128));
}
