//! Salt's compound targets: words joined by `and`, `or`, `not` and parentheses, each word a
//! glob on the id or an engine-prefixed pattern (`G@` grain, `P@` grain regex, `I@` pillar,
//! `J@` pillar regex, `S@` address or network, `L@` list, `E@` id regex).
//!
//! Salt turns each word into `True` or `False`, puts an `and` before a `not` that follows a
//! term, and hands the text to Python's `eval`: so `not` binds tighter than `and`, `and`
//! tighter than `or`, and anything Python would not parse (`web1 db1`, `web1 and`) matches
//! nothing. The expression is parsed once here with the same grammar, and refused when Python
//! would refuse it, or nests parentheses and `not`s deeper than [`MAX_DEPTH`].
//!
//! A word whose facts are not known where the match is made (the pillar on the master, grains
//! of a minion never heard from) is unknown rather than true, and `and`, `or` and `not` follow
//! Kleene's three-valued logic: `not unknown` is unknown, so `not I@role:db` cannot pass for
//! "no minion" where the pillar is not known.

use super::{Facts, Pattern, Subnet, TargetError, list, pcre};
use crate::py::fnmatch::fnmatch;
use crate::py::re::Regex;

/// How deep parentheses and `not`s may nest: Python refuses more than 200 nested parentheses,
/// and every master, API and minion parses the expression.
pub const MAX_DEPTH: usize = 100;

/// A parsed compound target.
#[derive(Debug, Clone)]
pub struct Compound {
    terms: Vec<Term>,
    expr: Expr,
}

/// One word of a compound target.
#[derive(Debug, Clone)]
enum Term {
    Glob(String),
    Pcre(Regex),
    List(Vec<String>),
    Grain {
        expr: String,
        delimiter: String,
        how: Pattern,
    },
    Pillar {
        expr: String,
        delimiter: String,
        how: Pattern,
    },
    Subnet(Subnet),
}

/// The expression over the terms, by index. A chain of `and`s or `or`s is one flat list, so
/// that only parentheses and `not` (both capped at [`MAX_DEPTH`]) make the tree deeper.
#[derive(Debug, Clone)]
enum Expr {
    Term(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Term(usize),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Compound {
    /// Parses `text`, refusing what Salt's minions would evaluate to nothing: an operator where
    /// none may stand, two terms without one, unbalanced parentheses, an engine halite lacks.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        // A long target is cut short in errors, which are one line.
        let shown = match text.char_indices().nth(100) {
            Some((at, _)) => format!("{}...", &text[..at]),
            None => text.to_owned(),
        };
        let bad = |reason: String| TargetError::BadCompound {
            target: shown.clone(),
            reason,
        };
        let mut terms = Vec::new();
        let mut tokens = Vec::new();
        for word in text.split_whitespace() {
            let operator = match word {
                "and" => Some(Token::And),
                "or" => Some(Token::Or),
                "not" => Some(Token::Not),
                "(" => Some(Token::Open),
                ")" => Some(Token::Close),
                _ => None,
            };
            match (operator, tokens.last()) {
                (Some(Token::And | Token::Or), Some(Token::Open)) => {
                    return Err(bad(format!("'{word}' right after '('")));
                }
                (Some(Token::And | Token::Or | Token::Close), None) => {
                    return Err(bad(format!("it starts with '{word}'")));
                }
                (Some(Token::Not), Some(Token::Term(_) | Token::Close | Token::Not)) => {
                    // Salt's own rule: `a not b` reads `a and not b`.
                    tokens.extend([Token::And, Token::Not]);
                }
                (Some(token), _) => tokens.push(token),
                (None, _) => {
                    tokens.push(Token::Term(terms.len()));
                    terms.push(Term::parse(word).map_err(&bad)?);
                }
            }
        }
        let mut parser = Parser {
            tokens: &tokens,
            at: 0,
            depth: 0,
            too_deep: false,
        };
        let expr = parser.or_test().filter(|_| parser.at == tokens.len());
        if parser.too_deep {
            return Err(bad(format!(
                "parentheses and 'not' nest deeper than {MAX_DEPTH}"
            )));
        }
        let expr = expr.ok_or_else(|| {
            bad("not a well-formed expression of terms, and, or, not and ( )".to_owned())
        })?;
        Ok(Self { terms, expr })
    }

    /// Whether a term looks at grains.
    pub fn needs_grains(&self) -> bool {
        self.terms
            .iter()
            .any(|term| matches!(term, Term::Grain { .. } | Term::Subnet(_)))
    }

    /// Whether a term looks at the pillar.
    pub fn needs_pillar(&self) -> bool {
        self.terms
            .iter()
            .any(|term| matches!(term, Term::Pillar { .. }))
    }

    /// Whether the minion `id` with these `facts` is targeted: `None` when that depends on
    /// facts not known here.
    pub fn eval(&self, id: &str, facts: Facts<'_>) -> Option<bool> {
        let truth: Vec<Option<bool>> = self
            .terms
            .iter()
            .map(|term| term.matches(id, facts))
            .collect();
        self.expr.eval(&truth)
    }
}

impl Term {
    /// Salt's `parse_target`: `E@`, `L@`, `G@`, `P@` (the last two with an optional one-letter
    /// delimiter before the `@`, as `G;@os;Debian`), else a glob.
    fn parse(word: &str) -> Result<Self, String> {
        let mut chars = word.chars();
        let (engine, second, third) = (chars.next(), chars.next(), chars.next());
        let after = |skip: usize| word.chars().skip(skip).collect::<String>();
        let (engine, delimiter, pattern) = match (engine, second, third) {
            (Some(e @ ('G' | 'P' | 'I' | 'J')), Some(d), Some('@')) if !after(3).is_empty() => {
                (e, d.to_string(), after(3))
            }
            (Some(e @ ('G' | 'P' | 'I' | 'J' | 'L' | 'N' | 'S' | 'E' | 'R')), Some('@'), _)
                if !after(2).is_empty() =>
            {
                (e, ":".to_owned(), after(2))
            }
            _ => return Ok(Term::Glob(word.to_owned())),
        };
        let data = |pillar: bool, how| {
            if !pattern.contains(delimiter.as_str()) {
                return Err(format!("{word} must be key{delimiter}value"));
            }
            let (expr, delimiter) = (pattern.clone(), delimiter.clone());
            Ok(if pillar {
                Term::Pillar {
                    expr,
                    delimiter,
                    how,
                }
            } else {
                Term::Grain {
                    expr,
                    delimiter,
                    how,
                }
            })
        };
        match engine {
            'G' => data(false, Pattern::Glob),
            'P' => data(false, Pattern::Regex),
            'I' => data(true, Pattern::Glob),
            'J' => data(true, Pattern::Regex),
            'S' => pattern
                .parse()
                .map(Term::Subnet)
                .map_err(|()| format!("{word}: not an IP address or network")),
            'E' => pcre(&pattern)
                .map(Term::Pcre)
                .map_err(|err| err.to_string()),
            'L' => Ok(Term::List(list(&pattern))),
            _ => Err(format!(
                "{word}: halite has no {engine}@ targets (node groups are written out before a job is published; ranges need a range server)"
            )),
        }
    }

