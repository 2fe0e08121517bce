//! What `wtmp` and `btmp` share: utmp records in their binary layout, following the file, and
//! Salt's `users`, `groups` and `defaults` filters with their `time_range`.
//!
//! A record is glibc's `struct utmp` on x86_64 Linux, 384 bytes in the machine's byte order:
//! `ut_type` (i16, then 2 bytes of padding), `ut_pid` (i32), `ut_line[32]`, `ut_id[4]`,
//! `ut_user[32]`, `ut_host[256]`, `ut_exit` (`e_termination`, `e_exit`: i16 each),
//! `ut_session` (i32), `ut_tv` (`tv_sec`, `tv_usec`: i32 each), `ut_addr_v6` (4 × i32, the
//! address in network order) and 20 unused bytes.
//!
//! Each event's data has Salt's field names, in Salt's order: `type`, `PID`, `line`, `inittab`
//! (`ut_id`), `user`, `hostname`, `exit_status` (`e_termination`, as Salt's), `session`,
//! `time`, `addr`. Salt names the unpacked fields by position and so shifts the last three:
//! its `session` holds `e_exit`, its `time` holds `ut_session` and its `addr` holds `tv_sec`.
//! halite gives each name its own field: `session` is `ut_session`, `time` is `tv_sec` (seconds
//! since the epoch) and `addr` the address as text (`192.0.2.1`, `2001:db8::1`; empty when
//! none). Strings end at their first NUL (Salt strips NULs from both ends only); bytes that are
//! not UTF-8 are replaced (Salt's check fails on them).
//!
//! The file is read from its end at the start and followed across truncation and rotation
//! (a new `wtmp` after `logrotate` is read from its start); only whole records are read.
//! Salt's module reads a hard-coded path; halite's `file:` option names another.
//!
//! Filters, as Salt's: with `users` (a map of user names, each `{}`, nothing, or
//! `{time_range: …}`) or `groups` (the same for group names, whose members, the fourth field of
//! `/etc/group`, count as listed users unless listed themselves), only their records fire;
//! `defaults: {time_range: …}` applies to the users without a range of their own, and to every
//! record when no user is listed. A `time_range` is `{start, end}`, each a time of day (`8am`,
//! `8:30 pm`, `17:00`, `17:00:30`) or a date and time (`2026-05-01`, `2026-05-01 08:00`,
//! `2026-05-01T08:00:00`); a time of day is on the record's date, and a range of times of day
//! whose end is before its start runs over midnight (`10pm` to `6am`). Differences from Salt:
//! the range is checked against the record's time in the minion's time zone (Salt checks the
//! time of the check, which it can only do with python-dateutil installed, and otherwise
//! matches nothing); a range over midnight matches (Salt's never does); listed groups whose
//! members are all gone filter everything out (Salt's then let everything through); and a
//! record that fires is one event even when it is read with others.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::options::{integer, known, map, only, text};
use super::tail::Tail;
use super::{Beacon, Host, Invalid, Options};
use crate::event::{Value, map_get};
use crate::py::value::py_str;

/// The size of one record.
pub(super) const RECORD: usize = 384;
/// Records read at one check at most; the rest at the next.
const RECORDS_MAX: usize = 4096;
/// Terminals remembered from login records, for the user of their logouts.
const TTYS_MAX: usize = 4096;

/// `USER_PROCESS`: a login.
const LOGIN: i64 = 7;
/// `DEAD_PROCESS`: a logout.
const LOGOUT: i64 = 8;

/// Which file a beacon follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Logins and logouts; events get `action`.
    Wtmp,
    /// Failed logins.
    Btmp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Wtmp => "wtmp",
            Kind::Btmp => "btmp",
        }
    }
}

/// One utmp record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub kind: i16,
    pub pid: i32,
    pub line: String,
    pub id: String,
    pub user: String,
    pub host: String,
    pub termination: i16,
    pub exit: i16,
    pub session: i32,
    pub seconds: i32,
    pub microseconds: i32,
    pub addr: [u8; 16],
}

