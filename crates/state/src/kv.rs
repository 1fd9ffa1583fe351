//! The state semantics over any ordered key-value store.
//!
//! [`KvState`] implements every [`State`] rule (name and id registry,
//! dependencies, pods, volumes, namespaces, exit codes, database config,
//! refresh) once, on top of a [`KvStore`]: something that can run a closure
//! against a consistent snapshot and then apply a [`Batch`] of writes
//! atomically and durably. The built-in `memory` and `sled` backends are both
//! `KvState`s; a third-party backend that only stores bytes can be one too.
//!
//! Keys are byte strings made of `\0`-separated parts, so ids and names may
//! not contain NUL. Values are JSON (records) or empty (edges). A container,
//! pod or volume is one key whose value is the JSON array `[config, state]`:
//! listing reads one entry per object, and saving a state copies the config's
//! text without decoding it.
//!
//! | key | value |
//! |---|---|
//! | `m\0schema` | schema marker (owned by the store, see [`schema_marker`]) |
//! | `m\0dbconfig` | [`DbConfig`] |
//! | `i\0<id>` | id registry entry: kind, name, namespace, pod |
//! | `n\0<name>` | id holding a container or pod name |
//! | `c\0<id>` | container `[config, state]` |
//! | `d\0<dep>\0<dependent>` | dependency edge |
//! | `p\0<id>` | pod `[config, state]` |
//! | `pm\0<pod>\0<ctr>` | pod membership |
//! | `v\0<name>` | volume `[config, state]` |
//! | `vu\0<vol>\0<ctr>` | volume use |
//! | `x\0<id>` | [`ExitCode`] |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::records::*;
use crate::traits::*;
use crate::{ObjectKind, StateError, Timestamp};

/// The schema version this build writes and understands. Version 1 (rpod
/// before 0.1 was released) kept configs and states under separate keys.
pub const SCHEMA_VERSION: u32 = 2;

/// The key of the schema marker.
pub const SCHEMA_KEY: &[u8] = b"m\0schema";

const MARKER_PREFIX: &str = "rpod-state-schema:";

/// The schema marker value for [`SCHEMA_VERSION`].
/// One in-process gate per database path, for backends that open their file
/// per operation: threads of one process take turns on it instead of waiting
/// on (or spinning for) the file lock.
pub fn gate_for(path: &Path) -> std::sync::Arc<std::sync::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static GATES: OnceLock<Mutex<HashMap<std::path::PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Arc::clone(map.entry(path.to_path_buf()).or_default())
}

/// Where a backend builds a new database before moving it into place at
/// `path`: a hidden, unique name in the same directory (created if missing),
/// so that a half-built database is never visible under `path`.
pub fn staging_path(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Ok(parent.join(format!(".{name}.init-{}-{nanos}", std::process::id())))
}

pub fn schema_marker() -> Vec<u8> {
    format!("{MARKER_PREFIX}{SCHEMA_VERSION}").into_bytes()
}

