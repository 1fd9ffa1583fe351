//! Page layout: headers, leaf and branch elements, all parsed with bounds checks.
//!
//! Nothing read from a page is trusted: every accessor returns a `Corrupt` error (built by
//! the caller-supplied [`Ctx`]) instead of indexing out of bounds.

use std::path::Path;

use crate::error::{BoltError, Result};

/// Size of the page header (`id u64, flags u16, count u16, overflow u32`).
pub(crate) const PAGE_HEADER_SIZE: usize = 16;
/// Size of a leaf or branch element.
pub(crate) const ELEM_SIZE: usize = 16;
/// Size of a bucket header (`root u64, sequence u64`).
pub(crate) const BUCKET_HEADER_SIZE: usize = 16;

pub(crate) const BRANCH_PAGE_FLAG: u16 = 0x01;
pub(crate) const LEAF_PAGE_FLAG: u16 = 0x02;
pub(crate) const META_PAGE_FLAG: u16 = 0x04;
pub(crate) const FREELIST_PAGE_FLAG: u16 = 0x10;

/// Leaf element flag: the value is a sub-bucket header.
pub(crate) const BUCKET_LEAF_FLAG: u32 = 0x01;

/// Maximum number of elements a page may hold (bbolt panics at >= 0xFFFF).
pub(crate) const MAX_PAGE_ELEMS: usize = 0xFFFE;

/// Reads a little-endian u16 at `off`, or `None` when out of bounds.
pub(crate) fn rd_u16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a little-endian u32 at `off`, or `None` when out of bounds.
pub(crate) fn rd_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Reads a little-endian u64 at `off`, or `None` when out of bounds.
pub(crate) fn rd_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

pub(crate) fn wr_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn wr_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn wr_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Error context: the file path, used to build `Corrupt` errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn corrupt(&self, page: u64, reason: impl Into<String>) -> BoltError {
        BoltError::corrupt(self.path, page, reason)
    }
}

/// Human-readable page type, as bbolt's `page.typ()`.
pub(crate) fn page_type_name(flags: u16) -> String {
    if flags & BRANCH_PAGE_FLAG != 0 {
        "branch".into()
    } else if flags & LEAF_PAGE_FLAG != 0 {
        "leaf".into()
    } else if flags & META_PAGE_FLAG != 0 {
        "meta".into()
    } else if flags & FREELIST_PAGE_FLAG != 0 {
        "freelist".into()
    } else {
        format!("unknown<{flags:02x}>")
    }
}

/// A validated view of a page (or an inline bucket's page image): its bytes span the whole
/// page including its overflow pages, and `count` elements are known to fit in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page<'a> {
    /// The pgid used in error messages (for an inline page: the page holding it, if known).
    pub(crate) id: u64,
    pub(crate) flags: u16,
    pub(crate) count: usize,
    pub(crate) overflow: u32,
    pub(crate) bytes: &'a [u8],
}

