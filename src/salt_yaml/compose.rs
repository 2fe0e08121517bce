//! From parser events to a node tree with resolved tags, like PyYAML's composer.
//!
//! saphyr-parser reads YAML 1.2; Salt's composer (libyaml's, through PyYAML) differs in ways
//! that decide between a value and an error, so those rules are enforced here: one document
//! only, anchors named with `[0-9A-Za-z_-]` and never defined twice. Aliases share the node
//! they point to; an alias to a node that is still open would make a self-containing value,
//! which msgpack cannot carry, so it is refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};

use super::YamlError;
use super::resolve::{MAP, SEQ, STR, resolve_scalar};

/// Deepest nesting accepted, counting alias expansion. Composing, constructing and dropping
/// values recurse once per level, and this keeps a debug build within a 2 MiB thread stack
/// (tokio's default). Salt has no limit of its own; no config or CLI argument comes near.
pub(super) const MAX_DEPTH: usize = 128;

/// Most bytes a document may expand to once aliases are followed: its scalars' text plus
/// [`NODE_COST`] per node. Refuses "billion laughs" documents that are small as text but huge
/// as a value, whether through many nodes or through a few long scalars repeated (64 MiB, the
/// largest frame a bus or link carries).
pub(super) const MAX_EXPANDED_BYTES: u64 = 64 * 1024 * 1024;

/// What one node counts for in [`MAX_EXPANDED_BYTES`] besides its text, near what a node
/// costs once built: at most 1 Mi nodes.
const NODE_COST: u64 = 64;

/// A composed node: its kind, its resolved tag and where it starts.
#[derive(Debug)]
pub(super) struct Node {
    pub kind: Kind,
    pub tag: String,
    pub line: usize,
    pub column: usize,
    /// Bytes of this subtree with aliases expanded, for [`MAX_EXPANDED_BYTES`].
    weight: u64,
    /// Nesting levels in this subtree with aliases expanded, for [`MAX_DEPTH`].
    height: usize,
}

/// What a node holds.
#[derive(Debug)]
pub(super) enum Kind {
    Scalar(String),
    Seq(Vec<Rc<Node>>),
    Map(Vec<(Rc<Node>, Rc<Node>)>),
}

impl Node {
    /// PyYAML's name for the node kind, used in error messages.
    pub(super) fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Scalar(_) => "scalar",
            Kind::Seq(_) => "sequence",
            Kind::Map(_) => "mapping",
        }
    }

    /// The same node under another tag (the `=` key that Salt's loader reads as a string).
    pub(super) fn retagged(&self, tag: &str) -> Rc<Node> {
        let kind = match &self.kind {
            Kind::Scalar(v) => Kind::Scalar(v.clone()),
            Kind::Seq(items) => Kind::Seq(items.clone()),
            Kind::Map(pairs) => Kind::Map(pairs.clone()),
        };
        Rc::new(Node {
            kind,
            tag: tag.to_owned(),
            ..*self
        })
    }

    pub(super) fn error(&self, problem: impl Into<String>) -> YamlError {
        YamlError {
            line: self.line,
            column: self.column,
            problem: problem.into(),
        }
    }
}

/// Most texts rewritten to get around saphyr-parser's stricter spellings (see [`workaround`])
/// before giving up; bounds the work on texts that need many.
const MAX_WORKAROUNDS: usize = 1000;

