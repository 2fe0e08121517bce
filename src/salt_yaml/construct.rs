//! From tagged nodes to Python-like values, with the constructors of Salt's `SaltYamlSafeLoader`.
//!
//! Values are built as [`Py`] first because Salt's rules are Python's: which keys collide
//! (`1`, `1.0` and `true` are one key), which types `yamlify_arg` keeps (bytes and sets are
//! not kept), and integers wider than msgpack's. [`Py::into_value`] then gives what Salt's
//! msgpack serializer would send.

use std::collections::HashSet;
use std::rc::Rc;

use crate::event::Value;

use super::YamlError;
use super::compose::{Kind, Node};
use super::int::PyInt;
use super::resolve::{CORE, MERGE, STR, VALUE};

/// NaN as PyYAML builds it for `.nan` (`-inf / inf`): the sign bit is set, and msgpack
/// carries the bits as they are.
const YAML_NAN: u64 = 0xfff8_0000_0000_0000;

/// A Python value as `yaml.load` returns it with Salt's loader.
#[derive(Debug, Clone)]
pub(super) enum Py {
    None,
    Bool(bool),
    Int(PyInt),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Py>),
    /// The `(key, value)` items of `!!omap` and `!!pairs`.
    Tuple(Vec<Py>),
    /// `!!set`, in document order (Python's own order is by hash).
    Set(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    /// The value Salt would put on the wire: tuples and sets become arrays, integers beyond
    /// 64 bits their decimal text.
    pub(super) fn into_value(self) -> Value {
        match self {
            Py::None => Value::Nil,
            Py::Bool(b) => Value::Boolean(b),
            Py::Int(i) => i.to_value(),
            Py::Float(f) => Value::F64(f),
            Py::Str(s) => Value::from(s),
            Py::Bytes(b) => Value::Binary(b),
            Py::List(items) | Py::Tuple(items) | Py::Set(items) => {
                Value::Array(items.into_iter().map(Py::into_value).collect())
            }
            Py::Dict(pairs) => Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into_value(), v.into_value()))
                    .collect(),
            ),
        }
    }

    /// Python's `==` between two hashable non-string keys.
    fn key_eq(&self, other: &Py) -> bool {
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => a.eq(&b),
            _ => match (self, other) {
                (Py::None, Py::None) => true,
                (Py::Bytes(a), Py::Bytes(b)) => a == b,
                _ => false,
            },
        }
    }

    fn as_number(&self) -> Option<Number<'_>> {
        match self {
            Py::Bool(b) => Some(Number::Small(i64::from(*b))),
            Py::Int(i) => Some(Number::Int(i)),
            Py::Float(f) => Some(Number::Float(*f)),
            _ => None,
        }
    }
}

/// Python's numeric tower for key comparison: `True == 1 == 1.0`.
enum Number<'a> {
    Small(i64),
    Int(&'a PyInt),
    Float(f64),
}

impl Number<'_> {
    fn eq(&self, other: &Number<'_>) -> bool {
        match (self, other) {
            (Number::Small(a), Number::Small(b)) => a == b,
            (Number::Small(a), Number::Int(b)) | (Number::Int(b), Number::Small(a)) => {
                PyInt::from(*a) == **b
            }
            (Number::Small(a), Number::Float(f)) | (Number::Float(f), Number::Small(a)) => {
                PyInt::from(*a).equals_float(*f)
            }
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Int(a), Number::Float(f)) | (Number::Float(f), Number::Int(a)) => {
                a.equals_float(*f)
            }
            // PyYAML hands out one shared NaN object for `.nan`, and Python's `in` tests
            // identity first, so those NaN keys collide; any other NaN is a new object.
            (Number::Float(a), Number::Float(b)) => {
                a == b || (a.to_bits() == YAML_NAN && b.to_bits() == YAML_NAN)
            }
        }
    }
}

/// Builds the value of `node` and everything under it.
pub(super) fn construct(node: &Node) -> Result<Py, YamlError> {
    let Some(name) = node.tag.strip_prefix(CORE) else {
        return Err(unknown_tag(node));
    };
    match name {
        "null" => scalar(node).map(|_| Py::None),
        "bool" => construct_bool(node),
        "int" => construct_int(node),
        "float" => construct_float(node),
        "binary" => construct_binary(node),
        // Salt's loader turns timestamps back into their text instead of datetimes.
        "str" | "timestamp" | "python/unicode" => scalar(node).map(|s| Py::Str(s.to_owned())),
        "seq" => match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .map(|n| construct(n))
                .collect::<Result<_, _>>()
                .map(Py::List),
            _ => Err(node.error(format!(
                "expected a sequence node, but found {}",
                node.kind_name()
            ))),
        },
        "map" => construct_mapping(node).map(Py::Dict),
        "set" => construct_mapping(node)
            .map(|pairs| Py::Set(pairs.into_iter().map(|(k, _)| k).collect())),
        "omap" | "pairs" => construct_pairs(node),
        _ => Err(unknown_tag(node)),
    }
}

