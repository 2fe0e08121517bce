//! Frames: the `{"head": {}, "body": <bin>}` envelope, bare or length-prefixed.

use std::ops::Range;

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

/// Where the next frame of a buffer lies, or how much more is needed to tell.
enum Next {
    /// A complete object after `prefix` framing bytes; `canonical` is its body when the object
    /// is a canonical bare frame, found without walking it.
    Object {
        prefix: usize,
        len: usize,
        canonical: Option<std::ops::Range<usize>>,
    },
    /// Not complete yet; at most this many more bytes are worth reserving now.
    NeedMore(usize),
}

impl FrameCodec {
    /// Finds the next complete frame at the start of `buf` without consuming it.
    fn next(&mut self, buf: &[u8]) -> Result<Next, FrameError> {
        let Some(&first) = buf.first() else {
            return Ok(Next::NeedMore(0));
        };
        match *self.framing.get_or_insert_with(|| Framing::detect(first)) {
            Framing::LengthPrefixed => {
                if buf.len() < PREFIX_LEN {
                    return Ok(Next::NeedMore(0));
                }
                let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if size > self.max_frame {
                    return Err(FrameError::TooLarge {
                        size,
                        limit: self.max_frame,
                    });
                }
                if buf.len() < PREFIX_LEN + size {
                    return Ok(Next::NeedMore(room_for(PREFIX_LEN + size, buf.len())));
                }
                match msgpack::object_len(&buf[PREFIX_LEN..PREFIX_LEN + size]) {
                    Ok(actual) if actual == size => Ok(Next::Object {
                        prefix: PREFIX_LEN,
                        len: size,
                        canonical: None,
                    }),
                    Ok(actual) => Err(FrameError::LengthMismatch {
                        prefix: size,
                        actual,
                    }),
                    Err(Skip::Incomplete) => Err(FrameError::LengthMismatch {
                        prefix: size,
                        actual: usize::MAX,
                    }),
                    Err(Skip::Invalid) => Err(FrameError::InvalidMsgpack),
                }
            }
            Framing::Bare if let Some(body) = canonical_header(buf) => {
                // What every Salt and halite sender writes: its length is in its header.
                if body.end > self.max_frame {
                    return Err(FrameError::TooLarge {
                        size: body.end,
                        limit: self.max_frame,
                    });
                }
                if buf.len() < body.end {
                    return Ok(Next::NeedMore(room_for(body.end, buf.len())));
                }
                Ok(Next::Object {
                    prefix: 0,
                    len: body.end,
                    canonical: Some(body),
                })
            }
            Framing::Bare => match msgpack::object_len(buf) {
                Ok(size) if size > self.max_frame => Err(FrameError::TooLarge {
                    size,
                    limit: self.max_frame,
                }),
                Ok(len) => Ok(Next::Object {
                    prefix: 0,
                    len,
                    canonical: None,
                }),
                Err(Skip::Incomplete) if buf.len() > self.max_frame => Err(FrameError::TooLarge {
                    size: buf.len(),
                    limit: self.max_frame,
                }),
                Err(Skip::Incomplete) => Ok(Next::NeedMore(0)),
                Err(Skip::Invalid) => Err(FrameError::InvalidMsgpack),
            },
        }
    }

    /// Takes every complete frame out of `buf` for relaying: frames whose body `keep` accepts
    /// (it is also shown the frames that are not events, and says nothing for them) go to `out`
    /// as canonical bare frames. Consecutive frames that already are canonical are forwarded
    /// as one [`Chunk`] of the received bytes, so a busy sender costs one allocation per read,
    /// not one per event. Frames before an error are still delivered; the error is returned
    /// after them.
    pub fn decode_chunks(
        &mut self,
        buf: &mut BytesMut,
        mut keep: impl FnMut(Result<&[u8], IgnoredFrame>) -> bool,
        out: &mut Vec<Chunk>,
    ) -> Result<(), FrameError> {
        enum Part {
            Run(std::ops::Range<usize>, u32),
            Reframed(Bytes),
        }
        let mut parts: Vec<Part> = Vec::new();
        let mut run: Option<(usize, u32)> = None;
        let close = |run: &mut Option<(usize, u32)>, end: usize, parts: &mut Vec<Part>| {
            if let Some((start, events)) = run.take() {
                parts.push(Part::Run(start..end, events));
            }
        };
        let mut pos = 0;
        let outcome = loop {
            let (prefix, len, canonical) = match self.next(&buf[pos..]) {
                Ok(Next::Object {
                    prefix,
                    len,
                    canonical,
                }) => (prefix, len, canonical),
                Ok(Next::NeedMore(more)) => {
                    if more > 0 {
                        buf.reserve(more);
                    }
                    break Ok(());
                }
                Err(err) => break Err(err),
            };
            let start = pos + prefix;
            let object = &buf[start..start + len];
            let body = canonical.clone().ok_or(()).or_else(|()| frame_body(object));
            let kept = keep(body.clone().map(|range| &object[range]));
            match body {
                Ok(body) if kept => {
                    if canonical.is_some() || (prefix == 0 && is_canonical(object, &body)) {
                        run.get_or_insert((start, 0)).1 += 1;
                    } else {
                        close(&mut run, pos, &mut parts);
                        let mut frame = Vec::new();
                        encode_frame(&object[body], Framing::Bare, &mut frame);
                        parts.push(Part::Reframed(frame.into()));
                    }
                }
                _ => close(&mut run, pos, &mut parts),
            }
            pos = start + len;
        };
        close(&mut run, pos, &mut parts);
        // Runs are copied out, so that no queued event keeps a read buffer alive: the buffer is
        // read into again, and a subscriber's budget counts all the memory its events hold.
        let taken = &buf[..pos];
        out.extend(parts.into_iter().map(|part| match part {
            Part::Run(range, events) => Chunk {
                bytes: Bytes::copy_from_slice(&taken[range]),
                events,
            },
            Part::Reframed(bytes) => Chunk { bytes, events: 1 },
        }));
        buf.advance(pos);
        outcome
    }
}

