//! `file.line`: one line of a file replaced, deleted, inserted or ensured next to others, as
//! Salt's state and its execution function `file.line` (with `_set_line`) do it: the file
//! read as text with universal newlines, the lines matched by regular expression or by plain
//! fragment, each new line given the indentation of its neighbour and a line ending, and the
//! change shown as a unified diff.

use std::path::Path;

use super::{Ret, is_absolute, replace_file, target_name};
use crate::event::Value;
use crate::states::{ExecutionError, StateCall, StateContext, StateError, StateResult};

pub(super) async fn line(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    Ok(run(call, ctx).await?.done())
}

async fn run(call: &StateCall, ctx: &StateContext) -> Result<Ret, StateError> {
    let name = target_name(call);
    let mut ret = Ret::new(&name);
    if name.is_empty() {
        return Ok(ret.error("Must provide name to file.line"));
    }
    // As Salt's state does, `file.managed` first makes the file when `create` asks for it,
    // and sets the owner and `file_mode` declared; its result is not reported.
    let mut args = vec![("replace".to_owned(), Value::Boolean(false))];
    for (from, to) in [
        ("create", "create"),
        ("user", "user"),
        ("group", "group"),
        ("file_mode", "mode"),
    ] {
        let value = call.arg(from).cloned();
        let value = match (from, value) {
            ("create", None) => Some(Value::Boolean(false)),
            (_, value) => value,
        };
        if let Some(value) = value {
            args.push((to.to_owned(), value));
        }
    }
    let managed = StateCall {
        args,
        watch_changes: Vec::new(),
        ..call.clone()
    };
    super::managed::run(&managed, ctx).await?;
    if !is_absolute(&name) {
        return Ok(ret.error(format!("Specified file {name} is not an absolute path")));
    }
    if !Path::new(&name).exists() {
        return Ok(ret.error(format!("{name}: file not found")));
    }
    let Some(mode) = call.arg_str("mode").map(|mode| mode.to_lowercase()) else {
        return Ok(ret.error("Mode was not defined. How to process the file?"));
    };
    let content = call.arg_str("content");
    if mode != "delete" && content.is_none() {
        return Ok(ret.error("Content can only be empty if mode is ['delete']"));
    }
    let declared = Declared {
        content,
        matching: call.arg_str("match"),
        mode,
        location: call.arg_str("location"),
        before: call.arg_str("before"),
        after: call.arg_str("after"),
        indent: call.arg_bool("indent", true),
    };
    let options = Options {
        show_changes: call.arg_bool("show_changes", true),
        backup: call.arg_bool("backup", false),
        quiet: call.arg_bool("quiet", false),
        test: call.test,
    };
    let changes = edit(&name, &declared, &options).map_err(ExecutionError)?;
    match changes {
        Changes::None => {
            ret.comment = "No changes needed to be made".to_owned();
        }
        changes => {
            ret.change(
                "diff",
                match changes {
                    Changes::Diff(diff) => Value::from(diff),
                    _ => Value::Boolean(true),
                },
            );
            if call.test {
                ret.result = None;
                ret.comment = "Changes would be made".to_owned();
            } else {
                ret.comment = "Changes were made".to_owned();
            }
        }
    }
    Ok(ret)
}

/// What the line is and where it goes.
struct Declared {
    content: Option<String>,
    matching: Option<String>,
    mode: String,
    location: Option<String>,
    before: Option<String>,
    after: Option<String>,
    indent: bool,
}

/// How the edit is made and reported.
struct Options {
    show_changes: bool,
    backup: bool,
    quiet: bool,
    test: bool,
}

/// What Salt's execution function returns: the diff, or whether the file changed.
enum Changes {
    None,
    Changed,
    Diff(String),
}

