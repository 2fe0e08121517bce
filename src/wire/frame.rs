//! Frames: the `{"head": {}, "body": <bin>}` envelope, bare or length-prefixed.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::msgpack::{self, Skip};

/// How frames are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One msgpack map after another, as Salt 3007.0–3007.14 and every 3007/3008 publisher write.
    Bare,
    /// A 4-byte big-endian length before each map, as Salt 3006.26+ and 3007.15+ pull sockets
    /// require.
    LengthPrefixed,
}

impl Framing {
    /// The framing a connection uses, told by its first byte: a bare frame starts with a msgpack
    /// map marker; anything else is the high byte of a length prefix.
    fn detect(first: u8) -> Self {
        match first {
            0x80..=0x8f | 0xde | 0xdf => Framing::Bare,
            _ => Framing::LengthPrefixed,
        }
    }

    /// The name used in configuration (`ipc_framing`) and messages.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Bare => "bare",
            Framing::LengthPrefixed => "length_prefixed",
        }
    }
}

/// Why a connection's byte stream cannot be read any further.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A frame announces or grows beyond the size limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced or buffered size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The bytes are not msgpack (or nest deeper than any event does).
    #[error("invalid msgpack in frame")]
    InvalidMsgpack,
    /// A length prefix does not match the msgpack object that follows it.
    #[error("length prefix says {prefix} bytes but the msgpack object is {actual} bytes")]
    LengthMismatch {
        /// The length the prefix announced.
        prefix: usize,
        /// The length of the object actually found.
        actual: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("connection closed in the middle of a frame ({0} bytes left over)")]
    Truncated(usize),
    /// Reading the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why one well-formed msgpack object was not an event frame; the stream itself stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IgnoredFrame {
    /// The object is not a map.
    #[error("frame is not a map")]
    NotAMap,
    /// The map has no `body` key holding str or bin.
    #[error("frame has no str or bin \"body\"")]
    NoBody,
}

/// Decodes frames of either framing, detected from the connection's first byte, and yields each
/// frame's body. A frame that is valid msgpack but not an event yields `Err(IgnoredFrame)` and the
/// stream goes on, as Salt's pull servers do; broken msgpack or an oversized frame is fatal for
/// the connection, because nothing after it can be trusted to start on a frame boundary.
#[derive(Debug)]
pub struct FrameCodec {
    framing: Option<Framing>,
    max_frame: usize,
}

impl FrameCodec {
    /// A decoder that refuses frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            framing: None,
            max_frame,
        }
    }

    /// The framing detected on this connection, once a byte has arrived.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }
}

const PREFIX_LEN: usize = 4;

impl Decoder for FrameCodec {
    type Item = Result<Frame, IgnoredFrame>;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let framing = *self.framing.get_or_insert_with(|| Framing::detect(first));
        let object = match framing {
            Framing::LengthPrefixed => {
                if buf.len() < PREFIX_LEN {
                    return Ok(None);
                }
                let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if size > self.max_frame {
                    return Err(FrameError::TooLarge {
                        size,
                        limit: self.max_frame,
                    });
                }
                if buf.len() < PREFIX_LEN + size {
                    // Grow with the data, not with the announcement: four bytes must not be able
                    // to make the daemon allocate the whole frame limit.
                    buf.reserve((PREFIX_LEN + size - buf.len()).min(64 * 1024));
                    return Ok(None);
                }
                buf.advance(PREFIX_LEN);
                let object = buf.split_to(size).freeze();
                match msgpack::object_len(&object) {
                    Ok(actual) if actual == size => object,
                    Ok(actual) => {
                        return Err(FrameError::LengthMismatch {
                            prefix: size,
                            actual,
                        });
                    }
                    Err(Skip::Incomplete) => {
                        return Err(FrameError::LengthMismatch {
                            prefix: size,
                            actual: usize::MAX,
                        });
                    }
                    Err(Skip::Invalid) => return Err(FrameError::InvalidMsgpack),
                }
            }
            Framing::Bare => match msgpack::object_len(buf) {
                Ok(size) if size > self.max_frame => {
                    return Err(FrameError::TooLarge {
                        size,
                        limit: self.max_frame,
                    });
                }
                Ok(size) => buf.split_to(size).freeze(),
                Err(Skip::Incomplete) if buf.len() > self.max_frame => {
                    return Err(FrameError::TooLarge {
                        size: buf.len(),
                        limit: self.max_frame,
                    });
                }
                Err(Skip::Incomplete) => return Ok(None),
                Err(Skip::Invalid) => return Err(FrameError::InvalidMsgpack),
            },
        };
        Ok(Some(frame_body(&object).map(|body| Frame { object, body })))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(FrameError::Truncated(buf.len())),
        }
    }
}

