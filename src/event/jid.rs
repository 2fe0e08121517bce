//! Job ids (jids), event timestamps (`_stamp`) and the other dates Salt writes, formatted as
//! Salt 3006/3007 formats them.
//!
//! Jids and stamps come from the UTC clock truncated to microseconds, which is what Python's
//! `datetime` holds.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// A jid for the current time; see [`jid`].
pub fn gen_jid() -> String {
    jid(Timestamp::now())
}

/// The jid Salt's `gen_jid` makes at `ts`: UTC as `%Y%m%d%H%M%S%f`, 20 digits, such as
/// `20261124083502401381`. (Salt's `unique_jid` option would append `_<pid>`.)
pub fn jid(ts: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(ts);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:06}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        micros(dt)
    )
}

/// Salt's `is_jid`: 20 characters, or more than 21 with `_` as the 21st (`<jid>_<pid>`), the
/// first 20 of which Python's `int()` accepts.
///
/// `int()` is lenient, so this is too: surrounding whitespace, a sign, single `_` between digits
/// and decimal digits of any script all pass (`"+0000000000000000001"` is a jid to Salt).
pub fn is_jid(s: &str) -> bool {
    // Python counts code points: find where the 20th character ends.
    let mut ends = s.char_indices().map(|(i, _)| i).chain([s.len()]);
    let Some(end) = ends.nth(20) else {
        return false;
    };
    let rest = &s[end..];
    let shape = rest.is_empty() || (rest.starts_with('_') && rest.len() > 1);
    shape && crate::py::number::int(&s[..end]).is_some()
}

/// A jid as halite takes it from a client or a minion: Salt's 20 digits, maybe with a `_suffix` of ASCII word
/// characters (Python's `int()` reading that Salt uses elsewhere takes far more).
pub fn is_plain_jid(jid: &str) -> bool {
    let digits = jid.as_bytes().get(..20);
    if !digits.is_some_and(|digits| digits.iter().all(u8::is_ascii_digit)) {
        return false;
    }
    // The first 20 bytes are ASCII: 20 is a character boundary.
    let suffix = &jid[20..];
    suffix.is_empty()
        || suffix.strip_prefix('_').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        })
}

/// `_stamp` for the current time; see [`stamp`].
pub fn stamp_now() -> String {
    stamp(Timestamp::now())
}

/// The `_stamp` Salt 3006/3007 puts in event data: `datetime.utcnow().isoformat()`, naive UTC
/// `YYYY-MM-DDTHH:MM:SS.ffffff`, with the fraction left out when the microseconds are exactly 0
/// (`2026-11-24T08:35:02`).
pub fn stamp(ts: Timestamp) -> String {
    isoformat(Offset::UTC.to_datetime(ts), 'T')
}

/// Python's `str(datetime.datetime.now())`: the local time as `YYYY-MM-DD HH:MM:SS.ffffff`,
/// the fraction left out when the microseconds are exactly 0 (how Salt's sqlite3 returner
/// dates a return).
pub fn local_now() -> String {
    isoformat(jiff::ZonedDateTime::now().datetime(), ' ')
}

/// Python's `datetime.isoformat(sep)` of a naive datetime.
fn isoformat(dt: DateTime, sep: char) -> String {
    let seconds = format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    match micros(dt) {
        0 => seconds,
        us => format!("{seconds}.{us:06}"),
    }
}

/// A jid as Salt's `jid_to_time` shows it: `2026, Dec 03 05:11:45.084494`; `""` for what is
/// not a jid (`req`).
pub fn jid_to_time(jid: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = jid
        .get(..20)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let well_formed = jid.len() == 20 || (jid.len() > 21 && jid.as_bytes()[20] == b'_');
    let Some(d) = digits.filter(|_| well_formed) else {
        return String::new();
    };
    let month = d[4..6]
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or_default();
    format!(
        "{}, {month} {} {}:{}:{}.{}",
        &d[..4],
        &d[6..8],
        &d[8..10],
        &d[10..12],
        &d[12..14],
        &d[14..20]
    )
}