fn unknown_tag(node: &Node) -> YamlError {
    node.error(format!(
        "could not determine a constructor for the tag '{}'",
        node.tag
    ))
}

fn scalar(node: &Node) -> Result<&str, YamlError> {
    match &node.kind {
        Kind::Scalar(value) => Ok(value),
        _ => Err(node.error(format!(
            "expected a scalar node, but found {}",
            node.kind_name()
        ))),
    }
}

fn construct_bool(node: &Node) -> Result<Py, YamlError> {
    let value = scalar(node)?;
    match value.to_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(Py::Bool(true)),
        "no" | "false" | "off" => Ok(Py::Bool(false)),
        _ => Err(node.error(format!("invalid boolean {value:?}"))),
    }
}

/// Splits off PyYAML's sign; it only looks at the first character, and `-` negates.
fn split_sign(value: &str) -> (bool, &str) {
    match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    }
}

fn construct_int(node: &Node) -> Result<Py, YamlError> {
    let raw = scalar(node)?;
    let invalid = || node.error(format!("invalid integer {raw:?}"));
    // Salt's override: leading zeros do not make an octal number (`010` is 10); `0b`/`0x`
    // keep their meaning. A leading sign hides the zeros from it, so `-010` stays octal (-8).
    let salted =
        if raw != "0" && raw.starts_with('0') && !raw.starts_with("0b") && !raw.starts_with("0x") {
            match raw.trim_start_matches('0') {
                "" => "0",
                rest => rest,
            }
        } else {
            raw
        };
    let digits = salted.replace('_', "");
    if digits.is_empty() {
        return Err(invalid());
    }
    let (negative, digits) = split_sign(&digits);
    let n = if digits == "0" {
        Some(PyInt::zero())
    } else if let Some(bin) = digits.strip_prefix("0b") {
        PyInt::parse_python(bin, 2)
    } else if let Some(hex) = digits.strip_prefix("0x") {
        PyInt::parse_python(hex, 16)
    } else if digits.starts_with('0') {
        PyInt::parse_python(digits, 8)
    } else if digits.contains(':') {
        digits.split(':').try_fold(PyInt::zero(), |acc, part| {
            Some(acc.sexagesimal_step(&PyInt::parse_python(part, 10)?))
        })
    } else {
        PyInt::parse_python(digits, 10)
    };
    let n = n.ok_or_else(invalid)?;
    Ok(Py::Int(if negative { n.negate() } else { n }))
}

fn construct_float(node: &Node) -> Result<Py, YamlError> {
    let raw = scalar(node)?;
    let invalid = || node.error(format!("invalid float {raw:?}"));
    let text = raw.replace('_', "").to_lowercase();
    if text.is_empty() {
        return Err(invalid());
    }
    let (negative, text) = split_sign(&text);
    let sign = if negative { -1.0 } else { 1.0 };
    let value = match text {
        ".inf" => sign * f64::INFINITY,
        ".nan" => f64::from_bits(YAML_NAN),
        _ if text.contains(':') => {
            // Python sums the parts from the last, with an integer base that grows by 60.
            let mut total = 0.0;
            let mut base = 1.0;
            for part in text.rsplit(':') {
                total += python_float(part).ok_or_else(invalid)? * base;
                base *= 60.0;
            }
            sign * total
        }
        _ => sign * python_float(text).ok_or_else(invalid)?,
    };
    Ok(Py::Float(value))
}

/// Python's `float(text)`: surrounding whitespace allowed, `inf`/`nan` spelled out.
fn python_float(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

fn construct_binary(node: &Node) -> Result<Py, YamlError> {
    let value = scalar(node)?;
    if !value.is_ascii() {
        return Err(node.error("failed to convert base64 data into ascii"));
    }
    decode_base64(value)
        .map(Py::Bytes)
        .map_err(|why| node.error(format!("failed to decode base64 data: {why}")))
}

/// Python's lenient `base64.decodebytes`: characters outside the alphabet are skipped, and a
/// complete padding ends the data.
fn decode_base64(text: &str) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut quad = 0;
    let mut pads = 0;
    let mut left = 0u8;
    for c in text.bytes() {
        if c == b'=' {
            // Padding counts only once two characters of a quad are in.
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    return Ok(out);
                }
            }
            continue;
        }
        let six = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        pads = 0;
        (quad, left) = match quad {
            0 => (1, six),
            1 => {
                out.push(left << 2 | six >> 4);
                (2, six & 0x0f)
            }
            2 => {
                out.push(left << 4 | six >> 2);
                (3, six & 0x03)
            }
            _ => {
                out.push(left << 6 | six);
                (0, 0)
            }
        };
    }
    match quad {
        0 => Ok(out),
        1 => Err("invalid base64-encoded string: one character too many"),
        _ => Err("Incorrect padding"),
    }
}