/// Salt's execution function `file.line`; the error is its `CommandExecutionError`.
fn edit(name: &str, declared: &Declared, options: &Options) -> Result<Changes, String> {
    let path = std::fs::canonicalize(name).unwrap_or_else(|_| name.into());
    if !path.is_file() {
        if options.quiet {
            return Ok(Changes::None);
        }
        return Err(format!(
            "File \"{}\" does not exists or is not a file.",
            path.display()
        ));
    }
    if !["insert", "ensure", "delete", "replace"].contains(&declared.mode.as_str()) {
        return Err(format!("Unknown mode: \"{}\"", declared.mode));
    }
    let data = std::fs::read(&path).map_err(|err| super::os_error(&err, &path))?;
    let text = String::from_utf8(data.clone()).map_err(|_| {
        format!(
            "'utf-8' codec can't decode the contents of {}",
            path.display()
        )
    })?;
    let original = read_lines(&text);
    let mut body = original.clone();
    if body.last().is_some_and(|last| !eol(last).is_empty()) {
        body.push(String::new());
    }
    if data.is_empty() && ["delete", "replace"].contains(&declared.mode.as_str()) {
        body.clear();
    }
    let mut body = set_line(body, declared)?;
    if !body.is_empty() {
        for idx in 0..body.len() {
            if eol(&body[idx]).is_empty() && idx + 1 < body.len() {
                let prev = if idx == 0 { 1 } else { idx - 1 };
                body[idx] = with_eol(&body[prev], &body[idx]);
            }
        }
        if body.last().is_some_and(String::is_empty) {
            body.pop();
        }
    }
    let new = body.concat();
    if new == original.concat() {
        return Ok(Changes::None);
    }
    if options.backup && !options.test {
        // Salt names the copy after the local time; halite stamps UTC, as its backups do.
        let stamp = jiff::Timestamp::now().strftime("%Y-%m-%d-%H-%M-%S");
        let copy = format!("{}.{stamp}", path.display());
        std::fs::copy(&path, &copy).map_err(|err| {
            format!(
                "Unable to create the backup file of {}. Exception: {}",
                path.display(),
                super::os_error(&err, Path::new(&copy))
            )
        })?;
    }
    let diff = options
        .show_changes
        .then(|| crate::py::difflib::unified_diff(&original, &body))
        .filter(|diff| !diff.is_empty());
    if !options.test {
        replace_file(&path, new.as_bytes(), "", Path::new("/")).map_err(|err| {
            format!(
                "Unable to write file '{}'. Exception: {err}",
                path.display()
            )
        })?;
    }
    Ok(diff.map_or(Changes::Changed, Changes::Diff))
}

/// Python's `readlines()` on a file opened as text: `\r\n` and `\r` read as `\n`.
fn read_lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split_inclusive('\n')
        .map(str::to_owned)
        .collect()
}

/// Salt's `_get_eol`: the line ending a line has, if any.
fn eol(line: &str) -> &'static str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else if line.ends_with('\r') {
        "\r"
    } else {
        ""
    }
}

/// Salt's `_set_line_eol`: `line` stripped at the end, with `src`'s line ending (or `\n`).
fn with_eol(src: &str, line: &str) -> String {
    let ending = match eol(src) {
        "" => "\n",
        ending => ending,
    };
    format!("{}{ending}", line.trim_end())
}

/// Salt's `_set_line_indent`: `line` with the indentation of `src` instead of its own.
fn indented(src: &str, line: &str, indent: bool) -> String {
    if !indent {
        return line.to_owned();
    }
    let lead: String = src
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    format!("{lead}{}", line.trim_start())
}

/// Salt's `_regex_to_static`: the lines a pattern (searched for, `.` matching newlines too)
/// or a plain fragment finds; None without lines or without a pattern.
fn found(lines: &[String], pattern: Option<&str>) -> Result<Option<Vec<String>>, String> {
    let Some(pattern) = pattern.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if lines.is_empty() {
        return Ok(None);
    }
    let regex = crate::py::re::Regex::new(
        &format!("(?s).*?(?:{pattern})"),
        crate::py::re::Anchoring::Match,
        pattern,
    )
    .map_err(|err| format!("{err}: '{pattern}'"))?;
    Ok(Some(
        lines
            .iter()
            .filter(|line| regex.is_match(line) || line.contains(pattern))
            .cloned()
            .collect(),
    ))
}

