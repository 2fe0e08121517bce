//! A port of CPython 3.11's `Lib/re/_parser.py`, minus what only bytes patterns need.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::{
    ATOMIC, Anchor, BACKREFERENCE, CONDITIONAL, ClassItem, Fold, LOOKAROUND, NAMED_CHAR,
    NEST_LIMIT, Node, RepeatKind,
};

pub(super) enum ParseError {
    /// Python's `re.error` (or `OverflowError`) message.
    Python(String),
    /// Deeper than [`NEST_LIMIT`].
    TooDeep,
}

impl From<&str> for ParseError {
    fn from(message: &str) -> Self {
        ParseError::Python(message.to_owned())
    }
}

impl From<String> for ParseError {
    fn from(message: String) -> Self {
        ParseError::Python(message)
    }
}

type ParseResult<T> = Result<T, ParseError>;

/// Python's `MAXREPEAT`: counts from here on raise `OverflowError`.
const MAXREPEAT: u64 = 4_294_967_295;
/// Python's `MAXGROUPS`.
const MAXGROUPS: u64 = 1_073_741_823;

// Inline flag bits, as in `re._constants`.
const FLAG_I: u8 = 1;
const FLAG_L: u8 = 2;
const FLAG_M: u8 = 4;
const FLAG_S: u8 = 8;
const FLAG_X: u8 = 16;
const FLAG_A: u8 = 32;
const FLAG_T: u8 = 64;
const FLAG_U: u8 = 128;
const TYPE_FLAGS: u8 = FLAG_A | FLAG_L | FLAG_U;

fn flag_of(tok: Tok) -> Option<u8> {
    match tok {
        Tok::Char('i') => Some(FLAG_I),
        Tok::Char('L') => Some(FLAG_L),
        Tok::Char('m') => Some(FLAG_M),
        Tok::Char('s') => Some(FLAG_S),
        Tok::Char('x') => Some(FLAG_X),
        Tok::Char('a') => Some(FLAG_A),
        Tok::Char('t') => Some(FLAG_T),
        Tok::Char('u') => Some(FLAG_U),
        _ => None,
    }
}

/// `sre_compile._combine_flags`: a new type flag (`a`, `u`) replaces the old one.
fn combine_flags(flags: u8, add: u8, del: u8) -> u8 {
    let flags = if add & TYPE_FLAGS != 0 {
        flags & !TYPE_FLAGS
    } else {
        flags
    };
    (flags | add) & !del
}

/// A token of Python's tokenizer: one character, or a backslash and the character after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    Esc(char),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Char(c) => write!(f, "{c}"),
            Tok::Esc(c) => write!(f, "\\{c}"),
        }
    }
}

impl Tok {
    fn is_alpha(self) -> bool {
        matches!(self, Tok::Char(c) if c.is_alphabetic())
    }
}

/// Python's `Tokenizer`, which always holds the next token already read: that is why a trailing
/// backslash is reported as soon as the token before it is taken.
struct Source {
    chars: Vec<char>,
    index: usize,
    next: Option<Tok>,
}

impl Source {
    fn new(pattern: &str) -> ParseResult<Self> {
        let mut source = Source {
            chars: pattern.chars().collect(),
            index: 0,
            next: None,
        };
        source.advance()?;
        Ok(source)
    }

    fn advance(&mut self) -> ParseResult<()> {
        self.next = match self.chars.get(self.index) {
            None => None,
            Some('\\') => match self.chars.get(self.index + 1) {
                None => return Err("bad escape (end of pattern)".into()),
                Some(&c) => {
                    self.index += 2;
                    Some(Tok::Esc(c))
                }
            },
            Some(&c) => {
                self.index += 1;
                Some(Tok::Char(c))
            }
        };
        Ok(())
    }

    fn get(&mut self) -> ParseResult<Option<Tok>> {
        let this = self.next;
        self.advance()?;
        Ok(this)
    }

