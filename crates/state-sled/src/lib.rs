//! rpod's default state backend, `sled`: the [`rpod_state::State`] semantics
//! ([`rpod_state::kv::KvState`]) on the [sled](https://docs.rs/sled/0.34)
//! embedded database.
//!
//! # Many processes, one database
//!
//! sled takes an exclusive file lock on its directory while open. A
//! foreground `rpod run` lasts as long as its container, and other commands
//! must work meanwhile, so this backend **opens the database for each
//! operation and closes it before returning**, as podman's Bolt state does.
//! Nothing is kept open between operations, and no process waits on anything
//! else while it holds the database. Inside one process, operations on one
//! path are serialised by a mutex; between processes, a busy database is
//! retried with a short backoff until [`rpod_state::StateOptions::busy_timeout`]
//! and then fails with [`StateError::Busy`] ("database busy").
//!
//! A caller with a short batch of operations (a `ps` that lists, then looks
//! a few things up) can keep the database open across them with
//! [`SledKv::hold`] (`state.store().hold()`), paying the open cost once.
//!
//! # Atomic and durable
//!
//! Every operation reads what it needs, then applies all its writes as one
//! `sled::Batch` (which sled recovers atomically after a crash: all or
//! nothing) and flushes (fsync) before returning. All records live in sled's
//! default tree under prefixed keys (see [`rpod_state::kv`]), so a batch
//! covers everything an operation touches (records, name and id registry,
//! dependency, pod and volume edges). Reads and the commit happen under the
//! exclusive lock, so nothing interleaves.
//!
//! # Damage is reported, never papered over
//!
//! Only a path that does not exist is initialised, and atomically: the new
//! database is built in a temporary directory next to it, stamped with the
//! schema marker, flushed, and renamed into place. Anything else that is not
//! an rpod sled database — a regular file (zero-length or not), a directory
//! without sled's files, a database sled cannot open, one without the rpod
//! schema marker, or with a foreign or garbled one — is
//! [`StateError::Corrupt`] naming the path; a newer schema is
//! [`StateError::WrongSchema`] naming path and both versions.
//!
//! One sled 0.34 defect is worked around: a process killed while sled writes
//! a snapshot leaves `snap.<lsn>.generating`, which sled 0.34 then reads as
//! the newest snapshot and refuses to open the database ("Read corrupted
//! data"). rpod takes its own lock (`rpod.lock` in the database directory)
//! before sled's and removes such unfinished files first; the crash test
//! (SIGKILL at random moments) found this and guards it.
//!
//! The default location is `<static_dir>/sled_state.db` (a directory), or
//! `db_path` when set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use rpod_state::kv::{
    check_schema_marker, schema_marker, Batch, Entries, KvRead, KvState, KvStore, Visitor,
    SCHEMA_KEY,
};
use rpod_state::{State, StateError, StateOptions};

/// The backend name.
pub const SLED_BACKEND: &str = "sled";

/// The database directory's name under `static_dir` when `db_path` is unset.
pub const DEFAULT_DB_NAME: &str = "sled_state.db";

/// rpod's lock file inside the database directory.
pub const LOCK_FILE: &str = "rpod.lock";

/// Failures of the sled backend, carried in [`StateError::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SledStateError {
    /// sled failed while reading or writing.
    #[error("{op} {}: {source}", path.display())]
    Sled {
        /// What was being done.
        op: &'static str,
        /// The database path.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn backend_err(e: SledStateError) -> StateError {
    StateError::Backend {
        backend: SLED_BACKEND.to_string(),
        source: Box::new(e),
    }
}

fn sled_err(op: &'static str, path: &Path, source: sled::Error) -> StateError {
    backend_err(SledStateError::Sled {
        op,
        path: path.to_path_buf(),
        source,
    })
}

fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> StateError {
    backend_err(SledStateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

/// The sled [`KvStore`]: opened per operation.
#[derive(Debug)]
pub struct SledKv {
    path: PathBuf,
    read_only: bool,
    busy_timeout: Duration,
    gate: Arc<Mutex<()>>,
    held: Mutex<Option<(sled::Db, Flock<std::fs::File>)>>,
}

/// The database kept open by [`SledKv::hold`]; closed when dropped.
#[derive(Debug)]
pub struct Held<'a> {
    kv: &'a SledKv,
    _gate: Option<std::sync::MutexGuard<'a, ()>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let taken = self
            .kv
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((db, lock)) = taken {
            drop(db);
            drop(lock);
        }
    }
}

struct DbRead<'a> {
    db: &'a sled::Db,
    path: &'a Path,
}

