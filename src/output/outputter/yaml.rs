//! `--out=yaml`: `yaml.dump(data, Dumper=SafeOrderedDumper, default_flow_style=False,
//! allow_unicode=True)` as Salt runs it on libyaml's emitter (PyYAML's `CSafeDumper`).
//!
//! This is a port of the parts of libyaml's emitter that a block-style dump of plain data
//! reaches, with PyYAML's `SafeRepresenter` and implicit-tag resolver in front:
//!
//! * maps in block style, keys sorted when Python can sort them (wire order otherwise), a
//!   sequence under a key not indented (`k:\n- a`); empty containers as `{}` / `[]`;
//!   keys that are not simple (containers, multi-line text, over 128 bytes) as `? key\n: value`;
//! * scalars plain when the text would not read back as another type (`'true'`, `'123'`,
//!   `''` are quoted) and has no indicator or special character; otherwise single-quoted, or
//!   double-quoted with escapes when it holds characters libyaml will not print raw (controls,
//!   tab, U+0085, U+FEFF, anything outside the Basic Multilingual Plane);
//! * long plain and quoted scalars folded at spaces past column 80;
//! * None → `null`, bools → `true`/`false`, floats as Python's `repr` lower-cased with `.0`
//!   added before a bare exponent (`1.0e+16`), `.nan`, `.inf`, `-.inf`;
//! * undecodable bytes as `!!binary |` with base64 lines;
//! * Salt constants as `NULL`, which is what Salt's `SafeOrderedDumper` does for any object it
//!   has no representer for.

use crate::event::Value;
use crate::py::value::{self as pyvalue, Py};

const BEST_INDENT: usize = 2;
const BEST_WIDTH: usize = 80;

/// How the document is laid out: Salt's `output_indent` as its yaml outputter passes it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Block style, nested levels indented this much; libyaml takes 2 to 9 and uses 2 for
    /// anything else.
    Block(usize),
    /// Flow style (`{local: {a: [1, 2]}}`), as Salt dumps it for a negative indent.
    Flow,
}

/// The YAML document for `value`, ending with a newline.
pub(crate) fn render(value: &Value, layout: Layout) -> String {
    let (flow, best_indent) = match layout {
        Layout::Block(indent @ 2..=9) => (false, indent),
        Layout::Block(_) => (false, BEST_INDENT),
        Layout::Flow => (true, BEST_INDENT),
    };
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: None,
        indents: Vec::new(),
        best_indent,
        flow,
        flow_level: 0,
    };
    e.node(&node_of(value), Context::Root);
    // The document end: a line break unless already at the start of a line.
    e.write_indent();
    e.out
}

/// A node as the representer builds it.
enum Node<'a> {
    Scalar(Scalar),
    Seq(&'a [Value]),
    Map(Vec<&'a (Value, Value)>),
}

struct Scalar {
    text: String,
    /// The text reads back as what it is without a tag (`implicit[0]` in PyYAML).
    plain_implicit: bool,
    /// `!!binary`, written as a literal block.
    binary: bool,
}

fn scalar(text: String, plain_implicit: bool) -> Node<'static> {
    Node::Scalar(Scalar {
        text,
        plain_implicit,
        binary: false,
    })
}

fn node_of(value: &Value) -> Node<'_> {
    match pyvalue::view(value) {
        Py::None => scalar("null".to_owned(), true),
        Py::Constant(_) => scalar("NULL".to_owned(), true),
        Py::Bool(b) => scalar(if b { "true" } else { "false" }.to_owned(), true),
        Py::Int(i) => scalar(i.to_string(), true),
        Py::Float(f) => scalar(float_text(f), true),
        Py::Str(s) => {
            let implicit = !resolves_to_other_type(&s);
            scalar(s.into_owned(), implicit)
        }
        Py::Bytes(b) => Node::Scalar(Scalar {
            text: base64_lines(&b),
            plain_implicit: false,
            binary: true,
        }),
        Py::List(items) => Node::Seq(items),
        Py::Dict(entries) => {
            let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
            if !pyvalue::python_sort(&mut sorted) {
                // PyYAML keeps insertion order when sorting raises.
                sorted = entries.iter().collect();
            }
            Node::Map(sorted)
        }
    }
}

/// `SafeRepresenter.represent_float`.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.to_owned()
    } else {
        let repr = pyvalue::float_repr(f);
        if !repr.contains('.') && repr.contains('e') {
            repr.replacen('e', ".0e", 1)
        } else {
            repr
        }
    }
}