    /// Takes the next token if it is the unescaped `c`.
    fn take(&mut self, c: char) -> ParseResult<bool> {
        if self.next == Some(Tok::Char(c)) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn tell(&self) -> usize {
        match self.next {
            None => self.index,
            Some(Tok::Char(_)) => self.index - 1,
            Some(Tok::Esc(_)) => self.index - 2,
        }
    }

    fn seek(&mut self, index: usize) -> ParseResult<()> {
        self.index = index;
        self.advance()
    }

    /// Up to `n` unescaped characters satisfying `accept`.
    fn take_while(&mut self, n: usize, accept: fn(char) -> bool) -> ParseResult<String> {
        let mut result = String::new();
        for _ in 0..n {
            match self.next {
                Some(Tok::Char(c)) if accept(c) => {
                    result.push(c);
                    self.advance()?;
                }
                _ => break,
            }
        }
        Ok(result)
    }

    fn take_until(&mut self, terminator: char, name: &str) -> ParseResult<String> {
        let mut result = String::new();
        loop {
            let c = self.get()?;
            match c {
                None if result.is_empty() => return Err(format!("missing {name}").into()),
                None => return Err(format!("missing {terminator}, unterminated name").into()),
                Some(Tok::Char(t)) if t == terminator => {
                    if result.is_empty() {
                        return Err(format!("missing {name}").into());
                    }
                    return Ok(result);
                }
                Some(tok) => result.push_str(&tok.to_string()),
            }
        }
    }
}

fn is_octal(c: char) -> bool {
    matches!(c, '0'..='7')
}

/// `str.isidentifier()`.
fn is_identifier(name: &str) -> bool {
    static IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\A[_\p{XID_Start}]\p{XID_Continue}*\z").expect("static regex is valid")
    });
    IDENTIFIER.is_match(name)
}

/// Python's `repr()` of a string, as its error messages quote names.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The parser's view of groups, like Python's `State`.
struct Parser {
    src: Source,
    group_names: HashMap<String, usize>,
    /// Per group number (0 is the whole match, never closed): whether its `)` has been seen.
    group_closed: Vec<bool>,
    lookbehind_groups: Option<usize>,
    /// Group numbers used by conditionals, checked once all groups are known.
    conditional_refs: Vec<u64>,
}

/// Parses a Python pattern. Global inline flags (`(?i)`, `(?ms)`) are taken at the very start of
/// the pattern, as Python 3.11 takes them, and refused anywhere else.
pub(super) fn parse(pattern: &str) -> ParseResult<Node> {
    let (flags, pattern) = leading_flags(pattern)?;
    let mut parser = Parser {
        src: Source::new(pattern)?,
        group_names: HashMap::new(),
        group_closed: vec![false],
        lookbehind_groups: None,
        conditional_refs: Vec::new(),
    };
    let node = parser.parse_sub(flags, 0)?;
    if parser.src.next.is_some() {
        return Err("unbalanced parenthesis".into());
    }
    let groups = parser.group_closed.len() as u64;
    if let Some(g) = parser.conditional_refs.iter().find(|&&g| g >= groups) {
        return Err(format!("invalid group reference {g}").into());
    }
    Ok(node)
}

/// The global flag groups a pattern starts with (`(?i)(?m)...`), and the rest of it. Groups with
/// other letters are left to the parser, which says what is wrong with them as Python does.
fn leading_flags(pattern: &str) -> ParseResult<(u8, &str)> {
    let mut flags = 0;
    let mut rest = pattern;
    while let Some(inner) = rest.strip_prefix("(?") {
        let Some(end) = inner.find(')') else {
            break;
        };
        let letters = &inner[..end];
        if letters.is_empty() || !letters.chars().all(|c| "aimsux".contains(c)) {
            break;
        }
        let add = letters
            .chars()
            .filter_map(|c| flag_of(Tok::Char(c)))
            .fold(0, |all, flag| all | flag);
        if (add & TYPE_FLAGS).count_ones() > 1
            || (add & TYPE_FLAGS != 0
                && flags & TYPE_FLAGS != 0
                && add & TYPE_FLAGS != flags & TYPE_FLAGS)
        {
            return Err("bad inline flags: flags 'a', 'u' and 'L' are incompatible".into());
        }
        flags = combine_flags(flags, add, 0);
        rest = &inner[end + 1..];
    }
    Ok((flags, rest))
}

