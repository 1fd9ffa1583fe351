//! Transactions: the in-memory view of modified buckets and the copy-on-write commit.

use std::cell::{RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use crate::bucket::{Bucket, Iter};
use crate::db::State;
use crate::error::{BoltError, Result};
use crate::freelist::{self, Allocator};
use crate::meta::{Meta, PGID_NO_FREELIST};
use crate::page::{Ctx, BUCKET_LEAF_FLAG};
use crate::tree::{self, BucketHeader, Elem, Source};
use crate::{MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// A key's content inside an in-memory bucket or a pending change.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Value(Vec<u8>),
    /// Raw sub-bucket value (header, plus the page image for an inline bucket) as last
    /// known; replaced at commit for sub-buckets modified in this transaction.
    Bucket(Vec<u8>),
}

#[derive(Debug)]
pub(crate) enum SlotData {
    /// Tree on disk, rooted at this page, plus the changes made to it in this transaction
    /// (`None` = deleted), applied copy-on-write at commit.
    Disk {
        root: u64,
        changes: BTreeMap<Vec<u8>, Option<Entry>>,
    },
    /// Fully in memory (inline buckets and new buckets).
    Mem(BTreeMap<Vec<u8>, Entry>),
}

/// State of one bucket opened in this transaction.
#[derive(Debug)]
pub(crate) struct Slot {
    parent: Option<usize>,
    pub(crate) data: SlotData,
    pub(crate) sequence: u64,
    /// Root page at transaction start (0 for inline or new buckets).
    pub(crate) orig_root: u64,
    /// The bucket's value in its parent must be rewritten at commit.
    dirty: bool,
    deleted: bool,
    /// Sub-buckets opened in this transaction, by name.
    children: BTreeMap<Vec<u8>, usize>,
    /// Page named in corruption errors about this bucket's inline image.
    err_page: u64,
}

#[derive(Debug, Default)]
pub(crate) struct TxState {
    pub(crate) slots: Vec<Slot>,
    /// Pages reachable at transaction start that the commit no longer references.
    freed: BTreeSet<u64>,
}

#[derive(Debug)]
enum Guard<'db> {
    Read(RwLockReadGuard<'db, State>),
    Write(RwLockWriteGuard<'db, State>),
}

/// A transaction: a consistent snapshot for reading, plus, when writable, the changes to
/// commit. Obtain one with [`crate::Db::begin`], [`crate::Db::view`] or
/// [`crate::Db::update`]. Dropping a writable transaction without calling
/// [`Tx::commit`] rolls it back.
#[derive(Debug)]
pub struct Tx<'db> {
    guard: Guard<'db>,
    state: RefCell<TxState>,
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        Err(BoltError::KeyRequired)
    } else if key.len() > MAX_KEY_SIZE {
        Err(BoltError::KeyTooLarge { len: key.len() })
    } else {
        Ok(())
    }
}

/// Result of looking a name up as a potential sub-bucket.
pub(crate) enum Child {
    Missing,
    Value,
    Bucket(usize),
}