/// `base64.encodebytes`: lines of at most 76 characters, each ending with `\n`.
fn base64_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for line in bytes.chunks(57) {
        for chunk in line.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// PyYAML's implicit resolvers (YAML 1.1 bool, int, float, null, timestamp, merge, value)

/// Whether PyYAML's resolver reads `s`, written plain, as something other than a string.
fn resolves_to_other_type(s: &str) -> bool {
    is_null(s) || is_bool(s) || is_int(s) || is_float(s) || is_timestamp(s) || s == "<<" || s == "="
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn is_bool(s: &str) -> bool {
    matches!(
        s,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn strip_sign(s: &str) -> &str {
    s.strip_prefix(['-', '+']).unwrap_or(s)
}

fn all_in(s: &str, ok: impl Fn(char) -> bool) -> bool {
    s.chars().all(ok)
}

/// `[1-9][0-9_]*(:[0-5]?[0-9])+`: base 60.
fn is_sexagesimal_int(s: &str) -> bool {
    let mut parts = s.split(':');
    let head = parts.next().unwrap_or_default();
    let head_ok = head.starts_with(|c: char| ('1'..='9').contains(&c))
        && all_in(head, |c| c.is_ascii_digit() || c == '_');
    let mut rest = 0;
    for part in parts {
        rest += 1;
        let b = part.as_bytes();
        let ok = match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    head_ok && rest > 0
}

fn is_int(s: &str) -> bool {
    let body = strip_sign(s);
    if let Some(bin) = body.strip_prefix("0b") {
        return !bin.is_empty() && all_in(bin, |c| c == '0' || c == '1' || c == '_');
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && all_in(hex, |c| c.is_ascii_hexdigit() || c == '_');
    }
    if body == "0" {
        return true;
    }
    if let Some(oct) = body.strip_prefix('0') {
        return !oct.is_empty() && all_in(oct, |c| ('0'..='7').contains(&c) || c == '_');
    }
    if body.starts_with(|c: char| ('1'..='9').contains(&c))
        && all_in(body, |c| c.is_ascii_digit() || c == '_')
    {
        return true;
    }
    is_sexagesimal_int(body)
}

/// `[eE][-+][0-9]+` (the sign is required in YAML 1.1's float).
fn is_exponent(s: &str) -> bool {
    match s
        .strip_prefix(['e', 'E'])
        .and_then(|r| r.strip_prefix(['-', '+']))
    {
        Some(digits) => !digits.is_empty() && all_in(digits, |c| c.is_ascii_digit()),
        None => false,
    }
}

/// `[0-9_]*` then an optional exponent.
fn is_fraction_and_exponent(s: &str) -> bool {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    end == s.len() || is_exponent(&s[end..])
}

fn is_float(s: &str) -> bool {
    if matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let body = strip_sign(s);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    // [-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+][0-9]+)?
    if let Some((whole, frac)) = body.split_once('.') {
        if whole.starts_with(|c: char| c.is_ascii_digit())
            && all_in(whole, |c| c.is_ascii_digit() || c == '_')
            && is_fraction_and_exponent(frac)
        {
            return true;
        }
        // [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*
        if is_sexagesimal_float_head(whole) && all_in(frac, |c| c.is_ascii_digit() || c == '_') {
            return true;
        }
    }
    // \.[0-9][0-9_]*([eE][-+][0-9]+)?  (no sign allowed)
    if let Some(frac) = s.strip_prefix('.') {
        return frac.starts_with(|c: char| c.is_ascii_digit()) && is_fraction_and_exponent(frac);
    }
    false
}

fn is_sexagesimal_float_head(s: &str) -> bool {
    let mut parts = s.split(':');
    let head = parts.next().unwrap_or_default();
    if !(head.starts_with(|c: char| c.is_ascii_digit())
        && all_in(head, |c| c.is_ascii_digit() || c == '_'))
    {
        return false;
    }
    let mut rest = 0;
    for part in parts {
        rest += 1;
        let b = part.as_bytes();
        let ok = match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    rest > 0
}

/// YAML 1.1 timestamp: `YYYY-MM-DD`, or `YYYY-M-D` followed by `T`/`t`/blanks, `H:MM:SS`,
/// an optional fraction and an optional zone (`Z` or `±H[:MM]` after optional blanks).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, min: usize, max: usize| -> Option<usize> {
        let n = b[from.min(b.len())..]
            .iter()
            .take(max)
            .take_while(|c| c.is_ascii_digit())
            .count();
        (n >= min).then_some(from + n)
    };
    let lit = |at: usize, c: u8| b.get(at) == Some(&c);
    // Date only.
    if b.len() == 10
        && digits(0, 4, 4) == Some(4)
        && lit(4, b'-')
        && digits(5, 2, 2) == Some(7)
        && lit(7, b'-')
        && digits(8, 2, 2) == Some(10)
    {
        return true;
    }
    let Some(mut i) = digits(0, 4, 4) else {
        return false;
    };
    for _ in 0..2 {
        if !lit(i, b'-') {
            return false;
        }
        let Some(next) = digits(i + 1, 1, 2) else {
            return false;
        };
        i = next;
    }
    match b.get(i) {
        Some(b'T' | b't') => i += 1,
        Some(b' ' | b'\t') => {
            while matches!(b.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
        }
        _ => return false,
    }
    let Some(next) = digits(i, 1, 2) else {
        return false;
    };
    i = next;
    for _ in 0..2 {
        if !lit(i, b':') {
            return false;
        }
        let Some(next) = digits(i + 1, 2, 2) else {
            return false;
        };
        i = next;
    }
    if lit(i, b'.') {
        i = digits(i + 1, 0, usize::MAX).unwrap_or(i + 1);
    }
    if i == b.len() {
        return true;
    }
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'-' | b'+') => {
            let Some(mut j) = digits(i + 1, 1, 2) else {
                return false;
            };
            if lit(j, b':') {
                match digits(j + 1, 2, 2) {
                    Some(k) => j = k,
                    None => return false,
                }
            }
            j == b.len()
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// libyaml's scalar analysis

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(c, '\0' | ' ' | '\t') || is_break(c),
    }
}

/// libyaml prints these raw: LF, printable ASCII, and the rest of the Basic Multilingual Plane
/// but surrogates, U+FEFF, U+FFFE and U+FFFF. (U+0085 and astral characters are escaped.)
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

struct Analysis {
    empty: bool,
    multiline: bool,
    flow_plain: bool,
    block_plain: bool,
    single_quoted: bool,
    block: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single_quoted: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut block_indicators, mut flow_indicators) = (false, false);
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = is_blankz(chars.get(i + 1).copied());
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) || (c == '-' && followed_by_whitespace) {
                block_indicators = true;
                flow_indicators = true;
            }
            if c == '?' || c == ':' {
                flow_indicators = true;
                block_indicators |= followed_by_whitespace;
            }
        } else {
            if ",?[]{}:".contains(c) {
                flow_indicators = true;
            }
            if (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace) {
                block_indicators = true;
                flow_indicators = true;
            }
        }
        // allow_unicode=True: only unprintable characters are special.
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(Some(c));
    }
    let mut a = Analysis {
        empty: false,
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break || line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single_quoted = false;
    }
    if space_break || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    a.flow_plain &= !flow_indicators;
    a.block_plain &= !block_indicators;
    a
}

