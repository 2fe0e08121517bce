//! `--out=txt` (`salt/output/txt.py`) and the `pprint.pformat` it falls back on.
//!
//! For a map: for each entry in wire order, one `key: line` per line of the value when the
//! value is text (`str.splitlines()`: an empty string prints nothing), else `key: str(value)`.
//! For text: the text. For anything else: Python's `pprint.pformat` (width 80, dicts sorted).

use crate::event::Value;
use crate::py::value::{self as pyvalue, Py};

/// The txt outputter's text, before Salt strips trailing whitespace.
pub(crate) fn render(value: &Value) -> String {
    match pyvalue::view(value) {
        Py::Dict(entries) => {
            let mut out = String::new();
            for (key, val) in entries {
                let key = pyvalue::py_str(key);
                match pyvalue::view(val) {
                    Py::Str(s) => {
                        for line in pyvalue::splitlines(&s) {
                            out.push_str(&format!("{key}: {line}\n"));
                        }
                    }
                    // bytes.splitlines() splits on \n, \r and \r\n only; each line is shown
                    // as bytes.
                    Py::Bytes(b) => {
                        for line in split_bytes_lines(&b) {
                            let mut repr = String::new();
                            pyvalue::push_bytes_repr(&mut repr, line);
                            out.push_str(&format!("{key}: {repr}\n"));
                        }
                    }
                    _ => out.push_str(&format!("{key}: {}\n", pyvalue::py_str(val))),
                }
            }
            out
        }
        Py::Str(s) => format!("{s}\n"),
        _ => format!("{}\n", pformat(value)),
    }
}

fn split_bytes_lines(b: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if b[i] == b'\n' || b[i] == b'\r' {
            lines.push(&b[start..i]);
            if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < b.len() {
        lines.push(&b[start..]);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// pprint.pformat(value) with the defaults: indent=1, width=80, sort_dicts=True

const WIDTH: usize = 80;

/// `pprint.pformat(value)`.
pub(super) fn pformat(value: &Value) -> String {
    let mut out = String::new();
    format_value(&mut out, value, 0, 0, 0);
    out
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Dict entries in `pprint`'s order: sorted when Python can compare the keys; otherwise
/// grouped by type name first as pprint's `_safe_key` does (numbers stay comparable with each
/// other; pprint's final tie-break by object id is replaced by wire order).
fn pprint_order(entries: &[(Value, Value)]) -> Vec<&(Value, Value)> {
    let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
    if !pyvalue::python_sort(&mut sorted) {
        let rank = |k: &Value| match pyvalue::sort_key(k) {
            pyvalue::SortKey::Num(_) => 1,
            pyvalue::SortKey::Bytes(_) => 2,
            pyvalue::SortKey::Str(_) => 3,
            pyvalue::SortKey::Other => 0,
        };
        sorted.sort_by_key(|(k, _)| rank(k));
        let mut start = 0;
        while start < sorted.len() {
            let r = rank(&sorted[start].0);
            let end = start
                + sorted[start..]
                    .iter()
                    .take_while(|(k, _)| rank(k) == r)
                    .count();
            if r != 0 {
                pyvalue::python_sort(&mut sorted[start..end]);
            }
            start = end;
        }
    }
    sorted
}

/// `safe_repr` with dicts sorted.
fn one_line(out: &mut String, value: &Value) {
    match pyvalue::view(value) {
        Py::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                one_line(out, item);
            }
            out.push(']');
        }
        Py::Dict(entries) => {
            out.push('{');
            for (i, (k, v)) in pprint_order(entries).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                one_line(out, k);
                out.push_str(": ");
                one_line(out, v);
            }
            out.push('}');
        }
        _ => pyvalue::push_repr(out, value),
    }
}

/// `PrettyPrinter._format`.
fn format_value(out: &mut String, value: &Value, indent: usize, allowance: usize, level: usize) {
    let mut rep = String::new();
    one_line(&mut rep, value);
    let max_width = WIDTH.saturating_sub(indent + allowance);
    if chars(&rep) > max_width {
        match pyvalue::view(value) {
            Py::List(items) if !items.is_empty() => {
                out.push('[');
                let refs: Vec<&Value> = items.iter().collect();
                format_items(out, &refs, indent, allowance + 1, level + 1);
                out.push(']');
                return;
            }
            Py::Dict(entries) if !entries.is_empty() => {
                out.push('{');
                format_dict_items(
                    out,
                    &pprint_order(entries),
                    indent,
                    allowance + 1,
                    level + 1,
                );
                out.push('}');
                return;
            }
            Py::Str(s) => {
                format_str(out, &s, indent, allowance, level + 1);
                return;
            }
            _ => {}
        }
    }
    out.push_str(&rep);
}

fn format_items(out: &mut String, items: &[&Value], indent: usize, allowance: usize, level: usize) {
    let indent = indent + 1;
    let last = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
            out.extend(std::iter::repeat_n(' ', indent));
        }
        format_value(
            out,
            item,
            indent,
            if i == last { allowance } else { 1 },
            level,
        );
    }
}

