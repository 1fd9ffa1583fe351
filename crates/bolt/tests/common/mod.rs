//! Shared helpers for the integration tests: the boltcheck-format listing, the Go bbolt
//! oracle (built on demand) and the Python oracle.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rpod_bolt::{Bucket, Db, Result};

/// `shared/` beside the checkout.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The fixture DBs, copied into `dir`.
pub fn fixtures() -> Vec<PathBuf> {
    let root = shared_dir().join("fixtures/podman-4.3.1");
    let mut out = Vec::new();
    match std::fs::read_dir(&root) {
        Ok(rd) => {
            for e in rd.flatten() {
                let p = e.path().join("bolt_state.db");
                if p.is_file() {
                    out.push(p);
                }
            }
        }
        Err(e) => {
            assert!(!ci(), "fixtures missing at {}: {e}", root.display());
            eprintln!(
                "!!! NOTICE: fixtures not found at {} ({e}); skipping",
                root.display()
            );
        }
    }
    out.sort();
    out
}

/// Copies `src` into `dir` (writable copy) and returns the new path.
pub fn copy_to(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap();
    let mut perm = std::fs::metadata(&dst).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&dst, perm).unwrap();
    dst
}

fn show(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) if !s.contains('\0') && !s.contains('\n') => s.to_string(),
        _ => {
            let mut h = String::from("0x");
            for b in k {
                h.push_str(&format!("{b:02x}"));
            }
            h
        }
    }
}

fn dump(b: Bucket<'_>, ind: &str, out: &mut String) -> Result<()> {
    for item in b.iter() {
        let (k, v) = item?;
        match v {
            None => {
                let c = b.bucket(&k)?.expect("sub-bucket listed but not openable");
                out.push_str(&format!(
                    "{ind}[{}] root={} seq={}\n",
                    show(&k),
                    c.root(),
                    c.sequence()?
                ));
                dump(c, &format!("{ind}  "), out)?;
            }
            Some(v) => out.push_str(&format!(
                "{ind}{} = len {} fnv {:016x}\n",
                show(&k),
                v.len(),
                rpod_bolt::fnv1a64(&v)
            )),
        }
    }
    Ok(())
}

/// The full listing in boltcheck's format (without the final "check done" line).
pub fn listing(db: &Db) -> Result<String> {
    db.view(|tx| {
        let mut out = format!(
            "txid={} size={} pagesize={}\n",
            tx.id(),
            tx.size(),
            tx.page_size()
        );
        tx.for_each(|name, b| {
            out.push_str(&format!(
                "[{}] root={} seq={}\n",
                show(name),
                b.root(),
                b.sequence()?
            ));
            dump(b, "  ", &mut out)
        })?;
        Ok(out)
    })
}

/// Builds the Go bbolt 1.3.6 checker once per test binary. `None` (with a loud notice) if
/// go or the bbolt source is missing, except under CI=true, where it panics.
pub fn boltcheck() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = shared_dir().join("tools/boltcheck");
        let bbolt = Path::new("/usr/share/gocode/src/go.etcd.io/bbolt");
        let go_ok = Command::new("go").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
        if !go_ok || !bbolt.is_dir() || !src.join("main.go").is_file() {
            let msg = format!(
                "boltcheck oracle unavailable: go found={go_ok}, bbolt source at {} present={}, checker source {} present={}",
                bbolt.display(),
                bbolt.is_dir(),
                src.display(),
                src.join("main.go").is_file()
            );
            assert!(!ci(), "{msg} (required when CI=true: apt-get install golang-go golang-github-coreos-bbolt-dev)");
            eprintln!("!!!!!!!! NOTICE: {msg}; skipping the Go bbolt checks !!!!!!!!");
            return None;
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let work = tmp.join(format!("boltcheck-src-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::copy(src.join("main.go"), work.join("main.go")).unwrap();
        let bin = tmp.join(format!("boltcheck-{}", std::process::id()));
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&work)
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOCACHE", tmp.join("gocache"))
            .env("GOFLAGS", "")
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "building boltcheck failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&work);
        // Atomic replace, so concurrent test binaries never see a half-written file.
        let fixed = tmp.join("boltcheck");
        std::fs::rename(&bin, &fixed).unwrap();
        Some(fixed)
    })
    .clone()
}

