//! Test helpers: msgpack from hex fixtures, and an order-preserving JSON reader for captured
//! Salt output (serde_json's map would reorder keys).

use crate::event::Value;

/// Decodes one msgpack value from hex, requiring every byte to be used.
pub(crate) fn msgpack_from_hex(hex: &str) -> Value {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let mut rd = bytes.as_slice();
    let v = rmpv::decode::read_value(&mut rd).expect("msgpack");
    assert!(rd.is_empty(), "trailing bytes after msgpack value");
    v
}

/// Parses Python-flavoured JSON (NaN/Infinity allowed) keeping object key order.
pub(crate) fn parse_json(text: &str) -> Value {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(p.i, p.s.len(), "trailing text in {text:?}");
    v
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Value {
        self.ws();
        let first = self.s[self.i];
        match first {
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if !self.eat("}") {
                    loop {
                        self.ws();
                        let k = self.string();
                        self.ws();
                        assert!(self.eat(":"));
                        let v = self.value();
                        entries.push((Value::from(k), v));
                        self.ws();
                        if self.eat("}") {
                            break;
                        }
                        assert!(self.eat(","));
                    }
                }
                Value::Map(entries)
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if !self.eat("]") {
                    loop {
                        items.push(self.value());
                        self.ws();
                        if self.eat("]") {
                            break;
                        }
                        assert!(self.eat(","));
                    }
                }
                Value::Array(items)
            }
            b'"' => Value::from(self.string()),
            _ if self.eat("null") => Value::Nil,
            _ if self.eat("true") => Value::Boolean(true),
            _ if self.eat("false") => Value::Boolean(false),
            _ if self.eat("NaN") => Value::F64(f64::NAN),
            _ if self.eat("Infinity") => Value::F64(f64::INFINITY),
            _ if self.eat("-Infinity") => Value::F64(f64::NEG_INFINITY),
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| b"+-0123456789.eE".contains(b))
                {
                    self.i += 1;
                }
                let num = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
                if num.contains(['.', 'e', 'E']) {
                    Value::F64(num.parse().expect("float"))
                } else if let Ok(u) = num.parse::<u64>() {
                    Value::from(u)
                } else {
                    Value::from(num.parse::<i64>().expect("int"))
                }
            }
        }
    }

    fn string(&mut self) -> String {
        assert!(self.eat("\""));
        let mut out = Vec::new();
        loop {
            let b = self.s[self.i];
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    let c = match e {
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex =
                                std::str::from_utf8(&self.s[self.i..self.i + 4]).expect("hex");
                            self.i += 4;
                            char::from_u32(u32::from_str_radix(hex, 16).expect("hex"))
                                .expect("char")
                        }
                        other => char::from(other),
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).expect("utf-8")
    }
}

/// Removes ANSI escape sequences, leaving the text a terminal would show.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