impl<'db> Tx<'db> {
    pub(crate) fn new_read(g: RwLockReadGuard<'db, State>) -> Tx<'db> {
        Self::new(Guard::Read(g))
    }

    pub(crate) fn new_write(g: RwLockWriteGuard<'db, State>) -> Tx<'db> {
        Self::new(Guard::Write(g))
    }

    fn new(guard: Guard<'db>) -> Tx<'db> {
        let meta = match &guard {
            Guard::Read(g) => g.meta,
            Guard::Write(g) => g.meta,
        };
        let root = Slot {
            parent: None,
            data: SlotData::Disk {
                root: meta.root,
                changes: BTreeMap::new(),
            },
            sequence: meta.sequence,
            orig_root: meta.root,
            dirty: false,
            deleted: false,
            children: BTreeMap::new(),
            err_page: meta.root,
        };
        Tx {
            guard,
            state: RefCell::new(TxState {
                slots: vec![root],
                freed: BTreeSet::new(),
            }),
        }
    }

    fn db(&self) -> &State {
        match &self.guard {
            Guard::Read(g) => g,
            Guard::Write(g) => g,
        }
    }

    pub(crate) fn src(&self) -> Source<'_> {
        let db = self.db();
        Source {
            data: &db.mmap[..],
            page_size: db.meta.page_size as usize,
            hwm: db.meta.pgid,
            ctx: Ctx { path: &db.path },
        }
    }

    fn st(&self) -> RefMut<'_, TxState> {
        self.state.borrow_mut()
    }

    /// The transaction id: for a read transaction the id of the last commit, for a write
    /// transaction the id its commit will get.
    pub fn id(&self) -> u64 {
        let m = self.db().meta.txid;
        if self.writable() {
            m + 1
        } else {
            m
        }
    }

    /// Whether this transaction may modify the database.
    pub fn writable(&self) -> bool {
        matches!(self.guard, Guard::Write(_))
    }

    /// Size of the database in bytes as seen by this transaction: the high-water mark times
    /// the page size (as bbolt's `Tx.Size`; the file is usually larger).
    pub fn size(&self) -> u64 {
        let m = &self.db().meta;
        m.pgid * u64::from(m.page_size)
    }

    /// The page size of the database.
    pub fn page_size(&self) -> u32 {
        self.db().meta.page_size
    }

    // ----- top-level buckets -------------------------------------------------------------

    /// Opens the top-level bucket `name`, or `None` if it does not exist.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'_>>> {
        self.open_bucket(0, name)
    }