/// Checks a schema marker read from the database at `path`: a missing or
/// foreign marker is `Corrupt`, another version is `WrongSchema`.
pub fn check_schema_marker(path: &Path, value: Option<&[u8]>) -> Result<u32, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let Some(v) = value else {
        return Err(corrupt(
            "no rpod schema marker (not an rpod state database, or damaged)".into(),
        ));
    };
    let s = std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.strip_prefix(MARKER_PREFIX))
        .ok_or_else(|| {
            corrupt(format!(
                "foreign or garbled schema marker {:?}",
                String::from_utf8_lossy(v)
            ))
        })?;
    let found: u32 = s
        .parse()
        .map_err(|_| corrupt(format!("garbled schema version {s:?}")))?;
    if found != SCHEMA_VERSION {
        return Err(StateError::WrongSchema {
            path: path.to_path_buf(),
            found: found.to_string(),
            expected: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// `(key, value)` pairs in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A callback over `(key, value)` pairs.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StateError> + 'a;

/// Read access to a snapshot of the store.
pub trait KvRead {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Entries, StateError>;
    /// Calls `f` on every `(key, value)` under `prefix`, in key order. The
    /// default uses [`scan`](Self::scan); stores override it to avoid copies
    /// (it is what listing uses).
    fn for_each(&self, prefix: &[u8], f: &mut Visitor<'_>) -> Result<(), StateError> {
        for (k, v) in self.scan(prefix)? {
            f(&k, &v)?;
        }
        Ok(())
    }
}

/// Writes to apply atomically: `Some(value)` inserts, `None` removes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// The writes, last one per key wins.
    pub ops: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An ordered key-value store the state semantics run on.
pub trait KvStore: Send + Sync + fmt::Debug + 'static {
    /// The backend name.
    fn backend(&self) -> &str;
    /// The database path, if any (used in error messages).
    fn path(&self) -> Option<&Path>;
    /// Whether writes are refused.
    fn read_only(&self) -> bool;
    /// Why writes are refused (see [`State::read_only_reason`]); by default
    /// "is opened read-only" when [`read_only`](Self::read_only) is true.
    fn read_only_reason(&self) -> Option<String> {
        self.read_only().then(|| "is opened read-only".to_string())
    }
    /// Runs `f` (exactly once) with exclusive access to a consistent view,
    /// then applies the batch it returns atomically and durably (nothing to
    /// do if empty). No other operation on the same database, from any
    /// thread or process, may interleave between the reads of `f` and the
    /// commit.
    fn transact(
        &self,
        f: &mut dyn FnMut(&dyn KvRead) -> Result<Batch, StateError>,
    ) -> Result<(), StateError>;
}

/// Reads with the writes of the current operation applied on top.
struct Txn<'a> {
    base: &'a dyn KvRead,
    batch: Batch,
    path: PathBuf,
}

impl Txn<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.batch.ops.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    fn scan(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        let pending = self
            .batch
            .ops
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix));
        if !pending {
            return self.base.scan(prefix);
        }
        let mut m: BTreeMap<Vec<u8>, Vec<u8>> = self.base.scan(prefix)?.into_iter().collect();
        for (k, v) in self.batch.ops.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
        Ok(m.into_iter().collect())
    }

    fn for_each(&self, prefix: &[u8], f: &mut Visitor<'_>) -> Result<(), StateError> {
        let pending = self
            .batch
            .ops
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix));
        if !pending {
            return self.base.for_each(prefix, f);
        }
        for (k, v) in self.scan(prefix)? {
            f(&k, &v)?;
        }
        Ok(())
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.ops.insert(key, Some(value));
    }

    fn del(&mut self, key: Vec<u8>) {
        self.batch.ops.insert(key, None);
    }

    fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| StateError::invalid(format!("cannot encode record: {e}")))?;
        self.put(key, bytes);
        Ok(())
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, StateError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(&self.path, &bytes, what).map(Some),
        }
    }

    /// The `[config, state]` record stored at `key`.
    fn get_rec<C: DeserializeOwned, S: DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<(C, S)>, StateError> {
        self.get_json(key, what)
    }

    /// Stores a `[config, state]` record.
    fn put_rec<C: Serialize, S: Serialize>(
        &mut self,
        key: Vec<u8>,
        config: &C,
        state: &S,
    ) -> Result<(), StateError> {
        self.put_json(key, &(config, state))
    }

    /// Replaces the state of the record at `key`, copying its config's text.
    fn put_state<S: Serialize>(
        &mut self,
        key: Vec<u8>,
        state: &S,
        what: &str,
    ) -> Result<(), StateError> {
        let (config, _): (Box<serde_json::value::RawValue>, serde::de::IgnoredAny) = self
            .get_rec(&key, what)?
            .ok_or_else(|| StateError::Corrupt {
                path: self.path.clone(),
                reason: format!("{what} is registered but has no record"),
            })?;
        self.put_rec(key, &config, state)
    }

    /// Last key parts after `prefix` of every key under it.
    fn children(&self, prefix: &[u8]) -> Result<Vec<String>, StateError> {
        Ok(self
            .scan(prefix)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect())
    }
}

fn decode<T: DeserializeOwned>(path: &Path, bytes: &[u8], what: &str) -> Result<T, StateError> {
    decode_as(path, bytes, &|| what.to_string())
}

/// [`decode`], naming what was decoded only when it fails.
fn decode_as<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    what: &dyn Fn() -> String,
) -> Result<T, StateError> {
    let corrupt = |e: &dyn fmt::Display| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{}: {e}", what()),
    };
    // one UTF-8 check of the whole value, instead of one per string
    let text = std::str::from_utf8(bytes).map_err(|e| corrupt(&e))?;
    serde_json::from_str(text).map_err(|e| corrupt(&e))
}

fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

/// Id registry entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct IdEntry {
    /// `c` container, `p` pod.
    k: char,
    /// Name.
    n: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    ns: String,
    /// Pod (containers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pod: String,
}

impl IdEntry {
    fn kind(&self) -> ObjectKind {
        if self.k == 'p' {
            ObjectKind::Pod
        } else {
            ObjectKind::Container
        }
    }
}

