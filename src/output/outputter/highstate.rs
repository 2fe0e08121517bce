//! `--out=highstate`, the outputter of state runs (`salt/output/highstate.py`).
//!
//! Per host (`{host: data}`), after a line `host:` whose colour tells how the run went:
//!
//! * a map of state returns (`{"<mod>_|-<id>_|-<name>_|-<fun>": {...}}`): the states in
//!   `__run_num__` order, each a block of `ID/Function/Name/Result/Comment/Started/Duration/
//!   Changes` lines (or one terse line, as `state_output` asks), the changes drawn by the
//!   `nested` outputter 14 columns in; then `Summary for <host>` with the counts and the run
//!   time. Entries that are not maps with a `result` are left out;
//! * a list (compile errors): `Data failed to compile:` and each error after a `----------`;
//! * text: its lines, 4 columns in; a number or boolean: itself, 4 columns in.
//!
//! Before that, Salt unwraps the envelopes a state return may come in (`{"return": …}`,
//! `{"data": …}`, a job's `{id: {"jid", "fun", "return": {"data": …}}}`) and drops the
//! `retcode` of an orchestration's `{"<x>_master": …, "retcode": n}`.
//!
//! Where Salt's outputter raises an error Salt catches (a state without `comment`, a state key
//! that is not text, a return that is a list…), Salt prints the whole value with `nested`
//! instead; so does halite. Where Salt would crash (a state key with fewer than four `_|-`
//! parts), halite prints `nested` too. Not supported: `state_output: filter`'s exclude and
//! terse lists (it prints as `full`, which is what Salt does without them), `state_tabular`,
//! `state_output_pct` and `state_compress_ids`; warnings are wrapped at spaces only, where
//! Python's `textwrap` also breaks after hyphens.

use super::color::{Palette, palette};
use super::{nested, txt};
use crate::config::{Config, ConfigError};
use crate::event::{Value, map_get};
use crate::py::value::{self as pyvalue, Py};

/// How each state is shown: `state_output`'s mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StateOutputMode {
    /// Every state as a block of lines.
    #[default]
    Full,
    /// Every state on one line.
    Terse,
    /// One line, except failed states (a block).
    Mixed,
    /// One line for states that succeeded without changes, a block for the others.
    Changes,
}

/// The options of the highstate outputter, from the configuration (`state_output`,
/// `state_verbose`, `state_output_profile`, `state_output_diff`) and the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HighstateOptions {
    /// `state_output`'s mode.
    pub mode: StateOutputMode,
    /// `state_output` ends with `_id`: the ID is shown as the state's name.
    pub ids: bool,
    /// `state_verbose`: when false, states that succeeded without changes are not shown.
    pub verbose: bool,
    /// `state_output_profile`: show `Started`/`Duration` and the total run time.
    pub profile: bool,
    /// `state_output_diff`: show only the states that failed or changed something.
    pub diff: bool,
}

impl Default for HighstateOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl HighstateOptions {
    /// Salt's defaults: `full`, verbose, with profile lines.
    pub const DEFAULT: Self = Self {
        mode: StateOutputMode::Full,
        ids: false,
        verbose: true,
        profile: true,
        diff: false,
    };

    /// The options a configuration sets, over Salt's defaults.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut options = Self {
            verbose: config.get_bool("state_verbose", true)?,
            profile: config.get_bool("state_output_profile", true)?,
            diff: config.get_bool("state_output_diff", false)?,
            ..Self::DEFAULT
        };
        if let Some(state_output) = config.get_str("state_output")? {
            options.set_state_output(state_output);
        }
        Ok(options)
    }

    /// Applies a `state_output` value as Salt reads it: lowercased, by its prefix (`terse`,
    /// `mixed`, `changes`; anything else shows every state in full) and an `_id` suffix.
    pub fn set_state_output(&mut self, value: &str) {
        let value = value.to_lowercase();
        self.mode = if value.starts_with("terse") {
            StateOutputMode::Terse
        } else if value.starts_with("mixed") {
            StateOutputMode::Mixed
        } else if value.starts_with("changes") {
            StateOutputMode::Changes
        } else {
            StateOutputMode::Full
        };
        self.ids = value.ends_with("_id");
    }
}