impl Parser {
    fn groups(&self) -> usize {
        self.group_closed.len()
    }

    fn check_group(&self, gid: usize) -> bool {
        self.group_closed.get(gid).copied().unwrap_or(false)
    }

    fn check_lookbehind_group(&self, gid: usize) -> ParseResult<()> {
        if let Some(first) = self.lookbehind_groups {
            if !self.check_group(gid) {
                return Err("cannot refer to an open group".into());
            }
            if gid >= first {
                return Err(
                    "cannot refer to group defined in the same lookbehind subpattern".into(),
                );
            }
        }
        Ok(())
    }

    fn check_group_name(name: &str) -> ParseResult<()> {
        if is_identifier(name) {
            Ok(())
        } else {
            Err(format!("bad character in group name {}", py_repr(name)).into())
        }
    }

    /// `a|b|c`
    fn parse_sub(&mut self, flags: u8, depth: usize) -> ParseResult<Node> {
        if depth > NEST_LIMIT {
            return Err(ParseError::TooDeep);
        }
        let mut branches = vec![self.parse_seq(flags, depth)?];
        while self.src.take('|')? {
            branches.push(self.parse_seq(flags, depth)?);
        }
        Ok(if branches.len() == 1 {
            branches.remove(0)
        } else {
            Node::Alternation(branches)
        })
    }

    /// A sequence up to the next `|` or `)`.
    fn parse_seq(&mut self, flags: u8, depth: usize) -> ParseResult<Node> {
        let mut items: Vec<Node> = Vec::new();
        while let Some(this) = self.src.next {
            if matches!(this, Tok::Char('|' | ')')) {
                break;
            }
            self.src.get()?;
            if flags & FLAG_X != 0 {
                match this {
                    Tok::Char(' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C') => continue,
                    Tok::Char('#') => {
                        while !matches!(self.src.get()?, None | Some(Tok::Char('\n'))) {}
                        continue;
                    }
                    _ => {}
                }
            }
            match this {
                Tok::Esc(c) => items.push(self.escape(c, flags)?),
                Tok::Char('[') => items.push(self.class(flags)?),
                Tok::Char(c @ ('*' | '+' | '?' | '{')) => self.repeat(c, flags, &mut items)?,
                Tok::Char('.') => items.push(Node::Any {
                    dotall: flags & FLAG_S != 0,
                }),
                Tok::Char('(') => {
                    if let Some(node) = self.group(flags, depth)? {
                        items.push(node);
                    }
                }
                Tok::Char('^') => items.push(Node::Anchor(Anchor::Start {
                    multiline: flags & FLAG_M != 0,
                })),
                Tok::Char('$') => items.push(Node::Anchor(Anchor::End {
                    multiline: flags & FLAG_M != 0,
                })),
                Tok::Char(c) => items.push(literal(c as u32, flags)),
            }
        }
        Ok(Node::Concat(items))
    }

