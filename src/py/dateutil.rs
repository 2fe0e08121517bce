//! python-dateutil's parser, for the usual forms of times and dates Salt hands it (a schedule's
//! `when`, `range`, `until` and `after`, a beacon's `time_range`): `11:00pm`, `Monday 5:00pm`,
//! `2026-12-03 10:00`, `Dec 3 2026 10am`, `12/03/2026 22:00`, without a time zone.
//!
//! dateutil fills what a string leaves out from the day it is parsed on, and Salt parses these
//! strings afresh each time it looks: so `11:00pm` is every day at 23:00, `Monday 5:00pm` every
//! Monday, and a full date once. A [`Moment`] keeps what was written, and [`Moment::on`] reads
//! it on a given day as dateutil would; [`Moment::next`] is the first such reading from a time
//! on.

use jiff::civil::{Date, DateTime, Time, Weekday};

/// A time or date as written: the parts given; the rest comes from the day it is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    year: Option<i16>,
    month: Option<i8>,
    day: Option<i8>,
    weekday: Option<Weekday>,
    /// Midnight when no time is given, as dateutil's default.
    time: Option<Time>,
}

/// What a time or date may look like, for messages.
pub const EXPECTED: &str =
    "a time or date such as 11:00pm, Monday 5:00pm or 2026-12-03 10:00 (read in local time)";

/// How many days ahead [`Moment::next`] looks: a 29 February comes within eight years.
const LOOKAHEAD_DAYS: i32 = 8 * 366;

/// Reads `text`, or says what is wrong with it.
pub fn parse(text: &str) -> Result<Moment, String> {
    let fail = |why: &str| Err(format!("{EXPECTED}, not {text:?} ({why})"));
    let mut moment = Moment {
        year: None,
        month: None,
        day: None,
        weekday: None,
        time: None,
    };
    let lowered = text.trim().to_ascii_lowercase().replace(',', " ");
    let mut words: Vec<String> = Vec::new();
    for word in lowered.split_whitespace() {
        // ISO's `2026-12-03T10:00`.
        match word.split_once('t') {
            Some((date, time))
                if date.contains('-') && time.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                words.push(date.to_owned());
                words.push(time.to_owned());
            }
            _ => words.push(word.to_owned()),
        }
    }
    if words.is_empty() {
        return fail("it is empty");
    }
    let set = |slot: &mut Option<i8>, value: i64, what: &str| -> Result<(), String> {
        if slot.is_some() {
            return Err(format!("{EXPECTED}, not {text:?} (two {what}s)"));
        }
        *slot = Some(i8::try_from(value).map_err(|_| format!("{EXPECTED}, not {text:?}"))?);
        Ok(())
    };
    // A number waiting to be a day (or an hour, with am/pm after it).
    let mut pending: Option<i64> = None;
    let mut index = 0;
    while index < words.len() {
        let word = words[index].as_str();
        index += 1;
        if matches!(word, "at" | "on" | "and" | "of" | "the") {
            continue;
        }
        if let Some(weekday) = weekday(word) {
            if moment.weekday.replace(weekday).is_some() {
                return fail("two weekdays");
            }
            continue;
        }
        if let Some(month) = month(word) {
            set(&mut moment.month, month, "month")?;
            continue;
        }
        if matches!(word, "am" | "pm" | "a.m." | "p.m.") {
            let pm = word.starts_with('p');
            match (pending.take(), moment.time) {
                (Some(hour), None) => moment.time = Some(clock(hour, 0, 0, Some(pm), text)?),
                (None, Some(time)) => {
                    // `11:00 pm`: the time read just before.
                    moment.time = Some(meridiem(time, pm, text)?);
                }
                _ => return fail("am/pm follows no hour"),
            }
            continue;
        }
        if let Some(hour) = pending.take() {
            // A number that was not an hour: a day.
            set(&mut moment.day, hour, "day")?;
        }
        if word.contains(':') {
            if moment.time.is_some() {
                return fail("two times");
            }
            moment.time = Some(time_of_day(word, text)?);
        } else if let Some((date, kind)) = date_of(word) {
            if moment.year.is_some() || moment.month.is_some() || moment.day.is_some() {
                return fail("two dates");
            }
            let (year, month, day) = date;
            moment.year = Some(full_year(year, kind, text)?);
            set(&mut moment.month, month, "month")?;
            set(&mut moment.day, day, "day")?;
        } else if let Some((number, suffix)) = number_and_suffix(word) {
            match suffix {
                "" if word.len() == 4 => {
                    if moment.year.replace(year_of(number, text)?).is_some() {
                        return fail("two years");
                    }
                }
                "" if word.len() == 8 => {
                    if moment.year.is_some() || moment.month.is_some() || moment.day.is_some() {
                        return fail("two dates");
                    }
                    moment.year = Some(year_of(number / 10_000, text)?);
                    set(&mut moment.month, number / 100 % 100, "month")?;
                    set(&mut moment.day, number % 100, "day")?;
                }
                "" => pending = Some(number),
                "am" | "pm" | "a" | "p" => {
                    if moment.time.is_some() {
                        return fail("two times");
                    }
                    moment.time = Some(clock(number, 0, 0, Some(suffix.starts_with('p')), text)?);
                }
                "st" | "nd" | "rd" | "th" => set(&mut moment.day, number, "day")?,
                _ => return fail(&format!("{word:?} is no part of a date")),
            }
        } else {
            return fail(&format!("{word:?} is no part of a date"));
        }
    }
    if let Some(day) = pending {
        set(&mut moment.day, day, "day")?;
    }
    if moment.weekday.is_some() && moment.day.is_some() {
        return fail("a weekday and a day of the month: give one");
    }
    if let Some(month) = moment.month
        && !(1..=12).contains(&month)
    {
        return fail("no such month");
    }
    if let Some(day) = moment.day
        && !(1..=31).contains(&day)
    {
        return fail("no such day");
    }
    if let (Some(year), Some(month), Some(day)) = (moment.year, moment.month, moment.day)
        && Date::new(year, month, day).is_err()
    {
        return fail("no such date");
    }
    // A day no year gives its month (30 February, 31 April) would never be read; dateutil
    // refuses it. 2000 is a leap year, so it has every pair some year has.
    if let (Some(month), Some(day)) = (moment.month, moment.day)
        && Date::new(2000, month, day).is_err()
    {
        return fail("no such day in that month");
    }
    Ok(moment)
}

