//! The freelist page: parsing (including the `count == 0xFFFF` large form), encoding, and
//! first-fit allocation.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::page::{
    page_type_name, rd_u64, wr_u16, wr_u32, wr_u64, Ctx, Page, FREELIST_PAGE_FLAG, PAGE_HEADER_SIZE,
};

/// Decodes the freelist held by `page` (full span including overflow pages). Every id must
/// lie in `[2, hwm)`, outside the freelist page itself, and appear once.
pub(crate) fn decode(ctx: Ctx<'_>, page: &Page<'_>, hwm: u64) -> Result<BTreeSet<u64>> {
    if page.flags & FREELIST_PAGE_FLAG == 0 {
        return Err(ctx.corrupt(
            page.id,
            format!(
                "expected a freelist page, found {}",
                page_type_name(page.flags)
            ),
        ));
    }
    let (n, start) = if page.count == 0xFFFF {
        let n = rd_u64(page.bytes, PAGE_HEADER_SIZE)
            .ok_or_else(|| ctx.corrupt(page.id, "freelist count word outside the page"))?;
        (n, PAGE_HEADER_SIZE + 8)
    } else {
        (page.count as u64, PAGE_HEADER_SIZE)
    };
    let avail = (page.bytes.len() - start) as u64 / 8;
    if n > avail {
        return Err(ctx.corrupt(
            page.id,
            format!("freelist claims {n} ids but its page span holds at most {avail}"),
        ));
    }
    let own = page.id..=page.id + u64::from(page.overflow);
    let mut ids = BTreeSet::new();
    for i in 0..n as usize {
        let id = rd_u64(page.bytes, start + 8 * i).unwrap_or(0);
        if id < 2 || id >= hwm {
            return Err(ctx.corrupt(
                page.id,
                format!("freelist entry {i} = {id} outside [2, {hwm})"),
            ));
        }
        if own.contains(&id) {
            return Err(ctx.corrupt(page.id, format!("freelist lists its own page {id}")));
        }
        if !ids.insert(id) {
            return Err(ctx.corrupt(page.id, format!("page {id} listed twice in the freelist")));
        }
    }
    Ok(ids)
}

/// Serialized size of a freelist with `n` ids.
pub(crate) fn encoded_size(n: usize) -> usize {
    PAGE_HEADER_SIZE + 8 * n + if n >= 0xFFFF { 8 } else { 0 }
}

/// Encodes the (sorted) ids into a page buffer of `npages * page_size` bytes.
pub(crate) fn encode(id: u64, npages: u64, page_size: usize, ids: &BTreeSet<u64>) -> Vec<u8> {
    let mut buf = vec![0u8; npages as usize * page_size];
    wr_u64(&mut buf, 0, id);
    wr_u16(&mut buf, 8, FREELIST_PAGE_FLAG);
    wr_u32(&mut buf, 12, (npages - 1) as u32);
    let mut off = PAGE_HEADER_SIZE;
    if ids.len() >= 0xFFFF {
        wr_u16(&mut buf, 10, 0xFFFF);
        wr_u64(&mut buf, off, ids.len() as u64);
        off += 8;
    } else {
        wr_u16(&mut buf, 10, ids.len() as u16);
    }
    for &pg in ids {
        wr_u64(&mut buf, off, pg);
        off += 8;
    }
    buf
}

/// Page allocator for one write transaction: first-fit over the free ids (lowest id
/// first, as bbolt's array freelist), else extend the high-water mark.
#[derive(Debug)]
pub(crate) struct Allocator {
    pub(crate) free: BTreeSet<u64>,
    pub(crate) hwm: u64,
}

impl Allocator {
    /// Allocates `n >= 1` contiguous pages and returns the first id.
    pub(crate) fn allocate(&mut self, n: u64) -> u64 {
        debug_assert!(n >= 1);
        let mut run_start = 0u64;
        let mut prev = 0u64;
        let mut found = None;
        for &id in &self.free {
            if id == 0 || prev == 0 || id != prev + 1 {
                run_start = id;
            }
            prev = id;
            if id - run_start + 1 == n {
                found = Some(run_start);
                break;
            }
        }
        if let Some(start) = found {
            for id in start..start + n {
                self.free.remove(&id);
            }
            return start;
        }
        let start = self.hwm;
        self.hwm += n;
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn allocate_first_fit() {
        let mut a = Allocator {
            free: [3, 5, 6, 9, 10, 11].into_iter().collect(),
            hwm: 20,
        };
        assert_eq!(a.allocate(3), 9);
        assert_eq!(a.allocate(1), 3);
        assert_eq!(a.allocate(2), 5);
        assert_eq!(a.allocate(1), 20);
        assert_eq!(a.hwm, 21);
        assert!(a.free.is_empty());
    }

    #[test]
    fn encode_decode_large() {
        let ctx = Ctx {
            path: Path::new("x"),
        };
        let ids: BTreeSet<u64> = (1000..1000 + 70_000).collect();
        let size = encoded_size(ids.len());
        let npages = size.div_ceil(4096) as u64;
        let buf = encode(2, npages, 4096, &ids);
        assert_eq!(crate::page::rd_u16(&buf, 10), Some(0xFFFF));
        let page = Page::parse(ctx, 2, &buf).unwrap();
        let back = decode(ctx, &page, 1_000_000).unwrap();
        assert_eq!(back, ids);
        // Out-of-range ids are rejected.
        assert!(decode(ctx, &page, 5000).is_err());
    }
}