    /// `?`, `*`, `+`, `{m,n}` and their lazy/possessive forms, applied to the last item. A `{`
    /// that does not start a valid count is a literal.
    fn repeat(&mut self, this: char, flags: u8, items: &mut Vec<Node>) -> ParseResult<()> {
        let here = self.src.tell();
        let (min, max) = match this {
            '?' => (0, Some(1)),
            '*' => (0, None),
            '+' => (1, None),
            _ => {
                if self.src.next == Some(Tok::Char('}')) {
                    items.push(literal('{' as u32, flags));
                    return Ok(());
                }
                let lo = self.src.take_while(usize::MAX, |c| c.is_ascii_digit())?;
                let hi = if self.src.take(',')? {
                    self.src.take_while(usize::MAX, |c| c.is_ascii_digit())?
                } else {
                    lo.clone()
                };
                if !self.src.take('}')? {
                    items.push(literal('{' as u32, flags));
                    self.src.seek(here)?;
                    return Ok(());
                }
                let min = if lo.is_empty() { 0 } else { repeat_count(&lo)? };
                let max = if hi.is_empty() {
                    None
                } else {
                    let max = repeat_count(&hi)?;
                    if max < min {
                        return Err("min repeat greater than max repeat".into());
                    }
                    Some(max)
                };
                (min, max)
            }
        };
        let body = match items.pop() {
            None | Some(Node::Anchor(_)) => return Err("nothing to repeat".into()),
            Some(Node::Repeat { .. }) => return Err("multiple repeat".into()),
            Some(body) => body,
        };
        let kind = if self.src.take('?')? {
            RepeatKind::Lazy
        } else if self.src.take('+')? {
            RepeatKind::Possessive
        } else {
            RepeatKind::Greedy
        };
        items.push(Node::Repeat {
            body: Box::new(body),
            min,
            max,
            kind,
        });
        Ok(())
    }

    /// Everything after `(`. `None` for a comment, which leaves nothing behind.
    fn group(&mut self, flags: u8, depth: usize) -> ParseResult<Option<Node>> {
        let mut capture = true;
        let mut atomic = false;
        let mut name = None;
        let mut sub_flags = flags;
        if self.src.take('?')? {
            let Some(ext) = self.src.get()? else {
                return Err("unexpected end of pattern".into());
            };
            match ext {
                Tok::Char('P') => {
                    if self.src.take('<')? {
                        let n = self.src.take_until('>', "group name")?;
                        Self::check_group_name(&n)?;
                        name = Some(n);
                    } else if self.src.take('=')? {
                        let n = self.src.take_until(')', "group name")?;
                        Self::check_group_name(&n)?;
                        let Some(&gid) = self.group_names.get(&n) else {
                            return Err(format!("unknown group name {}", py_repr(&n)).into());
                        };
                        if !self.check_group(gid) {
                            return Err("cannot refer to an open group".into());
                        }
                        self.check_lookbehind_group(gid)?;
                        return Ok(Some(Node::Unsupported(BACKREFERENCE)));
                    } else {
                        let Some(c) = self.src.get()? else {
                            return Err("unexpected end of pattern".into());
                        };
                        return Err(format!("unknown extension ?P{c}").into());
                    }
                }
                Tok::Char(':') => capture = false,
                Tok::Char('#') => loop {
                    if self.src.next.is_none() {
                        return Err("missing ), unterminated comment".into());
                    }
                    if self.src.get()? == Some(Tok::Char(')')) {
                        return Ok(None);
                    }
                },
                Tok::Char(c @ ('=' | '!' | '<')) => {
                    let lookbehind = c == '<';
                    if lookbehind {
                        match self.src.get()? {
                            None => return Err("unexpected end of pattern".into()),
                            Some(Tok::Char('=' | '!')) => {}
                            Some(c) => return Err(format!("unknown extension ?<{c}").into()),
                        }
                    }
                    let outer = self.lookbehind_groups;
                    if lookbehind && outer.is_none() {
                        self.lookbehind_groups = Some(self.groups());
                    }
                    self.parse_sub(flags, depth + 1)?;
                    if lookbehind && outer.is_none() {
                        self.lookbehind_groups = None;
                    }
                    if !self.src.take(')')? {
                        return Err("missing ), unterminated subpattern".into());
                    }
                    return Ok(Some(Node::Unsupported(LOOKAROUND)));
                }
                Tok::Char('(') => {
                    self.conditional(flags, depth)?;
                    return Ok(Some(Node::Unsupported(CONDITIONAL)));
                }
                Tok::Char('>') => {
                    capture = false;
                    atomic = true;
                }
                Tok::Char(c) if c == '-' || flag_of(ext).is_some() => {
                    let (add, del) = self.inline_flags(c)?;
                    sub_flags = combine_flags(flags, add, del);
                    capture = false;
                }
                other => return Err(format!("unknown extension ?{other}").into()),
            }
        }
        let gid = if capture {
            let gid = self.groups();
            if let Some(name) = name {
                if let Some(&old) = self.group_names.get(&name) {
                    return Err(format!(
                        "redefinition of group name {} as group {gid}; was group {old}",
                        py_repr(&name)
                    )
                    .into());
                }
                self.group_names.insert(name, gid);
            }
            self.group_closed.push(false);
            Some(gid)
        } else {
            None
        };
        let body = self.parse_sub(sub_flags, depth + 1)?;
        if !self.src.take(')')? {
            return Err("missing ), unterminated subpattern".into());
        }
        if let Some(gid) = gid {
            self.group_closed[gid] = true;
        }
        Ok(Some(if atomic {
            Node::Unsupported(ATOMIC)
        } else {
            Node::Group(Box::new(body))
        }))
    }

