//! The Python object a msgpack [`Value`] becomes in Salt, and Python's `repr`/`str` of it.
//!
//! Salt's readers decode event data with `msgpack` (`raw=False`: str → `str`, bin → `bytes`,
//! ext 78 → `datetime`, ext 79 → a Salt constant, any other ext → its payload as `bytes`), and
//! `state.event` then runs `salt.utils.data.decode`, which turns decodable `bytes` into `str` and
//! `datetime` into its `isoformat()` string. Every renderer in [`crate::output`] starts from that
//! decoded view, computed here once per value by [`view`]:
//!
//! * str and bin that are valid UTF-8 → [`Py::Str`];
//! * str or bin that are not valid UTF-8 → [`Py::Bytes`] (Salt re-decodes such a payload with
//!   `raw=True` and then fails on it; each renderer documents what it prints instead);
//! * ext 78 → `datetime.isoformat()` as [`Py::Str`], parsed exactly as Python's
//!   `strptime(payload, "%Y%m%dT%H:%M:%S.%f")` would; a payload `strptime` rejects (Salt drops the
//!   whole event) is treated as the ext's raw bytes instead;
//! * ext 79 → [`Py::Constant`] when its payload is msgpack `[name, value]`, else raw bytes;
//! * any other ext → its payload bytes, decoded like a bin (that is what Salt's `ext_hook` returns).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use rmpv::Value;

/// One value as the Python object Salt holds after decoding (see the module docs).
pub(crate) enum Py<'a> {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Cow<'a, str>),
    /// Bytes that are not valid UTF-8.
    Bytes(Cow<'a, [u8]>),
    List(&'a [Value]),
    Dict(&'a [(Value, Value)]),
    /// `salt.defaults._Constant`, e.g. `NOT_SET`.
    Constant(Box<Constant>),
}

/// A Salt constant carried as msgpack ext 79.
pub(crate) struct Constant {
    name: Value,
    value: Value,
}

impl Constant {
    /// Python's `repr` of `_Constant`: `<Constant.NAME>`, or `<Constant.NAME value=V>` when the
    /// value is truthy (`V` is `str(value)`).
    pub(crate) fn repr(&self) -> String {
        let mut s = String::from("<Constant.");
        s.push_str(&py_str(&self.name));
        if truthy(&self.value) {
            s.push_str(" value=");
            s.push_str(&py_str(&self.value));
        }
        s.push('>');
        s
    }
}

/// Salt's decoded view of `value`.
pub(crate) fn view(value: &Value) -> Py<'_> {
    match value {
        Value::Nil => Py::None,
        Value::Boolean(b) => Py::Bool(*b),
        Value::Integer(i) => Py::Int(int_value(i)),
        Value::F32(f) => Py::Float(f64::from(*f)),
        Value::F64(f) => Py::Float(*f),
        Value::String(s) => match s.as_str() {
            Some(text) => Py::Str(Cow::Borrowed(text)),
            None => Py::Bytes(Cow::Borrowed(s.as_bytes())),
        },
        Value::Binary(b) => bytes_view(b),
        Value::Array(items) => Py::List(items),
        Value::Map(entries) => Py::Dict(entries),
        Value::Ext(78, payload) => match parse_salt_datetime(payload) {
            Some(iso) => Py::Str(Cow::Owned(iso)),
            None => bytes_view(payload),
        },
        Value::Ext(79, payload) => match decode_constant(payload) {
            Some(constant) => Py::Constant(Box::new(constant)),
            None => bytes_view(payload),
        },
        Value::Ext(_, payload) => bytes_view(payload),
    }
}

fn bytes_view(bytes: &[u8]) -> Py<'_> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Py::Str(Cow::Borrowed(text)),
        Err(_) => Py::Bytes(Cow::Borrowed(bytes)),
    }
}

/// msgpack integers are at most 64 bits either way, so `i128` holds every one exactly.
fn int_value(i: &rmpv::Integer) -> i128 {
    match (i.as_u64(), i.as_i64()) {
        (Some(u), _) => i128::from(u),
        (None, Some(s)) => i128::from(s),
        (None, None) => 0,
    }
}