/// Microseconds, truncated like Python's clock reading.
fn micros(dt: DateTime) -> i32 {
    dt.subsec_nanosecond() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Unix seconds, nanoseconds, Python's `"{:%Y%m%d%H%M%S%f}".format(dt)`, `dt.isoformat()`),
    /// generated with Python 3.11 from the naive UTC datetime of that instant.
    const TIMES: &[(i64, i32, &str, &str)] = &[
        (
            1795509302,
            388660000,
            "20261124083502388660",
            "2026-11-24T08:35:02.388660",
        ),
        (1795509302, 0, "20261124083502000000", "2026-11-24T08:35:02"),
        (
            1795509302,
            999,
            "20261124083502000000",
            "2026-11-24T08:35:02",
        ),
        (
            1795509302,
            1000,
            "20261124083502000001",
            "2026-11-24T08:35:02.000001",
        ),
        (
            1795509302,
            999999999,
            "20261124083502999999",
            "2026-11-24T08:35:02.999999",
        ),
        (0, 0, "19700101000000000000", "1970-01-01T00:00:00"),
        (
            951782400,
            500000,
            "20000229000000000500",
            "2000-02-29T00:00:00.000500",
        ),
        (
            4102444799,
            123456789,
            "20991231235959123456",
            "2099-12-31T23:59:59.123456",
        ),
        (
            -1,
            999999000,
            "19691231235959999999",
            "1969-12-31T23:59:59.999999",
        ),
        (
            1795509481,
            170408123,
            "20261124083801170408",
            "2026-11-24T08:38:01.170408",
        ),
    ];

    /// (string, Salt's `salt.utils.jid.is_jid`), run in Python 3.11.
    const JIDS: &[(&str, bool)] = &[
        ("20261124083502401381", true),
        ("20261124083502401381_1234", true),
        ("20261124083502401381_", false),
        ("2026112408350240138", false),
        ("202611240835024013811", false),
        ("20261124083502401381x", false),
        ("2026112408350240138x", false),
        ("+0000000000000000001", true),
        ("-0000000000000000001", true),
        (" 000000000000000001 ", true),
        ("0000000000_000000001", true),
        ("00000000000000000__1", false),
        ("_0000000000000000001", false),
        ("0000000000000000001_", false),
        ("١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠", true),
        ("\u{1c}0000000000000000001", false),
        ("\u{3000}000000000000000000\u{3000}", true),
        ("\u{a0}000000000000000001\u{85}", true),
        ("\t000000000000000001\n", true),
        ("0000000000000000001\u{7f}", false),
        ("+-000000000000000001", false),
        ("- 000000000000000001", false),
        ("0000000000 000000001", false),
        ("0000000000000000000é", false),
        ("", false),
        ("req", false),
        ("nocache", false),
        ("20261124083502401381_é", true),
        ("é0261124083502401381_1", false),
        ("2026112408350240138é_1", false),
        ("20261124083502401381__", true),
    ];

    #[test]
    fn plain_jids_are_salts_twenty_digits_with_an_optional_suffix() {
        for jid in [
            "20261202000000000001",
            "20261202000000000001_1",
            "20261202000000000001_a.b-c",
        ] {
            assert!(is_plain_jid(jid), "{jid}");
        }
        for jid in [
            "2026120200000000001",
            "20261202000000000001_",
            "20261202000000000001\n\nsalt/key",
            "20261202000000000001_../x",
            "myjob1",
            " 20261202000000000001",
            "２０２６１２０２０００００００００００１",
            "é",
        ] {
            assert!(!is_plain_jid(jid), "{jid:?}");
        }
    }

    #[test]
    fn jid_and_stamp_format_like_python() {
        for &(second, nanosecond, want_jid, want_stamp) in TIMES {
            let ts = Timestamp::new(second, nanosecond).unwrap();
            assert_eq!(jid(ts), want_jid, "{ts}");
            assert_eq!(stamp(ts), want_stamp, "{ts}");
        }
    }

    #[test]
    fn stamp_leaves_out_zero_microseconds_and_truncates_nanoseconds() {
        let at = |ns| stamp(Timestamp::new(1_795_509_302, ns).unwrap());
        assert_eq!(at(0), "2026-11-24T08:35:02");
        assert_eq!(at(999), "2026-11-24T08:35:02");
        assert_eq!(at(388_660_000), "2026-11-24T08:35:02.388660");
    }

    #[test]
    fn is_jid_agrees_with_salt() {
        for &(s, want) in JIDS {
            assert_eq!(is_jid(s), want, "{s:?}");
        }
    }

    #[test]
    fn jids_read_as_salts_jid_to_time() {
        assert_eq!(
            jid_to_time("20261203052611503387"),
            "2026, Dec 03 05:26:11.503387"
        );
        assert_eq!(
            jid_to_time("20261203052611503387_42"),
            "2026, Dec 03 05:26:11.503387"
        );
        assert_eq!(jid_to_time("req"), "");
    }

    #[test]
    fn local_dates_read_as_pythons_str_of_a_datetime() {
        let date = local_now();
        assert!(date.len() == 19 || date.len() == 26, "{date}");
        assert_eq!(&date[10..11], " ");
    }

    #[test]
    fn generated_jids_and_stamps_have_salts_shape() {
        let j = gen_jid();
        assert_eq!(j.len(), 20);
        assert!(j.bytes().all(|b| b.is_ascii_digit()), "{j}");
        assert!(is_jid(&j));
        let s = stamp_now();
        assert!(s.len() == 19 || s.len() == 26, "{s}");
        assert_eq!(&s[10..11], "T");
    }
}