// ---------------------------------------------------------------------------------------------
// the emitter

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Root,
    Sequence,
    MappingKey,
    MappingValue,
}

enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    best_indent: usize,
    /// Collections in flow style (`default_flow_style=True`).
    flow: bool,
    /// How many flow collections the emitter is inside.
    flow_level: usize,
}

impl Emitter {
    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None if flow => Some(self.best_indent),
            None => Some(0),
            Some(i) if !indentless => Some(i + self.best_indent),
            same => same,
        };
    }

    fn restore_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        whitespace: bool,
        indention: bool,
    ) {
        if !self.whitespace && need_whitespace {
            self.out.push(' ');
            self.column += 1;
        }
        self.out.push_str(indicator);
        self.column += indicator.chars().count();
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_break('\n');
        }
        while self.column < indent {
            self.out.push(' ');
            self.column += 1;
            self.whitespace = true;
        }
    }

    fn write_break(&mut self, c: char) {
        self.out.push(c);
        self.column = 0;
        self.whitespace = true;
        self.indention = true;
    }

    fn write_char(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn node(&mut self, node: &Node<'_>, ctx: Context) {
        match node {
            Node::Scalar(s) => {
                let simple_key = ctx == Context::MappingKey;
                let style = self.choose_style(s, simple_key);
                if s.binary {
                    self.write_indicator("!!binary", true, false, false);
                }
                self.increase_indent(true, false);
                match style {
                    Style::Plain => self.write_plain(&s.text, !simple_key),
                    Style::Single => self.write_single_quoted(&s.text, !simple_key),
                    Style::Double => self.write_double_quoted(&s.text, !simple_key),
                    Style::Literal => self.write_literal(&s.text),
                }
                self.restore_indent();
            }
            Node::Seq([]) => self.write_indicator("[]", true, false, false),
            Node::Map(entries) if entries.is_empty() => {
                self.write_indicator("{}", true, false, false)
            }
            Node::Seq(items) if self.flow => self.flow_collection("[", "]", items.len(), |e, i| {
                e.node(&node_of(&items[i]), Context::Sequence)
            }),
            Node::Map(entries) if self.flow => {
                self.flow_collection("{", "}", entries.len(), |e, i| {
                    let (k, v) = entries[i];
                    let key = node_of(k);
                    if is_simple_key(&key) {
                        e.node(&key, Context::MappingKey);
                        e.write_indicator(":", false, false, false);
                    } else {
                        e.write_indicator("?", true, false, false);
                        e.node(&key, Context::MappingValue);
                        if e.column > BEST_WIDTH {
                            e.write_indent();
                        }
                        e.write_indicator(":", true, false, false);
                    }
                    e.node(&node_of(v), Context::MappingValue);
                })
            }
            Node::Seq(items) => {
                let indentless = ctx == Context::MappingValue && !self.indention;
                self.increase_indent(false, indentless);
                for item in *items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(&node_of(item), Context::Sequence);
                }
                self.restore_indent();
            }
            Node::Map(entries) => {
                self.increase_indent(false, false);
                for (k, v) in entries {
                    self.write_indent();
                    let key = node_of(k);
                    if is_simple_key(&key) {
                        self.node(&key, Context::MappingKey);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.node(&key, Context::MappingValue);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(&node_of(v), Context::MappingValue);
                }
                self.restore_indent();
            }
        }
    }

    /// A flow sequence or mapping of `len` items, each written by `item`: the items separated
    /// by `, `, a line broken before an item that would start past the width.
    fn flow_collection(
        &mut self,
        open: &str,
        close: &str,
        len: usize,
        mut item: impl FnMut(&mut Self, usize),
    ) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.flow_level += 1;
        for i in 0..len {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > BEST_WIDTH {
                self.write_indent();
            }
            item(self, i);
        }
        self.flow_level -= 1;
        self.restore_indent();
        self.write_indicator(close, false, false, false);
    }

    fn choose_style(&self, s: &Scalar, simple_key: bool) -> Style {
        let a = analyze(&s.text);
        let in_flow = self.flow_level > 0;
        if s.binary {
            return if a.block && !simple_key && !in_flow {
                Style::Literal
            } else {
                Style::Double
            };
        }
        let plain_allowed = if in_flow { a.flow_plain } else { a.block_plain };
        let plain = s.plain_implicit && plain_allowed && !(a.empty && (simple_key || in_flow));
        if plain {
            Style::Plain
        } else if a.single_quoted {
            Style::Single
        } else {
            Style::Double
        }
    }

    fn write_plain(&mut self, text: &str, allow_breaks: bool) {
        if !self.whitespace && !text.is_empty() {
            self.write_char(' ');
        }
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.write_char(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.write_break('\n');
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write_char(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let last = chars.len().saturating_sub(1);
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != last
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.write_char(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.write_break('\n');
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.write_char('\'');
                }
                self.write_char(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if breaks {
            self.write_indent();
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double_quoted(&mut self, text: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let last = chars.len().saturating_sub(1);
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                let short = match c {
                    '\0' => Some('0'),
                    '\u{7}' => Some('a'),
                    '\u{8}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{b}' => Some('v'),
                    '\u{c}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1b}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                let escape = match (short, u32::from(c)) {
                    (Some(s), _) => format!("\\{s}"),
                    (None, n @ 0..=0xff) => format!("\\x{n:02X}"),
                    (None, n @ 0x100..=0xffff) => format!("\\u{n:04X}"),
                    (None, n) => format!("\\U{n:08X}"),
                };
                self.out.push_str(&escape);
                self.column += escape.len();
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i != 0 && i != last {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.write_char('\\');
                    }
                } else {
                    self.write_char(c);
                }
                spaces = true;
            } else {
                self.write_char(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
    }

    /// A `|` block; only base64 text (ASCII lines ending in `\n`) comes here.
    fn write_literal(&mut self, text: &str) {
        self.write_indicator("|", true, false, false);
        self.write_break('\n');
        let mut breaks = true;
        for c in text.chars() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write_char(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// libyaml's `check_simple_key`: a one-line scalar of at most 128 bytes, or an empty container.
fn is_simple_key(node: &Node<'_>) -> bool {
    match node {
        Node::Scalar(s) => {
            let tag = if s.binary { "!!binary".len() } else { 0 };
            !analyze(&s.text).multiline && s.text.len() + tag <= 128
        }
        Node::Seq(items) => items.is_empty(),
        Node::Map(entries) => entries.is_empty(),
    }
}
