//! Tags: the strings that name events, and how Salt builds them (`salt.utils.event.tagify`).
//!
//! A tag is any UTF-8 string; by convention its parts are joined with [`TAGPARTER`]. On the wire a
//! tag is followed by [`TAGEND`], which therefore cannot occur inside one.

/// Ends the tag inside an event body: `tag + TAGEND + msgpack(data)`.
pub const TAGEND: &str = "\n\n";

/// Separates the parts of a tag.
pub const TAGPARTER: &str = "/";

/// Salt's `tagify(suffix, prefix, base)`: `base`, `prefix`, then the suffix parts, with empty
/// parts left out, joined with `/`.
///
/// Salt maps a few well-known prefixes (`job`, `key`, `minion`, ...) through a table that returns
/// each unchanged, so the prefix is used as given. Salt turns non-string parts into text first
/// (`5` → `"5"`, `None` → `"None"`); callers pass them already converted.
///
/// ```
/// # use halite::event::tag::tagify;
/// assert_eq!(tagify(&["minion1", "start"], "minion", "salt"), "salt/minion/minion1/start");
/// assert_eq!(tagify(&[""], "auth", "salt"), "salt/auth");
/// ```
pub fn tagify(suffix: &[&str], prefix: &str, base: &str) -> String {
    [base, prefix]
        .iter()
        .chain(suffix)
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(TAGPARTER)
}

/// Whether a tag holds a character that is not printed as itself: a control character (a line
/// break, an escape sequence, ...), a format character (zero-width, bidirectional overrides) or
/// a line or paragraph separator. No event built from another machine's input may carry one:
/// subscribers split bodies at the first [`TAGEND`], terminals obey escapes, and invisible
/// characters make one tag look like another.
pub fn has_unprintable(tag: &str) -> bool {
    tag.chars().any(unprintable)
}

fn unprintable(c: char) -> bool {
    static UNPRINTABLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\A[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]\z").expect("static regex is valid")
    });
    c.is_control() || (!c.is_ascii() && UNPRINTABLE.is_match(c.encode_utf8(&mut [0; 4])))
}

/// A tag (or a message quoting one) as it may be printed or logged: the characters of
/// [`has_unprintable`] escaped (`\n`, `\u{1b}`, `\u{200b}`), so that it can neither forge a
/// log line, drive a terminal nor pass for another tag. Other text is returned as it is.
///
/// ```
/// # use halite::event::tag::printable;
/// assert_eq!(printable("salt/auth"), "salt/auth");
/// assert_eq!(printable("a\n\nb\u{1b}[2J"), "a\\n\\nb\\u{1b}[2J");
/// assert_eq!(printable("salt\u{200b}/auth"), "salt\\u{200b}/auth");
/// ```
pub fn printable(tag: &str) -> std::borrow::Cow<'_, str> {
    if !has_unprintable(tag) {
        return tag.into();
    }
    let mut escaped = String::with_capacity(tag.len() + 8);
    for c in tag.chars() {
        if unprintable(c) {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    escaped.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example of SALT-SPEC §2.2, computed with Salt's `tagify`.
    #[test]
    fn tagify_matches_salt_examples() {
        let cases: &[(&[&str], &str, &str, &str)] = &[
            (&["start"], "minion", "salt", "salt/minion/start"),
            (
                &["minion1", "start"],
                "minion",
                "salt",
                "salt/minion/minion1/start",
            ),
            (&["x"], "", "salt", "salt/x"),
            (&[""], "auth", "salt", "salt/auth"),
            (&["change"], "presence", "salt", "salt/presence/change"),
            (&["a"], "refresh", "minion", "minion/refresh/a"),
            (
                &["j", "5", "None", "", "k"],
                "job",
                "salt",
                "salt/job/j/5/None/k",
            ),
            (&["ret"], "", "salt/run/123", "salt/run/123/ret"),
        ];
        for &(suffix, prefix, base, expected) in cases {
            assert_eq!(
                tagify(suffix, prefix, base),
                expected,
                "{suffix:?} {prefix:?} {base:?}"
            );
        }
    }

    #[test]
    fn tagify_drops_every_empty_part_including_base() {
        assert_eq!(tagify(&[], "", ""), "");
        assert_eq!(tagify(&[], "", "salt"), "salt");
        assert_eq!(tagify(&["a", ""], "", ""), "a");
    }

    #[test]
    fn tag_separators_are_salts() {
        assert_eq!(TAGEND, "\n\n");
        assert_eq!(TAGPARTER, "/");
    }
}
