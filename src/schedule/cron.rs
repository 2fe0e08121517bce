//! `cron`: a cron expression as Salt's scheduler reads it with croniter, in the minion's local
//! time: five fields (`minute hour day month weekday`), or six with the seconds LAST, or seven
//! with the year after them; Sunday is 0 or 7; a day of the month and a day of the week both
//! given match either; `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` and `@annually`.
//!
//! The patterns are matched by the `croner` crate, which reads seconds first: the fields are put
//! in its order here, and it is handed jiff's civil (wall clock) times, as croniter is handed
//! Salt's naive local times.

use std::cmp::Ordering;

use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use croner::time::{CivilDateTime, CronDateTime, Resolution, Weekday};
use jiff::civil::DateTime;

/// A cron expression, read.
#[derive(Debug, Clone)]
pub struct Cron(croner::Cron);

/// What a cron expression may look like, for messages.
pub const EXPECTED: &str = "a cron expression of five fields (minute hour day month weekday), six with the seconds last, or seven with the year after them";

/// Reads `text`, or says what is wrong with it.
pub fn parse(text: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let ordered = match fields.as_slice() {
        [nickname] if nickname.starts_with('@') => (*nickname).to_owned(),
        [_, _, _, _, _] => fields.join(" "),
        [minute_to_weekday @ .., seconds] if fields.len() == 6 => {
            format!("{seconds} {}", minute_to_weekday.join(" "))
        }
        [minute_to_weekday @ .., seconds, year] if fields.len() == 7 => {
            format!("{seconds} {} {year}", minute_to_weekday.join(" "))
        }
        _ => return Err(format!("{EXPECTED}, not {text:?}")),
    };
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Optional)
        .build()
        .parse(&ordered)
        .map(Cron)
        .map_err(|err| format!("{EXPECTED}, not {text:?} ({err})"))
        .and_then(|cron| {
            // One that never matches again (31 April, 30 February, a year gone by) would
            // never run: croniter refuses it, and Salt's scheduler with it.
            let now = jiff::tz::TimeZone::system().to_datetime(jiff::Timestamp::now());
            match cron.next_after(now) {
                Some(_) => Ok(cron),
                None => Err(format!(
                    "{EXPECTED} that matches a time to come, not {text:?} (no such date comes)"
                )),
            }
        })
}

impl Cron {
    /// The first time the expression matches after `after` (not at it), in wall clock time.
    pub fn next_after(&self, after: DateTime) -> Option<DateTime> {
        let next = self.0.find_next_occurrence(&Civil(after), false).ok()?;
        Some(next.0)
    }
}

/// A wall clock time, as croner reads one: no time zone, so no gap and no repeat.
#[derive(Debug, Clone, Copy)]
struct Civil(DateTime);

impl CronDateTime for Civil {
    fn to_civil(&self) -> CivilDateTime {
        let t = self.0;
        // jiff's parts are in range, so croner takes them.
        CivilDateTime::from_ymd_hms_opt(
            i32::from(t.year()),
            t.month() as u32,
            t.day() as u32,
            t.hour() as u32,
            t.minute() as u32,
            t.second() as u32,
        )
        .expect("a valid civil time")
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.weekday().to_sunday_zero_offset() as u32)
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let year = i16::try_from(civil.year()).map_err(|_| CronError::InvalidDate)?;
        let time = DateTime::new(
            year,
            civil.month() as i8,
            civil.day() as i8,
            civil.hour() as i8,
            civil.minute() as i8,
            civil.second() as i8,
            0,
        )
        .map_err(|_| CronError::InvalidDate)?;
        Ok(Resolution::Single(Civil(time)))
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .ok()
            .map(Civil)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn next(text: &str, after: DateTime) -> DateTime {
        parse(text)
            .unwrap_or_else(|err| panic!("{text}: {err}"))
            .next_after(after)
            .unwrap()
    }

    /// croniter's forms: seconds last in six fields, Sunday as 0 and 7, day of month OR
    /// day of week, nicknames.
    #[test]
    fn expressions_match_as_croniter_matches_them() {
        // Thursday 3 December 2026, 10:20:30.
        let now = date(2026, 12, 3).at(10, 20, 30, 0);
        assert_eq!(next("* * * * *", now), date(2026, 12, 3).at(10, 21, 0, 0));
        assert_eq!(
            next("*/15 * * * *", now),
            date(2026, 12, 3).at(10, 30, 0, 0)
        );
        assert_eq!(
            next("* * * * * *", now),
            date(2026, 12, 3).at(10, 20, 31, 0)
        );
        // Six fields: the last is the seconds.
        assert_eq!(
            next("0 11 * * * 15", now),
            date(2026, 12, 3).at(11, 0, 15, 0)
        );
        assert_eq!(next("0 0 * * 0", now), date(2026, 12, 6).at(0, 0, 0, 0));
        assert_eq!(next("0 0 * * 7", now), date(2026, 12, 6).at(0, 0, 0, 0));
        assert_eq!(next("0 0 * * SUN", now), date(2026, 12, 6).at(0, 0, 0, 0));
        // The 5th of the month or any Monday: Monday the 7th comes first.
        assert_eq!(next("0 0 10 * 1", now), date(2026, 12, 7).at(0, 0, 0, 0));
        assert_eq!(next("@hourly", now), date(2026, 12, 3).at(11, 0, 0, 0));
        assert_eq!(next("@daily", now), date(2026, 12, 4).at(0, 0, 0, 0));
        assert_eq!(
            next("0 0 1 1 * 0 2099", now),
            date(2099, 1, 1).at(0, 0, 0, 0)
        );
        // Not at `now` itself.
        let on_the_minute = date(2026, 12, 3).at(10, 21, 0, 0);
        assert_eq!(
            next("* * * * *", on_the_minute),
            date(2026, 12, 3).at(10, 22, 0, 0)
        );
    }

    #[test]
    fn what_is_no_cron_expression_is_refused_with_what_is_expected() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * * *",
            "every minute",
            "* * 32 * *",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(EXPECTED), "{bad}: {err}");
        }
    }

    /// A day no month has, or a year gone by, never matches: refused, not kept to never run.
    #[test]
    fn what_never_matches_is_refused() {
        for bad in [
            "0 0 31 4 *",
            "0 0 30 2 *",
            "0 0 31 2,4,6 *",
            "0 0 1 1 * 0 2020",
        ] {
            let started = std::time::Instant::now();
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(EXPECTED), "{bad}: {err}");
            assert!(err.contains("no such date comes"), "{bad}: {err}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{bad}"
            );
        }
        assert!(parse("0 0 29 2 *").is_ok(), "a leap day comes");
        assert!(parse("0 0 31 3,4 *").is_ok(), "31 March comes");
    }
}
