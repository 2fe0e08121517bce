//! Python's `json.dumps(value, ensure_ascii=False)`, byte for byte.
//!
//! Salt prints event data with Python's `json` module, which differs from every Rust JSON
//! library in small visible ways; this module reproduces it exactly:
//!
//! * strings: only `"`, `\` and U+0000–U+001F are escaped (`\n \r \t \b \f`, else `\u00XX`
//!   with lower-case hex); DEL, U+2028/U+2029 and all other non-ASCII are written as UTF-8;
//! * integers in decimal; floats as Python's `repr` (`2.0`, `0.1`, `1e-05`, `1e+16`,
//!   `-0.0`), `NaN`, `Infinity` and `-Infinity` bare (not valid JSON, as Python writes them);
//!   float32 values as Python sees them after widening to float64;
//! * non-string keys converted like Python's: int → decimal, float → repr, bool →
//!   `"true"`/`"false"`, None → `"null"`;
//! * separators `", "` / `": "` on one line, or with [`Format::PRETTY`] (`indent=4,
//!   sort_keys=True`) `","` at line ends and 4-space indents; empty containers `{}` / `[]`.
//!
//! The input is Salt's decoded view of the value (see the `pyvalue` notes in [`crate::output`]):
//! bytes become text, ext 78 datetimes their `isoformat()`.
//!
//! Where Salt's `state.event` crashes, this module prints something instead:
//!
//! * bytes (or a msgpack str) that are not valid UTF-8 make Salt's decode pass raise and the
//!   watcher die; here they are decoded lossily, each bad sequence becoming U+FFFD;
//! * with `sort_keys`, a map whose keys Python cannot order (str keys mixed with int keys, a
//!   `None` key among others…) makes `json.dumps` raise; here such a map is sorted by the keys'
//!   rendered JSON strings, stably;
//! * keys Python's `json` refuses (arrays, maps, Salt constants) are written as a string: a
//!   constant as its `repr`, a container as its compact JSON;
//! * Salt constants (ext 79) are not JSON-serialisable in Python; here they are the string of
//!   their `repr`, e.g. `"<Constant.NOT_SET>"` (what Salt's JSON outputter prints via
//!   `default=repr`).
//!
//! Duplicate keys in one msgpack map are written as they arrive (a Python dict would keep one).

use std::borrow::Cow;
use std::io;

use colored_json::{Color, ColoredFormatter, Styler};
use serde_json::ser::Formatter;

use crate::py::value::{self as pyvalue, Py};
use rmpv::Value;

/// How `json.dumps` is called: `indent` and `sort_keys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// `indent=`: `None` for one line, `Some(n)` for one item per line indented by `n` spaces
    /// per level.
    pub indent: Option<usize>,
    /// `sort_keys=`: sort object keys (recursively) instead of keeping wire order.
    pub sort_keys: bool,
}

impl Format {
    /// `json.dumps(v)`: one line, wire order; `state.event` without `pretty`.
    pub const COMPACT: Format = Format {
        indent: None,
        sort_keys: false,
    };
    /// `json.dumps(v, indent=4, sort_keys=True)`; `state.event pretty=True`.
    pub const PRETTY: Format = Format {
        indent: Some(4),
        sort_keys: true,
    };

    /// [`Format::PRETTY`] when `pretty`, else [`Format::COMPACT`].
    pub fn pretty(pretty: bool) -> Format {
        if pretty {
            Format::PRETTY
        } else {
            Format::COMPACT
        }
    }
}

/// What to write for bytes that are not valid UTF-8 (Salt's `state.event` would crash).
#[derive(Clone, Copy)]
pub(crate) enum Undecodable {
    /// Decode lossily (U+FFFD), as `state.event` lines do here.
    Lossy,
    /// Python's `repr` (`"b'\\xff'"`), as `json.dumps(..., default=repr)` does in Salt's JSON
    /// outputter.
    Repr,
}

/// Appends `json.dumps(value, ensure_ascii=False, ...)` in `format` to `out`.
pub fn write(out: &mut Vec<u8>, value: &Value, format: Format) {
    write_with(out, value, format, Undecodable::Lossy, false);
}

/// `json.dumps(value, ensure_ascii=False, ...)` in `format` as a `String`.
pub fn to_string(value: &Value, format: Format) -> String {
    let mut out = Vec::new();
    write(&mut out, value, format);
    into_string(out)
}

