//! Writing a parsed Python regex in the `regex` crate's syntax.

use super::{Anchor, Anchoring, ClassItem, Fold, Haystack, Node, POSSESSIVE, RepeatKind};

/// the simple case folding `regex` uses pairs only `I` and `i`.
const DOTTED_DOTLESS_I: [char; 4] = ['I', 'i', 'İ', 'ı'];

const NEVER: &str = r"[^\x{0}-\x{10FFFF}]";
const ANY_CHAR: &str = r"[\x{0}-\x{10FFFF}]";

pub(super) fn emit_top(
    ast: &Node,
    anchoring: Anchoring,
    hay: Haystack,
    out: &mut String,
) -> Result<(), &'static str> {
    // `regex` searches anywhere; `re.match` and `re.fullmatch` need explicit anchors around the
    // whole pattern, because Python's anchoring applies to every alternative.
    let (open, close) = match anchoring {
        Anchoring::Match => (r"\A(?:", ")"),
        Anchoring::FullMatch => (r"\A(?:", r")\z"),
    };
    out.push_str(open);
    emit(ast, hay, out)?;
    out.push_str(close);
    Ok(())
}

fn emit(node: &Node, hay: Haystack, out: &mut String) -> Result<(), &'static str> {
    match node {
        Node::Literal { code, fold } => emit_literal(*code, *fold, out),
        Node::Any { dotall: true } => out.push_str("(?s:.)"),
        Node::Any { dotall: false } => out.push_str(r"[^\n]"),
        Node::Class {
            negated,
            items,
            fold,
        } => emit_class(*negated, items, *fold, out),
        Node::Anchor(anchor) => out.push_str(match anchor {
            Anchor::Start { multiline: false } | Anchor::StartString => r"\A",
            Anchor::Start { multiline: true } => "(?m:^)",
            Anchor::End { multiline: true } => "(?m:$)",
            Anchor::End { multiline: false } => match hay {
                Haystack::TrailingNewline => "(?m:$)",
                Haystack::Plain | Haystack::BeforeFinalNewline | Haystack::Empty => r"\z",
            },
            Anchor::EndString if hay == Haystack::BeforeFinalNewline => NEVER,
            Anchor::EndString => r"\z",
            Anchor::Boundary { ascii: false } => r"\b",
            Anchor::Boundary { ascii: true } => r"(?-u:\b)",
            Anchor::NonBoundary { .. } if hay == Haystack::Empty => NEVER,
            Anchor::NonBoundary { ascii: false } => r"\B",
            Anchor::NonBoundary { ascii: true } => r"(?-u:\B)",
        }),
        // An alternation brings its own group.
        Node::Group(body) if matches!(**body, Node::Alternation(_)) => emit(body, hay, out)?,
        Node::Group(body) => {
            out.push_str("(?:");
            emit(body, hay, out)?;
            out.push(')');
        }
        Node::Repeat {
            body,
            min,
            max,
            kind,
        } => {
            // The body is one item of a sequence, and every item is written as a single atom.
            emit(body, hay, out)?;
            match (min, max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (m, None) => out.push_str(&format!("{{{m},}}")),
                (m, Some(n)) if m == n => out.push_str(&format!("{{{m}}}")),
                (m, Some(n)) => out.push_str(&format!("{{{m},{n}}}")),
            }
            match kind {
                RepeatKind::Greedy => {}
                RepeatKind::Lazy => out.push('?'),
                RepeatKind::Possessive => return Err(POSSESSIVE),
            }
        }
        Node::Concat(items) => {
            for item in items {
                emit(item, hay, out)?;
            }
        }
        Node::Alternation(branches) => {
            out.push_str("(?:");
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                emit(branch, hay, out)?;
            }
            out.push(')');
        }
        Node::Unsupported(feature) => return Err(feature),
    }
    Ok(())
}

