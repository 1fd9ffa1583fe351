//! Meta pages (pages 0 and 1): parsing, validation and serialization.

use crate::page::{rd_u32, rd_u64, wr_u16, wr_u32, wr_u64, META_PAGE_FLAG, PAGE_HEADER_SIZE};

/// bbolt's magic number.
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
/// The only supported data file format version.
pub(crate) const VERSION: u32 = 2;
/// `meta.freelist` value meaning "the freelist was not synced" (`NoFreelistSync`).
pub(crate) const PGID_NO_FREELIST: u64 = u64::MAX;
/// Size of the meta struct.
pub(crate) const META_SIZE: usize = 64;
/// Smallest and largest page size accepted.
pub(crate) const MIN_PAGE_SIZE: u32 = 1024;
pub(crate) const MAX_PAGE_SIZE: u32 = 65536;

/// FNV-1a 64-bit hash.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The decoded meta struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) page_size: u32,
    pub(crate) flags: u32,
    pub(crate) root: u64,
    pub(crate) sequence: u64,
    pub(crate) freelist: u64,
    pub(crate) pgid: u64,
    pub(crate) txid: u64,
}

impl Meta {
    /// Decodes and validates the meta struct of the meta page starting at `page`
    /// (which must hold at least `PAGE_HEADER_SIZE + META_SIZE` bytes). Returns a reason
    /// string on failure.
    pub(crate) fn decode(page: &[u8]) -> Result<Meta, String> {
        let m = page
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE)
            .ok_or_else(|| "meta page truncated".to_string())?;
        let magic = rd_u32(m, 0).unwrap_or(0);
        if magic != MAGIC {
            return Err(format!(
                "invalid magic {magic:#010x} (not a bolt database, or big-endian)"
            ));
        }
        let version = rd_u32(m, 4).unwrap_or(0);
        if version != VERSION {
            return Err(format!("unsupported version {version}"));
        }
        let stored = rd_u64(m, 56).unwrap_or(0);
        let computed = fnv1a64(&m[..56]);
        if stored != computed {
            return Err(format!(
                "checksum mismatch (stored {stored:#018x}, computed {computed:#018x})"
            ));
        }
        let meta = Meta {
            page_size: rd_u32(m, 8).unwrap_or(0),
            flags: rd_u32(m, 12).unwrap_or(0),
            root: rd_u64(m, 16).unwrap_or(0),
            sequence: rd_u64(m, 24).unwrap_or(0),
            freelist: rd_u64(m, 32).unwrap_or(0),
            pgid: rd_u64(m, 40).unwrap_or(0),
            txid: rd_u64(m, 48).unwrap_or(0),
        };
        if !meta.page_size.is_power_of_two()
            || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&meta.page_size)
        {
            return Err(format!("unsupported page size {}", meta.page_size));
        }
        if meta.pgid < 3 {
            return Err(format!("high-water mark {} is too small", meta.pgid));
        }
        if meta.root < 2 || meta.root >= meta.pgid {
            return Err(format!(
                "root page {} outside [2, {})",
                meta.root, meta.pgid
            ));
        }
        if meta.freelist != PGID_NO_FREELIST && (meta.freelist < 2 || meta.freelist >= meta.pgid) {
            return Err(format!(
                "freelist page {} outside [2, {})",
                meta.freelist, meta.pgid
            ));
        }
        Ok(meta)
    }

    /// Serializes this meta into a fresh zeroed page of `page_size` bytes, as the meta page
    /// `txid % 2`.
    pub(crate) fn encode_page(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.page_size as usize];
        wr_u64(&mut buf, 0, self.txid % 2);
        wr_u16(&mut buf, 8, META_PAGE_FLAG);
        let m = &mut buf[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE];
        wr_u32(m, 0, MAGIC);
        wr_u32(m, 4, VERSION);
        wr_u32(m, 8, self.page_size);
        wr_u32(m, 12, self.flags);
        wr_u64(m, 16, self.root);
        wr_u64(m, 24, self.sequence);
        wr_u64(m, 32, self.freelist);
        wr_u64(m, 40, self.pgid);
        wr_u64(m, 48, self.txid);
        let sum = fnv1a64(&m[..56]);
        wr_u64(m, 56, sum);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn meta_roundtrip_and_checksum() {
        let m = Meta {
            page_size: 4096,
            flags: 0,
            root: 3,
            sequence: 0,
            freelist: 2,
            pgid: 4,
            txid: 7,
        };
        let mut page = m.encode_page();
        assert_eq!(Meta::decode(&page), Ok(m));
        assert_eq!(rd_u64(&page, 0), Some(1));
        page[40] ^= 1;
        assert!(Meta::decode(&page).unwrap_err().contains("checksum"));
    }
}
