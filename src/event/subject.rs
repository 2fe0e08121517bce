//! Tags as NATS subjects, for buses shared through NATS: each `/`-separated part of a tag is one
//! subject token, escaped so that every tag, `.`, spaces, wildcards and empty parts included,
//! comes back unchanged from its subject.
//!
//! NATS separates tokens with `.`, forbids empty tokens and whitespace, and reads `*` and `>` as
//! wildcards, so a token keeps ASCII letters, digits and `-_:@=+,` as they are and writes every
//! other byte as `~` and two upper-case hex digits; an empty part is a lone `~`.
//!
//! ```
//! # use halite::event::subject::{tag_tokens, tag_of_tokens};
//! assert_eq!(tag_tokens("salt/job/1/ret/web1.example.com").unwrap(), "salt.job.1.ret.web1~2Eexample~2Ecom");
//! assert_eq!(tag_tokens("a//b c").unwrap(), "a.~.b~20c");
//! assert_eq!(tag_of_tokens("a.~.b~20c").as_deref(), Some("a//b c"));
//! ```

use std::fmt::Write;

/// The longest escaped tag put in a subject. NATS reads a message's subject within a control
/// line of 4 KiB by default; the rest of the line and the subject's prefix need room too.
pub const MAX_TAG_TOKENS: usize = 2048;

/// The token a tag whose escaped form passes [`MAX_TAG_TOKENS`] goes under instead. Not an
/// escape (`l` is not a hex digit), so it decodes as no tag.
pub const LONG_TAG_TOKEN: &str = "~long";

fn kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_:@=+,".contains(&byte)
}

/// The subject tokens of `tag`, joined with `.`; `None` when they would pass
/// [`MAX_TAG_TOKENS`] bytes.
pub fn tag_tokens(tag: &str) -> Option<String> {
    let mut tokens = String::with_capacity(tag.len() + 8);
    for (index, part) in tag.split('/').enumerate() {
        if index > 0 {
            tokens.push('.');
        }
        if part.is_empty() {
            tokens.push('~');
        }
        for &byte in part.as_bytes() {
            if kept(byte) {
                tokens.push(char::from(byte));
            } else {
                let _ = write!(tokens, "~{byte:02X}");
            }
        }
        if tokens.len() > MAX_TAG_TOKENS {
            return None;
        }
    }
    Some(tokens)
}

/// The tag whose subject tokens are `tokens`; `None` for tokens [`tag_tokens`] does not write.
pub fn tag_of_tokens(tokens: &str) -> Option<String> {
    let mut tag = Vec::with_capacity(tokens.len());
    for (index, token) in tokens.split('.').enumerate() {
        if index > 0 {
            tag.push(b'/');
        }
        if token == "~" {
            continue;
        }
        let mut bytes = token.bytes();
        while let Some(byte) = bytes.next() {
            match byte {
                b'~' => {
                    let high = char::from(bytes.next()?).to_digit(16)?;
                    let low = char::from(bytes.next()?).to_digit(16)?;
                    tag.push(u8::try_from(high * 16 + low).ok()?);
                }
                byte if kept(byte) => tag.push(byte),
                _ => return None,
            }
        }
        if token.is_empty() {
            return None;
        }
    }
    String::from_utf8(tag).ok()
}

/// A tag as a header value: NATS headers are lines of text, so control characters and `%` are
/// written as `%` and two hex digits; everything else is the tag itself.
pub fn header_tag(tag: &str) -> std::borrow::Cow<'_, str> {
    if !tag.bytes().any(|b| b.is_ascii_control() || b == b'%') {
        return tag.into();
    }
    let mut header = String::with_capacity(tag.len() + 8);
    for c in tag.chars() {
        if c.is_ascii_control() || c == '%' {
            let _ = write!(header, "%{:02X}", u32::from(c));
        } else {
            header.push(c);
        }
    }
    header.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn salts_tags_read_as_themselves_where_nats_allows() {
        assert_eq!(
            tag_tokens("salt/minion/web-1/start").unwrap(),
            "salt.minion.web-1.start"
        );
        assert_eq!(tag_tokens("minion_start").unwrap(), "minion_start");
        assert_eq!(tag_tokens("").unwrap(), "~");
        assert_eq!(tag_tokens("/").unwrap(), "~.~");
        assert_eq!(tag_tokens("a/*/>").unwrap(), "a.~2A.~3E");
        assert_eq!(tag_tokens("tilde~").unwrap(), "tilde~7E");
        assert_eq!(tag_tokens("é").unwrap(), "~C3~A9");
    }

    #[test]
    fn what_no_tag_writes_is_no_tag() {
        for tokens in ["a..b", "", "~4", "~zz", "a b", "a*", LONG_TAG_TOKEN, "~C3"] {
            assert_eq!(tag_of_tokens(tokens), None, "{tokens:?}");
        }
    }

    #[test]
    fn a_tag_too_long_for_a_subject_has_no_tokens() {
        assert!(tag_tokens(&"a".repeat(MAX_TAG_TOKENS)).is_some());
        assert!(tag_tokens(&"a".repeat(MAX_TAG_TOKENS + 1)).is_none());
        assert!(tag_tokens(&".".repeat(MAX_TAG_TOKENS / 3 + 1)).is_none());
    }

    #[test]
    fn header_tags_have_no_line_breaks() {
        assert_eq!(header_tag("salt/auth"), "salt/auth");
        assert_eq!(header_tag("a\r\nb%"), "a%0D%0Ab%25");
    }

    proptest! {
        #[test]
        fn every_tag_comes_back_from_its_tokens(tag in "\\PC*|[./ ~*>\\t\u{e9}a-]{0,24}") {
            let tokens = tag_tokens(&tag).unwrap();
            prop_assert!(!tokens.split('.').any(|token| token.is_empty()
                || token == "*" || token == ">"
                || token.bytes().any(|b| b.is_ascii_whitespace() || !b.is_ascii_graphic())));
            prop_assert_eq!(tag_of_tokens(&tokens), Some(tag));
        }
    }
}