fn check_ident(what: &str, v: &str) -> Result<(), StateError> {
    if v.is_empty() {
        return Err(StateError::invalid(format!("empty {what}")));
    }
    if v.contains('\0') {
        return Err(StateError::invalid(format!(
            "{what} {v:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// A [`State`] on a [`KvStore`], seeing one namespace.
pub struct KvState<S: KvStore> {
    store: Arc<S>,
    ns: String,
}

impl<S: KvStore> fmt::Debug for KvState<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvState")
            .field("store", &self.store)
            .field("namespace", &self.ns)
            .finish()
    }
}

impl<S: KvStore> KvState<S> {
    /// A state over `store` seeing `namespace` (empty for all).
    pub fn new(store: S, namespace: impl Into<String>) -> Self {
        KvState {
            store: Arc::new(store),
            ns: namespace.into(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn err_path(&self) -> PathBuf {
        self.store
            .path()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("<{}>", self.store.backend())))
    }

    fn read<T>(
        &self,
        mut f: impl FnMut(&Txn<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let path = self.err_path();
        let mut out = None;
        self.store.transact(&mut |r| {
            let tx = Txn {
                base: r,
                batch: Batch::default(),
                path: path.clone(),
            };
            out = Some(f(&tx)?);
            Ok(Batch::default())
        })?;
        out.ok_or_else(|| StateError::invalid("store did not run the operation"))
    }

    fn write<T>(
        &self,
        op: &'static str,
        mut f: impl FnMut(&mut Txn<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        if self.store.read_only() {
            return Err(StateError::ReadOnly {
                path: self.err_path(),
                op,
            });
        }
        let path = self.err_path();
        let mut out = None;
        self.store.transact(&mut |r| {
            let mut tx = Txn {
                base: r,
                batch: Batch::default(),
                path: path.clone(),
            };
            out = Some(f(&mut tx)?);
            Ok(std::mem::take(&mut tx.batch))
        })?;
        out.ok_or_else(|| StateError::invalid("store did not run the operation"))
    }

    fn visible(&self, ns: &str) -> bool {
        self.ns.is_empty() || self.ns == ns
    }

    fn check_ns(&self, what: &str, id: &str, ns: &str) -> Result<(), StateError> {
        if self.visible(ns) {
            Ok(())
        } else {
            Err(StateError::invalid(format!(
                "{what} {id} is in namespace {ns:?} but this state is in namespace {:?}",
                self.ns
            )))
        }
    }

    /// The id entry of a visible object of `kind` with full id `id`.
    fn entry(&self, tx: &Txn<'_>, kind: ObjectKind, id: &str) -> Result<IdEntry, StateError> {
        check_ident("id", id)?;
        match tx.get_json::<IdEntry>(&key(&["i", id]), "id registry entry")? {
            Some(e) if e.kind() == kind && self.visible(&e.ns) => Ok(e),
            _ => Err(StateError::not_found(kind, id)),
        }
    }

    /// Full id, then exact name, then unique prefix, of a visible object of `kind`.
    fn resolve(&self, tx: &Txn<'_>, kind: ObjectKind, input: &str) -> Result<String, StateError> {
        check_ident("id or name", input)?;
        if let Some(e) = tx.get_json::<IdEntry>(&key(&["i", input]), "id registry entry")? {
            if e.kind() == kind && self.visible(&e.ns) {
                return Ok(input.to_string());
            }
        }
        if let Some(id) = tx.get(&key(&["n", input]))? {
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(e) = tx.get_json::<IdEntry>(&key(&["i", &id]), "id registry entry")? {
                if e.kind() == kind && self.visible(&e.ns) {
                    return Ok(id);
                }
            }
        }
        let mut matches = Vec::new();
        for (k, v) in tx.scan(&key(&["i", input]))? {
            let e: IdEntry = decode(&tx.path, &v, "id registry entry")?;
            if e.kind() == kind && self.visible(&e.ns) {
                matches.push(String::from_utf8_lossy(&k[2..]).into_owned());
            }
        }
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(StateError::not_found(kind, input)),
            count => Err(StateError::Ambiguous {
                prefix: input.to_string(),
                kind,
                count,
            }),
        }
    }

    fn load_ctr(&self, tx: &Txn<'_>, id: &str) -> Result<ContainerRecord, StateError> {
        let (config, state) = tx
            .get_rec(&key(&["c", id]), &format!("container {id}"))?
            .ok_or_else(|| StateError::Corrupt {
                path: tx.path.clone(),
                reason: format!("container {id} is registered but has no record"),
            })?;
        Ok(ContainerRecord { config, state })
    }

    fn load_pod(&self, tx: &Txn<'_>, id: &str) -> Result<PodRecord, StateError> {
        let (config, state) = tx
            .get_rec(&key(&["p", id]), &format!("pod {id}"))?
            .ok_or_else(|| StateError::Corrupt {
                path: tx.path.clone(),
                reason: format!("pod {id} is registered but has no record"),
            })?;
        Ok(PodRecord { config, state })
    }

    fn load_vol(&self, tx: &Txn<'_>, name: &str) -> Result<Option<VolumeRecord>, StateError> {
        check_ident("volume name", name)?;
        let Some((config, state)) =
            tx.get_rec::<VolumeConfig, VolumeState>(&key(&["v", name]), &format!("volume {name}"))?
        else {
            return Ok(None);
        };
        if !self.visible(&config.namespace) {
            return Ok(None);
        }
        Ok(Some(VolumeRecord { config, state }))
    }

    fn vol(&self, tx: &Txn<'_>, name: &str) -> Result<VolumeRecord, StateError> {
        self.load_vol(tx, name)?
            .ok_or_else(|| StateError::not_found(ObjectKind::Volume, name))
    }

    fn check_name_free(&self, tx: &Txn<'_>, name: &str) -> Result<(), StateError> {
        if let Some(holder) = tx.get(&key(&["n", name]))? {
            let holder = String::from_utf8_lossy(&holder).into_owned();
            let kind = tx
                .get_json::<IdEntry>(&key(&["i", &holder]), "id registry entry")?
                .map_or(ObjectKind::ContainerOrPod, |e| e.kind());
            return Err(StateError::NameInUse {
                name: name.to_string(),
                kind,
                holder,
            });
        }
        Ok(())
    }

    fn check_id_free(&self, tx: &Txn<'_>, id: &str) -> Result<(), StateError> {
        if let Some(e) = tx.get_json::<IdEntry>(&key(&["i", id]), "id registry entry")? {
            return Err(StateError::IdInUse {
                id: id.to_string(),
                kind: e.kind(),
            });
        }
        Ok(())
    }

    /// The id entry of a visible container that nothing depends on (what
    /// removing it needs); `InUse` (dependents) otherwise.
    fn removable_ctr(&self, tx: &Txn<'_>, id: &str) -> Result<IdEntry, StateError> {
        let e = self.entry(tx, ObjectKind::Container, id)?;
        let by = tx.children(&prefix(&["d", id]))?;
        if !by.is_empty() {
            return Err(StateError::InUse {
                id: id.to_string(),
                kind: ObjectKind::Container,
                by,
                what: crate::InUseBy::Dependents,
            });
        }
        Ok(e)
    }

    fn remove_ctr_in(&self, tx: &mut Txn<'_>, id: &str, entry: &IdEntry) -> Result<(), StateError> {
        let rec = self.load_ctr(tx, id)?;
        for dep in &rec.config.dependencies {
            tx.del(key(&["d", dep, id]));
        }
        for v in &rec.config.named_volumes {
            tx.del(key(&["vu", &v.name, id]));
        }
        if !entry.pod.is_empty() {
            tx.del(key(&["pm", &entry.pod, id]));
        }
        tx.del(key(&["n", &entry.n]));
        tx.del(key(&["i", id]));
        tx.del(key(&["c", id]));
        Ok(())
    }

    /// Every visible record of kind `R`, from the keys `<pfx>\0<id>`,
    /// decoded straight from the store.
    fn list<R: Listed>(&self, tx: &Txn<'_>, pfx: &str) -> Result<Vec<R>, StateError> {
        let mut out = Vec::new();
        self.walk(tx, pfx, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` on every visible record of kind `R`, in key order.
    fn walk<R: Listed>(
        &self,
        tx: &Txn<'_>,
        pfx: &str,
        f: &mut dyn FnMut(R) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let skip = pfx.len() + 1;
        let path = &tx.path;
        let what = R::WHAT;
        tx.for_each(&prefix(&[pfx]), &mut |k, v| {
            let (cfg, st): (R::Config, R::State) = decode_as(path, v, &|| {
                format!("{what} {}", String::from_utf8_lossy(&k[skip..]))
            })?;
            if self.visible(R::namespace(&cfg)) {
                f(R::make(cfg, st))?;
            }
            Ok(())
        })
    }
}

/// A record kind stored as a config and a state.
trait Listed: Sized {
    type Config: DeserializeOwned;
    type State: DeserializeOwned;
    const WHAT: &'static str;
    fn namespace(c: &Self::Config) -> &str;
    fn make(c: Self::Config, s: Self::State) -> Self;
}

impl Listed for ContainerRecord {
    type Config = ContainerConfig;
    type State = ContainerState;
    const WHAT: &'static str = "container";
    fn namespace(c: &ContainerConfig) -> &str {
        &c.namespace
    }
    fn make(config: ContainerConfig, state: ContainerState) -> Self {
        ContainerRecord { config, state }
    }
}

impl Listed for PodRecord {
    type Config = PodConfig;
    type State = PodState;
    const WHAT: &'static str = "pod";
    fn namespace(c: &PodConfig) -> &str {
        &c.namespace
    }
    fn make(config: PodConfig, state: PodState) -> Self {
        PodRecord { config, state }
    }
}

impl Listed for VolumeRecord {
    type Config = VolumeConfig;
    type State = VolumeState;
    const WHAT: &'static str = "volume";
    fn namespace(c: &VolumeConfig) -> &str {
        &c.namespace
    }
    fn make(config: VolumeConfig, state: VolumeState) -> Self {
        VolumeRecord { config, state }
    }
}

impl<S: KvStore> ContainerStore for KvState<S> {
    fn add_container(
        &self,
        config: &ContainerConfig,
        state: &ContainerState,
    ) -> Result<(), StateError> {
        check_ident("container id", &config.id)?;
        check_ident("container name", &config.name)?;
        self.check_ns("container", &config.id, &config.namespace)?;
        self.write("add a container", |tx| {
            let id = config.id.as_str();
            self.check_id_free(tx, id)?;
            self.check_name_free(tx, &config.name)?;
            let pod = config.pod.clone().unwrap_or_default();
            if !pod.is_empty() {
                let pe = match tx.get_json::<IdEntry>(&key(&["i", &pod]), "id registry entry")? {
                    Some(e) if e.k == 'p' => e,
                    _ => return Err(StateError::not_found(ObjectKind::Pod, pod.clone())),
                };
                if pe.ns != config.namespace {
                    return Err(StateError::invalid(format!(
                        "container {id} is in namespace {:?} but its pod {pod} is in namespace {:?}",
                        config.namespace, pe.ns
                    )));
                }
            }
            let deps: BTreeSet<&str> = config.dependencies.iter().map(String::as_str).collect();
            for dep in &deps {
                check_ident("dependency id", dep)?;
                if *dep == id {
                    return Err(StateError::invalid(format!("container {id} cannot depend on itself")));
                }
                let de = tx
                    .get_json::<IdEntry>(&key(&["i", dep]), "id registry entry")?
                    .ok_or_else(|| StateError::not_found(ObjectKind::Container, *dep))?;
                if de.k == 'p' {
                    return Err(StateError::invalid(format!(
                        "container {id} cannot depend on {dep}, which is a pod"
                    )));
                }
                if de.ns != config.namespace {
                    return Err(StateError::invalid(format!(
                        "container {id} (namespace {:?}) cannot depend on container {dep} in namespace {:?}",
                        config.namespace, de.ns
                    )));
                }
                if de.pod != pod {
                    return Err(StateError::invalid(format!(
                        "container {id} (pod {pod:?}) cannot depend on container {dep}, which is in pod {:?}",
                        de.pod
                    )));
                }
            }
            let vols: BTreeSet<&str> = config.named_volumes.iter().map(|v| v.name.as_str()).collect();
            for v in &vols {
                check_ident("volume name", v)?;
                if tx.get(&key(&["v", v]))?.is_none() {
                    return Err(StateError::not_found(ObjectKind::Volume, *v));
                }
            }
            tx.put_json(
                key(&["i", id]),
                &IdEntry {
                    k: 'c',
                    n: config.name.clone(),
                    ns: config.namespace.clone(),
                    pod: pod.clone(),
                },
            )?;
            tx.put(key(&["n", &config.name]), id.as_bytes().to_vec());
            tx.put_rec(key(&["c", id]), config, state)?;
            for dep in &deps {
                tx.put(key(&["d", dep, id]), Vec::new());
            }
            for v in &vols {
                tx.put(key(&["vu", v, id]), Vec::new());
            }
            if !pod.is_empty() {
                tx.put(key(&["pm", &pod, id]), Vec::new());
            }
            Ok(())
        })
    }

    fn remove_container(&self, id: &str) -> Result<(), StateError> {
        self.write("remove a container", |tx| {
            let e = self.removable_ctr(tx, id)?;
            self.remove_ctr_in(tx, id, &e)
        })
    }

    fn container(&self, id: &str) -> Result<ContainerRecord, StateError> {
        self.read(|tx| {
            self.entry(tx, ObjectKind::Container, id)?;
            self.load_ctr(tx, id)
        })
    }

    fn has_container(&self, id: &str) -> Result<bool, StateError> {
        self.read(|tx| match self.entry(tx, ObjectKind::Container, id) {
            Ok(_) => Ok(true),
            Err(StateError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn lookup_container(&self, id_or_name: &str) -> Result<ContainerRecord, StateError> {
        self.read(|tx| {
            let id = self.resolve(tx, ObjectKind::Container, id_or_name)?;
            self.load_ctr(tx, &id)
        })
    }

    fn container_state(&self, id: &str) -> Result<ContainerState, StateError> {
        self.read(|tx| {
            self.entry(tx, ObjectKind::Container, id)?;
            Ok(self.load_ctr(tx, id)?.state)
        })
    }

    fn save_container_state(&self, id: &str, state: &ContainerState) -> Result<(), StateError> {
        self.write("save a container's state", |tx| {
            self.entry(tx, ObjectKind::Container, id)?;
            tx.put_state(key(&["c", id]), state, &format!("container {id}"))
        })
    }

    fn rewrite_container_config(&self, config: &ContainerConfig) -> Result<(), StateError> {
        check_ident("container name", &config.name)?;
        self.write("rewrite a container's config", |tx| {
            let id = config.id.as_str();
            let mut e = self.entry(tx, ObjectKind::Container, id)?;
            let ContainerRecord { config: old, state } = self.load_ctr(tx, id)?;
            let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
            let vols =
                |v: &[NamedVolume]| v.iter().map(|v| v.name.clone()).collect::<BTreeSet<_>>();
            let unchanged = |what: &str, same: bool| {
                if same {
                    Ok(())
                } else {
                    Err(StateError::invalid(format!(
                        "cannot change the {what} of container {id} by rewriting its config"
                    )))
                }
            };
            unchanged("pod", old.pod == config.pod)?;
            unchanged("namespace", old.namespace == config.namespace)?;
            unchanged(
                "dependencies",
                set(&old.dependencies) == set(&config.dependencies),
            )?;
            unchanged(
                "named volumes",
                vols(&old.named_volumes) == vols(&config.named_volumes),
            )?;
            if old.name != config.name {
                self.check_name_free(tx, &config.name)?;
                tx.del(key(&["n", &old.name]));
                tx.put(key(&["n", &config.name]), id.as_bytes().to_vec());
                e.n = config.name.clone();
                tx.put_json(key(&["i", id]), &e)?;
            }
            tx.put_rec(key(&["c", id]), config, &state)
        })
    }

    fn all_containers(&self) -> Result<Vec<ContainerRecord>, StateError> {
        self.read(|tx| self.list(tx, "c"))
    }

    fn for_each_container(
        &self,
        f: &mut dyn FnMut(ContainerRecord) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        self.read(|tx| self.walk(tx, "c", f))
    }

    fn container_dependents(&self, id: &str) -> Result<Vec<String>, StateError> {
        self.read(|tx| {
            self.entry(tx, ObjectKind::Container, id)?;
            tx.children(&prefix(&["d", id]))
        })
    }
}

impl<S: KvStore> PodStore for KvState<S> {
    fn add_pod(&self, config: &PodConfig, state: &PodState) -> Result<(), StateError> {
        check_ident("pod id", &config.id)?;
        check_ident("pod name", &config.name)?;
        self.check_ns("pod", &config.id, &config.namespace)?;
        self.write("add a pod", |tx| {
            let id = config.id.as_str();
            self.check_id_free(tx, id)?;
            self.check_name_free(tx, &config.name)?;
            tx.put_json(
                key(&["i", id]),
                &IdEntry {
                    k: 'p',
                    n: config.name.clone(),
                    ns: config.namespace.clone(),
                    pod: String::new(),
                },
            )?;
            tx.put(key(&["n", &config.name]), id.as_bytes().to_vec());
            tx.put_rec(key(&["p", id]), config, state)
        })
    }

    fn remove_pod(&self, id: &str) -> Result<(), StateError> {
        self.write("remove a pod", |tx| {
            let e = self.entry(tx, ObjectKind::Pod, id)?;
            let by = tx.children(&prefix(&["pm", id]))?;
            if !by.is_empty() {
                return Err(StateError::InUse {
                    id: id.to_string(),
                    kind: ObjectKind::Pod,
                    by,
                    what: crate::InUseBy::PodMembers,
                });
            }
            tx.del(key(&["n", &e.n]));
            tx.del(key(&["i", id]));
            tx.del(key(&["p", id]));
            Ok(())
        })
    }

    fn pod(&self, id: &str) -> Result<PodRecord, StateError> {
        self.read(|tx| {
            self.entry(tx, ObjectKind::Pod, id)?;
            self.load_pod(tx, id)
        })
    }

    fn has_pod(&self, id: &str) -> Result<bool, StateError> {
        self.read(|tx| match self.entry(tx, ObjectKind::Pod, id) {
            Ok(_) => Ok(true),
            Err(StateError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn lookup_pod(&self, id_or_name: &str) -> Result<PodRecord, StateError> {
        self.read(|tx| {
            let id = self.resolve(tx, ObjectKind::Pod, id_or_name)?;
            self.load_pod(tx, &id)
        })
    }

    fn save_pod_state(&self, id: &str, state: &PodState) -> Result<(), StateError> {
        self.write("save a pod's state", |tx| {
            self.entry(tx, ObjectKind::Pod, id)?;
            tx.put_state(key(&["p", id]), state, &format!("pod {id}"))
        })
    }

    fn rewrite_pod_config(&self, config: &PodConfig) -> Result<(), StateError> {
        check_ident("pod name", &config.name)?;
        self.write("rewrite a pod's config", |tx| {
            let id = config.id.as_str();
            let mut e = self.entry(tx, ObjectKind::Pod, id)?;
            let PodRecord { config: old, state } = self.load_pod(tx, id)?;
            if old.namespace != config.namespace {
                return Err(StateError::invalid(format!(
                    "cannot change the namespace of pod {id} by rewriting its config"
                )));
            }
            if old.name != config.name {
                self.check_name_free(tx, &config.name)?;
                tx.del(key(&["n", &old.name]));
                tx.put(key(&["n", &config.name]), id.as_bytes().to_vec());
                e.n = config.name.clone();
                tx.put_json(key(&["i", id]), &e)?;
            }
            tx.put_rec(key(&["p", id]), config, &state)
        })
    }

    fn all_pods(&self) -> Result<Vec<PodRecord>, StateError> {
        self.read(|tx| self.list(tx, "p"))
    }

    fn pod_containers(&self, pod_id: &str) -> Result<Vec<String>, StateError> {
        self.read(|tx| {
            self.entry(tx, ObjectKind::Pod, pod_id)?;
            tx.children(&prefix(&["pm", pod_id]))
        })
    }

    fn pod_has_container(&self, pod_id: &str, ctr_id: &str) -> Result<bool, StateError> {
        check_ident("container id", ctr_id)?;
        self.read(|tx| {
            self.entry(tx, ObjectKind::Pod, pod_id)?;
            Ok(tx.get(&key(&["pm", pod_id, ctr_id]))?.is_some())
        })
    }

    fn remove_pod_containers(&self, pod_id: &str) -> Result<Vec<String>, StateError> {
        self.write("remove a pod's containers", |tx| {
            self.entry(tx, ObjectKind::Pod, pod_id)?;
            let members = tx.children(&prefix(&["pm", pod_id]))?;
            let set: BTreeSet<&str> = members.iter().map(String::as_str).collect();
            for m in &members {
                let outside: Vec<String> = tx
                    .children(&prefix(&["d", m]))?
                    .into_iter()
                    .filter(|d| !set.contains(d.as_str()))
                    .collect();
                if !outside.is_empty() {
                    return Err(StateError::InUse {
                        id: m.clone(),
                        kind: ObjectKind::Container,
                        by: outside,
                        what: crate::InUseBy::Dependents,
                    });
                }
            }
            for m in &members {
                let e = tx
                    .get_json::<IdEntry>(&key(&["i", m]), "id registry entry")?
                    .ok_or_else(|| StateError::Corrupt {
                        path: tx.path.clone(),
                        reason: format!("pod {pod_id} member {m} is not registered"),
                    })?;
                for d in tx.children(&prefix(&["d", m]))? {
                    tx.del(key(&["d", m, &d]));
                }
                self.remove_ctr_in(tx, m, &e)?;
            }
            Ok(members.clone())
        })
    }
}

impl<S: KvStore> VolumeStore for KvState<S> {
    fn add_volume(&self, config: &VolumeConfig, state: &VolumeState) -> Result<(), StateError> {
        check_ident("volume name", &config.name)?;
        self.check_ns("volume", &config.name, &config.namespace)?;
        self.write("add a volume", |tx| {
            let name = config.name.as_str();
            if tx.get(&key(&["v", name]))?.is_some() {
                return Err(StateError::NameInUse {
                    name: name.to_string(),
                    kind: ObjectKind::Volume,
                    holder: name.to_string(),
                });
            }
            tx.put_rec(key(&["v", name]), config, state)
        })
    }

    fn remove_volume(&self, name: &str) -> Result<(), StateError> {
        self.write("remove a volume", |tx| {
            self.vol(tx, name)?;
            let by = tx.children(&prefix(&["vu", name]))?;
            if !by.is_empty() {
                return Err(StateError::InUse {
                    id: name.to_string(),
                    kind: ObjectKind::Volume,
                    by,
                    what: crate::InUseBy::VolumeUsers,
                });
            }
            tx.del(key(&["v", name]));
            Ok(())
        })
    }

    fn volume(&self, name: &str) -> Result<VolumeRecord, StateError> {
        self.read(|tx| self.vol(tx, name))
    }

    fn has_volume(&self, name: &str) -> Result<bool, StateError> {
        self.read(|tx| Ok(self.load_vol(tx, name)?.is_some()))
    }

    fn lookup_volume(&self, name_or_prefix: &str) -> Result<VolumeRecord, StateError> {
        self.read(|tx| {
            if let Some(v) = self.load_vol(tx, name_or_prefix)? {
                return Ok(v);
            }
            let mut found = Vec::new();
            for (_, v) in tx.scan(&key(&["v", name_or_prefix]))? {
                let (config, _): (VolumeConfig, serde::de::IgnoredAny) =
                    decode(&tx.path, &v, "volume record")?;
                if self.visible(&config.namespace) {
                    found.push(config.name);
                }
            }
            match found.len() {
                1 => self.vol(tx, &found[0]),
                0 => Err(StateError::not_found(ObjectKind::Volume, name_or_prefix)),
                count => Err(StateError::Ambiguous {
                    prefix: name_or_prefix.to_string(),
                    kind: ObjectKind::Volume,
                    count,
                }),
            }
        })
    }

    fn save_volume_state(&self, name: &str, state: &VolumeState) -> Result<(), StateError> {
        self.write("save a volume's state", |tx| {
            self.vol(tx, name)?;
            tx.put_state(key(&["v", name]), state, &format!("volume {name}"))
        })
    }

    fn rewrite_volume_config(&self, config: &VolumeConfig) -> Result<(), StateError> {
        self.write("rewrite a volume's config", |tx| {
            let old = self.vol(tx, &config.name)?;
            if old.config.namespace != config.namespace {
                return Err(StateError::invalid(format!(
                    "cannot change the namespace of volume {} by rewriting its config",
                    config.name
                )));
            }
            tx.put_rec(key(&["v", &config.name]), config, &old.state)
        })
    }

    fn all_volumes(&self) -> Result<Vec<VolumeRecord>, StateError> {
        self.read(|tx| self.list(tx, "v"))
    }

    fn volume_users(&self, name: &str) -> Result<Vec<String>, StateError> {
        self.read(|tx| {
            self.vol(tx, name)?;
            tx.children(&prefix(&["vu", name]))
        })
    }
}

impl<S: KvStore> ExitCodes for KvState<S> {
    fn record_exit_code(&self, id: &str, exit: ExitCode) -> Result<(), StateError> {
        check_ident("container id", id)?;
        self.write("record an exit code", |tx| {
            tx.put_json(key(&["x", id]), &exit)
        })
    }

    fn exit_code(&self, id: &str) -> Result<ExitCode, StateError> {
        check_ident("container id", id)?;
        self.read(|tx| {
            tx.get_json(&key(&["x", id]), &format!("exit code of {id}"))?
                .ok_or_else(|| StateError::not_found(ObjectKind::ExitCode, id))
        })
    }

    fn prune_exit_codes(&self, older_than: Timestamp) -> Result<usize, StateError> {
        self.write("prune exit codes", |tx| {
            let mut n = 0;
            for (k, v) in tx.scan(&prefix(&["x"]))? {
                let e: ExitCode = decode(&tx.path, &v, "exit code")?;
                if e.time < older_than {
                    tx.del(k);
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

const DBCONFIG_KEY: &[u8] = b"m\0dbconfig";

impl<S: KvStore> DbConfigStore for KvState<S> {
    fn db_config(&self) -> Result<Option<DbConfig>, StateError> {
        self.read(|tx| tx.get_json(DBCONFIG_KEY, "database config"))
    }

    fn validate_db_config(&self, current: &DbConfig) -> Result<DbConfig, StateError> {
        let stored = self.read(|tx| tx.get_json::<DbConfig>(DBCONFIG_KEY, "database config"))?;
        if let Some(db) = &stored {
            if let Some((key, db, current)) = db.mismatch(current) {
                return Err(StateError::DbConfigMismatch { key, db, current });
            }
            let filled = fill(db, current);
            if filled == *db || self.store.read_only() {
                return Ok(filled);
            }
        }
        self.write("store the database config", |tx| {
            match tx.get_json::<DbConfig>(DBCONFIG_KEY, "database config")? {
                None => {
                    tx.put_json(DBCONFIG_KEY.to_vec(), current)?;
                    Ok(current.clone())
                }
                Some(db) => {
                    if let Some((key, db, current)) = db.mismatch(current) {
                        return Err(StateError::DbConfigMismatch { key, db, current });
                    }
                    let filled = fill(&db, current);
                    tx.put_json(DBCONFIG_KEY.to_vec(), &filled)?;
                    Ok(filled)
                }
            }
        })
    }
}

fn fill(db: &DbConfig, cur: &DbConfig) -> DbConfig {
    let f = |a: &String, b: &String| if a.is_empty() { b.clone() } else { a.clone() };
    DbConfig {
        static_dir: f(&db.static_dir, &cur.static_dir),
        tmp_dir: f(&db.tmp_dir, &cur.tmp_dir),
        graph_root: f(&db.graph_root, &cur.graph_root),
        run_root: f(&db.run_root, &cur.run_root),
        graph_driver: f(&db.graph_driver, &cur.graph_driver),
        volume_path: f(&db.volume_path, &cur.volume_path),
    }
}

impl<S: KvStore> State for KvState<S> {
    fn backend(&self) -> &str {
        self.store.backend()
    }

    fn path(&self) -> Option<&Path> {
        self.store.path()
    }

    fn namespace(&self) -> &str {
        &self.ns
    }

    fn with_namespace(&self, namespace: &str) -> Result<Box<dyn State>, StateError> {
        Ok(Box::new(KvState {
            store: Arc::clone(&self.store),
            ns: namespace.to_string(),
        }))
    }

    fn refresh(&self) -> Result<(), StateError> {
        self.write("refresh", |tx| {
            for (k, v) in tx.scan(&prefix(&["c"]))? {
                let (c, mut s): (Box<serde_json::value::RawValue>, ContainerState) =
                    decode(&tx.path, &v, "container record")?;
                s.reset_after_reboot();
                tx.put_rec(k, &c, &s)?;
            }
            for (k, v) in tx.scan(&prefix(&["p"]))? {
                let (c, mut s): (Box<serde_json::value::RawValue>, PodState) =
                    decode(&tx.path, &v, "pod record")?;
                s.cgroup_path.clear();
                tx.put_rec(k, &c, &s)?;
            }
            for (k, v) in tx.scan(&prefix(&["v"]))? {
                let (c, mut s): (Box<serde_json::value::RawValue>, VolumeState) =
                    decode(&tx.path, &v, "volume record")?;
                s.mount_count = 0;
                tx.put_rec(k, &c, &s)?;
            }
            Ok(())
        })
    }

    fn schema_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    fn read_only_reason(&self) -> Option<String> {
        self.store.read_only_reason()
    }

    fn remove_container_with_exit_code(&self, id: &str, exit: ExitCode) -> Result<(), StateError> {
        check_ident("container id", id)?;
        self.write("remove a container", |tx| {
            let e = self.removable_ctr(tx, id)?;
            tx.put_json(key(&["x", id]), &exit)?;
            self.remove_ctr_in(tx, id, &e)
        })
    }
}