    /// `(?(id/name)yes|no)`, validated as Python does; group numbers are plain ASCII digits here
    /// (Python's `int()` also takes signs and other scripts' digits, with a warning).
    fn conditional(&mut self, flags: u8, depth: usize) -> ParseResult<()> {
        let condname = self.src.take_until(')', "group name")?;
        let gid = if is_identifier(&condname) {
            match self.group_names.get(&condname) {
                Some(&gid) => gid,
                None => {
                    return Err(format!("unknown group name {}", py_repr(&condname)).into());
                }
            }
        } else {
            let number = condname
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| condname.parse::<u64>().unwrap_or(u64::MAX));
            let Some(number) = number else {
                return Err(format!("bad character in group name {}", py_repr(&condname)).into());
            };
            if number == 0 {
                return Err("bad group number".into());
            }
            if number >= MAXGROUPS {
                return Err(format!("invalid group reference {number}").into());
            }
            if !self.conditional_refs.contains(&number) {
                self.conditional_refs.push(number);
            }
            usize::try_from(number).unwrap_or(usize::MAX)
        };
        self.check_lookbehind_group(gid)?;
        self.parse_seq(flags, depth + 1)?;
        if self.src.take('|')? {
            self.parse_seq(flags, depth + 1)?;
            if self.src.next == Some(Tok::Char('|')) {
                return Err("conditional backref with more than two branches".into());
            }
        }
        if !self.src.take(')')? {
            return Err("missing ), unterminated subpattern".into());
        }
        Ok(())
    }

    /// `(?aiLmsux-imsx:`: returns the flags to add and remove. `(?flags)` without a colon is a
    /// global flag group, which Python refuses anywhere but at the very start.
    fn inline_flags(&mut self, first: char) -> ParseResult<(u8, u8)> {
        let (mut add, mut del) = (0u8, 0u8);
        let mut next = Tok::Char(first);
        if first != '-' {
            while let Some(flag) = flag_of(next) {
                if flag == FLAG_L {
                    return Err("bad inline flags: cannot use 'L' flag with a str pattern".into());
                }
                add |= flag;
                if flag & TYPE_FLAGS != 0 && add & TYPE_FLAGS != flag {
                    return Err("bad inline flags: flags 'a', 'u' and 'L' are incompatible".into());
                }
                next = self.src.get()?.ok_or("missing -, : or )")?;
                if !matches!(next, Tok::Char(')' | '-' | ':')) && flag_of(next).is_none() {
                    return Err(if next.is_alpha() {
                        "unknown flag".into()
                    } else {
                        "missing -, : or )".into()
                    });
                }
            }
        }
        if next == Tok::Char(')') {
            return Err("global flags not at the start of the expression".into());
        }
        if add & FLAG_T != 0 {
            return Err("bad inline flags: cannot turn on global flag".into());
        }
        if next == Tok::Char('-') {
            next = self.src.get()?.ok_or("missing flag")?;
            if flag_of(next).is_none() {
                return Err(if next.is_alpha() {
                    "unknown flag".into()
                } else {
                    "missing flag".into()
                });
            }
            while let Some(flag) = flag_of(next) {
                if flag & TYPE_FLAGS != 0 {
                    return Err("bad inline flags: cannot turn off flags 'a', 'u' and 'L'".into());
                }
                del |= flag;
                next = self.src.get()?.ok_or("missing :")?;
                if next != Tok::Char(':') && flag_of(next).is_none() {
                    return Err(if next.is_alpha() {
                        "unknown flag".into()
                    } else {
                        "missing :".into()
                    });
                }
            }
        }
        if del & FLAG_T != 0 {
            return Err("bad inline flags: cannot turn off global flag".into());
        }
        if add & del != 0 {
            return Err("bad inline flags: flag turned on and off".into());
        }
        Ok((add, del))
    }

    /// An escape outside a set.
    fn escape(&mut self, c: char, flags: u8) -> ParseResult<Node> {
        let ascii = flags & FLAG_A != 0;
        let node = match c {
            'A' => Node::Anchor(Anchor::StartString),
            'Z' => Node::Anchor(Anchor::EndString),
            'b' => Node::Anchor(Anchor::Boundary { ascii }),
            'B' => Node::Anchor(Anchor::NonBoundary { ascii }),
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => Node::Class {
                negated: false,
                items: vec![ClassItem::Category { kind: c, ascii }],
                fold: Fold::None,
            },
            '0' => {
                let digits = self.src.take_while(2, is_octal)?;
                literal(
                    u32::from_str_radix(&format!("0{digits}"), 8).unwrap_or(0),
                    flags,
                )
            }
            '1'..='9' => {
                let mut digits = c.to_string();
                if let Some(Tok::Char(d)) = self.src.next
                    && d.is_ascii_digit()
                {
                    self.src.get()?;
                    digits.push(d);
                    if let Some(Tok::Char(e)) = self.src.next
                        && is_octal(c)
                        && is_octal(d)
                        && is_octal(e)
                    {
                        self.src.get()?;
                        digits.push(e);
                        return Ok(literal(octal_escape(&digits)?, flags));
                    }
                }
                let group: usize = digits.parse().unwrap_or(usize::MAX);
                if group >= self.groups() {
                    return Err(format!("invalid group reference {group}").into());
                }
                if !self.check_group(group) {
                    return Err("cannot refer to an open group".into());
                }
                self.check_lookbehind_group(group)?;
                Node::Unsupported(BACKREFERENCE)
            }
            _ => match self.common_escape(c, 'b')? {
                Some(code) => literal(code, flags),
                None => Node::Unsupported(NAMED_CHAR),
            },
        };
        Ok(node)
    }

    /// An escape inside a set (where `\b` is a backspace and digits are always octal).
    fn class_escape(&mut self, c: char) -> ParseResult<ClassAtom> {
        Ok(match c {
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => ClassAtom::Category(c),
            '0'..='7' => {
                let digits = format!("{c}{}", self.src.take_while(2, is_octal)?);
                ClassAtom::Literal(octal_escape(&digits)?)
            }
            '8' | '9' => return Err(format!("bad escape \\{c}").into()),
            _ => match self.common_escape(c, '\u{8}')? {
                Some(code) => ClassAtom::Literal(code),
                None => ClassAtom::Named,
            },
        })
    }

    /// The escapes shared by both contexts; `b` is what `\b` means here. `None` for `\N{name}`,
    /// which needs Python's Unicode name table.
    fn common_escape(&mut self, c: char, b: char) -> ParseResult<Option<u32>> {
        let fixed = match c {
            'a' => '\u{7}',
            'b' => b,
            'f' => '\u{C}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{B}',
            'x' | 'u' | 'U' => {
                let width = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex = self.src.take_while(width, |h| h.is_ascii_hexdigit())?;
                if hex.len() != width {
                    return Err(format!("incomplete escape \\{c}{hex}").into());
                }
                let code = u32::from_str_radix(&hex, 16).unwrap_or(u32::MAX);
                if code > 0x10FFFF {
                    return Err(format!("bad escape \\{c}{hex}").into());
                }
                return Ok(Some(code));
            }
            'N' => {
                if !self.src.take('{')? {
                    return Err("missing {".into());
                }
                self.src.take_until('}', "character name")?;
                return Ok(None);
            }
            c if c.is_ascii_alphabetic() => return Err(format!("bad escape \\{c}").into()),
            c => c,
        };
        Ok(Some(fixed as u32))
    }

    /// `[...]`, after the `[`.
    fn class(&mut self, flags: u8) -> ParseResult<Node> {
        let negated = self.src.take('^')?;
        let ascii = flags & FLAG_A != 0;
        let mut items = Vec::new();
        // Python's set is non-empty once anything was read, even a `\N{...}` we cannot resolve.
        let mut seen = false;
        let mut named = false;
        loop {
            let this = self.src.get()?.ok_or("unterminated character set")?;
            if this == Tok::Char(']') && seen {
                break;
            }
            seen = true;
            let code1 = self.class_atom(this)?;
            if self.src.take('-')? {
                let that = self.src.get()?.ok_or("unterminated character set")?;
                if that == Tok::Char(']') {
                    named |= code1.push_to(&mut items, ascii);
                    items.push(ClassItem::Range('-' as u32, '-' as u32));
                    break;
                }
                let code2 = self.class_atom(that)?;
                let bad_range = || format!("bad character range {this}-{that}");
                match (code1, code2) {
                    (ClassAtom::Literal(lo), ClassAtom::Literal(hi)) => {
                        if hi < lo {
                            return Err(bad_range().into());
                        }
                        items.push(ClassItem::Range(lo, hi));
                    }
                    (
                        ClassAtom::Literal(_) | ClassAtom::Named,
                        ClassAtom::Literal(_) | ClassAtom::Named,
                    ) => named = true,
                    _ => return Err(bad_range().into()),
                }
            } else {
                named |= code1.push_to(&mut items, ascii);
            }
        }
        Ok(if named {
            Node::Unsupported(NAMED_CHAR)
        } else {
            Node::Class {
                negated,
                items,
                fold: fold(flags),
            }
        })
    }

    fn class_atom(&mut self, tok: Tok) -> ParseResult<ClassAtom> {
        match tok {
            Tok::Esc(c) => self.class_escape(c),
            Tok::Char(c) => Ok(ClassAtom::Literal(c as u32)),
        }
    }
}

