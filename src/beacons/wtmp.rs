//! `wtmp`: fires one event for each login and logout record appended to `/var/log/wtmp` (and
//! each other record, unless filtered), with `action: login` or `logout` added, as Salt's
//! module does. The tag has no suffix.
//!
//! ```yaml
//! beacons:
//!   wtmp:
//!     - users:
//!         gareth:
//!           time_range: {start: 7am, end: 3pm}
//!     - groups:
//!         admins: {}
//!     - defaults:
//!         time_range: {start: 8am, end: 4pm}
//!     - file: /var/log/wtmp
//! ```
//!
//! Records, fields, filters and how they differ from Salt's are in [`super::utmp`]. A login is
//! `ut_type` 7 and a logout 8; `ut_type: {login: 9, logout: 10}` says otherwise (Salt's
//! documented option, which its module compares wrongly and so never applies). A logout record
//! carries no user: it gets the user of the last login on its terminal that the beacon read.

use super::utmp::{Kind, Utmp};
use super::{Beacon, Invalid, Module, Options};

pub(super) const MODULE: Module = Module {
    name: "wtmp",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    Ok(Box::new(Utmp::build(Kind::Wtmp, options)?))
}