fn emit_literal(code: u32, fold: Fold, out: &mut String) {
    let Some(c) = char::from_u32(code) else {
        out.push_str(NEVER);
        return;
    };
    let escaped = regex::escape(c.encode_utf8(&mut [0; 4]));
    match fold {
        Fold::Ascii if c.is_ascii_alphabetic() => out.push_str(&format!(
            "[{}{}]",
            c.to_ascii_lowercase(),
            c.to_ascii_uppercase()
        )),
        Fold::Unicode if DOTTED_DOTLESS_I.contains(&c) => out.push_str("[Iiİı]"),
        Fold::Unicode => out.push_str(&format!("(?i:{escaped})")),
        Fold::None | Fold::Ascii => out.push_str(&escaped),
    }
}

fn emit_class(negated: bool, items: &[ClassItem], fold: Fold, out: &mut String) {
    let mut body = String::new();
    for item in items {
        match *item {
            ClassItem::Range(lo, hi) => {
                push_range(&mut body, lo, hi);
                if fold == Fold::Ascii {
                    // Python's `(?ai)` folds ASCII letters only, so add their other case by hand.
                    let (l, h) = (lo.max('a' as u32), hi.min('z' as u32));
                    if l <= h {
                        push_range(&mut body, l - 32, h - 32);
                    }
                    let (l, h) = (lo.max('A' as u32), hi.min('Z' as u32));
                    if l <= h {
                        push_range(&mut body, l + 32, h + 32);
                    }
                }
            }
            ClassItem::Category { kind, ascii } => body.push_str(category(kind, ascii)),
        }
    }
    let lists_chars = items.iter().any(|i| matches!(i, ClassItem::Range(..)));
    let has_i = |&c: &char| {
        items
            .iter()
            .any(|i| matches!(*i, ClassItem::Range(lo, hi) if lo <= c as u32 && c as u32 <= hi))
    };
    if fold == Fold::Unicode && DOTTED_DOTLESS_I.iter().any(has_i) {
        body.extend(DOTTED_DOTLESS_I);
    }
    if body.is_empty() {
        // Only lone surrogates, which no Rust string holds.
        out.push_str(if negated { ANY_CHAR } else { NEVER });
        return;
    }
    let class = format!("[{}{body}]", if negated { "^" } else { "" });
    // Python folds a set only if it lists characters: `(?i)\W` is `\W`, while a folded Rust
    // `\W` would lose U+0345, whose case partner is the letter iota.
    if fold == Fold::Unicode && lists_chars {
        out.push_str(&format!("(?i:{class})"));
    } else {
        out.push_str(&class);
    }
}

/// Adds `lo..=hi` to a set body, leaving out surrogates; nothing when the range is empty.
fn push_range(body: &mut String, lo: u32, hi: u32) {
    for (a, b) in [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)] {
        if a <= b {
            body.push_str(&format!(r"\x{{{a:X}}}-\x{{{b:X}}}"));
        }
    }
}

/// Python's class escapes as nested `regex` sets. Unicode `\w` is Python's `isalnum() or '_'`,
/// which is exactly letters and numbers; Unicode `\s` is `isspace()`, which unlike Rust's `\s`
/// includes the separators U+001C..U+001F.
fn category(kind: char, ascii: bool) -> &'static str {
    match (kind, ascii) {
        ('d', false) => r"[\p{Nd}]",
        ('D', false) => r"[^\p{Nd}]",
        ('s', false) => r"[\s\x1C-\x1F]",
        ('S', false) => r"[^\s\x1C-\x1F]",
        ('w', false) => r"[\p{L}\p{N}_]",
        ('W', false) => r"[^\p{L}\p{N}_]",
        ('d', true) => "[0-9]",
        ('D', true) => "[^0-9]",
        ('s', true) => r"[\t\n\x0B\x0C\r ]",
        ('S', true) => r"[^\t\n\x0B\x0C\r ]",
        ('w', true) => "[0-9A-Za-z_]",
        _ => "[^0-9A-Za-z_]",
    }
}
