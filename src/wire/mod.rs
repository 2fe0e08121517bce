//! Salt's IPC wire format: how events become bytes on the bus sockets and back.
//!
//! A bus connection carries a stream of frames. Each frame is the msgpack map
//! `{"head": {}, "body": <bin>}`, either bare (Salt 3006.25 and older, 3007.0 to 3007.14, and
//! every publish socket of 3007 and 3008) or preceded by a 4-byte big-endian length (3006.26+
//! publish and pull sockets, 3007.15+ pull sockets). The body is
//! `UTF-8(tag) ‖ "\n\n" ‖ msgpack(data)`.
//!
//! [`FrameCodec`] reads either framing, detected from the first byte of a connection, and writes
//! the one it is told to; [`body`] turns bodies into [`Event`](crate::event::Event)s and back.
//! Nothing outside this module knows the byte layout.

/// The largest frame a bus carries by default: a pull connection that sends a larger one is
/// closed.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

pub mod body;
mod frame;
mod msgpack;

pub use body::{BodyError, body_tag, decode_body, encode_body, validate_body};
pub use frame::{
    Chunk, Frame, FrameCodec, FrameError, Framing, IgnoredFrame, canonical_body, encode_frame,
};

#[cfg(test)]
mod tests;