impl<'a> Page<'a> {
    /// Parses the header of `bytes` (which must be the page's full span).
    pub(crate) fn parse(ctx: Ctx<'_>, id: u64, bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < PAGE_HEADER_SIZE {
            return Err(ctx.corrupt(
                id,
                format!("page shorter than its header ({} bytes)", bytes.len()),
            ));
        }
        let flags = rd_u16(bytes, 8).unwrap_or(0);
        let count = rd_u16(bytes, 10).unwrap_or(0) as usize;
        let overflow = rd_u32(bytes, 12).unwrap_or(0);
        Ok(Page {
            id,
            flags,
            count,
            overflow,
            bytes,
        })
    }

    pub(crate) fn is_leaf(&self) -> bool {
        self.flags & BRANCH_PAGE_FLAG == 0 && self.flags & LEAF_PAGE_FLAG != 0
    }

    pub(crate) fn is_branch(&self) -> bool {
        self.flags & BRANCH_PAGE_FLAG != 0
    }

    /// Checks that the page is a branch or leaf page whose element array fits.
    pub(crate) fn check_node(&self, ctx: Ctx<'_>) -> Result<()> {
        if !self.is_leaf() && !self.is_branch() {
            return Err(ctx.corrupt(
                self.id,
                format!(
                    "expected a branch or leaf page, found {}",
                    page_type_name(self.flags)
                ),
            ));
        }
        let need = PAGE_HEADER_SIZE + self.count * ELEM_SIZE;
        if need > self.bytes.len() {
            return Err(ctx.corrupt(
                self.id,
                format!(
                    "{} elements do not fit in a {}-byte page",
                    self.count,
                    self.bytes.len()
                ),
            ));
        }
        if self.is_branch() && self.count == 0 {
            return Err(ctx.corrupt(self.id, "branch page with no elements"));
        }
        Ok(())
    }

    /// Returns the byte range `[elem+pos, elem+pos+len)` checked against the page span.
    fn elem_slice(
        &self,
        ctx: Ctx<'_>,
        i: usize,
        elem: usize,
        pos: u32,
        skip: u64,
        len: u32,
    ) -> Result<&'a [u8]> {
        let start = (elem as u64) + u64::from(pos) + skip;
        let end = start + u64::from(len);
        if end > self.bytes.len() as u64 {
            return Err(ctx.corrupt(
                self.id,
                format!(
                    "element {i}: data [{start}, {end}) outside the {}-byte page",
                    self.bytes.len()
                ),
            ));
        }
        Ok(&self.bytes[start as usize..end as usize])
    }

    /// Leaf element `i`: `(flags, key, value)`.
    pub(crate) fn leaf_elem(&self, ctx: Ctx<'_>, i: usize) -> Result<(u32, &'a [u8], &'a [u8])> {
        debug_assert!(i < self.count);
        let e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
        let (Some(flags), Some(pos), Some(ksize), Some(vsize)) = (
            rd_u32(self.bytes, e),
            rd_u32(self.bytes, e + 4),
            rd_u32(self.bytes, e + 8),
            rd_u32(self.bytes, e + 12),
        ) else {
            return Err(ctx.corrupt(self.id, format!("leaf element {i} outside the page")));
        };
        let key = self.elem_slice(ctx, i, e, pos, 0, ksize)?;
        let value = self.elem_slice(ctx, i, e, pos, u64::from(ksize), vsize)?;
        if key.is_empty() {
            return Err(ctx.corrupt(self.id, format!("leaf element {i} has an empty key")));
        }
        Ok((flags, key, value))
    }

    /// Branch element `i`: `(key, child pgid)`.
    pub(crate) fn branch_elem(&self, ctx: Ctx<'_>, i: usize) -> Result<(&'a [u8], u64)> {
        debug_assert!(i < self.count);
        let e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
        let (Some(pos), Some(ksize), Some(child)) = (
            rd_u32(self.bytes, e),
            rd_u32(self.bytes, e + 4),
            rd_u64(self.bytes, e + 8),
        ) else {
            return Err(ctx.corrupt(self.id, format!("branch element {i} outside the page")));
        };
        let key = self.elem_slice(ctx, i, e, pos, 0, ksize)?;
        Ok((key, child))
    }

    /// Key of element `i` (leaf or branch).
    pub(crate) fn key(&self, ctx: Ctx<'_>, i: usize) -> Result<&'a [u8]> {
        if self.is_branch() {
            Ok(self.branch_elem(ctx, i)?.0)
        } else {
            Ok(self.leaf_elem(ctx, i)?.1)
        }
    }
}

/// Writes a leaf page image (header + elements + data) into `buf`, which must be large
/// enough and zeroed. `id` and `overflow` go in the header.
pub(crate) fn write_leaf(buf: &mut [u8], id: u64, overflow: u32, elems: &[(u32, &[u8], &[u8])]) {
    wr_u64(buf, 0, id);
    wr_u16(buf, 8, LEAF_PAGE_FLAG);
    wr_u16(buf, 10, elems.len() as u16);
    wr_u32(buf, 12, overflow);
    let mut data = PAGE_HEADER_SIZE + elems.len() * ELEM_SIZE;
    for (i, (flags, k, v)) in elems.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
        wr_u32(buf, e, *flags);
        wr_u32(buf, e + 4, (data - e) as u32);
        wr_u32(buf, e + 8, k.len() as u32);
        wr_u32(buf, e + 12, v.len() as u32);
        buf[data..data + k.len()].copy_from_slice(k);
        data += k.len();
        buf[data..data + v.len()].copy_from_slice(v);
        data += v.len();
    }
}

/// Writes a branch page image into `buf` (zeroed, large enough).
pub(crate) fn write_branch(buf: &mut [u8], id: u64, overflow: u32, elems: &[(&[u8], u64)]) {
    wr_u64(buf, 0, id);
    wr_u16(buf, 8, BRANCH_PAGE_FLAG);
    wr_u16(buf, 10, elems.len() as u16);
    wr_u32(buf, 12, overflow);
    let mut data = PAGE_HEADER_SIZE + elems.len() * ELEM_SIZE;
    for (i, (k, child)) in elems.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
        wr_u32(buf, e, (data - e) as u32);
        wr_u32(buf, e + 4, k.len() as u32);
        wr_u64(buf, e + 8, *child);
        buf[data..data + k.len()].copy_from_slice(k);
        data += k.len();
    }
}
