//! How halite prints: `state.event`'s lines and Salt's outputters, byte for byte as Salt 3007.8.
//!
//! - JSON is Python's (`crate::py::json`), as Salt prints it.
//! - [`state_event`]: `tag\tjson` lines of `state.event`, and halite's `{"tag", "data"}` lines.
//! - [`outputter`]: `--out=nested|json|yaml|txt|raw|quiet` for a command's return value.
//!
//! All of them see event data as Salt does after decoding msgpack: valid UTF-8 bytes as text,
//! ext 78 as a datetime printed `YYYY-MM-DDTHH:MM:SS[.ffffff]`, ext 79 as a Salt constant, any
//! other ext as its payload bytes. Where Salt would crash on a value (undecodable bytes, keys it
//! cannot sort), each renderer documents what it prints instead.

pub mod outputter;
pub mod state_event;
#[cfg(test)]
pub(crate) mod testutil;

/// `text` cut to its first `max_chars` characters, saying how much was left out: for log
/// lines and reports that quote values from elsewhere, which may be megabytes long.
///
/// ```
/// # use halite::output::clip;
/// assert_eq!(clip("short", 10), "short");
/// assert_eq!(clip("abcdefghij", 4), "abcd… (6 more bytes)");
/// ```
pub fn clip(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => text.into(),
        Some((end, _)) => format!("{}… ({} more bytes)", &text[..end], text.len() - end).into(),
    }
}
