//! The master's job cache, in Salt's `local_cache` layout: `<cachedir>/jobs/<h[:2]>/<h[2:]>/`
//! where `h` is the `hash_type` digest of the jid, holding `jid` (the jid), `.load.p` (msgpack
//! of the publish load), `.minions.p` (msgpack list of targeted ids) and `<id>/return.p`
//! (msgpack of each minion's return value). Jobs older than `keep_jobs_seconds` are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{Config, ConfigError, hexdigest};
use crate::event::Value;

/// The job cache under a master's `cachedir`.
#[derive(Debug, Clone)]
pub struct JobCache {
    jobs: PathBuf,
    hash_type: String,
    keep: Duration,
}

/// One cached job.
#[derive(Debug, Clone)]
pub struct CachedJob {
    /// The jid.
    pub jid: String,
    /// The publish load.
    pub load: Value,
    /// The ids the job was sent to.
    pub minions: Vec<String>,
    /// When the job was stored.
    pub stored: SystemTime,
}

impl JobCache {
    /// The cache a master (or `salt-run` with the master's config) uses: `cachedir`,
    /// `hash_type`, and `keep_jobs_seconds` (default 86400; the older `keep_jobs`, in hours,
    /// when only it is set).
    pub fn configured(config: &Config) -> Result<Self, ConfigError> {
        // `keep_jobs` (hours) only counts when it was changed and `keep_jobs_seconds` was not.
        let seconds = config.get_u64("keep_jobs_seconds", 86_400)?;
        let hours = config.get_u64("keep_jobs", 24)?;
        let keep = if seconds == 86_400 && hours != 24 {
            Duration::from_secs(hours * 3600)
        } else {
            Duration::from_secs(seconds)
        };
        Ok(Self {
            jobs: config.cachedir()?.join("jobs"),
            hash_type: config.hash_type()?.to_owned(),
            keep,
        })
    }

    fn dir(&self, jid: &str) -> PathBuf {
        let hash = hexdigest(jid.as_bytes(), &self.hash_type)
            .or_else(|| hexdigest(jid.as_bytes(), "sha256"))
            .expect("sha256 is always available");
        self.jobs.join(&hash[..2]).join(&hash[2..])
    }

    /// Stores a new job's load and target list. Fails when the jid is taken, so callers can
    /// pick another (as Salt's `prep_jid` does).
    pub fn save_load(&self, jid: &str, load: &Value, minions: &[String]) -> std::io::Result<()> {
        let dir = self.dir(jid);
        std::fs::create_dir_all(dir.parent().unwrap_or(&self.jobs))?;
        std::fs::create_dir(&dir)?;
        std::fs::write(dir.join("jid"), jid)?;
        write_msgpack(&dir.join(".load.p"), load)?;
        let minions = Value::Array(minions.iter().map(|id| Value::from(id.as_str())).collect());
        write_msgpack(&dir.join(".minions.p"), &minions)
    }

    /// Stores one minion's return for `jid`, `{"return", "retcode", "success"}` (creating the
    /// job for returns that come without a publish, such as `salt-call`'s).
    pub fn save_return(&self, jid: &str, id: &str, ret: &Value) -> std::io::Result<()> {
        let dir = self.dir(jid);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("jid"), jid)?;
        }
        let minion_dir = dir.join(id);
        std::fs::create_dir_all(&minion_dir)?;
        write_msgpack(&minion_dir.join("return.p"), ret)
    }

    /// The job, if cached.
    pub fn job(&self, jid: &str) -> Option<CachedJob> {
        read_job(&self.dir(jid))
    }

    /// The returns stored for `jid`: `(minion id, {"return", "retcode", "success"})`, sorted
    /// by id.
    pub fn returns(&self, jid: &str) -> Vec<(String, Value)> {
        let dir = self.dir(jid);
        let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| {
                let id = entry.file_name().into_string().ok()?;
                let ret = read_msgpack(&entry.path().join("return.p"))?;
                Some((id, ret))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Every cached job, oldest first.
    pub fn jobs(&self) -> Vec<CachedJob> {
        let mut jobs: Vec<CachedJob> = job_dirs(&self.jobs)
            .iter()
            .filter_map(|dir| read_job(dir))
            .collect();
        jobs.sort_by(|a, b| a.jid.cmp(&b.jid));
        jobs
    }

    /// Removes jobs stored longer ago than the retention (0 keeps them forever); returns how
    /// many.
    pub fn clean(&self) -> usize {
        if self.keep.is_zero() {
            return 0;
        }
        let now = SystemTime::now();
        let mut removed = 0;
        for dir in job_dirs(&self.jobs) {
            let stored = std::fs::metadata(dir.join("jid")).and_then(|m| m.modified());
            let expired = match stored {
                Ok(stored) => now.duration_since(stored).unwrap_or_default() > self.keep,
                // A directory without its jid file is a leftover of an interrupted write.
                Err(_) => true,
            };
            if expired && std::fs::remove_dir_all(&dir).is_ok() {
                removed += 1;
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::remove_dir(parent);
                }
            }
        }
        removed
    }
}

fn job_dirs(jobs: &Path) -> Vec<PathBuf> {
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.path())
            .collect()
    };
    list(jobs).iter().flat_map(|outer| list(outer)).collect()
}

fn read_job(dir: &Path) -> Option<CachedJob> {
    let jid_path = dir.join("jid");
    let jid = std::fs::read_to_string(&jid_path).ok()?.trim().to_owned();
    let stored = std::fs::metadata(&jid_path)
        .and_then(|m| m.modified())
        .ok()?;
    let load = read_msgpack(&dir.join(".load.p")).unwrap_or_else(|| Value::Map(Vec::new()));
    let minions = read_msgpack(&dir.join(".minions.p"))
        .and_then(|list| {
            list.as_array().map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    Some(CachedJob {
        jid,
        load,
        minions,
        stored,
    })
}

fn write_msgpack(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value)?;
    let partial = path.with_extension("tmp");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(partial, path)
}

fn read_msgpack(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    rmpv::decode::read_value(&mut bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_returns_round_trip_in_salts_layout() {
        let dir = tempfile::tempdir().unwrap();
        let cache = JobCache {
            jobs: dir.path().join("jobs"),
            hash_type: "sha256".into(),
            keep: Duration::from_secs(3600),
        };
        let load = crate::salt_yaml::load("{fun: test.ping, arg: []}").unwrap();
        cache
            .save_load("20261124084432504393", &load, &["web1".into()])
            .unwrap();
        assert!(cache.save_load("20261124084432504393", &load, &[]).is_err());
        cache
            .save_return("20261124084432504393", "web1", &Value::Boolean(true))
            .unwrap();
        let hash = hexdigest(b"20261124084432504393", "sha256").unwrap();
        assert!(
            dir.path()
                .join("jobs")
                .join(&hash[..2])
                .join(&hash[2..])
                .join("web1/return.p")
                .is_file()
        );
        let job = cache.job("20261124084432504393").unwrap();
        assert_eq!(job.minions, ["web1"]);
        assert_eq!(job.load, load);
        assert_eq!(
            cache.returns("20261124084432504393"),
            [("web1".to_owned(), Value::Boolean(true))]
        );
        assert_eq!(cache.jobs().len(), 1);
        assert_eq!(cache.clean(), 0);
        let expired = JobCache {
            keep: Duration::from_millis(1),
            ..cache.clone()
        };
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(expired.clean(), 1);
        assert!(cache.jobs().is_empty());
    }
}
