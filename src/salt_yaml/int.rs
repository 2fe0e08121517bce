//! Python's unbounded `int`, as far as YAML integers need it.
//!
//! Hex, binary, octal and sexagesimal literals have no size bound in PyYAML, and such a value must
//! come out as its exact decimal text when it does not fit msgpack's 64 bits. So integers are
//! kept as sign and magnitude in base 10⁹ limbs, which makes the decimal text trivial to produce.

use crate::event::Value;

/// One limb holds nine decimal digits.
const LIMB: u64 = 1_000_000_000;

/// A Python `int`: `negative` is never set for zero, `limbs` is little-endian with no zero on top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PyInt {
    negative: bool,
    limbs: Vec<u32>,
}

impl PyInt {
    pub(super) fn zero() -> Self {
        PyInt {
            negative: false,
            limbs: Vec::new(),
        }
    }

    pub(super) fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// `self * mul + add` on the magnitude, keeping the sign.
    fn mul_add(&mut self, mul: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.limbs {
            let v = u64::from(*limb) * u64::from(mul) + carry;
            *limb = (v % LIMB) as u32;
            carry = v / LIMB;
        }
        while carry > 0 {
            self.limbs.push((carry % LIMB) as u32);
            carry /= LIMB;
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
        if self.limbs.is_empty() {
            self.negative = false;
        }
    }

    /// Digits in `radix` (2 to 16), at least one, nothing else.
    fn from_digits(digits: &str, radix: u32) -> Option<Self> {
        if digits.is_empty() {
            return None;
        }
        let mut n = PyInt::zero();
        for c in digits.chars() {
            n.mul_add(radix, c.to_digit(radix)?);
        }
        Some(n)
    }

    /// Python's `int(text, radix)` for radix 2, 8, 10 or 16, minus underscores (PyYAML has
    /// removed them before calling it): surrounding whitespace, one sign, and for non-decimal
    /// radixes the optional matching `0b`/`0o`/`0x` prefix are accepted.
    pub(super) fn parse_python(text: &str, radix: u32) -> Option<Self> {
        let text = text.trim();
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let prefix = match radix {
            2 => Some("0b"),
            8 => Some("0o"),
            16 => Some("0x"),
            _ => None,
        };
        let body = match prefix {
            Some(p) if body.len() >= 2 && body[..2].eq_ignore_ascii_case(p) => &body[2..],
            _ => body,
        };
        let mut n = PyInt::from_digits(body, radix)?;
        n.negative = negative;
        n.trim();
        Some(n)
    }

    pub(super) fn negate(mut self) -> Self {
        self.negative = !self.negative;
        self.trim();
        self
    }

    /// `self * 60 + part`, the step of a sexagesimal (`1:30:00`) value.
    pub(super) fn sexagesimal_step(mut self, part: &PyInt) -> Self {
        self.mul_add(60, 0);
        self.add(part)
    }

    fn add(self, other: &PyInt) -> Self {
        if self.negative == other.negative {
            let mut limbs = Vec::with_capacity(self.limbs.len().max(other.limbs.len()) + 1);
            let mut carry = 0u64;
            for i in 0..self.limbs.len().max(other.limbs.len()) {
                let v = limb(&self.limbs, i) + limb(&other.limbs, i) + carry;
                limbs.push((v % LIMB) as u32);
                carry = v / LIMB;
            }
            limbs.push(carry as u32);
            let mut sum = PyInt {
                negative: self.negative,
                limbs,
            };
            sum.trim();
            return sum;
        }
        // Opposite signs: subtract the smaller magnitude from the larger, which keeps its sign.
        let (big, small) = if cmp_magnitude(&self.limbs, &other.limbs).is_ge() {
            (&self, other)
        } else {
            (other, &self)
        };
        let mut limbs = Vec::with_capacity(big.limbs.len());
        let mut borrow = 0u64;
        for (i, &b) in big.limbs.iter().enumerate() {
            let sub = limb(&small.limbs, i) + borrow;
            let b = u64::from(b);
            if b >= sub {
                limbs.push((b - sub) as u32);
                borrow = 0;
            } else {
                limbs.push((b + LIMB - sub) as u32);
                borrow = 1;
            }
        }
        let mut diff = PyInt {
            negative: big.negative,
            limbs,
        };
        diff.trim();
        diff
    }

    /// The exact decimal text, as Python's `str(int)` gives it.
    pub(super) fn to_decimal(&self) -> String {
        let mut out = String::from(if self.negative { "-" } else { "" });
        match self.limbs.split_last() {
            None => out.push('0'),
            Some((top, rest)) => {
                out.push_str(&top.to_string());
                for l in rest.iter().rev() {
                    out.push_str(&format!("{l:09}"));
                }
            }
        }
        out
    }

    /// The magnitude if it fits in a u64.
    fn magnitude_u64(&self) -> Option<u64> {
        self.limbs.iter().rev().try_fold(0u64, |acc, &l| {
            acc.checked_mul(LIMB)?.checked_add(u64::from(l))
        })
    }

    /// msgpack carries integers from -2⁶³ to 2⁶⁴-1; Salt's serializer turns anything wider into
    /// its decimal string, and so do we.
    pub(super) fn to_value(&self) -> Value {
        match (self.negative, self.magnitude_u64()) {
            (false, Some(m)) => Value::from(m),
            (true, Some(m)) if m <= 1 << 63 => Value::from((m as i64).wrapping_neg()),
            _ => Value::from(self.to_decimal()),
        }
    }

    /// Python's exact `int == float` comparison, used for duplicate mapping keys.
    pub(super) fn equals_float(&self, f: f64) -> bool {
        (self.is_zero() && f == 0.0)
            || (f.is_finite() && f.fract() == 0.0 && format!("{f:.0}") == self.to_decimal())
    }
}

fn limb(limbs: &[u32], i: usize) -> u64 {
    limbs.get(i).map_or(0, |&l| u64::from(l))
}

fn cmp_magnitude(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

impl From<i64> for PyInt {
    fn from(v: i64) -> Self {
        let mut n = PyInt::zero();
        let mut m = v.unsigned_abs();
        while m > 0 {
            n.limbs.push((m % LIMB) as u32);
            m /= LIMB;
        }
        n.negative = v < 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, radix: u32) -> String {
        PyInt::parse_python(s, radix).unwrap().to_decimal()
    }

    #[test]
    fn parses_like_python_int() {
        assert_eq!(parse("0", 10), "0");
        assert_eq!(parse("-0", 10), "0");
        assert_eq!(parse(" +17 ", 10), "17");
        assert_eq!(parse("0x1f", 16), "31");
        assert_eq!(parse("0o17", 8), "15");
        assert_eq!(parse("0B101", 2), "5");
        assert_eq!(
            parse("ffffffffffffffffffff", 16),
            "1208925819614629174706175"
        );
        assert!(PyInt::parse_python("", 10).is_none());
        assert!(PyInt::parse_python("0x", 16).is_none());
        assert!(PyInt::parse_python("--1", 10).is_none());
        assert!(PyInt::parse_python("9", 8).is_none());
    }

    #[test]
    fn sexagesimal_steps_handle_signed_parts() {
        let step = |a: i64, b: i64| PyInt::from(a).sexagesimal_step(&PyInt::from(b));
        assert_eq!(step(1, 30).to_decimal(), "90");
        assert_eq!(step(1, -5).to_decimal(), "55");
        assert_eq!(step(-1, 5).to_decimal(), "-55");
        assert_eq!(step(0, -5).to_decimal(), "-5");
        assert_eq!(step(1_000_000_000, 0).to_decimal(), "60000000000");
        assert_eq!(step(-1, 60).to_decimal(), "0");
    }

    #[test]
    fn values_fit_msgpack_or_become_text() {
        let v = |s: &str| PyInt::parse_python(s, 10).unwrap().to_value();
        assert_eq!(v("18446744073709551615"), Value::from(u64::MAX));
        assert_eq!(
            v("18446744073709551616"),
            Value::from("18446744073709551616")
        );
        assert_eq!(v("-9223372036854775808"), Value::from(i64::MIN));
        assert_eq!(
            v("-9223372036854775809"),
            Value::from("-9223372036854775809")
        );
    }

    #[test]
    fn compares_exactly_with_floats() {
        assert!(PyInt::from(1).equals_float(1.0));
        assert!(PyInt::zero().equals_float(-0.0));
        assert!(!PyInt::from(1).equals_float(1.5));
        assert!(PyInt::parse_python("1e300", 10).is_none());
        let big = PyInt::parse_python(&format!("{:.0}", 1e300), 10).unwrap();
        assert!(big.equals_float(1e300));
        assert!(!PyInt::from(1).equals_float(f64::NAN));
    }
}
