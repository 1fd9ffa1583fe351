//! B+tree access on the mapped file (lookup, ordered cursor, page walks) and the B+tree
//! writer used at commit.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::freelist::Allocator;
use crate::page::{
    rd_u16, rd_u64, write_branch, write_leaf, Ctx, Page, BRANCH_PAGE_FLAG, BUCKET_HEADER_SIZE,
    BUCKET_LEAF_FLAG, ELEM_SIZE, LEAF_PAGE_FLAG, MAX_PAGE_ELEMS, PAGE_HEADER_SIZE,
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

/// A pending change to one key of a bucket stored on disk: `None` deletes the key,
/// `Some((flags, value))` inserts or replaces it.
pub(crate) type Change<'e> = (&'e [u8], Option<(u32, &'e [u8])>);

/// Writes `elems` (sorted) as one or more leaf nodes; returns `(first key, pgid)` of each.
fn write_leaves(
    elems: &[Elem<'_>],
    alloc: &mut Allocator,
    page_size: usize,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Vec<(Vec<u8>, u64)> {
    if elems.is_empty() {
        return Vec::new();
    }
    let sizes: Vec<usize> = elems
        .iter()
        .map(|(_, k, v)| ELEM_SIZE + k.len() + v.len())
        .collect();
    let mut res = Vec::new();
    for g in group(&sizes, page_size, 1) {
        let part = &elems[g];
        let npages = node_size(part).div_ceil(page_size) as u64;
        let id = alloc.allocate(npages);
        let mut buf = vec![0u8; npages as usize * page_size];
        write_leaf(&mut buf, id, (npages - 1) as u32, part);
        out.push((id, buf));
        res.push((part[0].1.to_vec(), id));
    }
    res
}

/// Writes branch entries as one or more branch nodes; returns `(first key, pgid)` of each.
fn write_branches(
    level: &[(Vec<u8>, u64)],
    alloc: &mut Allocator,
    page_size: usize,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Vec<(Vec<u8>, u64)> {
    let sizes: Vec<usize> = level.iter().map(|(k, _)| ELEM_SIZE + k.len()).collect();
    let mut res = Vec::new();
    for g in group(&sizes, page_size, 2) {
        let part: Vec<(&[u8], u64)> = level[g].iter().map(|(k, c)| (k.as_slice(), *c)).collect();
        let size = PAGE_HEADER_SIZE + part.iter().map(|(k, _)| ELEM_SIZE + k.len()).sum::<usize>();
        let npages = size.div_ceil(page_size) as u64;
        let id = alloc.allocate(npages);
        let mut buf = vec![0u8; npages as usize * page_size];
        write_branch(&mut buf, id, (npages - 1) as u32, &part);
        out.push((id, buf));
        res.push((part[0].0.to_vec(), id));
    }
    res
}

/// Applies sorted, unique `changes` to the leaf elements `old` (which must be strictly
/// ascending; checked).
pub(crate) fn merge_elems<'e>(
    ctx: Ctx<'_>,
    page_id: u64,
    old: &[Elem<'e>],
    changes: &[Change<'e>],
) -> Result<Vec<Elem<'e>>> {
    let mut out = Vec::with_capacity(old.len() + changes.len());
    let mut ci = 0;
    for (i, e) in old.iter().enumerate() {
        if i > 0 && old[i - 1].1 >= e.1 {
            return Err(ctx.corrupt(page_id, "keys out of order"));
        }
        while ci < changes.len() && changes[ci].0 < e.1 {
            if let (k, Some((f, v))) = changes[ci] {
                out.push((f, k, v));
            }
            ci += 1;
        }
        if ci < changes.len() && changes[ci].0 == e.1 {
            if let (k, Some((f, v))) = changes[ci] {
                out.push((f, k, v));
            }
            ci += 1;
        } else {
            out.push(*e);
        }
    }
    for &(k, c) in &changes[ci..] {
        if let Some((f, v)) = c {
            out.push((f, k, v));
        }
    }
    Ok(out)
}

impl<'a> Source<'a> {
    /// All elements of the leaf or branch page `id` if it is a leaf (`None` for a branch).
    pub(crate) fn leaf_elems(&self, id: u64) -> Result<Option<Vec<Elem<'a>>>> {
        let page = self.node(id)?;
        if page.is_branch() {
            return Ok(None);
        }
        (0..page.count)
            .map(|i| page.leaf_elem(self.ctx, i))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Copy-on-write update of the tree rooted at `root` with sorted, unique `changes`:
    /// only the nodes on the paths to changed keys are rewritten (to newly allocated
    /// pages, their old pages added to `freed`); untouched subtrees keep their pages.
    /// Returns the new root pgid.
    pub(crate) fn cow_tree(
        &self,
        root: u64,
        changes: &[Change<'a>],
        alloc: &mut Allocator,
        out: &mut Vec<(u64, Vec<u8>)>,
        freed: &mut BTreeSet<u64>,
    ) -> Result<u64> {
        let mut level = self.cow_node(root, changes, alloc, out, freed, 0)?;
        if level.is_empty() {
            let id = alloc.allocate(1);
            let mut buf = vec![0u8; self.page_size];
            write_leaf(&mut buf, id, 0, &[]);
            out.push((id, buf));
            return Ok(id);
        }
        while level.len() > 1 {
            level = write_branches(&level, alloc, self.page_size, out);
        }
        // Collapse root branches (written by this update) that have a single child.
        let mut id = level[0].1;
        while let Some(pos) = out.iter().rposition(|p| p.0 == id) {
            let buf = &out[pos].1;
            if rd_u16(buf, 8) != Some(BRANCH_PAGE_FLAG) || rd_u16(buf, 10) != Some(1) {
                break;
            }
            let child = rd_u64(buf, PAGE_HEADER_SIZE + 8).unwrap_or(0);
            let n = (buf.len() / self.page_size) as u64;
            out.remove(pos);
            alloc.free.extend(id..id + n);
            id = child;
        }
        Ok(id)
    }

    /// If page `id` is a leaf: its elements (checked to ascend), its pages added to `freed`.
    fn take_leaf(
        &self,
        id: u64,
        freed: &mut BTreeSet<u64>,
        depth: usize,
    ) -> Result<Option<Vec<Elem<'a>>>> {
        let ctx = self.ctx;
        if depth >= MAX_DEPTH {
            return Err(ctx.corrupt(id, "tree deeper than the maximum depth (cycle?)"));
        }
        let page = self.node(id)?;
        if page.is_branch() {
            return Ok(None);
        }
        for pg in id..=id + u64::from(page.overflow) {
            if !freed.insert(pg) {
                return Err(ctx.corrupt(pg, "page referenced more than once"));
            }
        }
        let old = (0..page.count)
            .map(|i| page.leaf_elem(ctx, i))
            .collect::<Result<Vec<_>>>()?;
        merge_elems(ctx, id, &old, &[]).map(Some)
    }

    fn cow_node(
        &self,
        id: u64,
        changes: &[Change<'a>],
        alloc: &mut Allocator,
        out: &mut Vec<(u64, Vec<u8>)>,
        freed: &mut BTreeSet<u64>,
        depth: usize,
    ) -> Result<Vec<(Vec<u8>, u64)>> {
        let ctx = self.ctx;
        if depth >= MAX_DEPTH {
            return Err(ctx.corrupt(id, "tree deeper than the maximum depth (cycle?)"));
        }
        let page = self.node(id)?;
        for pg in id..=id + u64::from(page.overflow) {
            if !freed.insert(pg) {
                return Err(ctx.corrupt(pg, "page referenced more than once"));
            }
        }
        if !page.is_branch() {
            let old = (0..page.count)
                .map(|i| page.leaf_elem(ctx, i))
                .collect::<Result<Vec<_>>>()?;
            let elems = merge_elems(ctx, id, &old, changes)?;
            return Ok(write_leaves(&elems, alloc, self.page_size, out));
        }
        // Children after the update: kept as they are, leaves with their new elements (not
        // written yet, so that underfull ones can be merged with a neighbour), or the nodes
        // a rewritten branch became.
        enum Pend<'e> {
            Keep(Vec<u8>, u64),
            Leaf(Vec<Elem<'e>>),
            Nodes(Vec<(Vec<u8>, u64)>),
        }
        let mut pend: Vec<Pend<'a>> = Vec::with_capacity(page.count + 1);
        let mut rest = changes;
        for i in 0..page.count {
            let (key, child) = page.branch_elem(ctx, i)?;
            let mine = if i + 1 < page.count {
                let next = page.branch_elem(ctx, i + 1)?.0;
                if next <= key {
                    return Err(ctx.corrupt(id, "branch keys out of order"));
                }
                let n = rest.partition_point(|c| c.0 < next);
                let (a, b) = rest.split_at(n);
                rest = b;
                a
            } else {
                std::mem::take(&mut rest)
            };
            if mine.is_empty() {
                pend.push(Pend::Keep(key.to_vec(), child));
            } else if let Some(old) = self.take_leaf(child, freed, depth + 1)? {
                pend.push(Pend::Leaf(merge_elems(ctx, child, &old, mine)?));
            } else {
                pend.push(Pend::Nodes(self.cow_node(
                    child,
                    mine,
                    alloc,
                    out,
                    freed,
                    depth + 1,
                )?));
            }
        }
        // Merge underfull rewritten leaves with a neighbouring leaf (bbolt's rebalance).
        let threshold = self.page_size / 4;
        let mut i = 0;
        while i < pend.len() {
            let small = matches!(&pend[i], Pend::Leaf(e) if node_size(e) < threshold);
            if !small || pend.len() < 2 {
                i += 1;
                continue;
            }
            let j = if i + 1 < pend.len() { i + 1 } else { i - 1 };
            let other = match &pend[j] {
                Pend::Leaf(e) => Some(e.clone()),
                Pend::Keep(_, c) => self.take_leaf(*c, freed, depth + 1)?,
                Pend::Nodes(_) => None,
            };
            let Some(other) = other else {
                i += 1;
                continue;
            };
            let (lo, hi) = (i.min(j), i.max(j));
            let Pend::Leaf(mine) = std::mem::replace(&mut pend[i], Pend::Nodes(Vec::new())) else {
                unreachable!("checked above")
            };
            let (mut merged, tail) = if j > i { (mine, other) } else { (other, mine) };
            if let (Some(a), Some(b)) = (merged.last(), tail.first()) {
                if a.1 >= b.1 {
                    return Err(ctx.corrupt(id, "keys of sibling leaves overlap"));
                }
            }
            merged.extend(tail);
            pend[lo] = Pend::Leaf(merged);
            pend.remove(hi);
            i = lo;
        }
        let mut level: Vec<(Vec<u8>, u64)> = Vec::with_capacity(pend.len() + 1);
        for p in pend {
            match p {
                Pend::Keep(k, c) => level.push((k, c)),
                Pend::Leaf(e) => level.extend(write_leaves(&e, alloc, self.page_size, out)),
                Pend::Nodes(n) => level.extend(n),
            }
        }
        if level.is_empty() {
            return Ok(level);
        }
        Ok(write_branches(&level, alloc, self.page_size, out))
    }
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