/// Composes the single document in `text`, refused past `max_expanded` bytes once built (see
/// [`MAX_EXPANDED_BYTES`]); `None` for a stream without one.
pub(super) fn compose(text: &str, max_expanded: u64) -> Result<Option<Rc<Node>>, YamlError> {
    // libyaml reads NEL as a line break and turns it into `\n`; saphyr-parser reads it as
    // content. (LS and PS are breaks to libyaml too, but it keeps them in the value where a
    // string holds one, which is what reading them as content gives.)
    let mut text = text.replace('\u{85}', "\n");
    check_stream_start(&text)?;
    for _ in 0..MAX_WORKAROUNDS {
        let mut composer = Composer {
            parser: Parser::new_from_str(&text),
            chars: text.chars().collect(),
            ends_with_break: text.ends_with(['\n', '\r']),
            anchors: HashMap::new(),
            anchor_names: HashMap::new(),
            max_expanded,
        };
        match composer.document() {
            Ok(root) => return Ok(root),
            Err(Failure::Scan(e)) => match workaround(&composer.chars, &e) {
                Some(fixed) => text = fixed,
                None => return Err(at(*e.marker(), e.info())),
            },
            Err(Failure::Compose(e)) => return Err(e),
            Err(Failure::Reread(fixed)) => text = fixed,
        }
    }
    Err(at(Marker::default(), "too many spots that need rewriting"))
}

/// Why composing stopped: the parser refused the text, Salt's rules refuse the document, or
/// the parser read something differently from libyaml and this rewritten text must be read
/// instead.
enum Failure {
    Scan(ScanError),
    Compose(YamlError),
    Reread(String),
}

impl From<YamlError> for Failure {
    fn from(e: YamlError) -> Self {
        Failure::Compose(e)
    }
}

/// A text that libyaml reads but saphyr-parser refuses, rewritten into an equivalent one that
/// both read the same way, judged by where and why the parser stopped.
fn workaround(chars: &[char], e: &ScanError) -> Option<String> {
    let at = e.marker().index();
    let mut fixed = chars.to_vec();
    match e.info() {
        // `key:\tvalue`: a tab is separation space after a value indicator for libyaml.
        "':' must be followed by a valid YAML whitespace" => {
            let colon = chars[..at.min(chars.len())]
                .iter()
                .rposition(|&c| c == ':')?;
            if chars.get(colon + 1) != Some(&'\t') {
                return None;
            }
            fixed[colon + 1] = ' ';
        }
        // `|#c`, `'a'#c`, `[a]#c`: libyaml starts a comment at any `#` between tokens.
        "comments must be separated from other tokens by whitespace" => {
            if chars.get(at) != Some(&'#') {
                return None;
            }
            fixed.insert(at, ' ');
        }
        // A tab in the leading space of a quoted scalar's next line, which folding drops.
        "tab cannot be used as indentation" => {
            if chars.get(at) != Some(&'\t') {
                return None;
            }
            fixed[at] = ' ';
        }
        // A `?` key indicator right before a line break or the end.
        "expected whitespace" => {
            if at == 0 || chars.get(at - 1) != Some(&'?') {
                return None;
            }
            fixed.insert(at, ' ');
        }
        // `[-]`: a lone `-` before a flow indicator is the plain scalar "-" for libyaml; quoted,
        // it is the same string.
        "plain scalar cannot start with '-' followed by ,[]{}" => {
            if chars.get(at) != Some(&'-') || !starts_node(chars, at) {
                return None;
            }
            fixed.splice(at..=at, ['\'', '-', '\'']);
        }
        _ => return None,
    }
    Some(fixed.into_iter().collect())
}

/// Where a node's content starts, past the space and properties (`&anchor`, `!tag`) from
/// `start`.
fn content_start(chars: &[char], mut start: usize) -> usize {
    let skip_space = |i: usize| i + chars[i..].iter().take_while(|c| c.is_whitespace()).count();
    start = skip_space(start.min(chars.len()));
    while let Some('&' | '!') = chars.get(start) {
        start += chars[start..]
            .iter()
            .take_while(|c| !c.is_whitespace())
            .count();
        start = skip_space(start);
    }
    start
}

/// Whether a node can start at `at`: it follows a flow or value indicator, properties, or
/// nothing, rather than being inside a plain scalar.
fn starts_node(chars: &[char], at: usize) -> bool {
    let before = &chars[..at.min(chars.len())];
    let Some(last) = before.iter().rposition(|c| !c.is_whitespace()) else {
        return true;
    };
    if matches!(before[last], '[' | '{' | ',' | ':') {
        return true;
    }
    let word_start = before[..=last]
        .iter()
        .rposition(|c| c.is_whitespace() || "[{,".contains(*c))
        .map_or(0, |i| i + 1);
    last + 1 < at && matches!(before[word_start], '&' | '!')
}