    /// Creates the top-level bucket `name`. Fails with [`BoltError::BucketExists`] if it
    /// exists.
    pub fn create_bucket(&self, name: &[u8]) -> Result<Bucket<'_>> {
        self.create_child(0, name).map(|s| Bucket::new(self, s))
    }

    /// Opens the top-level bucket `name`, creating it if needed.
    pub fn create_bucket_if_not_exists(&self, name: &[u8]) -> Result<Bucket<'_>> {
        self.create_child_if_missing(0, name)
            .map(|s| Bucket::new(self, s))
    }

    /// Deletes the top-level bucket `name` and everything in it.
    pub fn delete_bucket(&self, name: &[u8]) -> Result<()> {
        self.delete_child(0, name)
    }

    /// Names of all top-level buckets, in key order.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>> {
        let mut names = Vec::new();
        for item in Iter::new(self, 0, None) {
            let (k, v) = item?;
            if v.is_none() {
                names.push(k);
            }
        }
        Ok(names)
    }

    /// Calls `f` for each top-level bucket, in key order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Bucket<'_>) -> Result<()>) -> Result<()> {
        for name in self.bucket_names()? {
            if let Some(b) = self.bucket(&name)? {
                f(&name, b)?;
            }
        }
        Ok(())
    }

    // ----- slot operations (used by Bucket) ----------------------------------------------

    pub(crate) fn check_live(&self, slot: usize) -> Result<()> {
        let st = self.state.borrow();
        let mut cur = Some(slot);
        while let Some(s) = cur {
            if st.slots[s].deleted {
                return Err(BoltError::BucketNotFound);
            }
            cur = st.slots[s].parent;
        }
        Ok(())
    }

    fn check_writable(&self, slot: usize) -> Result<()> {
        if !self.writable() {
            return Err(BoltError::ReadOnly);
        }
        self.check_live(slot)
    }

    /// Looks `key` up in the bucket: `(is_bucket, value bytes)`.
    pub(crate) fn lookup(&self, slot: usize, key: &[u8]) -> Result<Option<(bool, Vec<u8>)>> {
        self.check_live(slot)?;
        let st = self.state.borrow();
        match &st.slots[slot].data {
            SlotData::Mem(m) => Ok(m.get(key).map(|e| match e {
                Entry::Value(v) => (false, v.clone()),
                Entry::Bucket(v) => (true, v.clone()),
            })),
            SlotData::Disk { root, changes } => {
                if let Some(c) = changes.get(key) {
                    return Ok(c.as_ref().map(|e| match e {
                        Entry::Value(v) => (false, v.clone()),
                        Entry::Bucket(v) => (true, v.clone()),
                    }));
                }
                let root = *root;
                drop(st);
                Ok(self
                    .src()
                    .get(root, key)?
                    .map(|(f, v)| (f & BUCKET_LEAF_FLAG != 0, v.to_vec())))
            }
        }
    }

    pub(crate) fn get(&self, slot: usize, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self.lookup(slot, key)? {
            Some((false, v)) => Some(v),
            _ => None,
        })
    }

    pub(crate) fn sequence(&self, slot: usize) -> Result<u64> {
        self.check_live(slot)?;
        Ok(self.state.borrow().slots[slot].sequence)
    }

    pub(crate) fn root_page(&self, slot: usize) -> u64 {
        self.state.borrow().slots[slot].orig_root
    }

    /// Finds a sub-bucket, opening a slot for it if needed.
    pub(crate) fn child(&self, slot: usize, name: &[u8]) -> Result<Child> {
        self.check_live(slot)?;
        if let Some(&c) = self.state.borrow().slots[slot].children.get(name) {
            return Ok(Child::Bucket(c));
        }
        let raw = match self.lookup(slot, name)? {
            None => return Ok(Child::Missing),
            Some((false, _)) => return Ok(Child::Value),
            Some((true, raw)) => raw,
        };
        let src = self.src();
        let err_page = self.state.borrow().slots[slot].orig_root;
        let hdr = BucketHeader::parse(src.ctx, err_page, &raw)?;
        let data = if hdr.root == 0 {
            let elems = tree::inline_elems(src.ctx, err_page, &raw[16..])?;
            SlotData::Mem(elems_to_map(&elems))
        } else {
            if hdr.root < 2 || hdr.root >= src.hwm {
                return Err(src.ctx.corrupt(
                    err_page,
                    format!("sub-bucket root page {} outside [2, {})", hdr.root, src.hwm),
                ));
            }
            SlotData::Disk {
                root: hdr.root,
                changes: BTreeMap::new(),
            }
        };
        let mut st = self.st();
        let id = st.slots.len();
        st.slots.push(Slot {
            parent: Some(slot),
            data,
            sequence: hdr.sequence,
            orig_root: hdr.root,
            dirty: false,
            deleted: false,
            children: BTreeMap::new(),
            err_page: if hdr.root == 0 { err_page } else { hdr.root },
        });
        st.slots[slot].children.insert(name.to_vec(), id);
        Ok(Child::Bucket(id))
    }

    pub(crate) fn open_bucket(&self, slot: usize, name: &[u8]) -> Result<Option<Bucket<'_>>> {
        Ok(match self.child(slot, name)? {
            Child::Bucket(s) => Some(Bucket::new(self, s)),
            _ => None,
        })
    }

    /// Marks a bucket's header (and its ancestors') as needing a rewrite.
    fn touch(&self, slot: usize) {
        let mut st = self.st();
        let mut cur = slot;
        loop {
            if st.slots[cur].dirty {
                return;
            }
            st.slots[cur].dirty = true;
            match st.slots[cur].parent {
                Some(p) => cur = p,
                None => return,
            }
        }
    }

    /// Sets (`Some`) or removes (`None`) a key of the bucket.
    fn set_entry(&self, slot: usize, key: &[u8], e: Option<Entry>) {
        self.touch(slot);
        let mut st = self.st();
        match &mut st.slots[slot].data {
            SlotData::Mem(m) => match e {
                Some(e) => {
                    m.insert(key.to_vec(), e);
                }
                None => {
                    m.remove(key);
                }
            },
            SlotData::Disk { changes, .. } => {
                changes.insert(key.to_vec(), e);
            }
        }
    }

    pub(crate) fn put(&self, slot: usize, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_writable(slot)?;
        check_key(key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(BoltError::ValueTooLarge { len: value.len() });
        }
        if let Some((true, _)) = self.lookup(slot, key)? {
            return Err(BoltError::IncompatibleValue);
        }
        self.set_entry(slot, key, Some(Entry::Value(value.to_vec())));
        Ok(())
    }

    pub(crate) fn delete(&self, slot: usize, key: &[u8]) -> Result<()> {
        self.check_writable(slot)?;
        match self.lookup(slot, key)? {
            None => Ok(()),
            Some((true, _)) => Err(BoltError::IncompatibleValue),
            Some((false, _)) => {
                self.set_entry(slot, key, None);
                Ok(())
            }
        }
    }

    pub(crate) fn set_sequence(&self, slot: usize, f: impl FnOnce(u64) -> u64) -> Result<u64> {
        self.check_writable(slot)?;
        self.touch(slot);
        let mut st = self.st();
        let s = &mut st.slots[slot];
        s.sequence = f(s.sequence);
        Ok(s.sequence)
    }

    pub(crate) fn create_child(&self, slot: usize, name: &[u8]) -> Result<usize> {
        self.check_writable(slot)?;
        check_key(name)?;
        match self.child(slot, name)? {
            Child::Bucket(_) => return Err(BoltError::BucketExists),
            Child::Value => return Err(BoltError::IncompatibleValue),
            Child::Missing => {}
        }
        self.set_entry(slot, name, Some(Entry::Bucket(tree::empty_inline_value())));
        let mut st = self.st();
        let id = st.slots.len();
        let err_page = st.slots[slot].err_page;
        st.slots.push(Slot {
            parent: Some(slot),
            data: SlotData::Mem(BTreeMap::new()),
            sequence: 0,
            orig_root: 0,
            dirty: true,
            deleted: false,
            children: BTreeMap::new(),
            err_page,
        });
        st.slots[slot].children.insert(name.to_vec(), id);
        Ok(id)
    }

    pub(crate) fn create_child_if_missing(&self, slot: usize, name: &[u8]) -> Result<usize> {
        self.check_writable(slot)?;
        check_key(name)?;
        match self.child(slot, name)? {
            Child::Bucket(s) => Ok(s),
            Child::Value => Err(BoltError::IncompatibleValue),
            Child::Missing => self.create_child(slot, name),
        }
    }

    pub(crate) fn delete_child(&self, slot: usize, name: &[u8]) -> Result<()> {
        self.check_writable(slot)?;
        let child = match self.child(slot, name)? {
            Child::Missing => return Err(BoltError::BucketNotFound),
            Child::Value => return Err(BoltError::IncompatibleValue),
            Child::Bucket(c) => c,
        };
        // Free every page the bucket (and its sub-buckets) used at transaction start.
        let orig = self.state.borrow().slots[child].orig_root;
        let mut pages = BTreeSet::new();
        if orig != 0 {
            self.src().collect_pages(orig, true, &mut pages)?;
        }
        self.set_entry(slot, name, None);
        let mut st = self.st();
        st.slots[slot].children.remove(name);
        st.slots[child].deleted = true;
        st.freed.extend(pages);
        Ok(())
    }

    // ----- iteration ---------------------------------------------------------------------

    /// First in-memory entry (of a `Mem` bucket) or pending change (of a `Disk` bucket)
    /// after `lower`: `(key, None)` for a deletion, `(key, Some(value))` otherwise (value
    /// `None` for a sub-bucket).
    pub(crate) fn mem_next(&self, slot: usize, lower: Bound<&[u8]>) -> Option<MemItem> {
        let st = self.state.borrow();
        let range = (lower, Bound::Unbounded);
        match &st.slots[slot].data {
            SlotData::Mem(m) => m
                .range::<[u8], _>(range)
                .next()
                .map(|(k, e)| (k.clone(), Some(entry_value(e)))),
            SlotData::Disk { changes, .. } => changes
                .range::<[u8], _>(range)
                .next()
                .map(|(k, e)| (k.clone(), e.as_ref().map(entry_value))),
        }
    }

    pub(crate) fn disk_root(&self, slot: usize) -> Option<u64> {
        match self.state.borrow().slots[slot].data {
            SlotData::Disk { root, .. } => Some(root),
            SlotData::Mem(_) => None,
        }
    }

    // ----- consistency check -------------------------------------------------------------

    /// Verifies the snapshot this transaction reads (not its uncommitted changes), like
    /// bbolt's `Tx.Check`: every page below the high-water mark is exactly one of meta,
    /// freelist, reachable from the root, or free; every tree is well formed with keys in
    /// order. Returns the list of problems (empty when consistent); structural damage that
    /// prevents the walk is returned as `Err(Corrupt)`.
    pub fn check(&self) -> Result<Vec<String>> {
        let src = self.src();
        let meta = self.db().meta;
        let mut problems = Vec::new();
        let mut reach: BTreeSet<u64> = [0, 1].into_iter().collect();
        let free = if meta.freelist != PGID_NO_FREELIST {
            let p = src.page(meta.freelist)?;
            let ids = freelist::decode(src.ctx, &p, meta.pgid)?;
            reach.extend(meta.freelist..=meta.freelist + u64::from(p.overflow));
            ids
        } else {
            BTreeSet::new()
        };
        check_tree(src, meta.root, None, &mut reach, 0)?;
        for id in &free {
            if reach.contains(id) {
                problems.push(format!("page {id}: reachable freed"));
            }
        }
        if meta.freelist != PGID_NO_FREELIST {
            for id in 0..meta.pgid {
                if !reach.contains(&id) && !free.contains(&id) {
                    problems.push(format!("page {id}: unreachable unfreed"));
                }
            }
        }
        Ok(problems)
    }

    // ----- commit ------------------------------------------------------------------------

    /// Discards the transaction's changes (same as dropping it).
    pub fn rollback(self) {}

    /// Commits a writable transaction: writes the modified buckets copy-on-write to free or
    /// new pages, then the freelist, `fdatasync`, then the new meta page, `fdatasync`.
    /// A transaction without changes writes nothing. Committing a read-only transaction
    /// fails with [`BoltError::ReadOnly`].
    pub fn commit(self) -> Result<()> {
        let Tx { guard, state } = self;
        let Guard::Write(mut db) = guard else {
            return Err(BoltError::ReadOnly);
        };
        let mut st = state.into_inner();
        if !st.slots[0].dirty && st.freed.is_empty() {
            return Ok(());
        }
        let meta = db.meta;
        let ps = meta.page_size as usize;
        let mut alloc = Allocator {
            free: db.free.clone().unwrap_or_default(),
            hwm: meta.pgid,
        };
        let mut pages: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut freed = std::mem::take(&mut st.freed);
        let (root, root_seq) = {
            let src = Source {
                data: &db.mmap[..],
                page_size: ps,
                hwm: meta.pgid,
                ctx: Ctx { path: &db.path },
            };
            let value = spill(src, &mut st, 0, &mut alloc, &mut pages, &mut freed)?;
            let hdr = BucketHeader::parse(src.ctx, meta.root, &value)?;
            if meta.freelist != PGID_NO_FREELIST {
                let p = src.page(meta.freelist)?;
                freed.extend(meta.freelist..=meta.freelist + u64::from(p.overflow));
            }
            (hdr.root, hdr.sequence)
        };
        // Freelist: size computed before its own allocation (may over-allocate slightly).
        let n = alloc.free.len() + freed.len();
        let fl_pages = freelist::encoded_size(n).div_ceil(ps).max(1) as u64;
        let fl_id = alloc.allocate(fl_pages);
        let mut all_free = std::mem::take(&mut alloc.free);
        all_free.extend(freed);
        pages.push((fl_id, freelist::encode(fl_id, fl_pages, ps, &all_free)));

        let new_meta = Meta {
            root,
            sequence: root_seq,
            freelist: fl_id,
            pgid: alloc.hwm,
            txid: meta.txid + 1,
            ..meta
        };
        let path = db.path.clone();
        let io = |e| BoltError::io(&path, e);
        // Grow the file before writing past its end.
        let needed = new_meta.pgid * ps as u64;
        let mut new_len = db.file_len;
        if needed > db.file_len {
            new_len = grow_size(needed, ps as u64);
            db.file.set_len(new_len).map_err(io)?;
            db.file.sync_all().map_err(io)?;
        }
        pages.sort_by_key(|p| p.0);
        for (id, buf) in &pages {
            debug_assert_eq!(buf.len() % ps, 0);
            db.file.write_all_at(buf, id * ps as u64).map_err(io)?;
        }
        db.file.sync_data().map_err(io)?;
        let meta_page = new_meta.encode_page();
        db.file
            .write_all_at(&meta_page, (new_meta.txid % 2) * ps as u64)
            .map_err(io)?;
        db.file.sync_data().map_err(io)?;
        tracing::debug!(
            path = %path.display(),
            txid = new_meta.txid,
            pages = pages.len(),
            hwm = new_meta.pgid,
            free = all_free.len(),
            "bolt commit"
        );
        db.meta = new_meta;
        db.free = Some(all_free);
        if new_len != db.file_len {
            db.file_len = new_len;
            db.remap()?;
        }
        Ok(())
    }
}