/// Salt's outputter raised an error that its `try_printout` catches: print `nested` instead.
struct Unformattable;

/// The highstate text for `value` (no final newline), or `nested`'s where Salt falls back to
/// it.
pub(crate) fn render(
    value: &Value,
    color: bool,
    retcode: i64,
    options: &HighstateOptions,
) -> String {
    let render = Render {
        color,
        colors: palette(color),
        options,
    };
    render
        .output(value, 1)
        .unwrap_or_else(|Unformattable| nested::render(value, color, retcode, 0))
}

struct Render<'a> {
    color: bool,
    colors: &'static Palette,
    options: &'a HighstateOptions,
}

/// A state's `result` as Salt counts it.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    True,
    False,
    None,
    /// Any other value, counted apart (by its `repr`) and only in the total.
    Other(String),
}

/// Counts of the summary, in the order Salt first saw each kind (the order does not show).
#[derive(Default)]
struct Counts {
    results: Vec<(Outcome, usize)>,
    warnings: usize,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match self.results.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => self.results.push((outcome, 1)),
        }
    }

    fn get(&self, outcome: &Outcome) -> usize {
        self.results
            .iter()
            .find(|(o, _)| o == outcome)
            .map_or(0, |(_, n)| *n)
    }

    /// The widest count, in digits (0 when nothing was counted).
    fn width(&self) -> usize {
        // Salt counts warnings in the same dict once there is one.
        let warnings = (self.warnings > 0).then_some(self.warnings);
        self.results
            .iter()
            .map(|(_, n)| *n)
            .chain(warnings)
            .map(|n| n.to_string().len())
            .max()
            .unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.results.iter().map(|(_, n)| n).sum()
    }
}