    fn matches(&self, id: &str, facts: Facts<'_>) -> Option<bool> {
        match self {
            Term::Glob(glob) => Some(fnmatch(id, glob)),
            Term::Pcre(regex) => Some(regex.is_match(id)),
            Term::List(ids) => Some(ids.iter().any(|listed| listed == id)),
            Term::Grain {
                expr,
                delimiter,
                how,
            } => facts.grains_match(expr, delimiter, *how),
            Term::Pillar {
                expr,
                delimiter,
                how,
            } => facts.pillar_match(expr, delimiter, *how),
            Term::Subnet(subnet) => facts.in_subnet(subnet),
        }
    }
}

impl Expr {
    /// Kleene's logic over the terms' truth (`None` unknown): one false makes an `and` false,
    /// one true makes an `or` true, else an unknown makes it unknown.
    fn eval(&self, truth: &[Option<bool>]) -> Option<bool> {
        let chain = |items: &[Expr], decisive: bool| {
            let mut unknown = false;
            for item in items {
                match item.eval(truth) {
                    Some(value) if value == decisive => return Some(decisive),
                    Some(_) => {}
                    None => unknown = true,
                }
            }
            (!unknown).then_some(!decisive)
        };
        match self {
            Expr::Term(index) => truth[*index],
            Expr::Not(inner) => inner.eval(truth).map(|value| !value),
            Expr::And(items) => chain(items, false),
            Expr::Or(items) => chain(items, true),
        }
    }
}

/// Python's grammar for `or`, `and`, `not` and parentheses over terms.
struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    /// Parentheses and `not`s open around the current token.
    depth: usize,
    /// Set when `depth` went past [`MAX_DEPTH`].
    too_deep: bool,
}

impl Parser<'_> {
    fn eat(&mut self, token: Token) -> bool {
        let found = self.tokens.get(self.at) == Some(&token);
        if found {
            self.at += 1;
        }
        found
    }

    fn or_test(&mut self) -> Option<Expr> {
        let mut items = vec![self.and_test()?];
        while self.eat(Token::Or) {
            items.push(self.and_test()?);
        }
        Some(if items.len() == 1 {
            items.pop()?
        } else {
            Expr::Or(items)
        })
    }

    fn and_test(&mut self) -> Option<Expr> {
        let mut items = vec![self.not_test()?];
        while self.eat(Token::And) {
            items.push(self.not_test()?);
        }
        Some(if items.len() == 1 {
            items.pop()?
        } else {
            Expr::And(items)
        })
    }

    /// One level deeper for a `not` or a `(`; `None` (and `too_deep` set) past the cap.
    fn deeper<T>(&mut self, inner: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        if self.depth >= MAX_DEPTH {
            self.too_deep = true;
            return None;
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn not_test(&mut self) -> Option<Expr> {
        if self.eat(Token::Not) {
            return self.deeper(|parser| Some(Expr::Not(Box::new(parser.not_test()?))));
        }
        match *self.tokens.get(self.at)? {
            Token::Term(index) => {
                self.at += 1;
                Some(Expr::Term(index))
            }
            Token::Open => {
                self.at += 1;
                let inner = self.deeper(Self::or_test)?;
                self.eat(Token::Close).then_some(inner)
            }
            _ => None,
        }
    }
}