/// Size to grow the file to so that it holds `needed` bytes (bbolt-like: powers of two
/// from 32 KiB to 16 MiB, then 16 MiB steps beyond what is needed).
fn grow_size(needed: u64, page_size: u64) -> u64 {
    const STEP: u64 = 16 << 20;
    let size = if needed <= STEP {
        needed.next_power_of_two().max(32 << 10)
    } else {
        needed + STEP
    };
    size.div_ceil(page_size) * page_size
}

fn to_entry((flags, _, v): Elem<'_>) -> Entry {
    if flags & BUCKET_LEAF_FLAG != 0 {
        Entry::Bucket(v.to_vec())
    } else {
        Entry::Value(v.to_vec())
    }
}

fn entry_value(e: &Entry) -> Option<Vec<u8>> {
    match e {
        Entry::Value(v) => Some(v.clone()),
        Entry::Bucket(_) => None,
    }
}

/// See [`Tx::mem_next`].
pub(crate) type MemItem = (Vec<u8>, Option<Option<Vec<u8>>>);

fn elems_to_map(elems: &[Elem<'_>]) -> BTreeMap<Vec<u8>, Entry> {
    elems.iter().map(|e| (e.1.to_vec(), to_entry(*e))).collect()
}

/// Writes a dirty bucket (children first) and returns its new value in the parent.
fn spill(
    src: Source<'_>,
    st: &mut TxState,
    slot: usize,
    alloc: &mut Allocator,
    out: &mut Vec<(u64, Vec<u8>)>,
    freed: &mut BTreeSet<u64>,
) -> Result<Vec<u8>> {
    let children: Vec<(Vec<u8>, usize)> = st.slots[slot]
        .children
        .iter()
        .filter(|(_, &c)| st.slots[c].dirty && !st.slots[c].deleted)
        .map(|(k, &c)| (k.clone(), c))
        .collect();
    for (name, c) in children {
        let v = spill(src, st, c, alloc, out, freed)?;
        match &mut st.slots[slot].data {
            SlotData::Mem(m) => {
                m.insert(name, Entry::Bucket(v));
            }
            SlotData::Disk { changes, .. } => {
                changes.insert(name, Some(Entry::Bucket(v)));
            }
        }
    }
    let s = &st.slots[slot];
    let elems: Vec<Elem<'_>> = match &s.data {
        SlotData::Disk { root, changes } => {
            let root = *root;
            // Only the header (sequence) changed: keep the tree.
            if changes.is_empty() {
                return Ok(BucketHeader {
                    root,
                    sequence: s.sequence,
                }
                .encode()
                .to_vec());
            }
            let changes: Vec<tree::Change<'_>> = changes
                .iter()
                .map(|(k, e)| {
                    let c = e.as_ref().map(|e| match e {
                        Entry::Value(v) => (0, v.as_slice()),
                        Entry::Bucket(v) => (BUCKET_LEAF_FLAG, v.as_slice()),
                    });
                    (k.as_slice(), c)
                })
                .collect();
            match src.leaf_elems(root)? {
                // A single-leaf tree: rebuild it (it may become inline).
                Some(old) => {
                    freed.extend(root..=root + u64::from(src.node(root)?.overflow));
                    tree::merge_elems(src.ctx, root, &old, &changes)?
                }
                None => {
                    let root = src.cow_tree(root, &changes, alloc, out, freed)?;
                    if slot != 0 {
                        if let Some(v) = take_inline(src, root, s.sequence, alloc, out)? {
                            return Ok(v);
                        }
                    }
                    return Ok(BucketHeader {
                        root,
                        sequence: s.sequence,
                    }
                    .encode()
                    .to_vec());
                }
            }
        }
        SlotData::Mem(m) => m
            .iter()
            .map(|(k, e)| match e {
                Entry::Value(v) => (0, k.as_slice(), v.as_slice()),
                Entry::Bucket(v) => (BUCKET_LEAF_FLAG, k.as_slice(), v.as_slice()),
            })
            .collect(),
    };
    let has_sub = elems.iter().any(|e| e.0 & BUCKET_LEAF_FLAG != 0);
    if slot != 0 && !has_sub && tree::node_size(&elems) <= src.page_size / 4 {
        return Ok(tree::inline_value(s.sequence, &elems));
    }
    let root = tree::write_tree(&elems, alloc, src.page_size, out);
    Ok(BucketHeader {
        root,
        sequence: s.sequence,
    }
    .encode()
    .to_vec())
}