impl Record {
    /// Decodes one record of [`RECORD`] bytes.
    pub(super) fn parse(bytes: &[u8; RECORD]) -> Self {
        let i16_at = |at: usize| i16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        let i32_at = |at: usize| {
            i32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let text_at = |at: usize, len: usize| {
            let field = &bytes[at..at + len];
            let end = field.iter().position(|&b| b == 0).unwrap_or(len);
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        let mut addr = [0; 16];
        addr.copy_from_slice(&bytes[348..364]);
        Self {
            kind: i16_at(0),
            pid: i32_at(4),
            line: text_at(8, 32),
            id: text_at(40, 4),
            user: text_at(44, 32),
            host: text_at(76, 256),
            termination: i16_at(332),
            exit: i16_at(334),
            session: i32_at(336),
            seconds: i32_at(340),
            microseconds: i32_at(344),
            addr,
        }
    }

    /// The record in its binary layout.
    #[cfg(test)]
    fn to_bytes(&self) -> [u8; RECORD] {
        let mut bytes = [0; RECORD];
        let mut put = |at: usize, field: &[u8]| bytes[at..at + field.len()].copy_from_slice(field);
        put(0, &self.kind.to_ne_bytes());
        put(4, &self.pid.to_ne_bytes());
        for (at, len, text) in [
            (8, 32, &self.line),
            (40, 4, &self.id),
            (44, 32, &self.user),
            (76, 256, &self.host),
        ] {
            put(at, &text.as_bytes()[..text.len().min(len)]);
        }
        put(332, &self.termination.to_ne_bytes());
        put(334, &self.exit.to_ne_bytes());
        put(336, &self.session.to_ne_bytes());
        put(340, &self.seconds.to_ne_bytes());
        put(344, &self.microseconds.to_ne_bytes());
        put(348, &self.addr);
        bytes
    }

    /// The address as text: IPv4 when only the first four bytes are set, empty when none is.
    pub(super) fn addr_text(&self) -> String {
        if self.addr.iter().all(|&b| b == 0) {
            String::new()
        } else if self.addr[4..].iter().all(|&b| b == 0) {
            Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3]).to_string()
        } else {
            Ipv6Addr::from(self.addr).to_string()
        }
    }
}

/// A time range's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// A time of day, on the record's date.
    Daily(Time),
    /// A date and time.
    At(DateTime),
}

impl Bound {
    fn on(self, date: Date) -> DateTime {
        match self {
            Bound::Daily(time) => date.to_datetime(time),
            Bound::At(at) => at,
        }
    }
}

/// `time_range: {start, end}`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: Bound,
    end: Bound,
}

impl Range {
    fn contains(&self, at: DateTime) -> bool {
        match (self.start, self.end) {
            (Bound::Daily(start), Bound::Daily(end)) if end < start => {
                at.time() >= start || at.time() <= end
            }
            (start, end) => start.on(at.date()) <= at && at <= end.on(at.date()),
        }
    }
}

/// A time as python-dateutil reads the usual forms: a date, a time of day, or both.
fn bound(text: &str) -> Option<Bound> {
    let moment = crate::py::dateutil::parse(text).ok()?;
    // A bare number is a day of the month to dateutil: a time needs a colon or am/pm.
    match (moment.time_alone(), moment.fixed()) {
        (Some(time), _) => Some(Bound::Daily(time)),
        (None, Some(at)) => Some(Bound::At(at)),
        (None, None) => None,
    }
}

fn time_range(given: &Value, path: &str) -> Result<Option<Range>, Invalid> {
    let entries = map(given, path)?;
    known(entries, path, &["time_range"])?;
    let Some(range) = map_get(given, "time_range") else {
        return Ok(None);
    };
    let path = format!("{path}:time_range");
    known(map(range, &path)?, &path, &["start", "end"])?;
    let read = |name: &str| {
        let key = format!("{path}:{name}");
        let expected = "a quoted time such as '8am', '17:30' or '2026-05-01 08:00' (unquoted, YAML reads 17:30 as a number)";
        let value = map_get(range, name)
            .ok_or_else(|| Invalid::new(&key, format!("{expected} (it is required)")))?;
        text(value, &key, expected).and_then(|text| {
            bound(&text).ok_or_else(|| Invalid::new(&key, format!("{expected}, not {text:?}")))
        })
    };
    Ok(Some(Range {
        start: read("start")?,
        end: read("end")?,
    }))
}

/// Who is reported, and when.
#[derive(Debug, Clone, Default)]
struct Filter {
    users: Vec<(String, Option<Range>)>,
    groups: Vec<(String, Option<Range>)>,
    defaults: Option<Range>,
}

fn named_ranges(options: &Options, key: &str) -> Result<Vec<(String, Option<Range>)>, Invalid> {
    let Some(given) = options.get(key) else {
        return Ok(Vec::new());
    };
    map(given, key)?
        .iter()
        .map(|(name, config)| {
            let name = py_str(name).into_owned();
            let range = time_range(config, &format!("{key}:{name}"))?;
            Ok((name, range))
        })
        .collect()
}

impl Beacon for Utmp {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        self.records()
    }
}

/// A `wtmp` or `btmp` beacon.
pub(super) struct Utmp {
    kind: Kind,
    tail: Tail,
    filter: Filter,
    login: i64,
    logout: i64,
    /// The user of each terminal's last login, for its logout's.
    ttys: HashMap<String, String>,
    host: Host,
    zone: TimeZone,
    /// Groups said to be missing, said once each.
    missing: HashSet<String>,
}