fn decode_constant(payload: &[u8]) -> Option<Constant> {
    let mut rd = payload;
    let decoded = rmpv::decode::read_value(&mut rd).ok()?;
    if !rd.is_empty() {
        return None;
    }
    match decoded {
        Value::Array(mut pair) if pair.len() == 2 => {
            let value = pair.pop()?;
            let name = pair.pop()?;
            Some(Constant { name, value })
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// ext 78: Python's strptime(payload, "%Y%m%dT%H:%M:%S.%f") then isoformat()

/// One field of strptime's generated regex: alternatives tried in order, each a sequence of
/// byte ranges (`\d` = `0-9`).
type Field = &'static [&'static [(u8, u8)]];

const D: (u8, u8) = (b'0', b'9');
const YEAR: Field = &[&[D, D, D, D]];
const MONTH: Field = &[
    &[(b'1', b'1'), (b'0', b'2')],
    &[(b'0', b'0'), (b'1', b'9')],
    &[(b'1', b'9')],
];
const DAY: Field = &[
    &[(b'3', b'3'), (b'0', b'1')],
    &[(b'1', b'2'), D],
    &[(b'0', b'0'), (b'1', b'9')],
    &[(b'1', b'9')],
    &[(b' ', b' '), (b'1', b'9')],
];
const HOUR: Field = &[&[(b'2', b'2'), (b'0', b'3')], &[(b'0', b'1'), D], &[D]];
const MINUTE: Field = &[&[(b'0', b'5'), D], &[D]];
const SECOND: Field = &[&[(b'6', b'6'), (b'0', b'1')], &[(b'0', b'5'), D], &[D]];
const FRACTION: Field = &[
    &[D, D, D, D, D, D],
    &[D, D, D, D, D],
    &[D, D, D, D],
    &[D, D, D],
    &[D, D],
    &[D],
];

/// Pattern pieces: a field or a literal (matched case-insensitively, like strptime's regex).
enum Piece {
    Field(Field),
    Lit(u8),
}

const PATTERN: &[Piece] = &[
    Piece::Field(YEAR),
    Piece::Field(MONTH),
    Piece::Field(DAY),
    Piece::Lit(b't'),
    Piece::Field(HOUR),
    Piece::Lit(b':'),
    Piece::Field(MINUTE),
    Piece::Lit(b':'),
    Piece::Field(SECOND),
    Piece::Lit(b'.'),
    Piece::Field(FRACTION),
];

/// Backtracking match in the regex engine's priority order; returns the end position and the
/// span of every field. Like `re.match`, the first match wins even when it does not reach the
/// end of the input (strptime then reports "unconverted data remains").
fn match_pieces(
    input: &[u8],
    pos: usize,
    pieces: &[Piece],
    spans: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    let Some((first, rest)) = pieces.split_first() else {
        return Some(pos);
    };
    match first {
        Piece::Lit(lit) => match input.get(pos) {
            Some(b) if b.eq_ignore_ascii_case(lit) => match_pieces(input, pos + 1, rest, spans),
            _ => None,
        },
        Piece::Field(alternatives) => {
            for alt in *alternatives {
                let end = pos + alt.len();
                let fits = input.get(pos..end).is_some_and(|s| {
                    s.iter()
                        .zip(alt.iter())
                        .all(|(b, (lo, hi))| (lo..=hi).contains(&b))
                });
                if fits {
                    spans.push((pos, end));
                    if let Some(done) = match_pieces(input, end, rest, spans) {
                        return Some(done);
                    }
                    spans.pop();
                }
            }
            None
        }
    }
}

/// The `isoformat()` of the datetime Salt decodes from an ext 78 payload, or `None` where
/// Python's `strptime` (or `datetime` validation) raises.
pub(crate) fn parse_salt_datetime(payload: &[u8]) -> Option<String> {
    let mut spans = Vec::with_capacity(7);
    let end = match_pieces(payload, 0, PATTERN, &mut spans)?;
    if end != payload.len() {
        return None;
    }
    let num = |i: usize| -> u32 {
        let (a, b) = spans[i];
        payload[a..b]
            .iter()
            .filter(|c| c.is_ascii_digit())
            .fold(0, |n, c| n * 10 + u32::from(c - b'0'))
    };
    let (year, month, day, hour, minute, second) = (num(0), num(1), num(2), num(3), num(4), num(5));
    let (fa, fb) = spans[6];
    let micros = num(6) * 10u32.pow(6 - (fb - fa) as u32);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if year == 0 || day > month_days || second > 59 {
        return None;
    }
    let mut iso = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if micros != 0 {
        let _ = write!(iso, ".{micros:06}");
    }
    Some(iso)
}

// ---------------------------------------------------------------------------------------------
// floats

/// Python's `repr(float)` for a finite value: the shortest digits that round-trip, in
/// exponent form when the decimal exponent is < -4 or >= 16 (`1e-05`, `1e+16`), otherwise
/// positional with at least one fractional digit (`2.0`).
pub(crate) fn push_finite_float_repr(out: &mut String, f: f64) {
    let (digits, exp) = shortest_digits(f.abs());
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
        return;
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

/// The shortest decimal digits that round-trip to `f` (finite, non-negative) and the decimal
/// exponent of the first digit, chosen as CPython's `dtoa` chooses them.
fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` yields the shortest round-trip digits; of two equally close candidates it
    // takes the upper one, while CPython's dtoa rounds half to even.
    let (digits, exp) = split_sci(&format!("{f:e}"));
    let n = digits.len();
    // A tie means `f` is exactly the midpoint: n + 1 significant digits, the last a 5. Below
    // 15 digits the midpoint is too far from `f` for both neighbours to round-trip.
    if n < 15 {
        return (digits, exp);
    }
    let (near, near_exp) = split_sci(&format!("{f:.n$e}"));
    if near.ends_with('5') {
        // 767 significant digits hold any double exactly.
        let (exact, exact_exp) = split_sci(&format!("{f:.780e}"));
        let exact = exact.trim_end_matches('0');
        if exact == near && exact_exp == near_exp && exact.len() == n + 1 {
            let lower = &exact[..n];
            return if lower.as_bytes()[n - 1] % 2 == 0 {
                (lower.to_owned(), exact_exp)
            } else {
                increment(lower, exact_exp)
            };
        }
    }
    (digits, exp)
}

/// The next decimal up in the last digit: ("129", 0) → ("13", 0), ("99", 0) → ("1", 1),
/// without trailing zeros (they are never part of shortest digits).
fn increment(digits: &str, exp: i32) -> (String, i32) {
    let mut d = digits.as_bytes().to_vec();
    while let Some(last) = d.pop() {
        if last != b'9' {
            d.push(last + 1);
            return (String::from_utf8_lossy(&d).into_owned(), exp);
        }
    }
    ("1".to_owned(), exp + 1)
}

/// `"1.2345e-7"` → (`"12345"`, -7).
fn split_sci(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    (
        mantissa.chars().filter(char::is_ascii_digit).collect(),
        exp.parse().unwrap_or(0),
    )
}

/// Python's `repr(float)`, including `nan`, `inf` and `-inf`.
pub(crate) fn float_repr(f: f64) -> String {
    let mut s = String::new();
    if f.is_nan() {
        s.push_str("nan");
    } else if f.is_infinite() {
        s.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else {
        push_finite_float_repr(&mut s, f);
    }
    s
}

/// Python's `round(f, ndigits)`: the decimal nearest to the exact binary value, ties to even
/// (`round(12.25, 1)` is 12.2), as psutil rounds its percents. Rust's fixed-precision formatting
/// rounds exactly that way.
pub(crate) fn round(f: f64, ndigits: usize) -> f64 {
    format!("{f:.ndigits$}").parse().unwrap_or(f)
}

// ---------------------------------------------------------------------------------------------
// ordering of dict keys, as Python's `sorted()` would

/// How a key takes part in Python's `sorted()` of dict keys.
pub(crate) enum SortKey<'a> {
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Num(Num),
    /// Anything `sorted()` cannot compare with other keys (None, containers, constants).
    Other,
}

/// A Python number for comparisons: ints compare exactly with floats, like Python's.
#[derive(Clone, Copy)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    /// A total order consistent with Python's `<` for everything but NaN, which Python cannot
    /// order at all; NaN sorts last here so that sorting stays well defined.
    pub(crate) fn cmp(self, other: Num) -> Ordering {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            (Num::Float(a), Num::Float(b)) => match (a.is_nan(), b.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            },
            (Num::Int(a), Num::Float(b)) => int_float_cmp(a, b),
            (Num::Float(a), Num::Int(b)) => int_float_cmp(b, a).reverse(),
        }
    }
}

fn int_float_cmp(i: i128, f: f64) -> Ordering {
    const LIMIT: f64 = 1.7e38; // well inside i128, beyond every msgpack integer
    if f.is_nan() || f >= LIMIT {
        return Ordering::Less;
    }
    if f <= -LIMIT {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    match i.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        unequal => unequal,
    }
}

/// The sort key of a dict key in Salt's decoded view.
pub(crate) fn sort_key(key: &Value) -> SortKey<'_> {
    match view(key) {
        Py::Str(s) => SortKey::Str(s),
        Py::Bytes(b) => SortKey::Bytes(b),
        Py::Bool(b) => SortKey::Num(Num::Int(i128::from(b))),
        Py::Int(i) => SortKey::Num(Num::Int(i)),
        Py::Float(f) => SortKey::Num(Num::Float(f)),
        Py::None | Py::List(_) | Py::Dict(_) | Py::Constant(_) => SortKey::Other,
    }
}

/// Sorts `entries` as Python's `sorted()` sorts dict keys, if it can: all keys str, all bytes,
/// or all numbers (bool counts as int). Returns `false`, leaving `entries` untouched, where
/// Python would raise `TypeError` (mixed kinds, or two keys it cannot compare). One key always
/// sorts.
pub(crate) fn python_sort<'a>(entries: &mut [&'a (Value, Value)]) -> bool {
    if entries.len() < 2 {
        return true;
    }
    let mut keyed: Vec<(SortKey<'a>, &'a (Value, Value))> =
        entries.iter().map(|e| (sort_key(&e.0), *e)).collect();
    let kind = |k: &SortKey<'_>| match k {
        SortKey::Str(_) => 0,
        SortKey::Bytes(_) => 1,
        SortKey::Num(_) => 2,
        SortKey::Other => 3,
    };
    let first = kind(&keyed[0].0);
    if first == 3 || keyed.iter().any(|(k, _)| kind(k) != first) {
        return false;
    }
    keyed.sort_by(|(a, _), (b, _)| match (a, b) {
        (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
        (SortKey::Bytes(a), SortKey::Bytes(b)) => a.cmp(b),
        (SortKey::Num(a), SortKey::Num(b)) => a.cmp(*b),
        _ => Ordering::Equal,
    });
    for (slot, (_, entry)) in entries.iter_mut().zip(keyed) {
        *slot = entry;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// repr / str / truthiness

/// Python's truthiness of the decoded value.
pub(crate) fn truthy(value: &Value) -> bool {
    match view(value) {
        Py::None => false,
        Py::Bool(b) => b,
        Py::Int(i) => i != 0,
        Py::Float(f) => f != 0.0,
        Py::Str(s) => !s.is_empty(),
        Py::Bytes(b) => !b.is_empty(),
        Py::List(items) => !items.is_empty(),
        Py::Dict(entries) => !entries.is_empty(),
        Py::Constant(_) => true,
    }
}

/// Python's `str()` of the decoded value (`repr()` for everything but `str`).
pub(crate) fn py_str(value: &Value) -> Cow<'_, str> {
    match view(value) {
        Py::Str(s) => s,
        _ => Cow::Owned(repr(value)),
    }
}

/// Python's `repr()` of the decoded value: `{'a': [1, 2.5, None, True]}`.
pub(crate) fn repr(value: &Value) -> String {
    let mut out = String::new();
    push_repr(&mut out, value);
    out
}

pub(crate) fn push_repr(out: &mut String, value: &Value) {
    match view(value) {
        Py::None => out.push_str("None"),
        Py::Bool(true) => out.push_str("True"),
        Py::Bool(false) => out.push_str("False"),
        Py::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Py::Float(f) => out.push_str(&float_repr(f)),
        Py::Str(s) => push_str_repr(out, &s),
        Py::Bytes(b) => push_bytes_repr(out, &b),
        Py::Constant(c) => out.push_str(&c.repr()),
        Py::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_repr(out, item);
            }
            out.push(']');
        }
        Py::Dict(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_repr(out, k);
                out.push_str(": ");
                push_repr(out, v);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`; `\\`, the quote,
/// `\t \n \r` and non-printable characters escaped (`\xNN`, `\uNNNN`, `\UNNNNNNNN`).
pub(crate) fn push_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let n = u32::from(c);
                let _ = match n {
                    0..=0xff => write!(out, "\\x{n:02x}"),
                    0x100..=0xffff => write!(out, "\\u{n:04x}"),
                    _ => write!(out, "\\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `repr(bytes)`: `b'...'`, printable ASCII as is, `\t \n \r \\` and the quote
/// escaped, everything else `\xNN`.
pub(crate) fn push_bytes_repr(out: &mut String, b: &[u8]) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    out.push('b');
    out.push(quote);
    for &byte in b {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(byte) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push(quote);
}

/// Characters Python's `str.isprintable()` rejects (Unicode 14 categories Cc, Cf, Zs but
/// space, Zl, Zp, Cs, Co). Unassigned code points (Cn), which Python also escapes, are treated
/// as printable: tracking the Unicode tables release by release is not worth it for `repr`.
const NON_PRINTABLE: &[(u32, u32)] = &[
    (0x0000, 0x001f),
    (0x007f, 0x00a0),
    (0x00ad, 0x00ad),
    (0x0600, 0x0605),
    (0x061c, 0x061c),
    (0x06dd, 0x06dd),
    (0x070f, 0x070f),
    (0x0890, 0x0891),
    (0x08e2, 0x08e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xd800, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x13438),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

fn is_printable(c: char) -> bool {
    let n = u32::from(c);
    !NON_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

/// Python's `str.isspace()`: Rust's whitespace plus the information separators U+001C–U+001F.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()`: splits on `\n`, `\r`, `\r\n`, `\v`, `\f`, U+001C–U+001E, U+0085,
/// U+2028 and U+2029; no empty last element for a trailing break; `""` gives no lines.
pub(crate) fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            lines.push(&s[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                chars.next();
                next += 1;
            }
            start = next;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_is_pythons_ties_to_even_on_the_exact_value() {
        // Python: round(12.25, 1) == 12.2, round(0.35, 1) == 0.3 (0.34999…), round(2.5) == 2.
        assert_eq!(round(12.25, 1), 12.2);
        assert_eq!(round(0.35, 1), 0.3);
        assert_eq!(round(0.05, 1), 0.1);
        assert_eq!(round(99.95, 1), 100.0);
        assert_eq!(round(2.5, 0), 2.0);
        assert!(round(f64::NAN, 1).is_nan());
    }

    #[test]
    fn datetime_payloads_parse_like_strptime() {
        let cases: &[(&str, Option<&str>)] = &[
            ("20261124T08:00:00.000000", Some("2026-11-24T08:00:00")),
            (
                "20261124T08:35:02.388660",
                Some("2026-11-24T08:35:02.388660"),
            ),
            ("20261124t08:35:02.5", Some("2026-11-24T08:35:02.500000")),
            ("2026111T1:2:3.000001", Some("2026-11-01T01:02:03.000001")),
            ("20261 5T1:2:3.0", Some("2026-01-05T01:02:03")),
            ("2026115T1:2:3.0", Some("2026-11-05T01:02:03")),
            ("2026 1 5T1:2:3.0", None),
            ("20240229T00:00:00.0", Some("2024-02-29T00:00:00")),
            ("20230229T00:00:00.0", None),
            ("20261124T08:00:60.0", None),
            ("00001124T08:00:00.0", None),
            ("20261124T08:00:00.1234567", None),
            ("20261124T08:00:00", None),
            ("20261124T24:00:00.0", None),
            ("garbage", None),
        ];
        for (payload, want) in cases {
            assert_eq!(
                parse_salt_datetime(payload.as_bytes()).as_deref(),
                *want,
                "{payload}"
            );
        }
    }

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("\n"), vec![""]);
        assert_eq!(
            splitlines("a\r\nb\rc\n\nd\u{2028}e\n"),
            vec!["a", "b", "c", "", "d", "e"]
        );
    }

    #[test]
    fn repr_matches_python() {
        let v = Value::Map(vec![
            (
                Value::from("it's"),
                Value::from(vec![
                    Value::from(1),
                    Value::from(2.5),
                    Value::Nil,
                    Value::from(true),
                ]),
            ),
            (
                Value::from(1),
                Value::Binary(vec![0xff, b'\'', b'a', b'\n']),
            ),
            (
                Value::from("q\"'"),
                Value::from("\u{7}\u{a0}é\u{2028}\u{1F600}"),
            ),
        ]);
        assert_eq!(
            repr(&v),
            r#"{"it's": [1, 2.5, None, True], 1: b"\xff'a\n", 'q"\'': '\x07\xa0é\u2028😀'}"#
        );
    }
}
