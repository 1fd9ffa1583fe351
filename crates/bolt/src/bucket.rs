//! Bucket handles and ordered iteration.

use std::ops::Bound;

use crate::error::Result;
use crate::page::BUCKET_LEAF_FLAG;
use crate::tree::{Cursor, Elem};
use crate::tx::Tx;

/// A handle on a bucket inside a transaction. Cheap to copy; all data access goes through
/// the transaction. Using a handle whose bucket was deleted in this transaction fails with
/// [`BoltError::BucketNotFound`](crate::BoltError::BucketNotFound).
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'tx> {
    tx: &'tx Tx<'tx>,
    slot: usize,
}

impl<'tx> Bucket<'tx> {
    pub(crate) fn new(tx: &'tx Tx<'tx>, slot: usize) -> Self {
        Bucket { tx, slot }
    }

    /// The value stored under `key`, or `None` if the key is absent or is a sub-bucket.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tx.get(self.slot, key)
    }

    /// Stores `value` under `key` (replacing any value). Fails with
    /// [`BoltError::IncompatibleValue`](crate::BoltError::IncompatibleValue) if `key` is a sub-bucket.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.tx.put(self.slot, key, value)
    }

    /// Removes `key`; absent keys are ignored. Fails with
    /// [`BoltError::IncompatibleValue`](crate::BoltError::IncompatibleValue) if `key` is a sub-bucket.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.tx.delete(self.slot, key)
    }

    /// Opens the sub-bucket `name`, or `None` if absent (or a plain value).
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'tx>>> {
        self.tx.open_bucket(self.slot, name)
    }

    /// Creates the sub-bucket `name`.
    pub fn create_bucket(&self, name: &[u8]) -> Result<Bucket<'tx>> {
        self.tx
            .create_child(self.slot, name)
            .map(|s| Bucket::new(self.tx, s))
    }

    /// Opens the sub-bucket `name`, creating it if needed.
    pub fn create_bucket_if_not_exists(&self, name: &[u8]) -> Result<Bucket<'tx>> {
        self.tx
            .create_child_if_missing(self.slot, name)
            .map(|s| Bucket::new(self.tx, s))
    }

    /// Deletes the sub-bucket `name` and everything below it.
    pub fn delete_bucket(&self, name: &[u8]) -> Result<()> {
        self.tx.delete_child(self.slot, name)
    }

    /// The bucket's sequence number.
    pub fn sequence(&self) -> Result<u64> {
        self.tx.sequence(self.slot)
    }

    /// Sets the bucket's sequence number.
    pub fn set_sequence(&self, v: u64) -> Result<()> {
        self.tx.set_sequence(self.slot, |_| v).map(drop)
    }

    /// Increments the sequence number and returns the new value (bbolt's `NextSequence`).
    pub fn next_sequence(&self) -> Result<u64> {
        self.tx.set_sequence(self.slot, |s| s.wrapping_add(1))
    }

    /// The bucket's root page as of the start of the transaction: 0 for an inline bucket
    /// or one created in this transaction (bbolt's `Bucket.Root`).
    pub fn root(&self) -> u64 {
        self.tx.root_page(self.slot)
    }

    /// Iterates over `(key, value)` in key order; `value` is `None` for sub-buckets.
    /// Modifying the bucket while iterating is allowed: iteration continues after the last
    /// returned key.
    pub fn iter(&self) -> Iter<'tx> {
        Iter::new(self.tx, self.slot, None)
    }

    /// Like [`Bucket::iter`], starting at the first key `>= from`.
    pub fn iter_from(&self, from: &[u8]) -> Iter<'tx> {
        Iter::new(self.tx, self.slot, Some(from.to_vec()))
    }

    /// Calls `f` for every `(key, value)` in key order (`None` for sub-buckets); stops at
    /// the first error.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<&[u8]>) -> Result<()>) -> Result<()> {
        for item in self.iter() {
            let (k, v) = item?;
            f(&k, v.as_deref())?;
        }
        Ok(())
    }

    /// Whether the bucket is writable (its transaction is).
    pub fn writable(&self) -> bool {
        self.tx.writable()
    }
}

/// One iterated entry: the key and its value, `None` for a sub-bucket.
pub type Item = (Vec<u8>, Option<Vec<u8>>);

/// Ordered iterator over a bucket, returned by [`Bucket::iter`]. Yields
/// `Result<(key, Option<value>)>`; after an error it ends.
#[derive(Debug)]
pub struct Iter<'tx> {
    tx: &'tx Tx<'tx>,
    slot: usize,
    from: Option<Vec<u8>>,
    cursor: Option<Cursor<'tx>>,
    /// Next element from the disk cursor, not yet returned.
    peek: Option<Elem<'tx>>,
    last: Option<Vec<u8>>,
    started: bool,
    done: bool,
}

impl<'tx> Iter<'tx> {
    pub(crate) fn new(tx: &'tx Tx<'tx>, slot: usize, from: Option<Vec<u8>>) -> Self {
        Iter {
            tx,
            slot,
            from,
            cursor: None,
            peek: None,
            last: None,
            started: false,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<Item>> {
        self.tx.check_live(self.slot)?;
        let root = self.tx.disk_root(self.slot);
        if let (Some(root), false) = (root, self.started) {
            self.cursor = Some(self.tx.src().cursor(root, self.from.as_deref())?);
        }
        self.started = true;
        loop {
            // Next element on disk after the last returned key (the snapshot on disk never
            // changes during the transaction, so the cursor stays valid).
            if let Some(c) = &mut self.cursor {
                while self.peek.is_none() {
                    match c.next_elem()? {
                        None => break,
                        Some(e) => {
                            if self.last.as_deref().map_or(true, |l| e.1 > l) {
                                self.peek = Some(e);
                            }
                        }
                    }
                }
            }
            let lower = match (&self.last, &self.from) {
                (Some(l), _) => Bound::Excluded(l.as_slice()),
                (None, Some(f)) => Bound::Included(f.as_slice()),
                (None, None) => Bound::Unbounded,
            };
            let mem = self.tx.mem_next(self.slot, lower);
            let disk_item = |(f, k, v): Elem<'_>| {
                let v = (f & BUCKET_LEAF_FLAG == 0).then(|| v.to_vec());
                (k.to_vec(), v)
            };
            let (key, val) = match (self.peek, mem) {
                (None, None) => return Ok(None),
                (Some(d), None) => {
                    self.peek = None;
                    return Ok(Some(disk_item(d)));
                }
                (Some(d), Some(m)) if d.1 < m.0.as_slice() => {
                    self.peek = None;
                    return Ok(Some(disk_item(d)));
                }
                (d, Some(m)) => {
                    if d.is_some_and(|d| d.1 == m.0.as_slice()) {
                        self.peek = None;
                    }
                    m
                }
            };
            match val {
                Some(v) => return Ok(Some((key, v))),
                // Deleted in this transaction: skip it.
                None => self.last = Some(key),
            }
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(item)) => {
                self.last = Some(item.0.clone());
                Some(Ok(item))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