impl Utmp {
    /// Reads the options of `kind`'s module.
    pub(super) fn build(kind: Kind, options: &Options) -> Result<Self, Invalid> {
        let (default_file, allowed): (&str, &[&str]) = match kind {
            Kind::Wtmp => (
                "/var/log/wtmp",
                &["users", "groups", "defaults", "ut_type", "file"],
            ),
            Kind::Btmp => ("/var/log/btmp", &["users", "groups", "defaults", "file"]),
        };
        only(options, allowed)?;
        let file = options
            .get("file")
            .map(|file| text(file, "file", "the path of a utmp file"))
            .transpose()?
            .unwrap_or_else(|| default_file.to_owned());
        let (mut login, mut logout) = (LOGIN, LOGOUT);
        if let Some(types) = options.get("ut_type") {
            known(map(types, "ut_type")?, "ut_type", &["login", "logout"])?;
            // A record's type is a C short: a number beyond one would never match.
            let record_type = |key: &str, value| {
                integer(value, key).and_then(|n| {
                    if (0..=i64::from(i16::MAX)).contains(&n) {
                        Ok(n)
                    } else {
                        Err(Invalid::new(
                            key,
                            format!("a record type from 0 to 32767, not {n}"),
                        ))
                    }
                })
            };
            if let Some(value) = map_get(types, "login") {
                login = record_type("ut_type:login", value)?;
            }
            if let Some(value) = map_get(types, "logout") {
                logout = record_type("ut_type:logout", value)?;
            }
        }
        let filter = Filter {
            users: named_ranges(options, "users")?,
            groups: named_ranges(options, "groups")?,
            defaults: match options.get("defaults") {
                Some(defaults) => time_range(defaults, "defaults")?,
                None => None,
            },
        };
        Ok(Self {
            kind,
            tail: Tail::new(options.host.path(&file)),
            filter,
            login,
            logout,
            ttys: HashMap::new(),
            host: options.host.clone(),
            zone: TimeZone::try_system().unwrap_or(TimeZone::UTC),
            missing: HashSet::new(),
        })
    }

    /// The records appended since the last check that the filters let through.
    fn records(&mut self) -> Result<Vec<Value>, String> {
        let bytes = self.tail.read(RECORDS_MAX * RECORD)?;
        let whole = bytes.len() / RECORD * RECORD;
        self.tail.unread(bytes.len() - whole);
        if whole == 0 {
            return Ok(Vec::new());
        }
        let users = self.users();
        let mut events = Vec::new();
        for chunk in bytes[..whole].chunks_exact(RECORD) {
            let Ok(raw) = <&[u8; RECORD]>::try_from(chunk) else {
                continue;
            };
            let mut record = Record::parse(raw);
            let action = self.action(&mut record);
            if self.wanted(&users, &record) {
                events.push(self.event(&record, action));
            }
        }
        Ok(events)
    }