/// Runs boltcheck on `file`: (exit code, stdout, stderr).
pub fn run_boltcheck(bin: &Path, file: &Path) -> (i32, String, String) {
    let out = Command::new(bin).arg(file).output().expect("run boltcheck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `boltdump.py --check-only` (if python3 is available): Some((exit code, output)).
pub fn run_boltdump_check(file: &Path) -> Option<(i32, String)> {
    let script = shared_dir().join("tools/boltdump.py");
    match Command::new("python3")
        .arg(&script)
        .arg("--check-only")
        .arg(file)
        .output()
    {
        Ok(out) => Some((
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) => {
            assert!(!ci(), "python3 not available: {e}");
            eprintln!(
                "!!!!!!!! NOTICE: python3 unavailable ({e}); skipping boltdump check !!!!!!!!"
            );
            None
        }
    }
}

/// Asserts that both oracles accept `file` and that boltcheck lists exactly `expected`.
pub fn assert_oracles_accept(file: &Path, expected_listing: &str) {
    if let Some(bin) = boltcheck() {
        let (rc, out, err) = run_boltcheck(&bin, file);
        assert_eq!(
            rc,
            0,
            "boltcheck failed on {}: {err}\n{out}",
            file.display()
        );
        assert!(err.is_empty(), "boltcheck stderr: {err}");
        assert_eq!(
            out,
            format!("{expected_listing}check done\n"),
            "listing differs from boltcheck"
        );
    }
    if let Some((rc, out)) = run_boltdump_check(file) {
        assert_eq!(
            rc,
            0,
            "boltdump --check-only failed on {}: {out}",
            file.display()
        );
    }
}

/// In-memory model of a bucket, for comparing against the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MBucket {
    pub seq: u64,
    pub entries: std::collections::BTreeMap<Vec<u8>, MEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MEntry {
    Val(Vec<u8>),
    Bkt(MBucket),
}

impl MBucket {
    /// The bucket at `path` (names from the top), if it exists.
    pub fn at(&mut self, path: &[Vec<u8>]) -> Option<&mut MBucket> {
        let mut cur = self;
        for name in path {
            match cur.entries.get_mut(name) {
                Some(MEntry::Bkt(b)) => cur = b,
                _ => return None,
            }
        }
        Some(cur)
    }
}

/// Reads the whole content of a bucket into the model form, checking `get` agrees with
/// iteration for every key.
pub fn read_bucket(b: Bucket<'_>) -> Result<MBucket> {
    let mut m = MBucket {
        seq: b.sequence()?,
        ..Default::default()
    };
    for item in b.iter() {
        let (k, v) = item?;
        let e = match v {
            Some(v) => {
                assert_eq!(
                    b.get(&k)?.as_deref(),
                    Some(v.as_slice()),
                    "get disagrees with iter"
                );
                MEntry::Val(v)
            }
            None => {
                assert_eq!(b.get(&k)?, None, "get on a bucket key must be None");
                MEntry::Bkt(read_bucket(b.bucket(&k)?.expect("listed sub-bucket"))?)
            }
        };
        m.entries.insert(k, e);
    }
    Ok(m)
}

/// Reads the whole database (top-level buckets) into the model form.
pub fn read_db(db: &Db) -> Result<MBucket> {
    db.view(|tx| {
        let mut m = MBucket::default();
        tx.for_each(|name, b| {
            m.entries
                .insert(name.to_vec(), MEntry::Bkt(read_bucket(b)?));
            Ok(())
        })?;
        Ok(m)
    })
}

/// Asserts the database is internally consistent according to `Tx::check`.
pub fn assert_self_check(db: &Db) {
    let problems = db.view(|tx| tx.check()).unwrap();
    assert!(problems.is_empty(), "check problems: {problems:?}");
}

/// A temp dir on tmpfs when available (fsync is cheap there), for loops that commit a lot.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}