impl Render<'_> {
    /// Salt's `output()`: the envelopes unwrapped, then each host.
    fn output(&self, value: &Value, indent_level: usize) -> Result<String, Unformattable> {
        let mut data = value;
        if let Some(inner) = map_get(data, "return") {
            data = inner;
        }
        if let Some(inner) = map_get(data, "data") {
            data = inner;
        }
        if let Some([(_, job)]) = data.as_map().map(Vec::as_slice)
            && job.is_map()
            && map_get(job, "jid").is_some()
            && map_get(job, "fun").is_some()
        {
            match map_get(job, "return") {
                None => {}
                Some(ret) if ret.is_map() => data = map_get(ret, "data").unwrap_or(data),
                Some(_) => return Err(Unformattable),
            }
        }
        let hosts = match pyvalue::view(data) {
            Py::Str(s) => return Ok(s.into_owned()),
            Py::None => return Ok("None".to_owned()),
            Py::Dict(entries) => entries,
            _ => return Err(Unformattable),
        };
        // An orchestration's return carries its retcode next to the one `<x>_master` entry.
        let masters = hosts
            .iter()
            .filter(|(k, _)| k.as_str().is_some_and(|k| k.ends_with("_master")))
            .count();
        let orchestration =
            masters == 1 && hosts.iter().any(|(k, _)| k.as_str() == Some("retcode"));
        let mut blocks = Vec::with_capacity(hosts.len());
        for (host, hostdata) in hosts {
            if orchestration && host.as_str() == Some("retcode") {
                continue;
            }
            blocks.push(self.host(host, hostdata, indent_level)?.0);
        }
        Ok(blocks.join("\n"))
    }

    /// Salt's `_format_host`: the host's block and whether anything changed.
    fn host(
        &self,
        host: &Value,
        data: &Value,
        indent_level: usize,
    ) -> Result<(String, bool), Unformattable> {
        let c = self.colors;
        let mut hcolor = c.green;
        let mut lines: Vec<String> = Vec::new();
        let mut changed = false;
        match pyvalue::view(data) {
            Py::Bool(_) | Py::Int(_) => {
                changed = true;
                lines.push(format!("{hcolor}    {}{}", pyvalue::py_str(data), c.endc));
                hcolor = c.cyan;
            }
            Py::Str(text) => {
                // Data of this shape comes from saltmod.function: always a change.
                changed = true;
                for line in pyvalue::splitlines(&text) {
                    lines.push(format!("{hcolor}    {line}{}", c.endc));
                }
                hcolor = c.cyan;
            }
            Py::List(errors) => {
                hcolor = c.light_red;
                lines.push(format!("    {hcolor}Data failed to compile:{}", c.endc));
                for error in errors {
                    let error = strip_esc(&pyvalue::py_str(error));
                    lines.push(format!("{hcolor}----------\n    {error}{}", c.endc));
                }
            }
            Py::Dict(entries) => {
                let (states, color) = self.states(entries, indent_level)?;
                changed = states.changes > 0;
                hcolor = color.unwrap_or(hcolor);
                self.summary(&mut lines, &pyvalue::py_str(host), states);
            }
            _ => {}
        }
        let host = strip_esc(&pyvalue::py_str(host));
        lines.insert(0, format!("{hcolor}{host}:{}", c.endc));
        Ok((lines.join("\n"), changed))
    }

    /// The states of one host, in run order; the host's colour when a state sets it.
    fn states(
        &self,
        entries: &[(Value, Value)],
        indent_level: usize,
    ) -> Result<(States, Option<&'static str>), Unformattable> {
        let c = self.colors;
        let mut out = States::default();
        let mut hcolor = None;
        let mut shown: Vec<(&Value, &Value)> = Vec::new();
        for (tname, info) in entries {
            if let Py::Dict(fields) = pyvalue::view(info)
                && tname.as_str() != Some("changes")
                && !fields.is_empty()
                && map_get(info, "__run_num__").is_none()
            {
                out.lines.insert(0, txt::pformat(info));
                out.lines.insert(
                    0,
                    "The State execution failed to record the order in which all states were \
                     executed. The state return missing data is:"
                        .to_owned(),
                );
            }
            if info.is_map() && map_get(info, "result").is_some() {
                shown.push((tname, info));
            }
        }
        let mut keyed = Vec::with_capacity(shown.len());
        for (tname, ret) in shown {
            let run_num = match map_get(ret, "__run_num__").map(pyvalue::view) {
                None => 0.0,
                Some(Py::Int(i)) => i as f64,
                Some(Py::Float(f)) => f,
                Some(Py::Bool(b)) => f64::from(u8::from(b)),
                Some(_) => return Err(Unformattable),
            };
            keyed.push((run_num, tname, ret));
        }
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, tname, ret) in keyed {
            let result = map_get(ret, "result").unwrap_or(&Value::Nil);
            let outcome = match pyvalue::view(result) {
                Py::Bool(true) => Outcome::True,
                Py::Bool(false) => Outcome::False,
                Py::None => Outcome::None,
                Py::List(_) | Py::Dict(_) => return Err(Unformattable),
                _ => Outcome::Other(pyvalue::repr(result)),
            };
            out.counts.add(outcome.clone());
            let parallel = map_get(ret, "__parallel__").is_some();
            if let Some(seconds) = duration(map_get(ret, "duration"))? {
                if parallel {
                    out.parallel_durations.push(seconds);
                } else {
                    out.durations.push(seconds);
                }
            }
            let changes = map_get(ret, "changes").ok_or(Unformattable)?;
            let name = map_get(ret, "name").and_then(Value::as_str);
            let (schanged, ctext) =
                if matches!(name, Some("state.orch" | "state.orchestrate" | "state.sls")) {
                    let nested = self.output(changes, indent_level + 1)?;
                    let pad = " ".repeat(14 * indent_level);
                    let text = format!("\n{nested}");
                    let ctext: Vec<String> =
                        text.split('\n').map(|l| format!("{pad}{l}")).collect();
                    out.changes += 1;
                    (true, ctext.join("\n"))
                } else {
                    let (schanged, ctext) = self.changes(changes)?;
                    out.changes += usize::from(schanged);
                    (schanged, ctext)
                };
            let succeeded = pyvalue::truthy(result);
            if (self.options.diff || !self.options.verbose) && succeeded && !schanged {
                continue;
            }
            let mut tcolor = if schanged { c.cyan } else { c.green };
            match outcome {
                Outcome::False => {
                    hcolor = Some(c.red);
                    tcolor = c.red;
                }
                Outcome::None => {
                    hcolor = Some(c.light_yellow);
                    tcolor = c.light_yellow;
                }
                _ => {}
            }
            let tname = tname.as_str().ok_or(Unformattable)?;
            let mut comps: Vec<&str> = tname.split("_|-").collect();
            if comps.len() < 4 {
                return Err(Unformattable);
            }
            if self.options.ids {
                comps[2] = comps[1];
            }
            let terse = match self.options.mode {
                StateOutputMode::Full => false,
                StateOutputMode::Terse => true,
                StateOutputMode::Mixed => outcome != Outcome::False,
                StateOutputMode::Changes => succeeded && !schanged,
            };
            if terse {
                let line = self.terse(tcolor, &comps, ret, &outcome, changes)?;
                out.lines.push(line);
            } else {
                self.full(&mut out, tcolor, &comps, ret, result, &ctext)?;
            }
        }
        Ok((out, hcolor))
    }

    /// One state as a block of lines.
    fn full(
        &self,
        out: &mut States,
        tcolor: &str,
        comps: &[&str],
        ret: &Value,
        result: &Value,
        ctext: &str,
    ) -> Result<(), Unformattable> {
        let c = self.colors;
        let endc = c.endc;
        let comment = map_get(ret, "comment").ok_or(Unformattable)?;
        let mut comment = pyvalue::py_str(comment)
            .trim_matches(pyvalue::is_py_space)
            .replace('\n', &format!("\n{}", " ".repeat(14)));
        if let Some(data) = map_get(ret, "data") {
            match pyvalue::view(data) {
                Py::List(items) => {
                    for item in items {
                        comment = format!("{comment} {}", pyvalue::py_str(item));
                    }
                }
                Py::Dict(entries) => {
                    for (key, value) in entries {
                        comment = format!(
                            "{comment}\n\t\t{}: {}",
                            pyvalue::py_str(key),
                            pyvalue::py_str(value)
                        );
                    }
                }
                _ => comment = format!("{comment} {}", pyvalue::py_str(data)),
            }
        }
        out.lines.push(format!("{tcolor}----------{endc}"));
        out.lines
            .push(format!("    {tcolor}      ID: {}{endc}", comps[1]));
        out.lines.push(format!(
            "    {tcolor}Function: {}.{}{endc}",
            comps[0], comps[3]
        ));
        if comps[1] != comps[2] {
            out.lines
                .push(format!("    {tcolor}    Name: {}{endc}", comps[2]));
        }
        out.lines.push(format!(
            "    {tcolor}  Result: {}{endc}",
            pyvalue::py_str(result)
        ));
        out.lines
            .push(format!("    {tcolor} Comment: {comment}{endc}"));
        if self.options.profile
            && let Some(start_time) = map_get(ret, "start_time")
        {
            let duration = match map_get(ret, "duration") {
                None => String::new(),
                Some(d) if d.as_str() == Some("") => String::new(),
                Some(d) => format!("{} ms", pyvalue::py_str(d)),
            };
            out.lines.push(format!(
                "    {tcolor} Started: {}{endc}",
                pyvalue::py_str(start_time)
            ));
            out.lines
                .push(format!("    {tcolor}Duration: {duration}{endc}"));
        }
        out.lines
            .push(format!("{tcolor}     Changes:   {ctext}{endc}"));
        if let Some(warnings) = map_get(ret, "warnings") {
            out.counts.warnings += 1;
            let text = wrap(&warnings_text(warnings)?);
            out.lines.push(format!(
                "   {} Warnings: {}{endc}",
                c.light_red,
                text.trim_start_matches(pyvalue::is_py_space)
            ));
        }
        Ok(())
    }

    /// One state on one line.
    fn terse(
        &self,
        tcolor: &str,
        comps: &[&str],
        ret: &Value,
        outcome: &Outcome,
        changes: &Value,
    ) -> Result<String, Unformattable> {
        let c = self.colors;
        let result = match outcome {
            Outcome::False => "Failed",
            Outcome::None => "Differs",
            _ if pyvalue::truthy(changes) => "Changed",
            _ => "Clean",
        };
        let mut line = String::new();
        if let Some(warnings) = map_get(ret, "warnings") {
            line.push_str(&format!(
                "{}Warnings:\n{}{}",
                c.light_red,
                warnings_text(warnings)?,
                c.endc
            ));
        }
        let function = comps.last().copied().unwrap_or_default();
        line.push_str(&format!(
            " {tcolor} Name: {} - Function: {}.{function} - Result: {result}",
            comps[2], comps[0]
        ));
        if self.options.profile
            && let Some(start_time) = map_get(ret, "start_time")
        {
            let duration = map_get(ret, "duration").ok_or(Unformattable)?;
            line.push_str(&format!(
                " - Started: {} - Duration: {} ms",
                pyvalue::py_str(start_time),
                pyvalue::py_str(duration)
            ));
        }
        line.push_str(c.endc);
        Ok(line)
    }

    /// Salt's `_format_changes`: whether the state changed something, and the text after
    /// `Changes:`.
    fn changes(&self, changes: &Value) -> Result<(bool, String), Unformattable> {
        if !pyvalue::truthy(changes) {
            return Ok((false, String::new()));
        }
        if !changes.is_map() {
            return Ok((
                true,
                format!("Invalid Changes data: {}", pyvalue::py_str(changes)),
            ));
        }
        let ret = map_get(changes, "ret").filter(|ret| !ret.is_nil());
        if let Some(ret) = ret
            && map_get(changes, "out").and_then(Value::as_str) == Some("highstate")
        {
            let hosts = ret.as_map().ok_or(Unformattable)?;
            let mut ctext = String::new();
            let mut changed = false;
            for (host, hostdata) in hosts {
                let (text, c) = self.host(host, hostdata, 1)?;
                ctext.push('\n');
                let lines: Vec<String> = pyvalue::splitlines(&text)
                    .into_iter()
                    .map(|l| format!("{}{l}", " ".repeat(14)))
                    .collect();
                ctext.push_str(&lines.join("\n"));
                changed |= c;
            }
            return Ok((changed, ctext));
        }
        let text = nested::render(changes, self.color, 0, 14);
        Ok((
            true,
            format!("\n{}", text.trim_end_matches(pyvalue::is_py_space)),
        ))
    }

    /// The `Summary for <host>` block.
    fn summary(&self, lines: &mut Vec<String>, host: &str, states: States) {
        let c = self.colors;
        let endc = c.endc;
        lines.extend(states.lines);
        let counts = &states.counts;
        let width = "Succeeded".len() + counts.width() + 2;
        let field =
            |label: &str, count: usize| format!("{label}: {count:>0$}", width - (label.len() + 2));
        lines.push(format!(
            "{}\nSummary for {host}\n{}{endc}",
            c.cyan,
            "-".repeat(width)
        ));
        let unchanged = counts.get(&Outcome::None);
        let mut stats = Vec::new();
        if unchanged > 0 {
            stats.push(format!("{}unchanged={unchanged}{endc}", c.light_yellow));
        }
        if states.changes > 0 {
            stats.push(format!("{}changed={}{endc}", c.green, states.changes));
        }
        let stats = if stats.is_empty() {
            String::new()
        } else {
            format!(" ({})", stats.join(", "))
        };
        let succeeded = counts.get(&Outcome::True) + unchanged;
        lines.push(format!(
            "{}{}{endc}{stats}",
            c.green,
            field("Succeeded", succeeded)
        ));
        let failed = counts.get(&Outcome::False);
        let failed_color = if failed > 0 { c.red } else { c.cyan };
        lines.push(format!("{failed_color}{}{endc}", field("Failed", failed)));
        if counts.warnings > 0 {
            lines.push(format!(
                "{}{}{endc}",
                c.light_red,
                field("Warnings", counts.warnings)
            ));
        }
        let (cyan, rule, total, room) = (c.cyan, "-".repeat(width), counts.total(), width - 7);
        lines.push(format!(
            "{cyan}{rule}\nTotal states run: {total:>room$}{endc}"
        ));
        if self.options.profile {
            // Python's sum starts at 0 (Rust's f64 sum at -0.0, which would print as -0.000).
            let mut total = states.durations.iter().fold(0.0, |sum, d| sum + d);
            if let Some(longest) = states.parallel_durations.iter().copied().reduce(f64::max) {
                total += longest;
            }
            let unit = if total > 999.0 {
                total /= 1000.0;
                "s"
            } else {
                "ms"
            };
            let (total, room) = (format!("{total:.3}"), width - 5);
            lines.push(format!("{cyan}Total run time: {total:>room$} {unit}{endc}"));
        }
    }
}

