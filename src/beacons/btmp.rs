//! `btmp`: fires one event for each failed login recorded in `/var/log/btmp`, as Salt's module
//! does. The tag has no suffix.
//!
//! ```yaml
//! beacons:
//!   btmp:
//!     - users:
//!         root: {}
//!     - defaults:
//!         time_range: {start: 8am, end: 4pm}
//!     - file: /var/log/btmp
//! ```
//!
//! Records, fields, filters and how they differ from Salt's are in [`super::utmp`].

use super::utmp::{Kind, Utmp};
use super::{Beacon, Invalid, Module, Options};

pub(super) const MODULE: Module = Module {
    name: "btmp",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    Ok(Box::new(Utmp::build(Kind::Btmp, options)?))
}