/// Every byte written here comes from `&str`s or ASCII, so the buffer is valid UTF-8.
pub(crate) fn into_string(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub(crate) fn write_with(
    out: &mut Vec<u8>,
    value: &Value,
    format: Format,
    undecodable: Undecodable,
    color: bool,
) {
    if color {
        Emitter::new(
            ColoredFormatter::with_styler(PyFormatter::new(format.indent), styler()),
            format,
            undecodable,
        )
        .value(out, value);
    } else {
        Emitter::new(PyFormatter::new(format.indent), format, undecodable).value(out, value);
    }
}

/// `{"tag": <tag>, "data": <data>}` on one line with Python's separators.
pub(crate) fn write_envelope(
    out: &mut Vec<u8>,
    tag: &str,
    data: &Value,
    id: Option<u64>,
    color: bool,
) {
    if color {
        Emitter::new(
            ColoredFormatter::with_styler(PyFormatter::new(None), styler()),
            Format::COMPACT,
            Undecodable::Lossy,
        )
        .envelope(out, tag, data, id);
    } else {
        Emitter::new(PyFormatter::new(None), Format::COMPACT, Undecodable::Lossy)
            .envelope(out, tag, data, id);
    }
}

/// Colours for terminals: `colored_json`'s defaults (bold blue keys, green strings, grey
/// null, bold brackets) plus cyan numbers and yellow booleans, so every scalar kind stands out.
fn styler() -> Styler {
    Styler {
        integer_value: Color::Cyan.foreground(),
        float_value: Color::Cyan.foreground(),
        bool_value: Color::Yellow.foreground(),
        ..Styler::default()
    }
}

/// serde_json's formatter protocol with Python's spacing, so the same emitter drives the plain
/// output and, wrapped in `colored_json::ColoredFormatter`, the coloured one.
struct PyFormatter {
    indent: Option<usize>,
    level: usize,
    has_value: bool,
}

impl PyFormatter {
    fn new(indent: Option<usize>) -> Self {
        PyFormatter {
            indent,
            level: 0,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(width) = self.indent {
            w.write_all(b"\n")?;
            for _ in 0..self.level * width {
                w.write_all(b" ")?;
            }
        }
        Ok(())
    }

    fn separator<W: ?Sized + io::Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            // Python's item separator is "," with an indent and ", " without.
            w.write_all(if self.indent.is_some() { b"," } else { b", " })?;
        }
        self.newline(w)
    }

    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }
}