impl Decoder for FrameCodec {
    type Item = Result<Frame, IgnoredFrame>;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        let (prefix, len, canonical) = match self.next(buf)? {
            Next::Object {
                prefix,
                len,
                canonical,
            } => (prefix, len, canonical),
            Next::NeedMore(more) => {
                buf.reserve(more);
                return Ok(None);
            }
        };
        buf.advance(prefix);
        let object = buf.split_to(len).freeze();
        let body = canonical.ok_or(()).or_else(|()| frame_body(&object));
        Ok(Some(body.map(|body| Frame { object, body })))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(FrameError::Truncated(buf.len())),
        }
    }
}

/// How much more room a buffer holding `held` bytes of a frame `total` bytes long should make.
/// It grows with the data, not with the announcement, so that a header alone cannot make the
/// daemon allocate the whole frame limit; doubling what is held, a large frame is read in few
/// calls and moved to a bigger buffer only a few times.
fn room_for(total: usize, held: usize) -> usize {
    (total - held).min(held.max(64 * 1024))
}

/// Canonical bare frames back to back, as a relay forwards them, and how many events they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The frames' bytes.
    pub bytes: Bytes,
    /// How many frames.
    pub events: u32,
}

impl Chunk {
    /// A chunk of one canonical frame.
    pub fn one(frame: Bytes) -> Self {
        Self {
            bytes: frame,
            events: 1,
        }
    }

    /// Where each frame and its body lie in the chunk.
    fn spans(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let rest = self.bytes.get(at..).filter(|rest| !rest.is_empty())?;
            let body = canonical_body_range(rest);
            let spans = (at..at + body.end, at + body.start..at + body.end);
            at += body.end;
            Some(spans)
        })
    }

    /// Each frame's tag (`None` when its body has none) and where the frame lies in the chunk,
    /// without touching the chunk's reference count.
    pub fn tagged_frames(&self) -> impl Iterator<Item = (Option<&str>, Range<usize>)> {
        self.spans()
            .map(|(frame, body)| (super::body::body_tag(&self.bytes[body]).ok(), frame))
    }

    /// Where the frames with exactly this tag lie, told from the first bytes of each body without
    /// reading the other tags.
    pub fn frames_with_tag<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = Range<usize>> + 'a {
        self.spans()
            .filter(|(_, body)| {
                self.bytes[body.clone()]
                    .strip_prefix(tag.as_bytes())
                    .is_some_and(|data| data.starts_with(b"\n\n"))
            })
            .map(|(frame, _)| frame)
    }

    /// The chunk's frames, one by one, sharing its bytes.
    pub fn frames(&self) -> impl Iterator<Item = Bytes> + '_ {
        self.spans().map(|(frame, _)| self.bytes.slice(frame))
    }
}

/// One frame read off a connection: the msgpack object, and where its body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    object: Bytes,
    body: std::ops::Range<usize>,
}

impl Frame {
    /// The event body, sharing the frame's bytes.
    pub fn body(&self) -> Bytes {
        self.object.slice(self.body.clone())
    }
}

/// Where the body of the canonical bare frame at the start of `buf` lies, from its header alone,
/// when `buf` starts with one (the frame itself may not have arrived in full yet).
fn canonical_header(buf: &[u8]) -> Option<std::ops::Range<usize>> {
    if buf.get(..FIXED.len())? != FIXED {
        return None;
    }
    let (header_len, body_len) = bin_after_fixed(buf)?;
    // Only the shortest length encoding is canonical.
    (header(body_len).1 == header_len).then_some(header_len..header_len + body_len)
}

/// The header's length and the body's, read from the bin marker after the fixed part.
fn bin_after_fixed(buf: &[u8]) -> Option<(usize, usize)> {
    const AT: usize = FIXED.len();
    let width = match *buf.get(AT)? {
        0xc4 => 1,
        0xc5 => 2,
        0xc6 => 4,
        _ => return None,
    };
    let bytes = buf.get(AT + 1..AT + 1 + width)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((AT + 1 + width, len))
}

/// Whether a frame object is byte for byte what [`encode_frame`] writes for its body.
fn is_canonical(object: &[u8], body: &std::ops::Range<usize>) -> bool {
    let (expected, len) = header(body.len());
    body.start == len && object[..len] == expected[..len] && body.end == object.len()
}

/// Where the body of a canonical bare frame (the first one in `frame`) lies.
fn canonical_body_range(frame: &[u8]) -> std::ops::Range<usize> {
    match bin_after_fixed(frame) {
        Some((start, len)) => start.min(frame.len())..(start + len).min(frame.len()),
        None => frame.len()..frame.len(),
    }
}

/// The body of a canonical bare frame (as [`encode_frame`] writes them bare), sharing its
/// bytes.
pub fn canonical_body(frame: &Bytes) -> Bytes {
    frame.slice(canonical_body_range(frame))
}

/// Finds the `body` value in one complete frame object.
fn frame_body(object: &[u8]) -> Result<std::ops::Range<usize>, IgnoredFrame> {
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

/// The start of every canonical frame: the fixmap with `head` `{}` and the `body` key.
const FIXED: &[u8; 12] = b"\x82\xa4head\x80\xa4body";

/// The canonical header for a body of `body_len` bytes, built on the stack: the fixmap with
/// `head` `{}` and the `body` key, then the bin marker and length.
fn header(body_len: usize) -> ([u8; 17], usize) {
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
