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
    type Item = Result<Bytes, IgnoredFrame>;
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
                    buf.reserve(PREFIX_LEN + size - buf.len());
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
        Ok(Some(frame_body(object)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(FrameError::Truncated(buf.len())),
        }
    }
}

/// Takes the `body` value out of one complete frame object, sharing its bytes.
fn frame_body(object: Bytes) -> Result<Bytes, IgnoredFrame> {
    let (entries, mut pos) = msgpack::map_header(&object).ok_or(IgnoredFrame::NotAMap)?;
    for _ in 0..entries {
        let key = msgpack::raw_header(&object[pos..])
            .map(|(offset, len)| &object[pos + offset..pos + offset + len]);
        pos += msgpack::object_len(&object[pos..]).map_err(|_| IgnoredFrame::NotAMap)?;
        if key == Some(b"body".as_slice()) {
            let (offset, len) = msgpack::raw_header(&object[pos..]).ok_or(IgnoredFrame::NoBody)?;
            return Ok(object.slice(pos + offset..pos + offset + len));
        }
        pos += msgpack::object_len(&object[pos..]).map_err(|_| IgnoredFrame::NotAMap)?;
    }
    Err(IgnoredFrame::NoBody)
}

/// Appends one frame carrying `body` to `out`, exactly as Salt writes it: fixmap `head` `{}`
/// first, then `body` as msgpack bin.
pub fn encode_frame(body: &[u8], framing: Framing, out: &mut Vec<u8>) {
    const HEAD: &[u8] = b"\x82\xa4head\x80\xa4body";
    let len = body.len();
    let mut header = [0u8; 5];
    let header: &[u8] = if len <= 0xff {
        header[..2].copy_from_slice(&[0xc4, len as u8]);
        &header[..2]
    } else if len <= 0xffff {
        header[0] = 0xc5;
        header[1..3].copy_from_slice(&(len as u16).to_be_bytes());
        &header[..3]
    } else {
        header[0] = 0xc6;
        header[1..5].copy_from_slice(&(len as u32).to_be_bytes());
        &header
    };
    let object_len = HEAD.len() + header.len() + body.len();
    out.reserve(PREFIX_LEN + object_len);
    if framing == Framing::LengthPrefixed {
        out.extend_from_slice(&(object_len as u32).to_be_bytes());
    }
    out.extend_from_slice(HEAD);
    out.extend_from_slice(header);
    out.extend_from_slice(body);
}
