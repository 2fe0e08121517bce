//! The schedule as a running minion keeps it, and as `schedule.*` functions change it through
//! `manage_schedule` requests: the jobs of the configuration (which the requests change, and
//! write to `_schedule.conf` in `minion.d` when asked to persist) over those of the pillar (which
//! they cannot change), as Salt's minion keeps them.

use std::path::{Path, PathBuf};

use super::{Problem, problem};
use crate::event::{Value, map_get, map_set};
use crate::output::outputter::Outputter;
use crate::py::value::{py_str, repr, truthy};

/// The file a persisted schedule is written to, in the directory of the configuration's
/// `default_include` (`minion.d`), as Salt writes it.
pub const SAVED: &str = "_schedule.conf";

/// The schedule of a running minion.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The configuration's `schedule` map, as changed by requests.
    config: Vec<(Value, Value)>,
    /// The pillar's `schedule` map, as last fetched.
    pillar: Vec<(Value, Value)>,
    /// Where a persisted schedule goes.
    saved: PathBuf,
}

/// What a request asked for, besides its answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The fields of the completion event, if the request gets one.
    pub answer: Option<Vec<(&'static str, Value)>>,
    /// The job to run now (`run_job`).
    pub run: Option<String>,
}

impl Schedule {
    /// The schedule of a minion whose configuration says `configured`, saving to
    /// `_schedule.conf` in `include_dir` (the directory of `default_include`, `minion.d`); a
    /// `schedule` option that is not a map is refused (and managed as an empty one).
    pub fn new(configured: Option<&Value>, include_dir: &Path) -> (Self, Option<Problem>) {
        let (config, refused) = map_of(configured, "");
        let schedule = Self {
            config,
            pillar: Vec::new(),
            saved: include_dir.join(SAVED),
        };
        (schedule, refused)
    }

    /// Takes the pillar's `schedule` (refused when it is not a map).
    pub fn set_pillar(&mut self, pillar: &Value) -> Option<Problem> {
        let (jobs, refused) = map_of(Some(pillar), " (in the pillar)");
        self.pillar = jobs;
        refused
    }

    /// The schedule in effect: the pillar's jobs, then the configuration's over them (Salt's
    /// order).
    pub fn effective(&self) -> Value {
        let mut merged = self.pillar.clone();
        for (key, value) in &self.config {
            map_set(&mut merged, key.clone(), value.clone());
        }
        Value::Map(merged)
    }

    fn in_config(&self, name: &str) -> bool {
        self.config.iter().any(|(key, _)| py_str(key) == name)
    }

    fn in_pillar(&self, name: &str) -> bool {
        self.pillar.iter().any(|(key, _)| py_str(key) == name)
    }

