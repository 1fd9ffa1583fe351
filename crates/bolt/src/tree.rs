//! B+tree access on the mapped file (lookup, ordered cursor, page walks) and the B+tree
//! writer used at commit.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::freelist::Allocator;
use crate::page::{
    rd_u64, write_branch, write_leaf, Ctx, Page, BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, ELEM_SIZE,
    LEAF_PAGE_FLAG, MAX_PAGE_ELEMS, PAGE_HEADER_SIZE,
};

/// Maximum depth of a B+tree (bbolt trees are far shallower); protects against cycles.
pub(crate) const MAX_DEPTH: usize = 64;

/// A bucket header as stored in a leaf value: root pgid (0 = inline) and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketHeader {
    pub(crate) root: u64,
    pub(crate) sequence: u64,
}

impl BucketHeader {
    /// Parses a sub-bucket value; `page` is used in errors.
    pub(crate) fn parse(ctx: Ctx<'_>, page: u64, value: &[u8]) -> Result<Self> {
        match (rd_u64(value, 0), rd_u64(value, 8)) {
            (Some(root), Some(sequence)) => Ok(BucketHeader { root, sequence }),
            _ => Err(ctx.corrupt(
                page,
                format!(
                    "bucket value is {} bytes, shorter than a bucket header",
                    value.len()
                ),
            )),
        }
    }

    pub(crate) fn encode(&self) -> [u8; BUCKET_HEADER_SIZE] {
        let mut b = [0u8; BUCKET_HEADER_SIZE];
        b[..8].copy_from_slice(&self.root.to_le_bytes());
        b[8..].copy_from_slice(&self.sequence.to_le_bytes());
        b
    }
}

/// Read access to the pages of one snapshot of the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) page_size: usize,
    pub(crate) hwm: u64,
    pub(crate) ctx: Ctx<'a>,
}

