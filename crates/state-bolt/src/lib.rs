//! rpod's `bolt` state backend: the [`rpod_state::State`] semantics
//! ([`rpod_state::kv::KvState`]) stored in a [bbolt](https://github.com/etcd-io/bbolt)
//! file written by [`rpod_bolt`], plus **read-only** access to the
//! `bolt_state.db` of podman 1.5 to 4.3 (see [`podman`] for the versions covered).
//!
//! # Using it
//!
//! ```text
//! // by name, through the registry (database_backend = "bolt")
//! let state = rpod_state::open_with("bolt", &StateOptions::at("/var/lib/rpod/bolt_state.db"))?;
//! // or directly
//! let state = rpod_state_bolt::open_bolt(&opts)?;
//! ```
//! The default path is `<static_dir>/bolt_state.db` ([`DEFAULT_DB_NAME`]), or
//! `db_path` when set.
//!
//! # rpod's layout
//!
//! [`KvState`] speaks in `\0`-separated keys (see [`rpod_state::kv`]). A key
//! of parts `p0\0p1\0…\0pn` is stored as the value `pn` inside the nested
//! buckets `p0/p1/…`: `c\0<id>` (a container's `[config, state]`) is key
//! `<id>` in bucket `c`, `d\0<dep>\0<id>` is key `<id>` in bucket `d/<dep>`.
//! Records of one kind share a bucket, so their leaves are packed and a
//! listing reads few pages; a write rewrites only the leaves it touches and
//! their ancestors. The schema marker is `m/schema`. Empty buckets left by
//! deletions are removed.
//!
//! # Many processes, one file
//!
//! Like podman, the file is **opened for each operation** and closed before
//! returning: bbolt holds an exclusive `flock` while open. A busy file is
//! waited for up to [`StateOptions::busy_timeout`], then
//! [`StateError::Busy`]. Inside a process, operations on one path are
//! serialised by a mutex. Each operation's reads and writes happen in one
//! bbolt write transaction, committed (fdatasync) before returning: all or
//! nothing after a crash.
//!
//! # Damage is reported, never papered over
//!
//! Only a path that does not exist is initialised, atomically (built in a
//! temporary file, stamped with the schema marker, then hard-linked into
//! place). A zero-length, truncated or damaged file, a bbolt file that is
//! neither rpod's nor podman's, or one without the marker is
//! [`StateError::Corrupt`] naming the path; a newer schema is
//! [`StateError::WrongSchema`].
//!
//! # podman's databases
//!
//! A file with podman's top-level buckets (`ctr`, `id-registry`,
//! `name-registry`, …; see `docs/bolt-format.md`) is opened **read-only**,
//! whatever the options say: rpod never writes into a database it did not
//! create. Its records are translated into rpod's ([`podman`] module): the
//! JSON configs and states decode into rpod's records (same field names;
//! what rpod does not model stays in `extra`), `netns` becomes
//! `ContainerState::net_ns`, `dependencies`/`containers`/`vol-dependencies`
//! become dependency, pod-membership and volume-use edges, `exit-code` and
//! `exit-code-time-stamp` become exit codes, `runtime-config` the database
//! config. Every write returns [`StateError::ReadOnly`], and
//! [`State::read_only_reason`] says the database was created by podman (and
//! which era, [`podman::PodmanSchema`]), so that the engine opens it for
//! listing and inspection only.
//!
//! Covered: podman 4.2 to 4.3 (real 4.3.1 databases in the tests), 2.0 to
//! 4.1 (same buckets without exit codes), and the seed era, podman 1.5 to 1.9
//! (10 top-level buckets, older volume and pod fields; tested with
//! synthetic databases built from podman 1.5.0's schema).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rpod_bolt::{BoltError, Bucket, Db, OpenOptions, Tx};
use rpod_state::kv::{
    check_schema_marker, schema_marker, Batch, KvRead, KvState, KvStore, Visitor,
};
use rpod_state::{State, StateError, StateOptions};

pub mod podman;

/// The backend name.
pub const BOLT_BACKEND: &str = "bolt";

