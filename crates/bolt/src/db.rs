//! Opening, locking, initialising and mapping the database file.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions as FsOpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use memmap2::Mmap;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{BoltError, Result};
use crate::freelist;
use crate::meta::{Meta, MAX_PAGE_SIZE, META_SIZE, MIN_PAGE_SIZE, PGID_NO_FREELIST};
use crate::page::{write_leaf, Ctx, PAGE_HEADER_SIZE};
use crate::tree::Source;
use crate::tx::Tx;

/// How often a blocked `flock` is retried (as bbolt does).
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// Options for [`Db::open`]. The default is read-write, create if missing, wait forever
/// for the lock, and the OS page size for new files.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read_only: bool,
    no_create: bool,
    timeout: Option<Duration>,
    page_size: Option<u32>,
}

impl OpenOptions {
    /// Default options (read-write, create, no timeout).
    pub fn new() -> Self {
        Self::default()
    }

    /// Open read-only: takes a shared `flock`, and every write fails with
    /// [`BoltError::ReadOnly`]. A read-only open never creates the file.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Create and initialise the file if it does not exist (default `true`). An existing
    /// file is never re-initialised, even if it is empty.
    pub fn create(mut self, yes: bool) -> Self {
        self.no_create = !yes;
        self
    }

    /// How long to wait for the file lock; `None` (the default) waits forever.
    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }

    /// Page size for a newly created file (a power of two in 1024..=65536). Existing
    /// files always use the page size stored in their meta page.
    pub fn page_size(mut self, ps: u32) -> Self {
        self.page_size = Some(ps);
        self
    }
}

/// Shared state of an open database, guarded by the `Db`'s `RwLock`: read transactions
/// share it, a write transaction has it exclusively.
pub(crate) struct State {
    pub(crate) path: PathBuf,
    pub(crate) file: Flock<File>,
    pub(crate) mmap: Mmap,
    pub(crate) file_len: u64,
    pub(crate) meta: Meta,
    /// Pages free for allocation (read-write databases only).
    pub(crate) free: Option<BTreeSet<u64>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("path", &self.path)
            .field("file_len", &self.file_len)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Re-maps the file after it grew.
    pub(crate) fn remap(&mut self) -> Result<()> {
        self.mmap = map_file(&self.path, &self.file)?;
        Ok(())
    }
}

#[allow(unsafe_code)]
fn map_file(path: &Path, file: &File) -> Result<Mmap> {
    // SAFETY: memmap2 requires that the mapped file is not truncated or modified in
    // unexpected ways while mapped. The mapping is read-only; this process writes only with
    // pwrite to pages that no live transaction reads (copy-on-write), growing the file
    // first and never shrinking it. Other processes are excluded by the `flock` held for
    // the whole life of the `Db` (exclusive for read-write, shared for read-only, so no
    // cooperating writer runs while a reader has it mapped). A non-cooperating process that
    // truncates the file could still cause SIGBUS; that is the one risk inherent to mmap.
    unsafe { Mmap::map(file) }.map_err(|e| BoltError::io(path, e))
}

/// An open bbolt database file.
///
/// A `Db` is `Send + Sync`. Inside a process, read transactions run concurrently and a
/// write transaction excludes all others; across processes, the `flock` excludes a second
/// read-write opener for as long as the `Db` lives (drop it, or call [`Db::close`], to
/// release the lock). Do not begin a write transaction on a thread that holds another
/// transaction on the same `Db`: it would wait for itself.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    read_only: bool,
    page_size: u32,
    state: RwLock<State>,
}