/// What the states of one host add up to.
#[derive(Default)]
struct States {
    lines: Vec<String>,
    counts: Counts,
    changes: usize,
    durations: Vec<f64>,
    parallel_durations: Vec<f64>,
}

/// A state's `duration` in milliseconds as Salt reads it (`float()`, or the number before
/// ` ms`); `None` when it cannot be read (Salt logs that and goes on).
fn duration(value: Option<&Value>) -> Result<Option<f64>, Unformattable> {
    let Some(value) = value else {
        return Ok(Some(0.0));
    };
    Ok(match pyvalue::view(value) {
        Py::Int(i) => Some(i as f64),
        Py::Float(f) => Some(f),
        Py::Bool(b) => Some(f64::from(u8::from(b))),
        Py::Str(s) => {
            let parse = |s: &str| s.trim_matches(pyvalue::is_py_space).parse::<f64>().ok();
            parse(&s).or_else(|| parse(s.split(" ms").next().unwrap_or_default()))
        }
        _ => return Err(Unformattable),
    })
}

/// The warnings joined by lines, as Salt's `"\n".join(ret["warnings"])` (a list of text).
fn warnings_text(warnings: &Value) -> Result<String, Unformattable> {
    match pyvalue::view(warnings) {
        Py::List(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(Unformattable))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join("\n")),
        Py::Str(s) => Ok(s.chars().map(String::from).collect::<Vec<_>>().join("\n")),
        _ => Err(Unformattable),
    }
}