    /// `login` or `logout` (wtmp only), remembering each terminal's user.
    fn action(&mut self, record: &mut Record) -> Option<&'static str> {
        if self.kind != Kind::Wtmp {
            return None;
        }
        let kind = i64::from(record.kind);
        if kind == self.login {
            if self.ttys.len() >= TTYS_MAX {
                self.ttys.clear();
            }
            self.ttys.insert(record.line.clone(), record.user.clone());
            Some("login")
        } else if kind == self.logout {
            if let Some(user) = self.ttys.remove(&record.line) {
                record.user = user;
            }
            Some("logout")
        } else {
            None
        }
    }

    /// The users listed, and those of the groups listed, each with their range.
    fn users(&mut self) -> Option<HashMap<String, Option<Range>>> {
        if self.filter.users.is_empty() && self.filter.groups.is_empty() {
            return None;
        }
        let mut users: HashMap<_, _> = self.filter.users.iter().cloned().collect();
        if !self.filter.groups.is_empty() {
            let groups = self.host.read("/etc/group").unwrap_or_default();
            for (group, range) in &self.filter.groups {
                let members = groups.lines().find_map(|line| {
                    let mut fields = line.split(':');
                    (fields.next() == Some(group.as_str()))
                        .then(|| fields.nth(2).unwrap_or_default())
                });
                match members {
                    Some(members) => {
                        for member in members.split(',').filter(|m| !m.is_empty()) {
                            users.entry(member.to_owned()).or_insert(*range);
                        }
                    }
                    None => {
                        if self.missing.insert(group.clone()) {
                            tracing::warn!(
                                "{} beacon: group {group} does not exist; its members are none",
                                self.kind.name()
                            );
                        }
                    }
                }
            }
        }
        Some(users)
    }

    fn wanted(&self, users: &Option<HashMap<String, Option<Range>>>, record: &Record) -> bool {
        let range = match users {
            None => self.filter.defaults,
            Some(users) => match users.get(&record.user) {
                None => return false,
                Some(range) => range.or(self.filter.defaults),
            },
        };
        range.is_none_or(|range| {
            jiff::Timestamp::from_second(i64::from(record.seconds))
                .is_ok_and(|at| range.contains(self.zone.to_datetime(at)))
        })
    }

    fn event(&self, record: &Record, action: Option<&str>) -> Value {
        let mut data = vec![
            ("type".into(), record.kind.into()),
            ("PID".into(), record.pid.into()),
            ("line".into(), record.line.as_str().into()),
            ("inittab".into(), record.id.as_str().into()),
            ("user".into(), record.user.as_str().into()),
            ("hostname".into(), record.host.as_str().into()),
            ("exit_status".into(), record.termination.into()),
            ("session".into(), record.session.into()),
            ("time".into(), record.seconds.into()),
            ("addr".into(), record.addr_text().into()),
        ];
        if let Some(action) = action {
            data.push(("action".into(), action.into()));
        }
        Value::Map(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime {
        text.parse().unwrap()
    }

    #[test]
    fn records_read_back_field_by_field() {
        let record = Record {
            kind: 7,
            pid: 4242,
            line: "pts/3".into(),
            id: "ts/3".into(),
            user: "gareth".into(),
            host: "192.0.2.7".into(),
            termination: 1,
            exit: 2,
            session: 99,
            seconds: 1_700_000_000,
            microseconds: 5,
            addr: [192, 0, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        let bytes = record.to_bytes();
        assert_eq!(&bytes[44..50], b"gareth");
        assert_eq!(i32::from_ne_bytes(bytes[336..340].try_into().unwrap()), 99);
        assert_eq!(Record::parse(&bytes), record);
        assert_eq!(record.addr_text(), "192.0.2.7");
        let v6 = Record {
            addr: "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
            ..record.clone()
        };
        assert_eq!(v6.addr_text(), "2001:db8::1");
        assert_eq!(
            Record {
                addr: [0; 16],
                ..record
            }
            .addr_text(),
            ""
        );
    }

    #[test]
    fn strings_end_at_their_first_nul() {
        let mut bytes = [0; RECORD];
        bytes[44..53].copy_from_slice(b"bob\0stale");
        assert_eq!(Record::parse(&bytes).user, "bob");
    }

    #[test]
    fn times_read_in_dateutils_usual_forms() {
        let daily = |h, m, s| Some(Bound::Daily(Time::new(h, m, s, 0).unwrap()));
        assert_eq!(bound("8am"), daily(8, 0, 0));
        assert_eq!(bound("8 AM"), daily(8, 0, 0));
        assert_eq!(bound("12am"), daily(0, 0, 0));
        assert_eq!(bound("12pm"), daily(12, 0, 0));
        assert_eq!(bound("8:30 p.m."), daily(20, 30, 0));
        assert_eq!(bound("17:05"), daily(17, 5, 0));
        assert_eq!(bound("17:05:09"), daily(17, 5, 9));
        assert_eq!(bound("2026-05-01"), Some(Bound::At(at("2026-05-01T00:00"))));
        assert_eq!(
            bound("2026/5/1 8pm"),
            Some(Bound::At(at("2026-05-01T20:00")))
        );
        assert_eq!(
            bound("2026-05-01T08:00:30"),
            Some(Bound::At(at("2026-05-01T08:00:30")))
        );
        for bad in [
            "",
            "8",
            "13pm",
            "25:00",
            "soon",
            "2026-13-01",
            "8am tomorrow",
        ] {
            assert_eq!(bound(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_hold_their_ends_and_may_run_over_midnight() {
        let range = |start: &str, end: &str| Range {
            start: bound(start).unwrap(),
            end: bound(end).unwrap(),
        };
        let office = range("8am", "4pm");
        assert!(office.contains(at("2026-05-01T08:00")));
        assert!(office.contains(at("2020-01-01T16:00")));
        assert!(!office.contains(at("2026-05-01T16:00:01")));
        let night = range("10pm", "6am");
        assert!(night.contains(at("2026-05-01T23:00")));
        assert!(night.contains(at("2026-05-01T05:00")));
        assert!(!night.contains(at("2026-05-01T12:00")));
        let dated = range("2026-05-01 08:00", "2026-05-02");
        assert!(dated.contains(at("2026-05-01T23:00")));
        assert!(!dated.contains(at("2026-05-02T00:00:01")));
    }
}
