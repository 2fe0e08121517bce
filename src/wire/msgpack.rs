//! Just enough msgpack structure-walking to find where an object ends without building it.
//!
//! The bus relays bodies it never needs to materialise; finding frame boundaries and checking
//! that data would decode must not allocate per event.

use smallvec::SmallVec;

/// Why a byte slice is not (yet) a whole msgpack object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// More bytes are needed to finish the object.
    Incomplete,
    /// The bytes can never form a msgpack object (the reserved marker `0xc1`) or nest too deep.
    Invalid,
}

/// Deeper nesting than this is refused rather than walked, so hostile input cannot exhaust the
/// stack; real Salt events nest a handful of levels.
pub(crate) const MAX_DEPTH: usize = 512;

/// Returns the length of the msgpack object at the start of `buf`.
pub(crate) fn object_len(buf: &[u8]) -> Result<usize, Skip> {
    let mut pos = 0;
    // Number of objects still to skip at each open container level, innermost last; events nest
    // a handful of levels, so the walk allocates nothing for them.
    let mut pending: SmallVec<[u64; 16]> = SmallVec::new();
    let mut remaining: u64 = 1;
    loop {
        while remaining == 0 {
            match pending.pop() {
                Some(outer) => remaining = outer,
                None => return Ok(pos),
            }
        }
        remaining -= 1;
        let marker = *buf.get(pos).ok_or(Skip::Incomplete)?;
        pos += 1;
        let (payload, children): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc1 => return Err(Skip::Invalid),
            0xc4 | 0xd9 => (read_be(buf, &mut pos, 1)?, 0),
            0xc5 | 0xda => (read_be(buf, &mut pos, 2)?, 0),
            0xc6 | 0xdb => (read_be(buf, &mut pos, 4)?, 0),
            0xc7 => (read_be(buf, &mut pos, 1)? + 1, 0),
            0xc8 => (read_be(buf, &mut pos, 2)? + 1, 0),
            0xc9 => (read_be(buf, &mut pos, 4)? + 1, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_be(buf, &mut pos, 2)?),
            0xdd => (0, read_be(buf, &mut pos, 4)?),
            0xde => (0, 2 * read_be(buf, &mut pos, 2)?),
            0xdf => (0, 2 * read_be(buf, &mut pos, 4)?),
        };
        let end = (pos as u64).saturating_add(payload);
        if end > buf.len() as u64 {
            return Err(Skip::Incomplete);
        }
        pos = end as usize;
        if children > 0 {
            // A container cannot hold more objects than there are bytes left for them, which
            // keeps a forged huge count from looping long before running out of input.
            if children > (buf.len() - pos) as u64 {
                return Err(Skip::Incomplete);
            }
            if pending.len() >= MAX_DEPTH {
                return Err(Skip::Invalid);
            }
            pending.push(remaining);
            remaining = children;
        }
    }
}

fn read_be(buf: &[u8], pos: &mut usize, width: usize) -> Result<u64, Skip> {
    let bytes = buf.get(*pos..*pos + width).ok_or(Skip::Incomplete)?;
    *pos += width;
    Ok(bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Reads a msgpack str or bin header at `buf[0]`: the payload's offset and length.
pub(crate) fn raw_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 1;
    let len = match *buf.first()? {
        m @ 0xa0..=0xbf => u64::from(m & 0x1f),
        0xc4 | 0xd9 => read_be(buf, &mut pos, 1).ok()?,
        0xc5 | 0xda => read_be(buf, &mut pos, 2).ok()?,
        0xc6 | 0xdb => read_be(buf, &mut pos, 4).ok()?,
        _ => return None,
    };
    Some((pos, usize::try_from(len).ok()?))
}

/// Reads a msgpack map header at `buf[0]`: the entry count and the header's length.
pub(crate) fn map_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 1;
    let len = match *buf.first()? {
        m @ 0x80..=0x8f => u64::from(m & 0x0f),
        0xde => read_be(buf, &mut pos, 2).ok()?,
        0xdf => read_be(buf, &mut pos, 4).ok()?,
        _ => return None,
    };
    Some((usize::try_from(len).ok()?, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(value: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    #[test]
    fn object_len_matches_rmpv_for_nested_values() {
        let value = rmpv::Value::Map(vec![
            ("a".into(), rmpv::Value::from(1)),
            (
                rmpv::Value::from(7),
                rmpv::Value::Array(vec![
                    rmpv::Value::from(2.5),
                    rmpv::Value::Nil,
                    rmpv::Value::Binary(vec![0; 300]),
                    rmpv::Value::Ext(78, b"20261124T08:00:00.000000".to_vec()),
                    rmpv::Value::from(u64::MAX),
                    rmpv::Value::from(-70000),
                ]),
            ),
        ]);
        let mut bytes = packed(&value);
        let len = bytes.len();
        bytes.extend_from_slice(b"trailing");
        assert_eq!(object_len(&bytes), Ok(len));
        for cut in 0..len {
            assert_eq!(
                object_len(&bytes[..cut]),
                Err(Skip::Incomplete),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn object_len_rejects_reserved_marker_and_forged_counts() {
        assert_eq!(object_len(&[0xc1]), Err(Skip::Invalid));
        assert_eq!(
            object_len(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(Skip::Incomplete)
        );
        let mut deep = vec![0x91; MAX_DEPTH + 2];
        deep.push(0xc0);
        assert_eq!(object_len(&deep), Err(Skip::Invalid));
    }
}