/// Salt's `_assert_occurrence`: exactly one line found.
fn once(probe: &[String], target: &str) -> Result<(), String> {
    let which = match probe.len() {
        1 => return Ok(()),
        0 => "less than",
        _ => "more than",
    };
    Err(format!(
        "Found {which} expected occurrences in \"{target}\" expression"
    ))
}

/// Where a line found sits (Python's `list.index`).
fn index(lines: &[String], line: &str) -> usize {
    lines.iter().position(|l| l == line).unwrap_or(0)
}

/// Python's `lines[i - 1]`: the last line when `i` is 0.
fn before_index(lines: &[String], i: usize) -> &str {
    let at = if i == 0 { lines.len() - 1 } else { i - 1 };
    &lines[at]
}

/// Salt's `_set_line`: the lines with the declared line put in, replaced or removed.
fn set_line(mut lines: Vec<String>, declared: &Declared) -> Result<Vec<String>, String> {
    let content = declared.content.as_deref().unwrap_or_default();
    let matching = match &declared.matching {
        Some(m) if !m.is_empty() => Some(m.as_str()),
        _ if declared.before.is_none() && declared.after.is_none() => declared.content.as_deref(),
        _ => None,
    };
    let after = found(&lines, declared.after.as_deref())?;
    let before = found(&lines, declared.before.as_deref())?;
    let matched = found(&lines, matching)?;
    let first = |found: &Option<Vec<String>>| found.as_ref().and_then(|f| f.first()).cloned();
    let has = |found: &Option<Vec<String>>| found.as_ref().is_some_and(|f| !f.is_empty());
    let indent = declared.indent;
    match declared.mode.as_str() {
        "delete" | "replace" if lines.is_empty() => {}
        "delete" => {
            if let Some(gone) = first(&matched) {
                lines.retain(|line| *line != gone);
            }
        }
        "replace" => {
            if let Some(old) = first(&matched) {
                let idx = index(&lines, &old);
                lines[idx] = indented(&old, content, indent);
            }
        }
        "insert" => {
            if before.is_none() && after.is_none() && declared.location.is_none() {
                return Err(
                    "On insert either \"location\" or \"before/after\" conditions are required."
                        .to_owned(),
                );
            }
            match declared.location.as_deref().filter(|l| !l.is_empty()) {
                Some("end") => match lines.last() {
                    Some(last) => {
                        let line = indented(last, content, indent);
                        lines.push(line);
                    }
                    None => lines.push(content.to_owned()),
                },
                Some("start") => match lines.first() {
                    Some(first) => {
                        let line = with_eol(first, content);
                        lines.insert(0, line);
                    }
                    None => lines = vec![format!("{content}\n")],
                },
                Some(_) => {}
                None => {
                    let (before, after) = (before.unwrap_or_default(), after.unwrap_or_default());
                    if !before.is_empty() && !after.is_empty() {
                        once(&before, "before")?;
                        once(&after, "after")?;
                        let last = index(&lines, &before[0]);
                        let line = indented(&lines[last], content, indent);
                        lines.insert(last, line);
                    } else if !after.is_empty() {
                        once(&after, "after")?;
                        let idx = index(&lines, &after[0]);
                        let next = lines.get(idx + 1);
                        if next.is_none_or(|next| !same_line(next, content)) {
                            let line = indented(&lines[idx], content, indent);
                            lines.insert(idx + 1, line);
                        }
                    } else if !before.is_empty() {
                        once(&before, "before")?;
                        let idx = index(&lines, &before[0]);
                        if !same_line(before_index(&lines, idx), content) {
                            let line = indented(&lines[idx], content, indent);
                            lines.insert(idx, line);
                        }
                    } else {
                        return Err("Neither before or after was found in file".to_owned());
                    }
                }
            }
        }
        _ => {
            if has(&before) && has(&after) {
                let (before, after) = (before.unwrap_or_default(), after.unwrap_or_default());
                once(&after, "after")?;
                once(&before, "before")?;
                let after_index = index(&lines, &after[0]);
                let before_index = index(&lines, &before[0]);
                if !lines.iter().any(|line| line.trim_start() == content) {
                    let line = indented(&lines[after_index], content, indent);
                    if after_index + 1 == before_index {
                        lines.insert(after_index + 1, line);
                    } else if after_index + 2 == before_index {
                        lines[after_index + 1] = line;
                    } else {
                        return Err(
                            "Found more than one line between boundaries \"before\" and \"after\"."
                                .to_owned(),
                        );
                    }
                }
            } else if has(&before) {
                let before = before.unwrap_or_default();
                once(&before, "before")?;
                let idx = index(&lines, &before[0]);
                if idx == 0 || !same_line(&lines[idx - 1], content) {
                    let line = indented(before_index(&lines, idx), content, indent);
                    lines.insert(idx, line);
                }
            } else if has(&after) {
                let after = after.unwrap_or_default();
                once(&after, "after")?;
                let idx = index(&lines, &after[0]);
                if lines
                    .get(idx + 1)
                    .is_none_or(|next| !same_line(next, content))
                {
                    let line = indented(&lines[idx], content, indent);
                    lines.insert(idx + 1, line);
                }
            } else {
                return Err("Wrong conditions? Unable to ensure line without knowing where to put it before and/or after.".to_owned());
            }
        }
    }
    Ok(lines)
}