impl Moment {
    /// The weekday written, if one was.
    pub fn weekday(&self) -> Option<Weekday> {
        self.weekday
    }

    /// The time of day, when that is all that was written.
    pub fn time_alone(&self) -> Option<Time> {
        let dateless = self.year.is_none()
            && self.month.is_none()
            && self.day.is_none()
            && self.weekday.is_none();
        self.time.filter(|_| dateless)
    }

    /// The date and time, when a whole date was written (no weekday).
    pub fn fixed(&self) -> Option<DateTime> {
        let date = Date::new(self.year?, self.month?, self.day?).ok()?;
        Some(date.to_datetime(self.time.unwrap_or(Time::midnight())))
    }

    /// The moment read on `today`, as dateutil reads it: what is not written comes from
    /// `today`, the time is midnight when not written, and a weekday is the first such day
    /// from the date on. `None` when that makes no date (31 in a month of 30 days).
    pub fn on(&self, today: Date) -> Option<DateTime> {
        let date = Date::new(
            self.year.unwrap_or(today.year()),
            self.month.unwrap_or(today.month()),
            self.day.unwrap_or(today.day()),
        )
        .ok()?;
        let date = match self.weekday {
            Some(weekday) => {
                let ahead = date.weekday().until(weekday);
                date.checked_add(jiff::Span::new().days(i64::from(ahead)))
                    .ok()?
            }
            None => date,
        };
        Some(date.to_datetime(self.time.unwrap_or(Time::midnight())))
    }

