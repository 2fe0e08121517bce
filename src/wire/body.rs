//! Event bodies: `UTF-8(tag) ‖ "\n\n" ‖ msgpack(data)`.

use crate::event::{Event, Value};

use super::msgpack::{self, MAX_DEPTH};

/// Separates the tag from the packed data; Salt splits at its first occurrence.
const TAGEND: &[u8] = b"\n\n";

/// Why a body is not an event Salt could decode.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// No `\n\n` separates a tag from data.
    #[error("body has no \"\\n\\n\" between tag and data")]
    NoTagEnd,
    /// The tag bytes are not UTF-8.
    #[error("tag is not valid UTF-8")]
    TagNotUtf8,
    /// The data is not one complete msgpack object.
    #[error("event data is not valid msgpack: {0}")]
    Data(String),
}

fn split(body: &[u8]) -> Result<(&str, &[u8]), BodyError> {
    // Tags are short: a scan for the first newline beats setting up a substring search.
    let at = memchr::memchr_iter(b'\n', body)
        .find(|&at| body.get(at + 1) == Some(&b'\n'))
        .ok_or(BodyError::NoTagEnd)?;
    let tag = std::str::from_utf8(&body[..at]).map_err(|_| BodyError::TagNotUtf8)?;
    Ok((tag, &body[at + TAGEND.len()..]))
}

/// Checks that a body decodes as Salt's master requires before it re-publishes, without
/// building the data.
pub fn validate_body(body: &[u8]) -> Result<(), BodyError> {
    let (_, data) = split(body)?;
    match msgpack::object_len(data) {
        Ok(len) if len == data.len() => Ok(()),
        Ok(len) => Err(BodyError::Data(format!(
            "{} bytes after the data",
            data.len() - len
        ))),
        Err(msgpack::Skip::Incomplete) => Err(BodyError::Data("data is truncated".into())),
        Err(msgpack::Skip::Invalid) => Err(BodyError::Data("invalid msgpack".into())),
    }
}

/// The tag of a body, without decoding its data.
pub fn body_tag(body: &[u8]) -> Result<&str, BodyError> {
    split(body).map(|(tag, _)| tag)
}

/// Decodes a body into an event.
pub fn decode_body(body: &[u8]) -> Result<Event, BodyError> {
    let (tag, mut data) = split(body)?;
    let value = rmpv::decode::read_value_with_max_depth(&mut data, MAX_DEPTH)
        .map_err(|err| BodyError::Data(err.to_string()))?;
    if !data.is_empty() {
        return Err(BodyError::Data(format!(
            "{} bytes after the data",
            data.len()
        )));
    }
    Ok(Event {
        tag: tag.to_owned(),
        data: value,
    })
}

/// Appends the body of `tag` and `data` to `out`, packed as Salt packs it (str for text, bin for
/// bytes, the most compact integer form, float64 for floats).
pub fn encode_body(tag: &str, data: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(TAGEND);
    rmpv::encode::write_value(out, data).expect("writing to a Vec cannot fail");
}