fn format_dict_items(
    out: &mut String,
    items: &[&(Value, Value)],
    indent: usize,
    allowance: usize,
    level: usize,
) {
    let indent = indent + 1;
    let last = items.len().saturating_sub(1);
    for (i, (k, v)) in items.iter().enumerate() {
        let mut rep = String::new();
        one_line(&mut rep, k);
        out.push_str(&rep);
        out.push_str(": ");
        format_value(
            out,
            v,
            indent + chars(&rep) + 2,
            if i == last { allowance } else { 1 },
            level,
        );
        if i != last {
            out.push_str(",\n");
            out.extend(std::iter::repeat_n(' ', indent));
        }
    }
}

fn str_repr(s: &str) -> String {
    let mut r = String::new();
    pyvalue::push_str_repr(&mut r, s);
    r
}

/// `PrettyPrinter._pprint_str`: a long string becomes adjacent literals split after
/// whitespace, wrapped in parentheses at the top level.
fn format_str(out: &mut String, s: &str, indent: usize, allowance: usize, level: usize) {
    if s.is_empty() {
        out.push_str("''");
        return;
    }
    let (indent, allowance) = if level == 1 {
        (indent + 1, allowance + 1)
    } else {
        (indent, allowance)
    };
    let max_width = WIDTH.saturating_sub(indent);
    let lines = split_keep_ends(s);
    let mut chunks: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let last_line = i + 1 == lines.len();
        let max_width1 = if last_line {
            max_width.saturating_sub(allowance)
        } else {
            max_width
        };
        let rep = str_repr(line);
        if chars(&rep) <= max_width1 {
            chunks.push(rep);
            continue;
        }
        let parts = word_parts(line);
        let mut max_width2 = max_width;
        let mut current = String::new();
        for (j, part) in parts.iter().enumerate() {
            let candidate = format!("{current}{part}");
            if j + 1 == parts.len() && last_line {
                max_width2 = max_width2.saturating_sub(allowance);
            }
            if chars(&str_repr(&candidate)) > max_width2 {
                if !current.is_empty() {
                    chunks.push(str_repr(&current));
                }
                current = (*part).to_owned();
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() {
            chunks.push(str_repr(&current));
        }
    }
    if chunks.len() == 1 {
        out.push_str(&str_repr(s));
        return;
    }
    if level == 1 {
        out.push('(');
    }
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(chunk);
    }
    if level == 1 {
        out.push(')');
    }
}

/// `str.splitlines(True)`.
fn split_keep_ends(s: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = s;
    for line in pyvalue::splitlines(s) {
        let after = &rest[line.len()..];
        let brk = after.chars().next().map_or(0, |c| {
            if c == '\r' && after[1..].starts_with('\n') {
                2
            } else {
                c.len_utf8()
            }
        });
        pieces.push(&rest[..line.len() + brk]);
        rest = &rest[line.len() + brk..];
    }
    pieces
}

/// `re.findall(r'\S*\s*', line)` without the final empty match.
fn word_parts(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in line.char_indices() {
        let space = pyvalue::is_py_space(c);
        if !space && in_space {
            parts.push(&line[start..i]);
            start = i;
        }
        in_space = space;
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
}