/// The file name under `static_dir` when `db_path` is unset (podman's name).
pub const DEFAULT_DB_NAME: &str = "bolt_state.db";

/// The bucket holding rpod's schema marker (key `schema`).
pub const META_BUCKET: &[u8] = b"m";

/// Failures of the bolt backend, carried in [`StateError::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoltStateError {
    /// The bolt library failed while reading or writing.
    #[error("{op} {}: {source}", path.display())]
    Bolt {
        /// What was being done.
        op: &'static str,
        /// The database path.
        path: PathBuf,
        /// The bolt error.
        #[source]
        source: BoltError,
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
    /// A key the state layer wrote cannot be mapped onto buckets.
    #[error("{}: key {key:?} cannot be stored: {reason}", path.display())]
    BadKey {
        /// The database path.
        path: PathBuf,
        /// The key (lossy UTF-8, NULs shown as `\0`).
        key: String,
        /// Why.
        reason: &'static str,
    },
}

fn backend_err(e: BoltStateError) -> StateError {
    StateError::Backend {
        backend: BOLT_BACKEND.to_string(),
        source: Box::new(e),
    }
}

/// Maps a bolt error: lock timeout → `Busy`, damage → `Corrupt`, the rest → `Backend`.
fn bolt_err(op: &'static str, path: &Path, e: BoltError) -> StateError {
    match e {
        BoltError::Timeout { waited, .. } => StateError::Busy {
            path: path.to_path_buf(),
            waited,
        },
        BoltError::Corrupt { .. } | BoltError::EmptyFile { .. } => StateError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        source => backend_err(BoltStateError::Bolt {
            op,
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> StateError {
    backend_err(BoltStateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

/// What a bolt file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// rpod's layout (has the schema marker).
    Rpod,
    /// podman's (1.5 to 4.3) `bolt_state.db` (opened read-only).
    Podman,
}

/// The bolt [`KvStore`]: the file is opened per operation.
#[derive(Debug)]
pub struct BoltKv {
    path: PathBuf,
    read_only: bool,
    busy_timeout: Duration,
    gate: Arc<Mutex<()>>,
    layout: OnceLock<Layout>,
    podman_schema: OnceLock<podman::PodmanSchema>,
}

/// `(key, value)` pairs.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn split(key: &[u8]) -> Vec<&[u8]> {
    key.split(|b| *b == 0).collect()
}

fn show_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "\\0")
}

/// Reads of rpod's layout inside a bolt transaction.
struct BoltRead<'a> {
    tx: &'a Tx<'a>,
    path: &'a Path,
}

impl BoltRead<'_> {
    fn walk(&self, parts: &[&[u8]]) -> Result<Option<Bucket<'_>>, StateError> {
        let err = |e| bolt_err("reading", self.path, e);
        let Some((first, rest)) = parts.split_first() else {
            return Ok(None);
        };
        if first.is_empty() {
            return Ok(None);
        }
        let Some(mut b) = self.tx.bucket(first).map_err(err)? else {
            return Ok(None);
        };
        for p in rest {
            if p.is_empty() {
                return Ok(None);
            }
            match b.bucket(p).map_err(err)? {
                Some(c) => b = c,
                None => return Ok(None),
            }
        }
        Ok(Some(b))
    }

    /// Calls `f` on every value under `b` whose key starts `from`, with
    /// full keys starting `path`, in key order (keys hold no NUL, so a
    /// sub-bucket's entries sort right after its name), without copying them
    /// into a list first.
    fn visit(
        &self,
        b: Bucket<'_>,
        path: &[u8],
        from: &[u8],
        f: &mut Visitor<'_>,
    ) -> Result<(), StateError> {
        let err = |e| bolt_err("reading", self.path, e);
        let mut full = path.to_vec();
        for item in b.iter_from(from) {
            let (k, v) = item.map_err(err)?;
            if !k.starts_with(from) {
                break;
            }
            full.truncate(path.len());
            full.extend_from_slice(&k);
            match v {
                Some(v) => f(&full, &v)?,
                None => {
                    if let Some(child) = b.bucket(&k).map_err(err)? {
                        full.push(0);
                        self.visit(child, &full, b"", f)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Every value under `b`, with full keys starting `path`.
    fn collect(
        &self,
        b: Bucket<'_>,
        path: &[u8],
        from: &[u8],
        out: &mut Pairs,
    ) -> Result<(), StateError> {
        let err = |e| bolt_err("reading", self.path, e);
        for item in b.iter_from(from) {
            let (k, v) = item.map_err(err)?;
            if !k.starts_with(from) {
                break;
            }
            let mut full = path.to_vec();
            full.extend_from_slice(&k);
            match v {
                Some(v) => out.push((full, v)),
                None => {
                    if let Some(child) = b.bucket(&k).map_err(err)? {
                        full.push(0);
                        self.collect(child, &full, b"", out)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl KvRead for BoltRead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let parts = split(key);
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(None);
        };
        if dirs.is_empty() || last.is_empty() {
            return Ok(None);
        }
        match self.walk(dirs)? {
            Some(b) => b.get(last).map_err(|e| bolt_err("reading", self.path, e)),
            None => Ok(None),
        }
    }

    fn scan(&self, prefix: &[u8]) -> Result<Pairs, StateError> {
        let parts = split(prefix);
        let (partial, dirs) = parts.split_last().expect("split yields at least one part");
        let mut out = Vec::new();
        let base_len = prefix.len() - partial.len();
        if dirs.is_empty() {
            // top level: buckets only
            let names = self
                .tx
                .bucket_names()
                .map_err(|e| bolt_err("reading", self.path, e))?;
            for n in names.iter().filter(|n| n.starts_with(partial)) {
                if let Some(b) = self
                    .tx
                    .bucket(n)
                    .map_err(|e| bolt_err("reading", self.path, e))?
                {
                    let mut full = n.clone();
                    full.push(0);
                    self.collect(b, &full, b"", &mut out)?;
                }
            }
        } else if let Some(b) = self.walk(dirs)? {
            self.collect(b, &prefix[..base_len], partial, &mut out)?;
        }
        out.sort();
        Ok(out)
    }

    fn for_each(&self, prefix: &[u8], f: &mut Visitor<'_>) -> Result<(), StateError> {
        let parts = split(prefix);
        let (partial, dirs) = parts.split_last().expect("split yields at least one part");
        if dirs.is_empty() {
            // top level: bucket names come unordered; sort them via scan
            for (k, v) in self.scan(prefix)? {
                f(&k, &v)?;
            }
            return Ok(());
        }
        let base_len = prefix.len() - partial.len();
        match self.walk(dirs)? {
            Some(b) => self.visit(b, &prefix[..base_len], partial, f),
            None => Ok(()),
        }
    }
}

/// Reads from a fixed map (podman's translated records, or nothing).
struct MapRead<'a>(&'a BTreeMap<Vec<u8>, Vec<u8>>);

impl KvRead for MapRead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8]) -> Result<Pairs, StateError> {
        Ok(self
            .0
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Applies a batch to rpod's layout in `tx`.
fn apply(tx: &Tx<'_>, path: &Path, batch: Batch) -> Result<(), StateError> {
    let err = |e| bolt_err("writing", path, e);
    for (k, v) in batch.ops {
        let parts = split(&k);
        let bad = |reason| {
            backend_err(BoltStateError::BadKey {
                path: path.to_path_buf(),
                key: show_key(&k),
                reason,
            })
        };
        if parts.len() < 2 {
            return Err(bad("a key needs at least two parts"));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty key part"));
        }
        let (last, dirs) = parts.split_last().expect("two parts");
        match v {
            Some(v) => {
                let mut b = tx.create_bucket_if_not_exists(dirs[0]).map_err(err)?;
                for d in &dirs[1..] {
                    b = b.create_bucket_if_not_exists(d).map_err(err)?;
                }
                b.put(last, &v).map_err(err)?;
            }
            None => {
                // the chain of buckets, to prune the ones left empty
                let Some(top) = tx.bucket(dirs[0]).map_err(err)? else {
                    continue;
                };
                let mut chain = vec![top];
                let mut missing = false;
                for d in &dirs[1..] {
                    match chain.last().expect("non-empty").bucket(d).map_err(err)? {
                        Some(c) => chain.push(c),
                        None => {
                            missing = true;
                            break;
                        }
                    }
                }
                if missing {
                    continue;
                }
                chain.last().expect("non-empty").delete(last).map_err(err)?;
                // prune empty buckets below the top level, innermost first
                for i in (1..chain.len()).rev() {
                    let empty = chain[i].iter().next().is_none();
                    if !empty {
                        break;
                    }
                    chain[i - 1].delete_bucket(dirs[i]).map_err(err)?;
                }
            }
        }
    }
    Ok(())
}

impl BoltKv {
    /// A store for the file at `path` (created on first use if `path` does
    /// not exist and `read_only` is false). Does not open it.
    pub fn new(path: impl Into<PathBuf>, read_only: bool, busy_timeout: Duration) -> Self {
        let path = path.into();
        let path = std::path::absolute(&path).unwrap_or(path);
        BoltKv {
            gate: rpod_state::kv::gate_for(&path),
            path,
            read_only,
            busy_timeout,
            layout: OnceLock::new(),
            podman_schema: OnceLock::new(),
        }
    }

    /// The layout of the file, once an operation has opened it.
    pub fn layout(&self) -> Option<Layout> {
        self.layout.get().copied()
    }

    /// For a podman database, the era of its schema (once opened).
    pub fn podman_schema(&self) -> Option<podman::PodmanSchema> {
        self.podman_schema.get().copied()
    }

    fn corrupt(&self, reason: impl Into<String>) -> StateError {
        StateError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Builds a new file next to `path` and links it into place (never over
    /// an existing file).
    fn initialise(&self) -> Result<(), StateError> {
        let tmp = rpod_state::kv::staging_path(&self.path)
            .map_err(|e| io_err("creating the directory of", &self.path, e))?;
        let built = (|| -> Result<(), StateError> {
            let db = Db::open(&tmp, &OpenOptions::new().page_size(4096))
                .map_err(|e| bolt_err("creating", &tmp, e))?;
            db.update(|tx| {
                tx.create_bucket_if_not_exists(META_BUCKET)?
                    .put(b"schema", &schema_marker())
            })
            .map_err(|e| bolt_err("initialising", &tmp, e))?;
            Ok(())
        })();
        let linked = built.and_then(|()| match std::fs::hard_link(&tmp, &self.path) {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "created bolt state database");
                Ok(())
            }
            // another process created it first: use theirs
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_err(
                "linking a new database into place at",
                &self.path,
                e,
            )),
        });
        let _ = std::fs::remove_file(&tmp);
        linked
    }

    /// Detects the layout inside an open transaction.
    fn detect(&self, tx: &Tx<'_>) -> Result<Layout, StateError> {
        let err = |e| bolt_err("reading", &self.path, e);
        if let Some(m) = tx.bucket(META_BUCKET).map_err(err)? {
            let marker = m.get(b"schema").map_err(err)?;
            check_schema_marker(&self.path, marker.as_deref())?;
            return Ok(Layout::Rpod);
        }
        let names = tx.bucket_names().map_err(err)?;
        let has = |n: &[u8]| names.iter().any(|x| x == n);
        if podman::REQUIRED_BUCKETS.iter().all(|b| has(b)) {
            let _ = self.podman_schema.set(podman::PodmanSchema::of(&names));
            return Ok(Layout::Podman);
        }
        let shown: Vec<String> = names.iter().map(|n| show_key(n)).collect();
        Err(self.corrupt(format!(
            "a bbolt file that is neither an rpod state (no {:?} bucket with a schema marker) nor a podman state (top-level buckets: [{}])",
            String::from_utf8_lossy(META_BUCKET),
            shown.join(", ")
        )))
    }

    fn open_db(&self, read_only: bool) -> Result<Db, StateError> {
        let opts = OpenOptions::new()
            .create(false)
            .read_only(read_only)
            .timeout(Some(self.busy_timeout));
        Db::open(&self.path, &opts).map_err(|e| bolt_err("opening", &self.path, e))
    }
}

impl KvStore for BoltKv {
    fn backend(&self) -> &str {
        BOLT_BACKEND
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn read_only(&self) -> bool {
        self.read_only || self.layout() == Some(Layout::Podman)
    }

    fn read_only_reason(&self) -> Option<String> {
        if self.layout() == Some(Layout::Podman) {
            let era = self
                .podman_schema()
                .map_or("podman", podman::PodmanSchema::versions);
            Some(format!(
                "was created by {era} and is opened read-only (rpod never writes into a database it did not create); use `rpod system import-podman {}` to copy its containers, pods and volumes into rpod's own database",
                self.path.display()
            ))
        } else {
            self.read_only.then(|| "is opened read-only".to_string())
        }
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&dyn KvRead) -> Result<Batch, StateError>,
    ) -> Result<(), StateError> {
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.read_only {
                    let empty = BTreeMap::new();
                    let batch = f(&MapRead(&empty))?;
                    if batch.is_empty() {
                        return Ok(());
                    }
                    return Err(StateError::ReadOnly {
                        path: self.path.clone(),
                        op: "write",
                    });
                }
                self.initialise()?;
            }
            Err(e) => return Err(io_err("inspecting", &self.path, e)),
            Ok(m) if !m.is_file() => {
                return Err(self.corrupt("not a bbolt database file (not a regular file)"));
            }
            Ok(m) if m.len() == 0 => {
                return Err(
                    self.corrupt("zero-length file; refusing to initialise an existing file")
                );
            }
            Ok(_) => {}
        }
        let ro = self.read_only || self.layout() == Some(Layout::Podman);
        let db = self.open_db(ro)?;
        let tx = db
            .begin(!ro)
            .map_err(|e| bolt_err("beginning a transaction on", &self.path, e))?;
        let layout = self.detect(&tx)?;
        let _ = self.layout.set(layout);
        match layout {
            Layout::Rpod => {
                let batch = f(&BoltRead {
                    tx: &tx,
                    path: &self.path,
                })?;
                if batch.is_empty() {
                    return Ok(());
                }
                if ro {
                    return Err(StateError::ReadOnly {
                        path: self.path.clone(),
                        op: "write",
                    });
                }
                apply(&tx, &self.path, batch)?;
                tx.commit()
                    .map_err(|e| bolt_err("committing", &self.path, e))?;
                Ok(())
            }
            Layout::Podman => {
                let view = podman::translate(&tx, &self.path)?;
                drop(tx);
                drop(db);
                let batch = f(&MapRead(&view))?;
                if batch.is_empty() {
                    return Ok(());
                }
                Err(StateError::ReadOnly {
                    path: self.path.clone(),
                    op:
                        "write into a podman database (rpod only reads databases it did not create)",
                })
            }
        }
    }
}

/// The bolt state type.
pub type BoltState = KvState<BoltKv>;

/// Opens (creating if absent) the bolt state for `opts`, checking the file
/// right away so a damaged or foreign database is reported at open.
pub fn new_bolt(opts: &StateOptions) -> Result<BoltState, StateError> {
    let path = opts.path_or_default(DEFAULT_DB_NAME);
    let state = KvState::new(
        BoltKv::new(path, opts.read_only, opts.busy_timeout),
        opts.namespace.clone(),
    );
    state.store().transact(&mut |_| Ok(Batch::default()))?;
    Ok(state)
}

/// The registered factory ([`rpod_state::StateFactory`]).
pub fn open_bolt(opts: &StateOptions) -> Result<Box<dyn State>, StateError> {
    Ok(Box::new(new_bolt(opts)?))
}

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::STATE,
    name: BOLT_BACKEND,
    summary: "bbolt file, podman's format (default); opened per operation; reads podman 1.5-4.3 databases read-only",
    factory: open_bolt as rpod_state::StateFactory,
}