    /// The first reading of the moment, on `from`'s day or a later one, that is at `from` or
    /// after it: a moment with a full date comes once, one without recurs.
    pub fn next(&self, from: DateTime) -> Option<DateTime> {
        let mut day = from.date();
        for _ in 0..LOOKAHEAD_DAYS {
            if let Some(when) = self.on(day)
                && when >= from
            {
                return Some(when);
            }
            if self.year.is_some() && self.month.is_some() && self.day.is_some() {
                // The same reading whatever the day: it has passed.
                return None;
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    let word = word.trim_end_matches('.');
    let names = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    names
        .iter()
        .zip(full)
        .find(|((short, _), full)| word == *short || word == *full)
        .map(|((_, weekday), _)| *weekday)
}

fn month(word: &str) -> Option<i64> {
    let word = word.trim_end_matches('.');
    let full = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    full.iter()
        .position(|name| word == *name || (word.len() == 3 && name.starts_with(word)))
        .or_else(|| (word == "sept").then_some(8))
        .map(|index| index as i64 + 1)
}

/// The digits a word starts with, and the letters after them (`3rd`, `11pm`).
fn number_and_suffix(word: &str) -> Option<(i64, &str)> {
    let digits = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    if digits == 0 || digits > 8 {
        return None;
    }
    let suffix = &word[digits..];
    if !suffix.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((word[..digits].parse().ok()?, suffix))
}

/// How a date's year was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YearForm {
    /// Four digits (or more).
    Full,
    /// Two digits (`12/03/26`).
    Short,
}

/// `2026-12-03`, `2026/12/03`, `12/03/2026`, `12/03/26` (month first, as dateutil's default):
/// `(year, month, day)`.
fn date_of(word: &str) -> Option<((i64, i64, i64), YearForm)> {
    let separator = if word.contains('-') { '-' } else { '/' };
    let parts: Vec<&str> = word.split(separator).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let number = |part: &str| {
        (!part.is_empty() && part.len() <= 4 && part.chars().all(|c| c.is_ascii_digit()))
            .then(|| part.parse::<i64>().ok())
            .flatten()
    };
    let (a_n, b_n, c_n) = (number(a)?, number(b)?, number(c)?);
    if a.len() == 4 {
        Some(((a_n, b_n, c_n), YearForm::Full))
    } else if separator == '/' {
        let form = if c.len() == 4 {
            YearForm::Full
        } else {
            YearForm::Short
        };
        Some(((c_n, a_n, b_n), form))
    } else {
        None
    }
}

fn full_year(year: i64, form: YearForm, text: &str) -> Result<i16, String> {
    match form {
        YearForm::Full => year_of(year, text),
        // Python's `%y` and dateutil: 00–68 are 2000s, 69–99 the 1900s.
        YearForm::Short if year < 69 => year_of(year + 2000, text),
        YearForm::Short => year_of(year + 1900, text),
    }
}

fn year_of(year: i64, text: &str) -> Result<i16, String> {
    i16::try_from(year)
        .ok()
        .filter(|year| (1..=9999).contains(year))
        .ok_or_else(|| format!("{EXPECTED}, not {text:?} (no such year)"))
}

/// `10:00`, `23:00:30`, `11:00pm`, `5:30a`.
fn time_of_day(word: &str, text: &str) -> Result<Time, String> {
    let digits_end = word
        .rfind(|c: char| c.is_ascii_digit())
        .map_or(0, |at| at + 1);
    let (clock_part, suffix) = word.split_at(digits_end);
    let pm = match suffix.trim_end_matches('.') {
        "" => None,
        "am" | "a" | "a.m" => Some(false),
        "pm" | "p" | "p.m" => Some(true),
        _ => return Err(format!("{EXPECTED}, not {text:?} ({word:?} is no time)")),
    };
    let mut parts = clock_part.split(':');
    let mut field = |what: &str| -> Result<Option<i64>, String> {
        match parts.next() {
            None => Ok(None),
            // Fractions of a second are dropped, as Salt's scheduler drops them.
            Some(part) => part
                .split('.')
                .next()
                .filter(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .map(Some)
                .ok_or_else(|| format!("{EXPECTED}, not {text:?} (no {what} in {word:?})")),
        }
    };
    let hour = field("hour")?.unwrap_or_default();
    let minute = field("minute")?.unwrap_or_default();
    let second = field("second")?.unwrap_or_default();
    if parts.next().is_some() {
        return Err(format!("{EXPECTED}, not {text:?} ({word:?} is no time)"));
    }
    clock(hour, minute, second, pm, text)
}

/// The time `hour:minute:second`, with am/pm when given (then the hour is 1 to 12).
fn clock(
    hour: i64,
    minute: i64,
    second: i64,
    pm: Option<bool>,
    text: &str,
) -> Result<Time, String> {
    let hour = match pm {
        None => hour,
        Some(_) if !(1..=12).contains(&hour) => -1,
        Some(false) => hour % 12,
        Some(true) => hour % 12 + 12,
    };
    let (Ok(hour), Ok(minute), Ok(second)) = (
        i8::try_from(hour),
        i8::try_from(minute),
        i8::try_from(second),
    ) else {
        return Err(format!("{EXPECTED}, not {text:?} (no such time)"));
    };
    Time::new(hour, minute, second, 0)
        .map_err(|_| format!("{EXPECTED}, not {text:?} (no such time)"))
}

/// A time read without am/pm, with one after all (`11:00 pm`).
fn meridiem(time: Time, pm: bool, text: &str) -> Result<Time, String> {
    clock(
        i64::from(time.hour()),
        i64::from(time.minute()),
        i64::from(time.second()),
        Some(pm),
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn read(text: &str, today: Date) -> DateTime {
        parse(text)
            .unwrap_or_else(|err| panic!("{text}: {err}"))
            .on(today)
            .unwrap()
    }

    /// The forms Salt's documentation and users write, read as dateutil reads them on a
    /// Thursday, 3 December 2026.
    #[test]
    fn the_common_forms_read_as_dateutil_reads_them() {
        let thursday = date(2026, 12, 3);
        let at = |h, m| thursday.at(h, m, 0, 0);
        assert_eq!(read("11:00pm", thursday), at(23, 0));
        assert_eq!(read("11:00 pm", thursday), at(23, 0));
        assert_eq!(read("11pm", thursday), at(23, 0));
        assert_eq!(read("12:15am", thursday), at(0, 15));
        assert_eq!(read("12pm", thursday), at(12, 0));
        assert_eq!(read("23:05:09", thursday), thursday.at(23, 5, 9, 0));
        assert_eq!(
            read("Monday 5:00pm", thursday),
            date(2026, 12, 7).at(17, 0, 0, 0)
        );
        assert_eq!(read("5:00pm thursday", thursday), at(17, 0));
        assert_eq!(read("Thu", thursday), at(0, 0));
        assert_eq!(read("2026-12-03 10:00", thursday), at(10, 0));
        assert_eq!(
            read("2027-01-02T10:00:00", thursday),
            date(2027, 1, 2).at(10, 0, 0, 0)
        );
        assert_eq!(
            read("12/24/2026 10:00", thursday),
            date(2026, 12, 24).at(10, 0, 0, 0)
        );
        assert_eq!(
            read("12/24/27", thursday),
            date(2027, 12, 24).at(0, 0, 0, 0)
        );
        assert_eq!(
            read("Dec 24 2026 10am", thursday),
            date(2026, 12, 24).at(10, 0, 0, 0)
        );
        assert_eq!(
            read("24 December 2026, 10:30", thursday),
            date(2026, 12, 24).at(10, 30, 0, 0)
        );
        assert_eq!(
            read("December 24th at 8am", thursday),
            date(2026, 12, 24).at(8, 0, 0, 0)
        );
        assert_eq!(
            read("20261224", thursday),
            date(2026, 12, 24).at(0, 0, 0, 0)
        );
    }

    #[test]
    fn what_is_no_time_is_refused_with_what_is_expected() {
        for bad in [
            "",
            "soon",
            "25:00",
            "13pm",
            "10:61",
            "2026-02-30",
            "Monday Tuesday",
            "Monday 3rd",
            "10:00 11:00",
            "10:00 +0200",
            "13/45/2026",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(EXPECTED), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    /// A month and day no year has would never come: refused, as dateutil refuses them.
    #[test]
    fn a_day_no_year_has_is_refused() {
        for bad in ["Feb 30 10:00am", "Apr 31 10:00", "31 June", "november 31"] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(EXPECTED), "{bad}: {err}");
            assert!(err.contains("no such day in that month"), "{bad}: {err}");
        }
        assert!(parse("Feb 29 10:00").is_ok(), "a leap day comes");
        assert!(parse("Jan 31 10:00").is_ok());
    }

    /// A time alone recurs daily, a weekday weekly, a full date once.
    #[test]
    fn the_next_reading_recurs_on_what_is_not_written() {
        let now = date(2026, 12, 3).at(23, 30, 0, 0);
        let next = |text: &str, from: DateTime| parse(text).unwrap().next(from);
        assert_eq!(
            next("11:00pm", now),
            Some(date(2026, 12, 4).at(23, 0, 0, 0))
        );
        assert_eq!(
            next("11:45pm", now),
            Some(date(2026, 12, 3).at(23, 45, 0, 0))
        );
        assert_eq!(
            next("Thursday 11pm", now),
            Some(date(2026, 12, 10).at(23, 0, 0, 0))
        );
        assert_eq!(next("2026-12-03 10:00", now), None);
        assert_eq!(
            next("2026-12-04 10:00", now),
            Some(date(2026, 12, 4).at(10, 0, 0, 0))
        );
        assert_eq!(
            next("Feb 29 10:00", now),
            Some(date(2028, 2, 29).at(10, 0, 0, 0))
        );
        assert_eq!(
            next("31 10:00", date(2026, 11, 1).at(0, 0, 0, 0)),
            Some(date(2026, 12, 31).at(10, 0, 0, 0))
        );
    }
}