    /// Does what the `manage_schedule` request `data` asks (its `func`, `name`, `schedule`,
    /// `where`, `persist`), as Salt's minion does. `get_next_fire_time` is the caller's.
    pub fn manage(&mut self, data: &Value) -> Outcome {
        let func = map_get(data, "func").map(py_str).unwrap_or_default();
        let name = map_get(data, "name")
            .map(py_str)
            .unwrap_or_default()
            .into_owned();
        let persist = map_get(data, "persist").is_some_and(truthy);
        let complete = |schedule: Value| {
            Some(vec![
                ("complete", Value::Boolean(true)),
                ("schedule", schedule),
            ])
        };
        let outcome = |answer| Outcome { answer, run: None };
        match func.as_ref() {
            "list" => {
                let listed = match map_get(data, "where").and_then(Value::as_str) {
                    Some("pillar") => Value::Map(self.pillar.clone()),
                    Some("opts") => Value::Map(self.config.clone()),
                    _ => self.effective(),
                };
                outcome(complete(listed))
            }
            "add" => {
                match map_get(data, "schedule") {
                    Some(Value::Map(jobs)) if jobs.len() == 1 => {
                        let (key, job) = &jobs[0];
                        let name = py_str(key);
                        if self.in_pillar(&name) {
                            tracing::warn!("Cannot update job {name}, it's in the pillar!");
                        } else {
                            let mut job = job.clone();
                            // Salt's: a job added without `enabled` is enabled.
                            if let Value::Map(entries) = &mut job
                                && map_get(&Value::Map(entries.clone()), "enabled").is_none()
                            {
                                entries.push((Value::from("enabled"), Value::Boolean(true)));
                            }
                            if self.in_config(&name) {
                                tracing::info!("Updating job settings for scheduled job: {name}");
                            } else {
                                tracing::info!("Added new job {name} to scheduler");
                            }
                            map_set(&mut self.config, key.clone(), job);
                            self.persist_if(persist);
                        }
                        outcome(complete(self.effective()))
                    }
                    other => {
                        tracing::error!(
                            "ignored a schedule add request: expected one job as {{name: settings}}, not {}",
                            other.map(repr).unwrap_or_else(|| "nothing".to_owned())
                        );
                        outcome(None)
                    }
                }
            }
            "modify" => {
                let job = map_get(data, "schedule").cloned().unwrap_or(Value::Nil);
                if self.in_config(&name) {
                    self.config.retain(|(key, _)| py_str(key) != name);
                    map_set(&mut self.config, name.into(), job);
                    self.persist_if(persist);
                    // Salt's minion deletes the old job first, and says so.
                    outcome(complete(self.effective()))
                } else if self.in_pillar(&name) {
                    tracing::warn!("Cannot modify job {name}, it's in the pillar!");
                    outcome(None)
                } else {
                    map_set(&mut self.config, name.into(), job);
                    self.persist_if(persist);
                    outcome(None)
                }
            }
            "delete" => {
                if self.in_config(&name) {
                    self.config.retain(|(key, _)| py_str(key) != name);
                } else if self.in_pillar(&name) {
                    tracing::warn!("Cannot delete job {name}, it's in the pillar!");
                }
                self.persist_if(persist);
                outcome(complete(self.effective()))
            }
            "enable" | "disable" => {
                let on = func == "enable";
                map_set(&mut self.config, "enabled".into(), on.into());
                self.persist_if(persist);
                outcome(complete(self.effective()))
            }
            "enable_job" | "disable_job" => {
                let on = func == "enable_job";
                if let Some((_, Value::Map(job))) =
                    self.config.iter_mut().find(|(key, _)| py_str(key) == name)
                {
                    map_set(job, "enabled".into(), on.into());
                    let verb = if on { "Enabling" } else { "Disabling" };
                    tracing::info!("{verb} job {name} in scheduler");
                } else if self.in_pillar(&name) {
                    tracing::warn!("Cannot modify job {name}, it's in the pillar!");
                }
                self.persist_if(persist);
                outcome(complete(self.effective()))
            }
            "save_schedule" => {
                let saved = self.persist();
                outcome(Some(vec![("complete", Value::Boolean(saved))]))
            }
            "job_status" => {
                let job = map_get(&self.effective(), &name)
                    .cloned()
                    .unwrap_or(Value::Map(Vec::new()));
                outcome(Some(vec![
                    ("complete", Value::Boolean(true)),
                    ("data", job),
                ]))
            }
            "reload" => {
                let given = map_get(data, "schedule").cloned().unwrap_or(Value::Nil);
                let jobs = map_get(&given, "schedule").cloned().unwrap_or(given);
                if let Value::Map(jobs) = jobs {
                    for (key, job) in jobs {
                        map_set(&mut self.config, key, job);
                    }
                }
                outcome(None)
            }
            "run_job" => Outcome {
                answer: None,
                run: Some(name),
            },
            other => {
                tracing::error!("Function \"{other}\" is unavailable in salt.utils.scheduler");
                outcome(None)
            }
        }
    }

    fn persist_if(&self, persist: bool) {
        if persist {
            self.persist();
        }
    }

    /// Writes the configuration's schedule (not the pillar's), its jobs' `_` keys left out, to
    /// `minion.d/_schedule.conf` as Salt writes it; false (and logged) when it cannot.
    pub fn persist(&self) -> bool {
        let jobs: Vec<(Value, Value)> = self
            .config
            .iter()
            .map(|(key, job)| {
                let job = match job {
                    Value::Map(entries) => Value::Map(
                        entries
                            .iter()
                            .filter(|(k, _)| !py_str(k).starts_with('_'))
                            .cloned()
                            .collect(),
                    ),
                    other => other.clone(),
                };
                (key.clone(), job)
            })
            .collect();
        let text = Outputter::Yaml.render(
            &Value::Map(vec![(Value::from("schedule"), Value::Map(jobs))]),
            false,
        );
        match write_whole(&self.saved, text.as_bytes()) {
            Ok(()) => {
                tracing::debug!("Persisting schedule");
                true
            }
            Err(err) => {
                tracing::error!(
                    "Failed to persist the updated schedule to {}: {err}",
                    self.saved.display()
                );
                false
            }
        }
    }
}