/// Whether two lines are the same once their line endings are set aside.
fn same_line(line: &str, content: &str) -> bool {
    line.trim_end_matches(['\r', '\n']) == content.trim_end_matches(['\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(mode: &str, content: &str) -> Declared {
        Declared {
            content: Some(content.to_owned()),
            matching: None,
            mode: mode.to_owned(),
            location: None,
            before: None,
            after: None,
            indent: true,
        }
    }

    fn lines(text: &str) -> Vec<String> {
        read_lines(text)
    }

    #[test]
    fn ensure_after_inserts_once_with_the_neighbours_indentation() {
        let mut want = declared("ensure", "b = 2");
        want.after = Some("^ *a =".to_owned());
        let out = set_line(lines("  a = 1\n  c = 3\n"), &want).unwrap();
        assert_eq!(out, ["  a = 1\n", "  b = 2", "  c = 3\n"]);
        let again = set_line(lines("a = 1\nb = 2\nc = 3\n"), &want).unwrap();
        assert_eq!(again, lines("a = 1\nb = 2\nc = 3\n"));
        // As in Salt, the line after is compared as it is: indented, it is not the content.
        let indented = set_line(lines("  a = 1\n  b = 2\n"), &want).unwrap();
        assert_eq!(indented, ["  a = 1\n", "  b = 2", "  b = 2\n"]);
    }

    #[test]
    fn ensure_without_before_or_after_is_salts_error() {
        let err = set_line(lines("a\n"), &declared("ensure", "b")).unwrap_err();
        assert!(err.starts_with("Wrong conditions?"), "{err}");
    }

    #[test]
    fn insert_before_the_first_line_compares_with_the_last_as_python_indexes() {
        let mut want = declared("insert", "x");
        want.before = Some("^a".to_owned());
        let out = set_line(lines("a\nb\nx\n"), &want).unwrap();
        assert_eq!(
            out,
            lines("a\nb\nx\n"),
            "the last line already is the content"
        );
    }

    #[test]
    fn delete_removes_every_line_equal_to_the_first_match() {
        let mut want = declared("delete", "");
        want.content = None;
        want.matching = Some("^#".to_owned());
        let out = set_line(lines("# a\nb\n# a\n# c\n"), &want).unwrap();
        assert_eq!(out, lines("b\n# c\n"));
    }
}
