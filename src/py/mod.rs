//! Python semantics in one place, the only part of halite that imitates Python: Salt is Python,
//! and where it shows Python's behaviour, so does halite.
//!
//! - [`value`]: event data seen as Python sees it after msgpack: `repr`, `str`, truthiness,
//!   ordering.
//! - [`dateutil`]: python-dateutil's parser for the usual forms of times and dates, which Salt
//!   reads schedules' and beacons' times with.
//! - [`difflib`]: `difflib.unified_diff`, the diffs Salt shows for changed files.
//! - [`json`]: Python's `json.dumps(..., ensure_ascii=False)`, the JSON Salt prints.
//! - [`fnmatch`]: Python's `fnmatch`, for tag globs, targets, autosign and reactor entries.
//! - [`number`]: `int()` and `float()` of a string, for Salt's checks of quoted numbers.
//! - [`os_path`]: `os.path.expanduser`, for paths in states, functions and config includes.
//! - [`re`]: Python's `re` syntax and semantics on a linear-time engine, for `regex` match types,
//!   `state.event` expressions, `-E` targets and autosign lines.

pub mod dateutil;
pub(crate) mod difflib;
pub mod fnmatch;
pub mod json;
pub(crate) mod number;
pub(crate) mod os_path;
pub mod re;
pub(crate) mod value;