impl Formatter for PyFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        if value.is_nan() {
            w.write_all(b"NaN")
        } else if value.is_infinite() {
            w.write_all(if value > 0.0 {
                b"Infinity"
            } else {
                b"-Infinity"
            })
        } else {
            let mut s = String::with_capacity(24);
            pyvalue::push_finite_float_repr(&mut s, value);
            w.write_all(s.as_bytes())
        }
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.separator(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.separator(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Walks a [`Value`] and drives a [`Formatter`].
struct Emitter<F> {
    f: F,
    sort_keys: bool,
    undecodable: Undecodable,
}

/// Writing into a `Vec<u8>` cannot fail, and neither can the formatters.
fn infallible(result: io::Result<()>) {
    debug_assert!(result.is_ok(), "formatting into a Vec<u8> failed");
}

impl<F: Formatter> Emitter<F> {
    fn new(f: F, format: Format, undecodable: Undecodable) -> Self {
        Emitter {
            f,
            sort_keys: format.sort_keys,
            undecodable,
        }
    }

    fn envelope(&mut self, out: &mut Vec<u8>, tag: &str, data: &Value, id: Option<u64>) {
        infallible(self.try_envelope(out, tag, data, id));
    }

    fn try_envelope(
        &mut self,
        out: &mut Vec<u8>,
        tag: &str,
        data: &Value,
        id: Option<u64>,
    ) -> io::Result<()> {
        self.f.begin_object(out)?;
        self.key(out, "tag", true)?;
        self.string(out, tag)?;
        self.f.end_object_value(out)?;
        self.key(out, "data", false)?;
        self.try_value(out, data)?;
        self.f.end_object_value(out)?;
        if let Some(id) = id {
            self.key(out, "id", false)?;
            self.f.write_u64(out, id)?;
            self.f.end_object_value(out)?;
        }
        self.f.end_object(out)
    }

    fn value(&mut self, out: &mut Vec<u8>, value: &Value) {
        infallible(self.try_value(out, value));
    }

    fn try_value(&mut self, out: &mut Vec<u8>, value: &Value) -> io::Result<()> {
        match pyvalue::view(value) {
            Py::None => self.f.write_null(out),
            Py::Bool(b) => self.f.write_bool(out, b),
            Py::Int(i) => match (u64::try_from(i), i64::try_from(i)) {
                (Ok(u), _) => self.f.write_u64(out, u),
                (_, Ok(s)) => self.f.write_i64(out, s),
                _ => self.f.write_number_str(out, &i.to_string()),
            },
            Py::Float(x) => self.f.write_f64(out, x),
            Py::Str(s) => self.string(out, &s),
            Py::Bytes(b) => {
                let text = self.undecodable_text(&b);
                self.string(out, &text)
            }
            Py::Constant(c) => self.string(out, &c.repr()),
            Py::List(items) => {
                self.f.begin_array(out)?;
                for (i, item) in items.iter().enumerate() {
                    self.f.begin_array_value(out, i == 0)?;
                    self.try_value(out, item)?;
                    self.f.end_array_value(out)?;
                }
                self.f.end_array(out)
            }
            Py::Dict(entries) => self.dict(out, entries),
        }
    }

    fn undecodable_text<'b>(&self, bytes: &'b [u8]) -> Cow<'b, str> {
        match self.undecodable {
            Undecodable::Lossy => String::from_utf8_lossy(bytes),
            Undecodable::Repr => {
                let mut s = String::new();
                pyvalue::push_bytes_repr(&mut s, bytes);
                Cow::Owned(s)
            }
        }
    }

    fn dict(&mut self, out: &mut Vec<u8>, entries: &[(Value, Value)]) -> io::Result<()> {
        self.f.begin_object(out)?;
        if self.sort_keys && entries.len() > 1 {
            let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
            if pyvalue::python_sort(&mut sorted) {
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    let key = self.key_text(k);
                    self.entry(out, &key, v, i == 0)?;
                }
            } else {
                let mut rendered: Vec<(Cow<'_, str>, &Value)> = sorted
                    .into_iter()
                    .map(|(k, v)| (self.key_text(k), v))
                    .collect();
                rendered.sort_by(|a, b| a.0.cmp(&b.0));
                for (i, (key, v)) in rendered.into_iter().enumerate() {
                    self.entry(out, &key, v, i == 0)?;
                }
            }
        } else {
            for (i, (k, v)) in entries.iter().enumerate() {
                let key = self.key_text(k);
                self.entry(out, &key, v, i == 0)?;
            }
        }
        self.f.end_object(out)
    }

    fn entry(
        &mut self,
        out: &mut Vec<u8>,
        key: &str,
        value: &Value,
        first: bool,
    ) -> io::Result<()> {
        self.key(out, key, first)?;
        self.try_value(out, value)?;
        self.f.end_object_value(out)
    }

    fn key(&mut self, out: &mut Vec<u8>, key: &str, first: bool) -> io::Result<()> {
        self.f.begin_object_key(out, first)?;
        self.string(out, key)?;
        self.f.end_object_key(out)?;
        self.f.begin_object_value(out)
    }

    /// The string Python's `json` writes for a dict key.
    fn key_text<'v>(&self, key: &'v Value) -> Cow<'v, str> {
        match pyvalue::view(key) {
            Py::Str(s) => s,
            Py::Bytes(b) => Cow::Owned(self.undecodable_text(&b).into_owned()),
            Py::None => Cow::Borrowed("null"),
            Py::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Py::Int(i) => Cow::Owned(i.to_string()),
            Py::Float(x) => {
                let mut buf = Vec::with_capacity(24);
                infallible(PyFormatter::new(None).write_f64(&mut buf, x));
                Cow::Owned(into_string(buf))
            }
            Py::Constant(c) => Cow::Owned(c.repr()),
            Py::List(_) | Py::Dict(_) => {
                let mut buf = Vec::new();
                write_with(&mut buf, key, Format::COMPACT, self.undecodable, false);
                Cow::Owned(into_string(buf))
            }
        }
    }

    /// A JSON string with Python's `ensure_ascii=False` escaping. Escapes go through
    /// `write_string_fragment` too, so a colouring formatter colours them with the string.
    fn string(&mut self, out: &mut Vec<u8>, s: &str) -> io::Result<()> {
        self.f.begin_string(out)?;
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let short: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            if start < i {
                self.f.write_string_fragment(out, &s[start..i])?;
            }
            if short.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let esc = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ];
                self.f
                    .write_string_fragment(out, std::str::from_utf8(&esc).unwrap_or("\\ufffd"))?;
            } else {
                self.f.write_string_fragment(out, short)?;
            }
            start = i + 1;
        }
        if start < bytes.len() {
            self.f.write_string_fragment(out, &s[start..])?;
        }
        self.f.end_string(out)
    }
}

#[cfg(test)]
mod tests;