/// Writes `path` through a temporary file in its directory, synced and renamed over it: a
/// crash or a full disk leaves the old file or the new one, never a truncated one that would
/// stop the minion from starting. A file that was there keeps its mode.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    let permissions = std::fs::metadata(path)
        .map(|meta| meta.permissions())
        .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
    temp.as_file().set_permissions(permissions)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// The jobs of a `schedule` map; something else is refused (and read as no jobs).
fn map_of(value: Option<&Value>, whence: &str) -> (Vec<(Value, Value)>, Option<Problem>) {
    match value {
        None | Some(Value::Nil) => (Vec::new(), None),
        Some(Value::Map(entries)) => (entries.clone(), None),
        Some(other) => (
            Vec::new(),
            Some(problem(
                "schedule",
                "schedule",
                format!(
                    "a map of job names to their configuration{whence}, not {}",
                    repr(other)
                ),
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file is replaced whole, keeps its mode, and no temporary file is left beside it.
    #[test]
    fn the_schedule_file_is_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minion.d/_schedule.conf");
        write_whole(&path, b"schedule:\n  old: {}\n").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_whole(&path, b"schedule: {}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "schedule: {}\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["_schedule.conf"]);
        // A directory where the file goes: the write fails and nothing is left behind.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("_schedule.conf")).unwrap();
        assert!(write_whole(&blocked.join("_schedule.conf"), b"x").is_err());
        assert_eq!(std::fs::read_dir(&blocked).unwrap().count(), 1);
    }

    fn yaml(text: &str) -> Value {
        crate::salt_yaml::load(text).unwrap()
    }

    fn request(text: &str) -> Value {
        yaml(text)
    }

    #[test]
    fn requests_change_the_configurations_jobs_never_the_pillars() {
        let dir = tempfile::tempdir().unwrap();
        let (mut schedule, refused) = Schedule::new(
            Some(&yaml("{mine: {function: test.ping, seconds: 5}}")),
            &dir.path().join("minion.d"),
        );
        assert!(refused.is_none());
        assert!(
            schedule
                .set_pillar(&yaml("{pillared: {function: test.true, minutes: 1}}"))
                .is_none()
        );
        let names = |schedule: &Value| -> Vec<String> {
            schedule
                .as_map()
                .unwrap()
                .iter()
                .map(|(k, _)| py_str(k).into_owned())
                .collect()
        };
        assert_eq!(names(&schedule.effective()), ["pillared", "mine"]);

        let added = schedule.manage(&request(
            "{func: add, persist: true, schedule: {new: {function: test.ping, seconds: 1}}}",
        ));
        let answer = added.answer.unwrap();
        assert_eq!(names(&answer[1].1), ["pillared", "mine", "new"]);
        assert_eq!(
            map_get(&map_get(&answer[1].1, "new").unwrap().clone(), "enabled"),
            Some(&Value::Boolean(true)),
            "a job added without enabled is enabled"
        );
        let saved = std::fs::read_to_string(dir.path().join("minion.d/_schedule.conf")).unwrap();
        assert!(
            saved.starts_with("schedule:\n") && saved.contains("new:"),
            "{saved}"
        );
        assert!(!saved.contains("pillared"), "{saved}");

        schedule.manage(&request("{func: disable_job, name: mine}"));
        assert_eq!(
            map_get(map_get(&schedule.effective(), "mine").unwrap(), "enabled"),
            Some(&Value::Boolean(false))
        );
        schedule.manage(&request("{func: delete, name: pillared}"));
        assert_eq!(names(&schedule.effective()), ["pillared", "mine", "new"]);
        schedule.manage(&request("{func: delete, name: mine}"));
        assert_eq!(names(&schedule.effective()), ["pillared", "new"]);
        let listed = schedule
            .manage(&request("{func: list, where: opts}"))
            .answer
            .unwrap();
        assert_eq!(names(&listed[1].1), ["new"]);
        assert_eq!(
            schedule
                .manage(&request("{func: run_job, name: new}"))
                .run
                .as_deref(),
            Some("new")
        );
        schedule.manage(&request("{func: disable}"));
        assert_eq!(
            map_get(&schedule.effective(), "enabled"),
            Some(&Value::Boolean(false))
        );
    }
}
