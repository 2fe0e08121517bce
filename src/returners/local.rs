//! Salt's `local` returner, the returner interface's test: it prints each return as Salt's
//! `print(ret)` does (Python's `repr` of the return dict, on a line of stdout) and each batch of
//! events as `print(events)` (the list of `{'data': …, 'tag': …}`, on one line).
//!
//! halite's addition: with `local.filename` set (e.g. the `/var/log/salt/local_returner.log` of
//! a minion's own jobs), returns and events are appended to that file instead, as lines of
//! JSON, the same lines as `rawfile_json`'s: a return's dict, an event's `{"data", "tag"}`.

use std::io::Write;
use std::sync::Arc;

use super::rawfile_json::{self, JsonLines};
use super::{Options, Pending, Returner, ReturnerError};
use crate::event::{Event, Value};
use crate::py::value::{push_repr, push_str_repr};

/// The `local` returner.
#[derive(Debug)]
pub enum Local {
    /// Salt's: printed on stdout.
    Stdout,
    /// halite's: JSON lines appended to `local.filename`.
    File(JsonLines),
}

/// Builds it from `local.filename`, when set.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let local = match options.get("filename") {
        None => Local::Stdout,
        Some(_) => Local::File(JsonLines::new(
            "local",
            "filename",
            options.text("filename", "")?.into(),
        )),
    };
    Ok(Arc::new(local))
}

impl Returner for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        match self {
            Local::Stdout => {
                let mut text = String::new();
                for ret in returns {
                    push_repr(&mut text, ret);
                    text.push('\n');
                }
                print(text)
            }
            Local::File(file) => file.append(rawfile_json::return_lines(returns)),
        }
    }

    fn events<'a>(&'a self, events: &'a [Event]) -> Pending<'a, ()> {
        match self {
            Local::Stdout => print(printed_events(events)),
            Local::File(file) => file.append(rawfile_json::event_lines(events)),
        }
    }
}

/// `print(events)` of Salt's `event_return`: the list of its items, on one line.
fn printed_events(events: &[Event]) -> String {
    let mut text = String::from("[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str("{'data': ");
        push_repr(&mut text, &event.data);
        text.push_str(", 'tag': ");
        push_str_repr(&mut text, &event.tag);
        text.push('}');
    }
    text.push_str("]\n");
    text
}

/// Writes `text` on stdout, on the blocking pool (a full pipe must not hold up a runtime
/// thread).
fn print(text: String) -> Pending<'static, ()> {
    Box::pin(async move {
        let rejected = |problem: String| ReturnerError::Rejected {
            returner: "local",
            problem,
        };
        tokio::task::spawn_blocking(move || {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()
        })
        .await
        .map_err(|err| rejected(err.to_string()))?
        // A closed stdout stays closed: retrying would not help.
        .map_err(|err| rejected(format!("cannot print on stdout: {err}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_the_list_salt_prints() {
        let data = crate::salt_yaml::load("{a: [1, 2.5, null, true], 'ü': \"it's\"}").unwrap();
        let events = [
            Event::new("one", data).unwrap(),
            Event::new("two", Value::Map(Vec::new())).unwrap(),
        ];
        assert_eq!(
            printed_events(&events),
            "[{'data': {'a': [1, 2.5, None, True], 'ü': \"it's\"}, 'tag': 'one'}, \
             {'data': {}, 'tag': 'two'}]\n"
        );
        assert_eq!(printed_events(&[]), "[]\n");
    }
}