/// If the bucket root `root` is a leaf written by this commit that qualifies as an inline
/// bucket, takes it back out of `out` (returning its page to the allocator) and returns
/// the inline bucket value.
fn take_inline(
    src: Source<'_>,
    root: u64,
    sequence: u64,
    alloc: &mut Allocator,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Result<Option<Vec<u8>>> {
    let Some(pos) = out.iter().rposition(|p| p.0 == root) else {
        return Ok(None);
    };
    let value = {
        let page = crate::page::Page::parse(src.ctx, root, &out[pos].1)?;
        if page.is_branch() || page.count > src.page_size {
            return Ok(None);
        }
        let elems = (0..page.count)
            .map(|i| page.leaf_elem(src.ctx, i))
            .collect::<Result<Vec<_>>>()?;
        if elems.iter().any(|e| e.0 & BUCKET_LEAF_FLAG != 0)
            || tree::node_size(&elems) > src.page_size / 4
        {
            return Ok(None);
        }
        tree::inline_value(sequence, &elems)
    };
    let n = (out[pos].1.len() / src.page_size) as u64;
    out.remove(pos);
    alloc.free.extend(root..root + n);
    Ok(Some(value))
}

/// Walks one bucket for [`Tx::check`]: records its pages in `reach` (duplicates are
/// errors), validates key order, and recurses into sub-buckets.
fn check_tree(
    src: Source<'_>,
    root: u64,
    inline: Option<(u64, &[u8])>,
    reach: &mut BTreeSet<u64>,
    depth: usize,
) -> Result<()> {
    if depth > tree::MAX_DEPTH {
        return Err(src.ctx.corrupt(root, "buckets nested too deeply"));
    }
    let mut sub = Vec::new();
    if let Some((page, image)) = inline {
        for (f, _, v) in tree::inline_elems(src.ctx, page, image)? {
            if f & BUCKET_LEAF_FLAG != 0 {
                sub.push((page, v));
            }
        }
    } else {
        src.collect_pages(root, false, reach)?;
        let mut cur = src.cursor(root, None)?;
        while let Some((f, _, v)) = cur.next_elem()? {
            if f & BUCKET_LEAF_FLAG != 0 {
                sub.push((root, v));
            }
        }
    }
    for (page, v) in sub {
        let h = BucketHeader::parse(src.ctx, page, v)?;
        if h.root == 0 {
            check_tree(src, 0, Some((page, &v[16..])), reach, depth + 1)?;
        } else {
            check_tree(src, h.root, None, reach, depth + 1)?;
        }
    }
    Ok(())
}