/// `textwrap.fill(text, width=80)` with both indents 14 spaces, breaking at whitespace (and
/// inside words longer than a line).
fn wrap(text: &str) -> String {
    const WIDTH: usize = 80;
    const INDENT: usize = 14;
    let mut expanded = String::new();
    let mut column = 0;
    for ch in text.chars() {
        match ch {
            '\t' => {
                let next = (column / 8 + 1) * 8;
                expanded.extend(std::iter::repeat_n(' ', next - column));
                column = next;
            }
            '\n' | '\r' => {
                expanded.push(' ');
                column = 0;
            }
            '\u{b}' | '\u{c}' => {
                expanded.push(' ');
                column += 1;
            }
            _ => {
                expanded.push(ch);
                column += 1;
            }
        }
    }
    // Chunks alternate words and runs of spaces; reversed so the next one is last.
    let mut chunks: Vec<String> = Vec::new();
    for ch in expanded.chars() {
        match chunks.last_mut() {
            Some(last) if last.starts_with(' ') == (ch == ' ') => last.push(ch),
            _ => chunks.push(ch.to_string()),
        }
    }
    chunks.reverse();
    let width = WIDTH - INDENT;
    let mut lines: Vec<String> = Vec::new();
    while !chunks.is_empty() {
        let mut line: Vec<String> = Vec::new();
        let mut len = 0;
        if !lines.is_empty() && chunks.last().is_some_and(|c| c.starts_with(' ')) {
            chunks.pop();
        }
        while let Some(chunk) = chunks.last() {
            let n = chunk.chars().count();
            if len + n > width {
                break;
            }
            len += n;
            line.extend(chunks.pop());
        }
        if let Some(chunk) = chunks.last_mut()
            && chunk.chars().count() > width
        {
            let room = width.saturating_sub(len).max(1);
            let mut end = room;
            if let Some(hyphen) = chunk.chars().take(room).collect::<String>().rfind('-')
                && hyphen > 0
                && chunk[..hyphen].chars().any(|ch| ch != '-')
            {
                end = chunk[..=hyphen].chars().count();
            }
            let split = chunk
                .char_indices()
                .nth(end)
                .map_or(chunk.len(), |(i, _)| i);
            line.push(chunk[..split].to_owned());
            *chunk = chunk[split..].to_owned();
        }
        if line.last().is_some_and(|c| c.starts_with(' ')) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(format!("{}{}", " ".repeat(INDENT), line.concat()));
        }
    }
    lines.join("\n")
}

/// Salt's `strip_esc_sequence`: ESC characters become `?` so data cannot drive the terminal.
fn strip_esc(text: &str) -> String {
    text.replace('\u{1b}', "?")
}

#[cfg(test)]
mod tests;