impl Db {
    /// Opens (and, if missing and allowed, creates) the database at `path`.
    pub fn open(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Db> {
        let path = path.as_ref().to_path_buf();
        if let Some(ps) = opts.page_size {
            if !ps.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps) {
                return Err(BoltError::InvalidOption(format!(
                    "page size {ps} is not a power of two in {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE}"
                )));
            }
        }
        let io = |e| BoltError::io(&path, e);
        let (file, created) = if opts.read_only {
            match File::open(&path) {
                Ok(f) => (f, false),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(BoltError::NotFound { path })
                }
                Err(e) => return Err(io(e)),
            }
        } else {
            let mut o = FsOpenOptions::new();
            o.read(true).write(true).mode(0o600);
            match (!opts.no_create)
                .then(|| o.clone().create_new(true).open(&path))
                .transpose()
            {
                Ok(Some(f)) => (f, true),
                Ok(None) => match o.open(&path) {
                    Ok(f) => (f, false),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Err(BoltError::NotFound { path })
                    }
                    Err(e) => return Err(io(e)),
                },
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    (o.open(&path).map_err(io)?, false)
                }
                Err(e) => return Err(io(e)),
            }
        };
        let file = lock(&path, file, opts.read_only, opts.timeout)?;
        if created {
            let ps = opts.page_size.unwrap_or_else(os_page_size);
            init(&path, &file, ps)?;
        }
        let file_len = file.metadata().map_err(io)?.len();
        if file_len == 0 {
            return Err(BoltError::EmptyFile { path });
        }
        let mmap = map_file(&path, &file)?;
        let meta = select_meta(&path, &mmap)?;
        let ctx = Ctx { path: &path };
        let src = Source {
            data: &mmap[..],
            page_size: meta.page_size as usize,
            hwm: meta.pgid,
            ctx,
        };
        let free = if opts.read_only {
            None
        } else if meta.freelist == PGID_NO_FREELIST {
            // Not synced (bbolt NoFreelistSync): rebuild from the tree.
            let mut used = BTreeSet::new();
            src.collect_pages(meta.root, true, &mut used)?;
            Some((2..meta.pgid).filter(|p| !used.contains(p)).collect())
        } else {
            let page = src.page(meta.freelist)?;
            Some(freelist::decode(ctx, &page, meta.pgid)?)
        };
        tracing::debug!(path = %path.display(), txid = meta.txid, page_size = meta.page_size, "bolt open");
        Ok(Db {
            read_only: opts.read_only,
            page_size: meta.page_size,
            state: RwLock::new(State {
                path: path.clone(),
                file,
                mmap,
                file_len,
                meta,
                free,
            }),
            path,
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page size (from the file's meta page).
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Whether the database was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Begins a transaction. A writable one waits for other transactions of this `Db` to
    /// finish; it fails with [`BoltError::ReadOnly`] on a read-only database.
    pub fn begin(&self, writable: bool) -> Result<Tx<'_>> {
        if writable {
            if self.read_only {
                return Err(BoltError::ReadOnly);
            }
            Ok(Tx::new_write(
                self.state.write().unwrap_or_else(PoisonError::into_inner),
            ))
        } else {
            Ok(Tx::new_read(
                self.state.read().unwrap_or_else(PoisonError::into_inner),
            ))
        }
    }

    /// Runs `f` in a read-only transaction.
    pub fn view<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self.begin(false)?;
        f(&tx)
    }

    /// Runs `f` in a write transaction, committing if it returns `Ok` and rolling back if
    /// it returns `Err`.
    pub fn update<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self.begin(true)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Closes the database, releasing the file lock (same as dropping it).
    pub fn close(self) {}
}

fn os_page_size() -> u32 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(ps)) if ps > 0 => {
            let ps = ps as u32;
            if ps.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps) {
                ps
            } else {
                4096
            }
        }
        _ => 4096,
    }
}

/// Takes bbolt's `flock`: exclusive for read-write, shared for read-only, retrying every
/// 50 ms until `timeout`.
fn lock(
    path: &Path,
    mut file: File,
    shared: bool,
    timeout: Option<Duration>,
) -> Result<Flock<File>> {
    let arg = if shared {
        FlockArg::LockSharedNonblock
    } else {
        FlockArg::LockExclusiveNonblock
    };
    let start = Instant::now();
    loop {
        match Flock::lock(file, arg) {
            Ok(l) => return Ok(l),
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                let waited = start.elapsed();
                if let Some(t) = timeout {
                    if waited >= t {
                        return Err(BoltError::Timeout {
                            path: path.to_path_buf(),
                            waited,
                        });
                    }
                }
                file = f;
                std::thread::sleep(match timeout {
                    Some(t) => LOCK_RETRY
                        .min(t.saturating_sub(waited))
                        .max(Duration::from_millis(1)),
                    None => LOCK_RETRY,
                });
            }
            Err((_, e)) => return Err(BoltError::io(path, e.into())),
        }
    }
}

