//! # rpod-bolt: the bbolt (BoltDB) file format in Rust
//!
//! A generic key/value store that reads and writes files in the on-disk format of
//! [bbolt](https://github.com/etcd-io/bbolt) 1.3.x (the format has not changed since
//! boltdb/bolt 1.x), so that files it writes are accepted by real bbolt — and hence by
//! podman — and files written by podman can be read. It knows nothing about containers;
//! podman's bucket schema is built on top of it elsewhere.
//!
//! ```no_run
//! use rpod_bolt::{Db, OpenOptions};
//! # fn main() -> rpod_bolt::Result<()> {
//! let db = Db::open("/tmp/example.db", &OpenOptions::new())?;
//! db.update(|tx| {
//!     let b = tx.create_bucket_if_not_exists(b"ctr")?;
//!     b.put(b"id", b"name")?;
//!     let id = b.next_sequence()?;
//!     b.create_bucket_if_not_exists(b"nested")?.put(&id.to_be_bytes(), b"x")?;
//!     Ok(())
//! })?;
//! let v = db.view(|tx| tx.bucket(b"ctr")?.expect("exists").get(b"id"))?;
//! assert_eq!(v.as_deref(), Some(&b"name"[..]));
//! # Ok(()) }
//! ```
//!
//! ## Format coverage
//!
//! * **Meta pages** 0 and 1: magic `0xED0CDAED`, version 2, page size taken from the file
//!   (probing meta 1 at 1 KiB..64 KiB if meta 0 is damaged), FNV-1a-64 checksum. The valid
//!   meta with the larger txid is used; a torn or invalid meta falls back to the other.
//! * **Branch and leaf pages**, including **overflow** runs for large nodes/values,
//!   **nested buckets** and **inline buckets** (written inline exactly when bbolt would: no
//!   sub-buckets and a serialized leaf of at most `pageSize/4`), bucket **sequences**
//!   ([`Bucket::next_sequence`], [`Bucket::set_sequence`]).
//! * The **freelist** page, including the `count == 0xFFFF` large form; a freelist that was
//!   not synced (`pgid == u64::MAX`, bbolt's `NoFreelistSync`) is rebuilt from the tree.
//! * **Copy-on-write commits**: modified buckets are rewritten to free pages (first fit,
//!   lowest id, as bbolt's array freelist) or pages past the high-water mark (the file is
//!   grown with `ftruncate` + `fsync` first); then the new freelist; `fdatasync`; then the
//!   meta page `txid % 2`; `fdatasync`. Pages reachable from the previous meta are never
//!   overwritten, so a crash at any point leaves the previous transaction intact. Pages freed
//!   by a commit become allocatable from the next write transaction on (as bbolt).
//! * **Locking** as bbolt: `flock(2)` exclusive for read-write, shared for read-only,
//!   retried every 50 ms until [`OpenOptions::timeout`]; [`BoltError::Timeout`] names the
//!   file. Within a process, read transactions share a `RwLock` and a write transaction
//!   excludes them.
//! * Limits as bbolt: keys 1..=[`MAX_KEY_SIZE`] bytes, values up to [`MAX_VALUE_SIZE`].
//!
//! ## Writer strategy
//!
//! Modifications to a bucket stored on disk are kept as an ordered overlay of pending
//! changes (reads and iteration merge it with the tree on disk). At commit each modified
//! bucket is updated **copy-on-write per node**, as bbolt does: only the leaves holding
//! changed keys and their ancestors up to the bucket root are rewritten to newly allocated
//! pages (nodes larger than a page are split, or become overflow runs for single huge
//! elements; rewritten leaves under a quarter page are merged with a neighbouring leaf;
//! root branches left with one child are collapsed); untouched subtrees keep their page
//! ids, and the replaced pages are freed. The new bucket header is stored in its parent the
//! same way, up to the root. A commit therefore costs O(changed keys x tree depth), not
//! O(bucket size). A bucket whose tree is a single leaf is rebuilt whole, and becomes (or
//! stays) inline when bbolt would inline it; inline and newly created buckets live in
//! memory (a `BTreeMap`) for the transaction. Unmodified buckets keep their pages and value
//! bytes. Reads go straight to the memory map with binary search (O(log n)); values are
//! returned as owned `Vec<u8>`.
//!
//! ## Untrusted input
//!
//! Every offset, count, length and page id read from the file is bounds-checked against the
//! page, the high-water mark and the file size. Damaged files produce
//! [`BoltError::Corrupt`] naming the file and the page, never a panic or an out-of-bounds
//! read. Iteration also checks that keys ascend strictly and lie within the ranges their
//! branch keys route to, cycles are caught by depth and page-count limits, and a zero-length
//! or truncated file is an error (only a file that does not exist is initialised, and only
//! with `create`). [`Tx::check`] performs bbolt's `tx.Check()` page accounting.
//!
//! ## `unsafe`
//!
//! The only `unsafe` is the `memmap2` mapping of the file (`db.rs`, `map_file`). It is sound
//! as long as the mapped bytes are not truncated away while mapped: the mapping is
//! read-only; this crate only `pwrite`s pages that no live transaction can read (copy-on-
//! write, with readers excluded during a commit by the `RwLock`), grows the file before
//! writing past its end and never shrinks it; other processes are excluded by the `flock`
//! held from open to close. A non-cooperating process truncating the file could still
//! cause `SIGBUS` — inherent to any mmap-based reader, bbolt included.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bucket;
mod db;
mod error;
mod freelist;
mod meta;
mod page;
mod tree;
mod tx;

pub use bucket::{Bucket, Item, Iter};
pub use db::{Db, OpenOptions};
pub use error::{BoltError, Result};
pub use meta::fnv1a64;
pub use tx::Tx;

/// Maximum key (and bucket name) length, as bbolt's `MaxKeySize`.
pub const MAX_KEY_SIZE: usize = 32768;
/// Maximum value length, as bbolt's `MaxValueSize` (2^31 - 2).
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;
