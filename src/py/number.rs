//! Python's `int(text)` and `float(text)` of a string, which Salt's option checks use to decide
//! whether a quoted number is a number.
//!
//! Both are lenient: surrounding whitespace, one sign, single underscores between digits, and
//! decimal digits of any script (`"١٢"` is 12) pass.

use std::sync::LazyLock;

use regex::Regex;

/// Python's `int(text)`, `None` where Python raises `ValueError` (or the value passes `i128`).
pub(crate) fn int(text: &str) -> Option<i128> {
    let digits = ascii_digits(text)?;
    let body = digits.strip_prefix(['+', '-']).unwrap_or(&digits);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Python's `float(text)`, `None` where Python raises `ValueError`.
pub(crate) fn float(text: &str) -> Option<f64> {
    // Rust's grammar is Python's (`inf`, `infinity`, `nan` in any case, `5.`, `.5`, `1.e5`),
    // less the underscores and other scripts' digits `ascii_digits` has dealt with.
    ascii_digits(text)?.parse().ok()
}

/// `text` without its surrounding whitespace, with every decimal digit in ASCII and the
/// underscores between digits gone; `None` when an underscore is anywhere else.
fn ascii_digits(text: &str) -> Option<String> {
    let chars: Vec<char> = text
        .trim_matches(char::is_whitespace)
        .chars()
        .map(|c| decimal(c).map_or(c, |d| char::from(b'0' + d)))
        .collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let digit_at = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(char::is_ascii_digit)
        };
        if !(digit_at(i.checked_sub(1)) && digit_at(Some(i + 1))) {
            return None;
        }
    }
    Some(out)
}

/// The value of a decimal digit of any script. Unicode encodes each script's digits as a run of
/// ten from zero, so a digit's value is its distance from the start of its run, modulo ten
/// (runs may follow one another, as the mathematical digits do).
fn decimal(c: char) -> Option<u8> {
    static DIGIT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\A\p{Nd}\z").expect("static regex is valid"));
    if c.is_ascii() {
        return c.to_digit(10).map(|d| d as u8);
    }
    let is_digit = |c: char| DIGIT.is_match(c.encode_utf8(&mut [0; 4]));
    if !is_digit(c) {
        return None;
    }
    let mut before = 0u32;
    let mut code = u32::from(c);
    while let Some(previous) = code.checked_sub(1).and_then(char::from_u32) {
        if !is_digit(previous) {
            break;
        }
        before += 1;
        code -= 1;
    }
    Some((before % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each checked against Python 3.11's `int()` and `float()`.
    #[test]
    fn int_and_float_of_a_string_are_pythons() {
        let cases: &[(&str, Option<i128>, Option<f64>)] = &[
            ("10", Some(10), Some(10.0)),
            (" +5\n", Some(5), Some(5.0)),
            ("\u{a0}5", Some(5), Some(5.0)),
            ("-5", Some(-5), Some(-5.0)),
            ("1_0", Some(10), Some(10.0)),
            ("١٢", Some(12), Some(12.0)),
            ("𝟙𝟚", Some(12), Some(12.0)),
            ("1_0.5", None, Some(10.5)),
            ("1e1_0", None, Some(1e10)),
            ("1.e5", None, Some(1e5)),
            (".5", None, Some(0.5)),
            ("5.", None, Some(5.0)),
            ("-iNF", None, Some(f64::NEG_INFINITY)),
            ("2048.0", None, Some(2048.0)),
            ("1__0", None, None),
            ("_1", None, None),
            ("1_", None, None),
            ("1_e5", None, None),
            ("- 5", None, None),
            ("\u{1c}5", None, None),
            ("0x10", None, None),
            ("1,5", None, None),
            ("", None, None),
            ("soon", None, None),
        ];
        for &(text, as_int, as_float) in cases {
            assert_eq!(int(text), as_int, "int({text:?})");
            assert_eq!(float(text), as_float, "float({text:?})");
        }
        assert!(float("nan").is_some_and(f64::is_nan));
    }
}