/// What libyaml refuses before the first document: a `%YAML` version other than 1.1 or 1.2,
/// and a `...` document end with no document before it.
fn check_stream_start(text: &str) -> Result<(), YamlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let error = |problem: &str| YamlError {
            line: i + 1,
            column: 1,
            problem: problem.to_owned(),
        };
        let content = line.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(version) = line.strip_prefix("%YAML") {
            let version = version.split('#').next().unwrap_or("").trim();
            if !matches!(version, "1.1" | "1.2") {
                return Err(error("found incompatible YAML document"));
            }
            continue;
        }
        if line.starts_with('%') {
            continue;
        }
        if line == "..." || line.starts_with("... ") || line.starts_with("...\t") {
            return Err(error("did not find expected node content"));
        }
        break;
    }
    Ok(())
}

struct Composer<'a> {
    parser: Parser<'a, StrInput<'a>>,
    /// The text by character, as the parser's marks count.
    chars: Vec<char>,
    /// Whether the text ends with a line break, which block scalars at the end depend on.
    ends_with_break: bool,
    /// Anchor id → node; `None` while the anchored collection is still open.
    anchors: HashMap<usize, Option<Rc<Node>>>,
    /// Anchor name → where it was first defined.
    anchor_names: HashMap<String, (usize, usize)>,
    /// The most bytes the document may be once built.
    max_expanded: u64,
}

fn at(mark: Marker, problem: impl Into<String>) -> YamlError {
    YamlError {
        line: mark.line(),
        column: mark.col() + 1,
        problem: problem.into(),
    }
}