impl KvRead for DbRead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| sled_err("reading", self.path, e))
    }

    fn scan(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(|e| sled_err("reading", self.path, e))
    }

    fn for_each(&self, prefix: &[u8], f: &mut Visitor<'_>) -> Result<(), StateError> {
        for r in self.db.scan_prefix(prefix) {
            let (k, v) = r.map_err(|e| sled_err("reading", self.path, e))?;
            f(&k, &v)?;
        }
        Ok(())
    }
}

struct EmptyRead;

impl KvRead for EmptyRead {
    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(None)
    }
    fn scan(&self, _prefix: &[u8]) -> Result<Entries, StateError> {
        Ok(Vec::new())
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// The sled settings rpod opens its databases with (no background flusher:
/// every write is flushed before the operation returns).
pub fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .mode(sled::Mode::LowSpace)
        // A bounded page cache (sled's default is 1 GiB). It fills only with
        // the pages an operation reads; 32 MiB holds a listing of 10,000
        // containers without evicting pages it will read again.
        .cache_capacity(32 * 1024 * 1024)
}

impl SledKv {
    /// A store for the database at `path` (created on first use if `path` does
    /// not exist). Does not open it.
    pub fn new(path: impl Into<PathBuf>, read_only: bool, busy_timeout: Duration) -> Self {
        let path = path.into();
        let path = std::path::absolute(&path).unwrap_or(path);
        SledKv {
            gate: rpod_state::kv::gate_for(&path),
            held: Mutex::new(None),
            path,
            read_only,
            busy_timeout,
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> StateError {
        StateError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Builds a new database next to `path` and renames it into place.
    fn initialise(&self) -> Result<(), StateError> {
        let tmp = rpod_state::kv::staging_path(&self.path)
            .map_err(|e| io_err("creating the directory of", &self.path, e))?;
        let built = (|| -> Result<(), StateError> {
            let db = sled_config(&tmp)
                .open()
                .map_err(|e| sled_err("creating", &tmp, e))?;
            db.insert(SCHEMA_KEY, schema_marker())
                .map_err(|e| sled_err("initialising", &tmp, e))?;
            db.flush().map_err(|e| sled_err("flushing", &tmp, e))?;
            Ok(())
        })();
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        match std::fs::rename(&tmp, &self.path) {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "created state database");
                Ok(())
            }
            Err(_) if self.path.exists() => {
                // Another process created it first: use theirs.
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(io_err("moving a new database into place at", &self.path, e))
            }
        }
    }

    /// Opens the database, waiting while another process has it open.
    /// `Ok(None)`: the database does not exist and this store is read-only.
    fn open(&self) -> Result<Option<(sled::Db, Flock<std::fs::File>)>, StateError> {
        match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.read_only {
                    return Ok(None);
                }
                self.initialise()?;
            }
            Err(e) => return Err(io_err("inspecting", &self.path, e)),
            Ok(m) if !m.is_dir() => {
                return Err(self.corrupt(format!(
                    "not a sled database directory (a {} of {} bytes)",
                    if m.is_file() {
                        "regular file"
                    } else {
                        "non-directory"
                    },
                    m.len()
                )))
            }
            Ok(_) => {
                for f in ["conf", "db"] {
                    if !self.path.join(f).is_file() {
                        return Err(
                            self.corrupt(format!("not a sled database: its {f:?} file is missing"))
                        );
                    }
                }
            }
        }
        let start = Instant::now();
        let lock = self.lock_exclusive(start)?;
        self.remove_unfinished_snapshots();
        let mut backoff = Duration::from_micros(500);
        loop {
            match sled_config(&self.path).open() {
                Ok(db) => return Ok(Some((db, lock))),
                Err(e) if is_lock_error(&e) => {
                    // someone other than rpod holds sled's own lock
                    self.wait(start, &mut backoff)?;
                }
                Err(sled::Error::Io(e)) => return Err(io_err("opening", &self.path, e)),
                Err(e) => return Err(self.corrupt(format!("sled cannot open it: {e}"))),
            }
        }
    }

    /// Keeps the database open (and locked against other processes) until
    /// the returned guard is dropped, so that a short batch of operations
    /// through this store (and its namespace views) pays the open cost once.
    /// Keep it short: other processes wait, up to their busy timeout, while
    /// it is held. Fails if this store already holds it.
    pub fn hold(&self) -> Result<Held<'_>, StateError> {
        if self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return Err(StateError::invalid(format!(
                "the state database {} is already held by this process",
                self.path.display()
            )));
        }
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let Some((db, lock)) = self.open()? else {
            // read-only and absent: nothing to hold, operations see it empty
            return Ok(Held {
                kv: self,
                _gate: None,
            });
        };
        self.check_marker(&db)?;
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some((db, lock));
        Ok(Held {
            kv: self,
            _gate: Some(gate),
        })
    }

    fn check_marker(&self, db: &sled::Db) -> Result<(), StateError> {
        let marker = db
            .get(SCHEMA_KEY)
            .map_err(|e| sled_err("reading", &self.path, e))?;
        check_schema_marker(&self.path, marker.as_deref()).map(|_| ())
    }

    /// Runs one operation on an open database: reads, then one atomic batch, flushed.
    fn run(
        &self,
        db: &sled::Db,
        f: &mut dyn FnMut(&dyn KvRead) -> Result<Batch, StateError>,
    ) -> Result<(), StateError> {
        let batch = f(&DbRead {
            db,
            path: &self.path,
        })?;
        if !batch.is_empty() {
            let mut b = sled::Batch::default();
            for (k, v) in batch.ops {
                match v {
                    Some(v) => b.insert(k, v),
                    None => b.remove(k),
                }
            }
            db.apply_batch(b)
                .map_err(|e| sled_err("writing", &self.path, e))?;
            db.flush()
                .map_err(|e| sled_err("flushing", &self.path, e))?;
        }
        Ok(())
    }

    /// Sleeps before a retry, or fails with `Busy` once the timeout is spent.
    fn wait(&self, start: Instant, backoff: &mut Duration) -> Result<(), StateError> {
        let waited = start.elapsed();
        if waited >= self.busy_timeout {
            return Err(StateError::Busy {
                path: self.path.clone(),
                waited,
            });
        }
        // jitter so that waiting processes do not retry in lockstep
        let jitter = Duration::from_micros(u64::from(std::process::id() % 7) * 100);
        std::thread::sleep((*backoff + jitter).min(self.busy_timeout.saturating_sub(waited)));
        *backoff = (*backoff * 2).min(Duration::from_millis(16));
        Ok(())
    }

    /// rpod's own exclusive lock (`<path>/rpod.lock`, flock), taken before
    /// sled opens the database and released after it is closed. Every rpod
    /// process opens the database only under it.
    fn lock_exclusive(&self, start: Instant) -> Result<Flock<std::fs::File>, StateError> {
        let lock_path = self.path.join(LOCK_FILE);
        let mut backoff = Duration::from_micros(200);
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
                .map_err(|e| io_err("opening the lock file", &lock_path, e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(lock),
                Err((_, Errno::EWOULDBLOCK)) => self.wait(start, &mut backoff)?,
                Err((_, e)) => return Err(io_err("locking", &lock_path, e.into())),
            }
        }
    }

    /// sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames it
    /// when complete, but on open it also reads `.generating` files, so a
    /// process killed mid-snapshot leaves a database sled refuses to open
    /// ("Read corrupted data"). Such a file is never complete or needed (the
    /// log it summarises is still there), so it is removed before opening,
    /// under rpod's lock so that no rpod process is writing it.
    fn remove_unfinished_snapshots(&self) {
        let Ok(dir) = std::fs::read_dir(&self.path) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("snap.") && name.ends_with(".generating") {
                tracing::warn!(path = %entry.path().display(), "removing an unfinished sled snapshot left by a crash");
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl KvStore for SledKv {
    fn backend(&self) -> &str {
        SLED_BACKEND
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&dyn KvRead) -> Result<Batch, StateError>,
    ) -> Result<(), StateError> {
        {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((db, _)) = held.as_ref() {
                return self.run(db, f);
            }
        }
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let Some((db, lock)) = self.open()? else {
            return run_empty(&self.path, f);
        };
        let result = self.check_marker(&db).and_then(|()| self.run(&db, f));
        drop(db);
        drop(lock);
        result
    }
}

fn run_empty(
    path: &Path,
    f: &mut dyn FnMut(&dyn KvRead) -> Result<Batch, StateError>,
) -> Result<(), StateError> {
    if f(&EmptyRead)?.is_empty() {
        Ok(())
    } else {
        Err(StateError::ReadOnly {
            path: path.to_path_buf(),
            op: "write",
        })
    }
}

/// The sled state type.
pub type SledState = KvState<SledKv>;

/// Opens (creating if absent) the sled state for `opts`, checking the schema
/// right away so a damaged or foreign database is reported at open.
pub fn new_sled(opts: &StateOptions) -> Result<SledState, StateError> {
    let path = opts.path_or_default(DEFAULT_DB_NAME);
    let state = KvState::new(
        SledKv::new(path, opts.read_only, opts.busy_timeout),
        opts.namespace.clone(),
    );
    state.store().transact(&mut |_| Ok(Batch::default()))?;
    Ok(state)
}

/// The registered factory ([`rpod_state::StateFactory`]).
pub fn open_sled(opts: &StateOptions) -> Result<Box<dyn State>, StateError> {
    Ok(Box::new(new_sled(opts)?))
}

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::STATE,
    name: SLED_BACKEND,
    summary: "sled embedded database; opened per operation so many rpod processes share it",
    factory: open_sled as rpod_state::StateFactory,
}
