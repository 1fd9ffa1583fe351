//! The `memory` backend: the reference implementation, in process memory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use crate::kv::{schema_marker, Batch, Entries, KvRead, KvState, KvStore, Visitor, SCHEMA_KEY};
use crate::{State, StateError, StateOptions};

/// The backend name.
pub const MEMORY_BACKEND: &str = "memory";

/// An ordered map behind a mutex: a [`KvStore`] whose data vanishes with the
/// process. Thread-safe; every operation is atomic (it runs under the mutex).
#[derive(Debug)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    read_only: bool,
}

impl MemoryKv {
    /// An empty store (with its schema marker).
    pub fn new(read_only: bool) -> Self {
        let mut map = BTreeMap::new();
        map.insert(SCHEMA_KEY.to_vec(), schema_marker());
        MemoryKv {
            map: Mutex::new(map),
            read_only,
        }
    }
}

struct MapRead<'a>(&'a BTreeMap<Vec<u8>, Vec<u8>>);

impl KvRead for MapRead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8]) -> Result<Entries, StateError> {
        Ok(self
            .0
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn for_each(&self, prefix: &[u8], f: &mut Visitor<'_>) -> Result<(), StateError> {
        for (k, v) in self
            .0
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            f(k, v)?;
        }
        Ok(())
    }
}

impl KvStore for MemoryKv {
    fn backend(&self) -> &str {
        MEMORY_BACKEND
    }

    fn path(&self) -> Option<&Path> {
        None
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&dyn KvRead) -> Result<Batch, StateError>,
    ) -> Result<(), StateError> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let batch = f(&MapRead(&map))?;
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }
}

/// The memory state type.
pub type MemoryState = KvState<MemoryKv>;

/// A fresh, empty memory state seeing `opts.namespace`. Each call makes a new
/// database; views of one database come from [`State::with_namespace`].
pub fn open_memory(opts: &StateOptions) -> Result<Box<dyn State>, StateError> {
    Ok(Box::new(new_memory(opts)))
}

/// Like [`open_memory`], typed.
pub fn new_memory(opts: &StateOptions) -> MemoryState {
    KvState::new(MemoryKv::new(opts.read_only), opts.namespace.clone())
}

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::STATE,
    name: MEMORY_BACKEND,
    summary: "in-memory state for tests; everything vanishes when the process ends",
    factory: open_memory as crate::StateFactory,
}