/// libyaml's anchor name characters.
fn is_anchor_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl<'a> Composer<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), Failure> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(Failure::Scan(e)),
            None => Err(at(Marker::default(), "unexpected end of the event stream").into()),
        }
    }

    fn document(&mut self) -> Result<Option<Rc<Node>>, Failure> {
        self.next()?; // StreamStart
        match self.next()? {
            (Event::StreamEnd, _) => return Ok(None),
            (Event::DocumentStart(_), _) => {}
            (_, span) => return Err(at(span.start, "expected the start of a document").into()),
        }
        let (event, span) = self.next()?;
        let root = self.node(event, span, 0, false)?;
        if root.weight > self.max_expanded {
            let limit = match self.max_expanded {
                bytes if bytes % (1 << 20) == 0 => format!("{} MiB", bytes >> 20),
                bytes => format!("{bytes} bytes"),
            };
            return Err(root
                .error(format!(
                    "the document is more than {limit} once built (its text and {NODE_COST} bytes a node, aliases followed); split it into smaller files"
                ))
                .into());
        }
        self.next()?; // DocumentEnd
        match self.next()? {
            (Event::StreamEnd, _) => Ok(Some(root)),
            (_, span) => Err(at(
                span.start,
                "expected a single document in the stream, but found another document",
            )
            .into()),
        }
    }

    /// Composes the node that `event` starts, `depth` levels down, inside a flow collection
    /// if `in_flow`. Each kind has its own function so that the frame repeated per level of
    /// nesting stays small.
    fn node(
        &mut self,
        event: Event<'a>,
        span: Span,
        depth: usize,
        in_flow: bool,
    ) -> Result<Rc<Node>, Failure> {
        if depth >= MAX_DEPTH {
            return Err(too_deep(span).into());
        }
        let (node, anchor) = match event {
            Event::Alias(id) => return self.alias(id, span, depth),
            Event::Scalar(value, style, anchor, tag) => {
                let node = self.scalar(value, style, anchor, tag.as_deref(), span, in_flow)?;
                (node, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                let node = self.sequence(anchor, tag.as_deref(), span, depth, in_flow)?;
                (node, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                let node = self.mapping(anchor, tag.as_deref(), span, depth, in_flow)?;
                (node, anchor)
            }
            _ => return Err(at(span.start, "expected a node").into()),
        };
        let node = Rc::new(node);
        if anchor > 0 {
            self.anchors.insert(anchor, Some(Rc::clone(&node)));
        }
        Ok(node)
    }

    fn alias(&mut self, id: usize, span: Span, depth: usize) -> Result<Rc<Node>, Failure> {
        self.property_name(span.start, '*')?;
        let Some(Some(node)) = self.anchors.get(&id) else {
            return Err(at(span.start, "found an alias to its own enclosing node").into());
        };
        if depth + node.height > MAX_DEPTH {
            return Err(too_deep(span).into());
        }
        Ok(Rc::clone(node))
    }

    fn scalar(
        &mut self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
        in_flow: bool,
    ) -> Result<Node, Failure> {
        // An empty plain scalar has no text of its own to check.
        if in_flow && style == ScalarStyle::Plain && !value.is_empty() {
            let start = content_start(&self.chars, span.start.index());
            match self.chars.get(start) {
                // In a flow collection libyaml always reads `?` as a key indicator (`[?a]` is
                // `[{a: null}]`), where YAML 1.2 starts a plain scalar; spelled with a space,
                // saphyr-parser reads it as libyaml does.
                Some('?') => {
                    let mut fixed = self.chars.clone();
                    fixed.insert(start + 1, ' ');
                    return Err(Failure::Reread(fixed.into_iter().collect()));
                }
                // libyaml starts no plain scalar with these in a flow collection: `|` and `>`
                // are block scalar indicators, and `:` there is always a value indicator.
                Some('|' | '>' | ':') => {
                    return Err(
                        at(span.start, "found character that cannot start any token").into(),
                    );
                }
                _ => {}
            }
        }
        let tag = match full_tag(tag) {
            // A tag alone (`!`, no text) leaves libyaml no text to resolve: a string.
            Some(t) if t == "!" && value.is_empty() && style == ScalarStyle::Plain => {
                STR.to_owned()
            }
            // Otherwise libyaml resolves a `!`-tagged scalar by its text, even quoted.
            Some(t) if t == "!" => resolve_scalar(&value).to_owned(),
            Some(t) => t,
            None if style == ScalarStyle::Plain => resolve_scalar(&value).to_owned(),
            None => STR.to_owned(),
        };
        if in_flow && style == ScalarStyle::Plain && !value.is_empty() {
            self.check_flow_plain_end(span)?;
        }
        let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
        if block {
            self.check_block_indent(span, &value)?;
        }
        self.define(anchor, span)?;
        let mut value = value.into_owned();
        if block
            && span.end.index() >= self.chars.len()
            && !self.ends_with_break
            && value.ends_with('\n')
        {
            // libyaml keeps no final line break that the text does not have.
            value.pop();
        }
        Ok(leaf(value, tag, span))
    }

    fn sequence(
        &mut self,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
        depth: usize,
        in_flow: bool,
    ) -> Result<Node, Failure> {
        let tag = collection_tag(tag, SEQ);
        let in_flow = in_flow || self.opens_flow(span);
        self.define(anchor, span)?;
        let mut items = Vec::new();
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => break,
                (event, span) => items.push(self.node(event, span, depth + 1, in_flow)?),
            }
        }
        let (weight, height) = measure(items.iter());
        Ok(Node {
            kind: Kind::Seq(items),
            tag,
            line: span.start.line(),
            column: span.start.col() + 1,
            weight,
            height,
        })
    }

    fn mapping(
        &mut self,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
        depth: usize,
        in_flow: bool,
    ) -> Result<Node, Failure> {
        let tag = collection_tag(tag, MAP);
        let in_flow = in_flow || self.opens_flow(span);
        self.define(anchor, span)?;
        let mut pairs = Vec::new();
        loop {
            let key = match self.next()? {
                (Event::MappingEnd, _) => break,
                (event, key_span) => {
                    if matches!(&event, Event::Scalar(v, ScalarStyle::Plain, 0, None) if v.is_empty())
                    {
                        self.check_key_present(span, key_span)?;
                    }
                    self.node(event, key_span, depth + 1, in_flow)?
                }
            };
            let (event, value_span) = self.next()?;
            pairs.push((key, self.node(event, value_span, depth + 1, in_flow)?));
        }
        let (weight, height) = measure(pairs.iter().flat_map(|(k, v)| [k, v]));
        Ok(Node {
            kind: Kind::Map(pairs),
            tag,
            line: span.start.line(),
            column: span.start.col() + 1,
            weight,
            height,
        })
    }

    /// Whether a collection event is a `[` or `{`: its span ends after that bracket and any
    /// space behind it, where a block collection's span is empty or ends after `-`.
    fn opens_flow(&self, span: Span) -> bool {
        let (start, end) = (span.start.index(), span.end.index().min(self.chars.len()));
        self.chars[start.min(end)..end]
            .iter()
            .rfind(|c| !c.is_whitespace())
            .is_some_and(|c| matches!(c, '[' | '{'))
    }

    /// libyaml refuses a plain scalar in a flow collection that is followed by `:` and then
    /// one of `,?[]{}` (`[a:]`, `{a:,b}`), where YAML 1.2 reads an empty value.
    fn check_flow_plain_end(&self, span: Span) -> Result<(), YamlError> {
        let mut i = span.end.index();
        while matches!(self.chars.get(i), Some(' ' | '\t')) {
            i += 1;
        }
        if self.chars.get(i) == Some(&':')
            && matches!(
                self.chars.get(i + 1),
                Some(',' | '?' | '[' | ']' | '{' | '}')
            )
        {
            let mark = Marker::new(i, span.end.line(), span.end.col() + i - span.end.index());
            return Err(at(mark, "found unexpected ':' after a plain scalar"));
        }
        Ok(())
    }

    /// libyaml indents block scalar content by at least one space, even at the top level
    /// where YAML 1.2 allows none (`|` then `text` on the next line is an error there). The
    /// span of a block scalar starts at its anchor or tag if it has one (on the header line),
    /// else at its first content character.
    fn check_block_indent(&self, span: Span, value: &str) -> Result<(), YamlError> {
        let mut start = span.start.index();
        let mut line = span.start.line();
        if self.is_block_header(start) {
            let end = span.end.index().min(self.chars.len());
            let Some(header_end) = self.chars[start..end].iter().position(|&c| c == '\n') else {
                return Ok(());
            };
            start += header_end + 1;
            line += 1;
            // Skip blank lines to the first content line.
            while let Some(blank_end) = self.chars[start..end]
                .iter()
                .position(|&c| c == '\n')
                .filter(|&n| {
                    self.chars[start..start + n]
                        .iter()
                        .all(|c| c.is_whitespace())
                })
            {
                start += blank_end + 1;
                line += 1;
            }
        } else if start == 0 || self.chars[start - 1] != '\n' {
            return Ok(());
        }
        match self.chars.get(start) {
            Some(c) if !value.is_empty() && !c.is_whitespace() => Err(YamlError {
                line,
                column: 1,
                problem: "found block scalar content that is not indented".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the line from `start` is properties (`&anchor`, `!tag`) then a `|`/`>` header.
    fn is_block_header(&self, start: usize) -> bool {
        let mut rest = self.chars.get(start..).unwrap_or_default();
        while let Some(&('&' | '!')) = rest.first() {
            let word = rest.iter().take_while(|c| !c.is_whitespace()).count();
            let space = rest[word..]
                .iter()
                .take_while(|&&c| c == ' ' || c == '\t')
                .count();
            if space == 0 {
                return false;
            }
            rest = &rest[word + space..];
            if let Some(&('|' | '>')) = rest.first() {
                return true;
            }
        }
        false
    }

    /// libyaml needs a key before a `:` unless a `?` of this mapping introduced it: `: a`,
    /// `{: a}` and `[: a]` are errors there, though YAML 1.2 reads an empty key.
    fn check_key_present(&self, map: Span, key: Span) -> Result<(), YamlError> {
        let at_key = key.start.index();
        if self.chars.get(at_key) != Some(&':') {
            return Ok(());
        }
        let indicator = self.chars[..at_key]
            .iter()
            .rposition(|c| !c.is_whitespace())
            .filter(|&i| self.chars[i] == '?' && i >= map.start.index());
        match indicator {
            Some(_) => Ok(()),
            None => Err(at(key.start, "did not find expected key")),
        }
    }

    /// Registers an anchor as open, after checking its name the way libyaml and PyYAML do.
    fn define(&mut self, anchor: usize, span: Span) -> Result<(), YamlError> {
        if anchor == 0 {
            return Ok(());
        }
        if let Some((name, mark)) = self.property_name(span.start, '&')? {
            if let Some(&(line, column)) = self.anchor_names.get(&name) {
                return Err(at(
                    mark,
                    format!(
                        "found duplicate anchor '{name}'; first occurrence at line {line}, \
                         column {column}"
                    ),
                ));
            }
            self.anchor_names
                .insert(name, (mark.line(), mark.col() + 1));
        }
        self.anchors.insert(anchor, None);
        Ok(())
    }

    /// Reads back the name after `sigil` (`&` or `*`) of the node whose properties start at
    /// `start`, skipping a tag written before an anchor: saphyr-parser only hands out numeric
    /// ids, and Salt's rules need the names.
    fn property_name(
        &self,
        start: Marker,
        sigil: char,
    ) -> Result<Option<(String, Marker)>, YamlError> {
        let Some(rest) = self.chars.get(start.index()..) else {
            return Ok(None);
        };
        let skipped = if sigil == '&' && rest.first() == Some(&'!') {
            let tag_len = rest.iter().take_while(|c| !c.is_whitespace()).count();
            let space = rest[tag_len..]
                .iter()
                .take_while(|c| c.is_whitespace())
                .count();
            tag_len + space
        } else {
            0
        };
        if rest.get(skipped) != Some(&sigil) {
            return Ok(None);
        }
        let name: String = rest[skipped + 1..]
            .iter()
            .take_while(|c| !c.is_whitespace() && !",[]{}".contains(**c))
            .collect();
        let mark = Marker::new(start.index() + skipped, start.line(), start.col() + skipped);
        let after = rest.get(skipped + 1 + name.chars().count());
        if name.is_empty() || !name.chars().all(is_anchor_char) || matches!(after, Some('[' | '{'))
        {
            return Err(at(
                mark,
                format!(
                    "did not find expected alphabetic or numeric character in the anchor or \
                     alias name {name:?}"
                ),
            ));
        }
        Ok(Some((name, mark)))
    }
}

fn collection_tag(tag: Option<&Tag>, default: &str) -> String {
    match full_tag(tag) {
        Some(t) if t != "!" => t,
        _ => default.to_owned(),
    }
}

/// The full name of an explicit tag; `!` for the non-specific one.
fn full_tag(tag: Option<&Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

fn too_deep(span: Span) -> YamlError {
    at(
        span.start,
        format!("nesting deeper than {MAX_DEPTH} levels"),
    )
}

fn leaf(value: String, tag: String, span: Span) -> Node {
    Node {
        weight: NODE_COST + value.len() as u64,
        kind: Kind::Scalar(value),
        tag,
        line: span.start.line(),
        column: span.start.col() + 1,
        height: 1,
    }
}

/// Expanded size and depth of a collection with these children.
fn measure<'n>(children: impl Iterator<Item = &'n Rc<Node>>) -> (u64, usize) {
    children.fold((NODE_COST, 1), |(weight, height), child| {
        (
            weight.saturating_add(child.weight),
            height.max(child.height + 1),
        )
    })
}