/// Writes a new empty database (bbolt's `db.init`): metas at 0 and 1, an empty freelist
/// at page 2 and an empty root leaf at page 3.
fn init(path: &Path, file: &File, ps: u32) -> Result<()> {
    let psz = ps as usize;
    let mut buf = vec![0u8; 4 * psz];
    for txid in 0..2u64 {
        let m = Meta {
            page_size: ps,
            flags: 0,
            root: 3,
            sequence: 0,
            freelist: 2,
            pgid: 4,
            txid,
        };
        let at = txid as usize * psz;
        buf[at..at + psz].copy_from_slice(&m.encode_page());
    }
    let fl = freelist::encode(2, 1, psz, &BTreeSet::new());
    buf[2 * psz..3 * psz].copy_from_slice(&fl);
    write_leaf(&mut buf[3 * psz..], 3, 0, &[]);
    let io = |e| BoltError::io(path, e);
    file.write_all_at(&buf, 0).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Determines the page size and chooses the active meta page: the valid one with the
/// larger txid (a torn or corrupt meta falls back to the other).
fn select_meta(path: &Path, data: &[u8]) -> Result<Meta> {
    let len = data.len() as u64;
    let corrupt = |reason: String| BoltError::corrupt(path, 0, reason);
    if data.len() < PAGE_HEADER_SIZE + META_SIZE {
        return Err(corrupt(format!(
            "file too small ({len} bytes) to hold a meta page"
        )));
    }
    // Page size: from meta 0, else probe for a valid meta 1 (as bbolt >= 1.3.7).
    let ps = match Meta::decode(data) {
        Ok(m) => m.page_size,
        Err(reason0) => (0..7)
            .map(|i| 1024usize << i)
            .filter(|&off| off + PAGE_HEADER_SIZE + META_SIZE <= data.len())
            .find_map(|off| {
                Meta::decode(&data[off..])
                    .ok()
                    .filter(|m| m.page_size as usize == off)
                    .map(|m| m.page_size)
            })
            .ok_or_else(|| {
                corrupt(format!(
                    "both meta pages are invalid (meta 0: {reason0}; no valid meta 1 found at any page size)"
                ))
            })?,
    };
    let psz = ps as usize;
    if data.len() < 2 * psz {
        return Err(corrupt(format!(
            "file size {len} is too small for two {ps}-byte meta pages (truncated?)"
        )));
    }
    let check = |i: usize| -> std::result::Result<Meta, String> {
        let m = Meta::decode(&data[i * psz..(i + 1) * psz])?;
        if m.page_size != ps {
            return Err(format!(
                "page size {} differs from meta 0's {ps}",
                m.page_size
            ));
        }
        let need = m.pgid.saturating_mul(u64::from(ps));
        if need > len {
            return Err(format!(
                "high-water mark {} pages ({need} bytes) beyond the {len}-byte file (truncated?)",
                m.pgid
            ));
        }
        Ok(m)
    };
    match (check(0), check(1)) {
        (Ok(a), Ok(b)) => Ok(if b.txid > a.txid { b } else { a }),
        (Ok(a), Err(e)) => {
            tracing::warn!(path = %path.display(), "meta page 1 invalid ({e}); using meta page 0");
            Ok(a)
        }
        (Err(e), Ok(b)) => {
            tracing::warn!(path = %path.display(), "meta page 0 invalid ({e}); using meta page 1");
            Ok(b)
        }
        (Err(e0), Err(e1)) => Err(corrupt(format!(
            "both meta pages are invalid (meta 0: {e0}; meta 1: {e1})"
        ))),
    }
}