/// One element read inside `[...]`.
#[derive(Debug, Clone, Copy)]
enum ClassAtom {
    Literal(u32),
    Category(char),
    /// `\N{...}`: a literal whose value we cannot know.
    Named,
}

impl ClassAtom {
    /// Adds the atom as a set item; true if it is a `\N{...}`.
    fn push_to(self, items: &mut Vec<ClassItem>, ascii: bool) -> bool {
        match self {
            ClassAtom::Literal(c) => items.push(ClassItem::Range(c, c)),
            ClassAtom::Category(kind) => items.push(ClassItem::Category { kind, ascii }),
            ClassAtom::Named => return true,
        }
        false
    }
}

fn fold(flags: u8) -> Fold {
    match (flags & FLAG_I != 0, flags & FLAG_A != 0) {
        (false, _) => Fold::None,
        (true, true) => Fold::Ascii,
        (true, false) => Fold::Unicode,
    }
}

fn literal(code: u32, flags: u8) -> Node {
    Node::Literal {
        code,
        fold: fold(flags),
    }
}

fn octal_escape(digits: &str) -> ParseResult<u32> {
    let value = u32::from_str_radix(digits, 8).unwrap_or(u32::MAX);
    if value > 0o377 {
        return Err(format!("octal escape value \\{digits} outside of range 0-0o377").into());
    }
    Ok(value)
}

fn repeat_count(digits: &str) -> ParseResult<u32> {
    match digits.parse::<u64>() {
        Ok(n) if n < MAXREPEAT => Ok(n as u32),
        _ => Err("the repetition number is too large".into()),
    }
}