impl<'a> Source<'a> {
    /// Any page in `[2, hwm)`, with its whole span (header id, bounds and overflow checked).
    pub(crate) fn page(&self, id: u64) -> Result<Page<'a>> {
        let ctx = self.ctx;
        if id < 2 || id >= self.hwm {
            return Err(ctx.corrupt(
                id,
                format!("page id outside the valid range [2, {})", self.hwm),
            ));
        }
        let ps = self.page_size as u64;
        let start = id
            .checked_mul(ps)
            .filter(|s| s.saturating_add(PAGE_HEADER_SIZE as u64) <= self.data.len() as u64)
            .ok_or_else(|| ctx.corrupt(id, "page lies beyond the end of the file (truncated?)"))?
            as usize;
        let hdr = Page::parse(ctx, id, &self.data[start..start + PAGE_HEADER_SIZE])?;
        let stored = rd_u64(hdr.bytes, 0).unwrap_or(0);
        if stored != id {
            return Err(ctx.corrupt(id, format!("page header holds id {stored}")));
        }
        let n = u64::from(hdr.overflow) + 1;
        if id + n > self.hwm {
            return Err(ctx.corrupt(
                id,
                format!(
                    "overflow of {} pages runs past the high-water mark {}",
                    hdr.overflow, self.hwm
                ),
            ));
        }
        let end = (id + n) * ps;
        if end > self.data.len() as u64 {
            return Err(ctx.corrupt(
                id,
                "page overflow runs beyond the end of the file (truncated?)",
            ));
        }
        Page::parse(ctx, id, &self.data[start..end as usize])
    }

    /// A branch or leaf page.
    pub(crate) fn node(&self, id: u64) -> Result<Page<'a>> {
        let p = self.page(id)?;
        p.check_node(self.ctx)?;
        Ok(p)
    }

    /// Exact lookup of `key` in the tree rooted at `root`: `(flags, value)`.
    pub(crate) fn get(&self, root: u64, key: &[u8]) -> Result<Option<(u32, &'a [u8])>> {
        let mut page = self.node(root)?;
        for _ in 0..MAX_DEPTH {
            if page.is_branch() {
                let idx = branch_index(self.ctx, &page, key)?;
                page = self.node(page.branch_elem(self.ctx, idx)?.1)?;
            } else {
                return leaf_get(self.ctx, &page, key);
            }
        }
        Err(self
            .ctx
            .corrupt(root, "tree deeper than the maximum depth (cycle?)"))
    }

    /// Ordered cursor over the tree rooted at `root`, positioned at the first key `>= from`
    /// (or the first key).
    pub(crate) fn cursor(&self, root: u64, from: Option<&[u8]>) -> Result<Cursor<'a>> {
        let mut stack = Vec::new();
        let mut page = self.node(root)?;
        loop {
            if stack.len() >= MAX_DEPTH {
                return Err(self
                    .ctx
                    .corrupt(root, "tree deeper than the maximum depth (cycle?)"));
            }
            if page.is_branch() {
                let idx = match from {
                    Some(k) => branch_index(self.ctx, &page, k)?,
                    None => 0,
                };
                let child = page.branch_elem(self.ctx, idx)?.1;
                stack.push((page, idx));
                page = self.node(child)?;
            } else {
                let idx = match from {
                    Some(k) => leaf_lower_bound(self.ctx, &page, k)?,
                    None => 0,
                };
                stack.push((page, idx));
                break;
            }
        }
        Ok(Cursor {
            src: *self,
            visited: stack.len() as u64,
            stack,
            last: None,
        })
    }

    /// Adds every page (with overflow) of the tree rooted at `root` to `out`; with
    /// `recursive`, also the pages of all non-inline sub-buckets. Pages found twice are
    /// reported as corruption.
    pub(crate) fn collect_pages(
        &self,
        root: u64,
        recursive: bool,
        out: &mut BTreeSet<u64>,
    ) -> Result<()> {
        self.collect_inner(root, recursive, out, 0)
    }

    fn collect_inner(
        &self,
        id: u64,
        recursive: bool,
        out: &mut BTreeSet<u64>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH * 4 {
            return Err(self
                .ctx
                .corrupt(id, "tree nesting deeper than the maximum depth (cycle?)"));
        }
        let page = self.node(id)?;
        for pg in id..=id + u64::from(page.overflow) {
            if !out.insert(pg) {
                return Err(self.ctx.corrupt(pg, "page referenced more than once"));
            }
        }
        for i in 0..page.count {
            if page.is_branch() {
                let child = page.branch_elem(self.ctx, i)?.1;
                self.collect_inner(child, recursive, out, depth + 1)?;
            } else if recursive {
                let (flags, _, v) = page.leaf_elem(self.ctx, i)?;
                if flags & BUCKET_LEAF_FLAG != 0 {
                    let h = BucketHeader::parse(self.ctx, id, v)?;
                    if h.root != 0 {
                        self.collect_inner(h.root, true, out, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Index of the child to descend into for `key`: the last element whose key is `<= key`,
/// or 0 when `key` sorts before all of them.
fn branch_index(ctx: Ctx<'_>, page: &Page<'_>, key: &[u8]) -> Result<usize> {
    let (mut lo, mut hi) = (0usize, page.count);
    // Invariant: elements < lo have key <= target; elements >= hi have key > target.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if page.branch_elem(ctx, mid)?.0 <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo.saturating_sub(1))
}

/// Index of the first leaf element whose key is `>= key`.
fn leaf_lower_bound(ctx: Ctx<'_>, page: &Page<'_>, key: &[u8]) -> Result<usize> {
    let (mut lo, mut hi) = (0usize, page.count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if page.key(ctx, mid)? < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Exact lookup in a leaf page (also used for inline bucket pages).
pub(crate) fn leaf_get<'a>(
    ctx: Ctx<'_>,
    page: &Page<'a>,
    key: &[u8],
) -> Result<Option<(u32, &'a [u8])>> {
    let idx = leaf_lower_bound(ctx, page, key)?;
    if idx < page.count {
        let (flags, k, v) = page.leaf_elem(ctx, idx)?;
        if k == key {
            return Ok(Some((flags, v)));
        }
    }
    Ok(None)
}

/// Parses an inline bucket's page image (the bytes after the bucket header) into its
/// elements, checking order.
pub(crate) fn inline_elems<'a>(
    ctx: Ctx<'_>,
    page_id: u64,
    image: &'a [u8],
) -> Result<Vec<Elem<'a>>> {
    let page = Page::parse(ctx, page_id, image)
        .map_err(|_| ctx.corrupt(page_id, "inline bucket shorter than a page header"))?;
    if !page.is_leaf() {
        return Err(ctx.corrupt(page_id, "inline bucket page is not a leaf"));
    }
    page.check_node(ctx)?;
    let mut out = Vec::with_capacity(page.count);
    for i in 0..page.count {
        let e = page.leaf_elem(ctx, i)?;
        if let Some(prev) = out.last().map(|p: &Elem<'_>| p.1) {
            if prev >= e.1 {
                return Err(ctx.corrupt(page_id, "inline bucket keys out of order"));
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// Ordered cursor over a tree on disk. Validates that keys come out strictly ascending.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    src: Source<'a>,
    stack: Vec<(Page<'a>, usize)>,
    last: Option<&'a [u8]>,
    /// Pages entered so far; more than the high-water mark means a page is shared.
    visited: u64,
}

impl<'a> Cursor<'a> {
    /// The next element `(flags, key, value)` in key order.
    pub(crate) fn next_elem(&mut self) -> Result<Option<Elem<'a>>> {
        let ctx = self.src.ctx;
        loop {
            let Some((page, idx)) = self.stack.last().copied() else {
                return Ok(None);
            };
            if idx >= page.count {
                self.stack.pop();
                if let Some(top) = self.stack.last_mut() {
                    top.1 += 1;
                }
                continue;
            }
            if page.is_branch() {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ctx.corrupt(page.id, "tree deeper than the maximum depth (cycle?)"));
                }
                let child = page.branch_elem(ctx, idx)?.1;
                self.visited += 1;
                if self.visited > self.src.hwm {
                    return Err(ctx.corrupt(child, "page reached more than once while iterating"));
                }
                let child = self.src.node(child)?;
                self.stack.push((child, 0));
                continue;
            }
            let elem = page.leaf_elem(ctx, idx)?;
            if let Some(last) = self.last {
                if elem.1 <= last {
                    return Err(ctx.corrupt(page.id, "keys out of order"));
                }
            }
            // Every key must lie in the range its ancestors' branch keys route to it, so
            // that lookups find exactly what iteration returns.
            for &(bp, bi) in &self.stack[..self.stack.len() - 1] {
                if bi > 0 && elem.1 < bp.branch_elem(ctx, bi)?.0 {
                    return Err(ctx.corrupt(
                        bp.id,
                        format!("branch key {bi} is above a key of its child"),
                    ));
                }
                if bi + 1 < bp.count && elem.1 >= bp.branch_elem(ctx, bi + 1)?.0 {
                    return Err(ctx.corrupt(
                        bp.id,
                        format!("branch key {} is not above the keys of child {bi}", bi + 1),
                    ));
                }
            }
            self.last = Some(elem.1);
            if let Some(top) = self.stack.last_mut() {
                top.1 += 1;
            }
            return Ok(Some(elem));
        }
    }
}

/// One element to be written into a leaf: `(flags, key, value)`.
pub(crate) type Elem<'e> = (u32, &'e [u8], &'e [u8]);

/// Serialized size of an inline bucket / leaf node holding `elems`.
pub(crate) fn node_size(elems: &[Elem<'_>]) -> usize {
    PAGE_HEADER_SIZE
        + elems
            .iter()
            .map(|(_, k, v)| ELEM_SIZE + k.len() + v.len())
            .sum::<usize>()
}

/// Builds an inline bucket value: header `(root 0, sequence)` followed by a leaf page image.
pub(crate) fn inline_value(sequence: u64, elems: &[Elem<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; BUCKET_HEADER_SIZE + node_size(elems)];
    buf[..BUCKET_HEADER_SIZE].copy_from_slice(&BucketHeader { root: 0, sequence }.encode());
    write_leaf(&mut buf[BUCKET_HEADER_SIZE..], 0, 0, elems);
    buf
}

/// The empty inline bucket value (32 bytes).
pub(crate) fn empty_inline_value() -> Vec<u8> {
    let v = inline_value(0, &[]);
    debug_assert_eq!(v.len(), 32);
    debug_assert_eq!(crate::page::rd_u16(&v, 24), Some(LEAF_PAGE_FLAG));
    v
}

/// Splits elements of the given sizes into consecutive groups whose node size stays within
/// one page where possible; every group has at least `min` elements (unless there are fewer
/// in total) and at most `MAX_PAGE_ELEMS`.
fn group(sizes: &[usize], page_size: usize, min: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut size = PAGE_HEADER_SIZE;
    for (i, &s) in sizes.iter().enumerate() {
        let n = i - start;
        if n >= min && (size + s > page_size || n >= MAX_PAGE_ELEMS) {
            groups.push(start..i);
            start = i;
            size = PAGE_HEADER_SIZE;
        }
        size += s;
    }
    if sizes.len() - start < min && !groups.is_empty() {
        let prev: std::ops::Range<usize> = groups.pop().unwrap_or(0..0);
        // Re-split the merged tail in two halves (each >= min since prev had >= min).
        let merged = prev.start..sizes.len();
        if merged.len() > MAX_PAGE_ELEMS {
            let mid = merged.start + merged.len() / 2;
            groups.push(merged.start..mid);
            groups.push(mid..merged.end);
        } else {
            groups.push(merged);
        }
    } else {
        groups.push(start..sizes.len());
    }
    groups
}

/// Writes a B+tree holding `elems` (sorted, unique keys) into freshly allocated pages and
/// returns the root pgid. Page buffers are appended to `out`.
pub(crate) fn write_tree(
    elems: &[Elem<'_>],
    alloc: &mut Allocator,
    page_size: usize,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> u64 {
    let sizes: Vec<usize> = elems
        .iter()
        .map(|(_, k, v)| ELEM_SIZE + k.len() + v.len())
        .collect();
    // Level 0: leaves. `level` holds (first key, pgid) of each node.
    let mut level: Vec<(&[u8], u64)> = Vec::new();
    for g in group(&sizes, page_size, 1) {
        let part = &elems[g];
        let size = node_size(part);
        let npages = size.div_ceil(page_size) as u64;
        let id = alloc.allocate(npages);
        let mut buf = vec![0u8; npages as usize * page_size];
        write_leaf(&mut buf, id, (npages - 1) as u32, part);
        out.push((id, buf));
        level.push((part.first().map(|e| e.1).unwrap_or(&[]), id));
    }
    while level.len() > 1 {
        let sizes: Vec<usize> = level.iter().map(|(k, _)| ELEM_SIZE + k.len()).collect();
        let mut next = Vec::new();
        for g in group(&sizes, page_size, 2) {
            let part = &level[g];
            let size =
                PAGE_HEADER_SIZE + part.iter().map(|(k, _)| ELEM_SIZE + k.len()).sum::<usize>();
            let npages = size.div_ceil(page_size) as u64;
            let id = alloc.allocate(npages);
            let mut buf = vec![0u8; npages as usize * page_size];
            write_branch(&mut buf, id, (npages - 1) as u32, part);
            out.push((id, buf));
            next.push((part[0].0, id));
        }
        level = next;
    }
    level[0].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_respects_minimum_and_page_size() {
        let g = group(&[100; 100], 1000, 2);
        assert!(g.iter().all(|r| r.len() >= 2));
        assert_eq!(g.iter().map(|r| r.len()).sum::<usize>(), 100);
        // Every element larger than a page: branches still pair them up.
        let g = group(&[3000; 5], 1000, 2);
        assert!(g.iter().all(|r| r.len() >= 2), "{g:?}");
        assert!(g.len() < 5);
        let g = group(&[], 1000, 1);
        assert_eq!(g, vec![0..0]);
    }
}
