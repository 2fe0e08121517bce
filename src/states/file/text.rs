//! `file.append`: lines added at the end of a file unless it already holds them, with the
//! diff Salt shows for it (lines without endings, joined by newlines).

use std::io::Write;
use std::path::Path;

use super::{Ret, is_absolute, is_text, make_parents, target_name};
use crate::event::Value;
use crate::py::value::{py_str, splitlines};
use crate::states::{StateCall, StateContext, StateError, StateResult};

pub(super) async fn append(call: &StateCall, _: &StateContext) -> Result<StateResult, StateError> {
    Ok(add(call).done())
}

/// Whether `data` already holds `chunk`: Salt's whitespace-insensitive search, each line of the
/// chunk a whole line of the file, words separated by any (or no) whitespace.
fn holds(data: &str, chunk: &str) -> bool {
    let mut pattern = String::from("(?m)^");
    for line in splitlines(chunk) {
        let words: Vec<String> = line.split_whitespace().map(regex::escape).collect();
        pattern.push_str(&format!(r"\s*{}\s*", words.join(r"\s*")));
    }
    pattern.push('$');
    regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(data))
}

/// Salt's `"\n".join(difflib.unified_diff(old, new))` over lines without their endings.
fn joined_diff(old: &[String], new: &[String]) -> String {
    let with_end =
        |lines: &[String]| -> Vec<String> { lines.iter().map(|l| format!("{l}\n")).collect() };
    let diff = crate::py::difflib::unified_diff(&with_end(old), &with_end(new));
    // Each item difflib yields is one line here; Salt joins them with a newline, so the
    // header lines (which end in one) are followed by an empty line and the last loses it.
    let items: Vec<&str> = diff.split_inclusive('\n').collect();
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            if index < 3 {
                (*item).to_owned()
            } else {
                item.strip_suffix('\n').unwrap_or(item).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn add(call: &StateCall) -> Ret {
    let name = target_name(call);
    let mut ret = Ret::new(&name);
    ret.result = Some(false);
    if name.is_empty() {
        return ret.error("Must provide name to file.append");
    }
    let path = Path::new(&name);
    if call.arg_bool("makedirs", false) {
        if call.test {
            ret.comment = format!(
                "Directory {} is set to be updated",
                path.parent().unwrap_or(Path::new("/")).display()
            );
            ret.result = None;
        } else if let Err(err) = make_parents(path, None, None, None) {
            return ret.error(err);
        }
    }
    if !is_absolute(&name) {
        return ret.error(format!("Specified file {name} is not an absolute path"));
    }
    if !path.is_file() {
        if call.test {
            ret.result = None;
            ret.comment = format!("File {name} is set to be created");
            ret.change("new", name.as_str());
            return ret;
        }
        if std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .is_err()
        {
            return ret.error(format!("{name}: file not found"));
        }
    }
    let chunks: Vec<String> = match call.arg("text") {
        Some(Value::Array(items)) => items.iter().map(|i| py_str(i).into_owned()).collect(),
        Some(one) => vec![py_str(one).into_owned()],
        None => vec!["None".to_owned()],
    };
    let data = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&data).into_owned();
    let old: Vec<String> = splitlines(&text).into_iter().map(str::to_owned).collect();
    let ignore_whitespace = call.arg_bool("ignore_whitespace", true);
    let mut lines = Vec::new();
    for chunk in &chunks {
        let present = if ignore_whitespace {
            holds(&text, chunk)
        } else {
            regex::Regex::new(&format!("(?m){chunk}")).is_ok_and(|re| re.is_match(&text))
        };
        if !present {
            lines.extend(splitlines(chunk).into_iter().map(str::to_owned));
        }
    }
    let mut new = old.clone();
    new.extend(lines.iter().cloned());
    let shown = |new: &[String]| {
        if is_text(&data) {
            joined_diff(&old, new)
        } else {
            "Replace binary file".to_owned()
        }
    };
    if call.test {
        ret.comment = format!("File {name} is set to be updated");
        ret.result = None;
        if old != new {
            ret.change("diff", shown(&new));
        } else {
            ret.comment = format!("File {name} is in correct state");
            ret.result = Some(true);
        }
        return ret;
    }
    if lines.is_empty() {
        ret.comment = format!("File {name} is in correct state");
    } else {
        // Salt's `file.append` first ends an unterminated last line.
        let mut out = Vec::new();
        if data.last().is_some_and(|b| *b != b'\n') {
            out.push(b'\n');
        }
        for line in &lines {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(&out));
        if let Err(err) = written {
            return ret.error(super::os_error(&err, path));
        }
        ret.comment = format!("Appended {} lines", lines.len());
        ret.change("diff", shown(&new));
    }
    ret.result = Some(true);
    ret
}