/// `!!omap` and `!!pairs`: a sequence of one-item mappings, read as `(key, value)` tuples.
fn construct_pairs(node: &Node) -> Result<Py, YamlError> {
    let Kind::Seq(items) = &node.kind else {
        return Err(node.error(format!(
            "expected a sequence, but found {}",
            node.kind_name()
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Kind::Map(pairs) = &item.kind else {
            return Err(item.error(format!(
                "expected a mapping of length 1, but found {}",
                item.kind_name()
            )));
        };
        let [(key, value)] = pairs.as_slice() else {
            return Err(item.error(format!(
                "expected a single mapping item, but found {} items",
                pairs.len()
            )));
        };
        out.push(Py::Tuple(vec![construct(key)?, construct(value)?]));
    }
    Ok(Py::List(out))
}

/// Salt's `construct_mapping`: merges flattened, `=` read as a string key, and a key that
/// equals an earlier one (by Python's `==`) is an error, not an overwrite.
fn construct_mapping(node: &Node) -> Result<Vec<(Py, Py)>, YamlError> {
    if !matches!(node.kind, Kind::Map(_)) {
        return Err(node.error(format!(
            "expected a mapping node, but found {}",
            node.kind_name()
        )));
    }
    let pairs = flatten(node)?;
    let mut out: Vec<(Py, Py)> = Vec::with_capacity(pairs.len());
    // Strings only equal strings: hash those, scan the rest.
    let mut strings = HashSet::new();
    let mut others = Vec::new();
    for (key_node, value_node) in pairs {
        let key = construct(&key_node)?;
        if matches!(key, Py::List(_) | Py::Dict(_) | Py::Set(_)) {
            return Err(key_node.error("found unacceptable (unhashable) key"));
        }
        let value = construct(&value_node)?;
        let seen = match &key {
            Py::Str(s) => !strings.insert(s.clone()),
            _ => {
                let seen = others.iter().any(|&i: &usize| out[i].0.key_eq(&key));
                others.push(out.len());
                seen
            }
        };
        if seen {
            let shown = match &key_node.kind {
                Kind::Scalar(raw) => raw.as_str(),
                _ => "",
            };
            return Err(key_node.error(format!("found conflicting ID '{shown}'")));
        }
        out.push((key, value));
    }
    Ok(out)
}

type Pairs = Vec<(Rc<Node>, Rc<Node>)>;

/// Salt's `flatten_mapping`: `<<` keys are replaced by the pairs of the mapping (or, from last
/// to first, mappings) they name, placed before the mapping's own pairs; a merged key whose
/// raw text equals one of the own keys' is dropped, whatever the types.
fn flatten(node: &Node) -> Result<Pairs, YamlError> {
    let Kind::Map(pairs) = &node.kind else {
        return Ok(Vec::new());
    };
    let mut own = Vec::with_capacity(pairs.len());
    let mut merged = Vec::new();
    for (key, value) in pairs {
        if key.tag == MERGE {
            match &value.kind {
                Kind::Map(_) => merged.extend(flatten(value)?),
                Kind::Seq(sources) => {
                    let mut parts = Vec::with_capacity(sources.len());
                    for source in sources {
                        if !matches!(source.kind, Kind::Map(_)) {
                            return Err(source.error(format!(
                                "expected a mapping for merging, but found {}",
                                source.kind_name()
                            )));
                        }
                        parts.push(flatten(source)?);
                    }
                    merged.extend(parts.into_iter().rev().flatten());
                }
                Kind::Scalar(_) => {
                    return Err(value.error(
                        "expected a mapping or list of mappings for merging, but found scalar",
                    ));
                }
            }
        } else if key.tag == VALUE {
            own.push((key.retagged(STR), Rc::clone(value)));
        } else {
            own.push((Rc::clone(key), Rc::clone(value)));
        }
    }
    if merged.is_empty() {
        return Ok(own);
    }
    let raw = |n: &Node| match &n.kind {
        Kind::Scalar(s) => Some(s.clone()),
        _ => None,
    };
    let own_raw: HashSet<String> = own.iter().filter_map(|(k, _)| raw(k)).collect();
    merged.retain(|(k, _)| raw(k).is_none_or(|r| !own_raw.contains(&r)));
    merged.extend(own);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_is_as_lenient_as_python() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbA==x").unwrap(), b"hell");
        assert_eq!(decode_base64("aGVsbA==").unwrap(), b"hell");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("aGVsbA=").unwrap_err(), "Incorrect padding");
        assert_eq!(decode_base64("aGVsbG8").unwrap_err(), "Incorrect padding");
        assert!(decode_base64("a").is_err());
    }
}
