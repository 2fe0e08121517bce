//! Reading events piped in on standard input, one per line in the formats `state.event` prints:
//! `tag<TAB>json` (plain or pretty: a pretty event's continuation lines are joined until the JSON
//! is complete) or a JSON object `{"tag": …, "data": …}`.

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::event::{Event, Value, map_get};

/// Events read one at a time from standard input.
pub(crate) struct StdinEvents {
    lines: tokio::io::Lines<BufReader<tokio::io::Stdin>>,
    number: u64,
}

impl StdinEvents {
    /// A reader of standard input.
    pub(crate) fn new() -> Self {
        Self {
            lines: BufReader::new(tokio::io::stdin()).lines(),
            number: 0,
        }
    }

    /// The next event, `None` at the end of input; a line that is not an event is an error
    /// naming the line.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Event>> {
        let mut pending: Option<(u64, String, String)> = None;
        while let Some(line) = self
            .lines
            .next_line()
            .await
            .context("cannot read standard input")?
        {
            self.number += 1;
            let number = self.number;
            let (start, tag, json) = match pending.take() {
                Some((start, tag, mut json)) => {
                    json.push('\n');
                    json.push_str(&line);
                    (start, tag, json)
                }
                None if line.trim().is_empty() => continue,
                None if line.starts_with('{') => {
                    return parse_object(&line)
                        .map(Some)
                        .with_context(|| format!("stdin line {number}"));
                }
                None => match line.split_once('\t') {
                    Some((tag, json)) => (number, tag.to_owned(), json.to_owned()),
                    None => bail!(
                        "stdin line {number}: expected `tag<TAB>json` or a JSON object with tag and data, got {line:?}"
                    ),
                },
            };
            match serde_json::from_str::<Value>(&json) {
                Ok(data) => {
                    return Event::new(tag, data)
                        .map(Some)
                        .with_context(|| format!("stdin line {start}"));
                }
                Err(err) if err.is_eof() => pending = Some((start, tag, json)),
                Err(err) => bail!("stdin line {start}: invalid JSON data for tag {tag:?}: {err}"),
            }
        }
        match pending {
            Some((start, tag, _)) => {
                bail!(
                    "stdin line {start}: the JSON data for tag {tag:?} is incomplete at the end of input"
                )
            }
            None => Ok(None),
        }
    }
}

fn parse_object(line: &str) -> anyhow::Result<Event> {
    let object: Value = serde_json::from_str(line).context("invalid JSON")?;
    let tag = map_get(&object, "tag")
        .and_then(Value::as_str)
        .context("the JSON object has no string \"tag\"")?
        .to_owned();
    let data = map_get(&object, "data")
        .cloned()
        .unwrap_or_else(|| Value::Map(Vec::new()));
    Ok(Event::new(tag, data)?)
}