/// One frame read off a connection: the msgpack object, and where its body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    object: Bytes,
    body: std::ops::Range<usize>,
}

/// Frames smaller than this are copied out of the read buffer rather than shared with it, so
/// that a few queued frames never pin whole read buffers in memory.
const SHARE_AT_LEAST: usize = 16 * 1024;

impl Frame {
    /// The event body, sharing the frame's bytes.
    pub fn body(&self) -> Bytes {
        self.object.slice(self.body.clone())
    }

    /// The frame as Salt writes it (fixmap, `head` `{}` first, `body` as bin), ready to relay
    /// bare: the received bytes themselves when they already are exactly that.
    pub fn into_canonical(self) -> Bytes {
        let (expected, len) = header(self.body.len());
        if self.body.start == len
            && self.object[..len] == expected[..len]
            && self.body.end == self.object.len()
        {
            if self.object.len() >= SHARE_AT_LEAST {
                return self.object;
            }
            return Bytes::copy_from_slice(&self.object);
        }
        let mut out = Vec::new();
        encode_frame(&self.object[self.body.clone()], Framing::Bare, &mut out);
        Bytes::from(out)
    }
}

/// The body of a canonical bare frame (as [`Frame::into_canonical`] makes them), sharing its
/// bytes.
pub fn canonical_body(frame: &Bytes) -> Bytes {
    // `\x82 \xa4head \x80 \xa4body` is 12 bytes; the bin marker after it says how long the
    // length is.
    const HEAD: usize = 12;
    let start = match frame.get(HEAD) {
        Some(0xc4) => HEAD + 2,
        Some(0xc5) => HEAD + 3,
        _ => HEAD + 5,
    };
    frame.slice(start.min(frame.len())..)
}

/// Finds the `body` value in one complete frame object.
fn frame_body(object: &Bytes) -> Result<std::ops::Range<usize>, IgnoredFrame> {
    let (entries, mut pos) = msgpack::map_header(object).ok_or(IgnoredFrame::NotAMap)?;
    for _ in 0..entries {
        let key = msgpack::raw_header(&object[pos..])
            .map(|(offset, len)| &object[pos + offset..pos + offset + len]);
        pos += msgpack::object_len(&object[pos..]).map_err(|_| IgnoredFrame::NotAMap)?;
        if key == Some(b"body".as_slice()) {
            let (offset, len) = msgpack::raw_header(&object[pos..]).ok_or(IgnoredFrame::NoBody)?;
            let start = pos + offset;
            if start + len > object.len() {
                return Err(IgnoredFrame::NoBody);
            }
            return Ok(start..start + len);
        }
        pos += msgpack::object_len(&object[pos..]).map_err(|_| IgnoredFrame::NotAMap)?;
    }
    Err(IgnoredFrame::NoBody)
}

/// Appends one frame carrying `body` to `out`, exactly as Salt writes it: fixmap `head` `{}`
/// first, then `body` as msgpack bin.
pub fn encode_frame(body: &[u8], framing: Framing, out: &mut Vec<u8>) {
    let start = out.len();
    if framing == Framing::LengthPrefixed {
        out.extend_from_slice(&[0; PREFIX_LEN]);
    }
    encode_header(body.len(), out);
    out.extend_from_slice(body);
    if framing == Framing::LengthPrefixed {
        let object_len = (out.len() - start - PREFIX_LEN) as u32;
        out[start..start + PREFIX_LEN].copy_from_slice(&object_len.to_be_bytes());
    }
}

/// The canonical frame's bytes before a body of `body_len` bytes.
fn encode_header(body_len: usize, out: &mut Vec<u8>) {
    let (bytes, len) = header(body_len);
    out.extend_from_slice(&bytes[..len]);
}

/// The canonical header for a body of `body_len` bytes, built on the stack: the fixmap with
/// `head` `{}` and the `body` key, then the bin marker and length.
fn header(body_len: usize) -> ([u8; 17], usize) {
    const FIXED: &[u8; 12] = b"\x82\xa4head\x80\xa4body";
    let mut bytes = [0u8; 17];
    bytes[..12].copy_from_slice(FIXED);
    let len = if body_len <= 0xff {
        bytes[12..14].copy_from_slice(&[0xc4, body_len as u8]);
        14
    } else if body_len <= 0xffff {
        bytes[12] = 0xc5;
        bytes[13..15].copy_from_slice(&(body_len as u16).to_be_bytes());
        15
    } else {
        bytes[12] = 0xc6;
        bytes[13..17].copy_from_slice(&(body_len as u32).to_be_bytes());
        17
    };
    (bytes, len)
}
