//! The master's job cache, in Salt's `local_cache` layout: `<cachedir>/jobs/<h[:2]>/<h[2:]>/`
//! where `h` is the `hash_type` digest of the jid, holding `jid` (the jid), `.load.p` (msgpack
//! of the publish load), `.minions.p` (msgpack list of targeted ids) and `<id>/return.p`
//! (msgpack of each minion's return value) with `<id>/out.p` (the outputter the return names,
//! when it names one). Jobs older than `keep_jobs_seconds` are removed.
//!
//! What minions may store is bounded (an accepted minion could fill the disk otherwise): each
//! minion may store `return_quota_bytes` per `return_quota_window`, and the whole cache holds at
//! most `job_cache_max_bytes`; a return over either is refused, not stored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{Options, Pending, Returner, ReturnerError};
use crate::config::{Config, ConfigError, hexdigest};
use crate::event::{Value, map_get};

/// `return_quota_bytes`: what one minion may store per window (256 MiB).
const DEFAULT_RETURN_QUOTA: u64 = 256 * 1024 * 1024;
/// `return_quota_window`, in seconds.
const DEFAULT_QUOTA_WINDOW: f64 = 3600.0;
/// `job_cache_max_bytes`: the whole job cache (4 GiB).
const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// What a stored return costs at least: however small, a return to a new job takes a job
/// directory, a minion directory and their files, five inodes and their blocks.
const MIN_CHARGE: u64 = 16 * 1024;

/// The job cache under a master's `cachedir`.
#[derive(Debug, Clone)]
pub struct JobCache {
    jobs: PathBuf,
    hash_type: String,
    keep: Duration,
    quota: Arc<Quota>,
}

/// Why a return is not stored.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The minion stored its share for now.
    #[error(
        "minion {id} already stored {used} bytes of returns in the last {window:?}; this one ({size} bytes) would pass return_quota_bytes ({limit})"
    )]
    Minion {
        /// The minion.
        id: String,
        /// Bytes it stored in this window.
        used: u64,
        /// The return's size.
        size: u64,
        /// `return_quota_bytes`.
        limit: u64,
        /// `return_quota_window`.
        window: Duration,
    },
    /// The cache is full.
    #[error(
        "the job cache holds {used} bytes; this return ({size} bytes) would pass job_cache_max_bytes ({limit}) until old jobs expire (keep_jobs_seconds)"
    )]
    Full {
        /// Bytes in the cache.
        used: u64,
        /// The return's size.
        size: u64,
        /// `job_cache_max_bytes`.
        limit: u64,
    },
}

/// The bounds on what minions store, and what they stored.
#[derive(Debug)]
struct Quota {
    per_minion: u64,
    window: Duration,
    max_bytes: u64,
    usage: Mutex<Usage>,
}

#[derive(Debug)]
struct Usage {
    /// The cache's size as last measured, plus what was stored since.
    stored: u64,
    window_start: Instant,
    by_minion: HashMap<String, u64>,
}

impl Quota {
    /// Counts `size` bytes from minion `id` against the quotas, or refuses them.
    fn charge(&self, id: &str, size: u64) -> Result<(), QuotaError> {
        let size = size.max(MIN_CHARGE);
        let mut usage = self.usage.lock().expect("quota lock");
        if usage.window_start.elapsed() >= self.window {
            usage.window_start = Instant::now();
            usage.by_minion.clear();
        }
        let used = usage.by_minion.get(id).copied().unwrap_or(0);
        if self.per_minion > 0 && used + size > self.per_minion {
            return Err(QuotaError::Minion {
                id: id.to_owned(),
                used,
                size,
                limit: self.per_minion,
                window: self.window,
            });
        }
        if self.max_bytes > 0 && usage.stored + size > self.max_bytes {
            return Err(QuotaError::Full {
                used: usage.stored,
                size,
                limit: self.max_bytes,
            });
        }
        usage.stored += size;
        *usage.by_minion.entry(id.to_owned()).or_default() += size;
        Ok(())
    }
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
            // Saturating: hours past u64 seconds keep jobs for ever, not for a wrapped while.
            Duration::from_secs(hours.saturating_mul(3600))
        } else {
            Duration::from_secs(seconds)
        };
        let quota = Quota {
            per_minion: config.get_u64("return_quota_bytes", DEFAULT_RETURN_QUOTA)?,
            window: config.get_seconds("return_quota_window", DEFAULT_QUOTA_WINDOW)?,
            max_bytes: config.get_u64("job_cache_max_bytes", DEFAULT_MAX_BYTES)?,
            usage: Mutex::new(Usage {
                stored: 0,
                window_start: Instant::now(),
                by_minion: HashMap::new(),
            }),
        };
        Ok(Self {
            jobs: config.cachedir()?.join("jobs"),
            hash_type: config.hash_type()?.to_owned(),
            keep,
            quota: Arc::new(quota),
        })
    }

    /// Counts `size` bytes of what minion `id` wants stored against the quotas, or says why they
    /// may not be stored.
    pub fn charge(&self, id: &str, size: u64) -> Result<(), QuotaError> {
        self.quota.charge(id, size)
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
        use std::io::Write;
        let dir = self.dir(jid);
        // The job's directory may be there already, made by a return that came first (another
        // master's minion); the jid is taken when a load is.
        std::fs::create_dir_all(&dir)?;
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, load)?;
        let mut partial = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&dir)?;
        partial.write_all(&bytes)?;
        partial
            .persist_noclobber(dir.join(".load.p"))
            .map_err(|err| err.error)?;
        std::fs::write(dir.join("jid"), jid)?;
        let minions = Value::Array(minions.iter().map(|id| Value::from(id.as_str())).collect());
        write_msgpack(&dir.join(".minions.p"), &minions)
    }

    /// Stores one minion's return for `jid`, `{"return", "retcode", "success"}`, and the
    /// outputter it names (creating the job for returns that come without a publish, such as
    /// `salt-call`'s).
    pub fn save_return(
        &self,
        jid: &str,
        id: &str,
        ret: &Value,
        out: Option<&Value>,
    ) -> std::io::Result<()> {
        let dir = self.dir(jid);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("jid"), jid)?;
        }
        let minion_dir = dir.join(id);
        std::fs::create_dir_all(&minion_dir)?;
        if let Some(out) = out {
            write_msgpack(&minion_dir.join("out.p"), out)?;
        }
        write_msgpack(&minion_dir.join("return.p"), ret)
    }

    /// The job, if cached.
    pub fn job(&self, jid: &str) -> Option<CachedJob> {
        read_job(&self.dir(jid))
    }

    /// The returns stored for `jid`: `(minion id, {"return", "retcode", "success"})` with
    /// `"out"` when the return named an outputter (as Salt's `get_jid` reads them), sorted by id.
    pub fn returns(&self, jid: &str) -> Vec<(String, Value)> {
        let dir = self.dir(jid);
        let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| {
                let id = entry.file_name().into_string().ok()?;
                let mut ret = read_msgpack(&entry.path().join("return.p"))?;
                if let (Value::Map(entries), Some(out)) =
                    (&mut ret, read_msgpack(&entry.path().join("out.p")))
                {
                    entries.push((Value::from("out"), out));
                }
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

    /// Removes jobs stored longer ago than the retention (0 keeps them forever) and measures
    /// what the others take, for `job_cache_max_bytes`; returns how many were removed.
    pub fn clean(&self) -> usize {
        let now = SystemTime::now();
        let mut removed = 0;
        let mut size = 0;
        for dir in job_dirs(&self.jobs) {
            let stored = std::fs::metadata(dir.join("jid")).and_then(|m| m.modified());
            let expired = match stored {
                _ if self.keep.is_zero() => false,
                Ok(stored) => now.duration_since(stored).unwrap_or_default() > self.keep,
                // A directory without its jid file is a leftover of an interrupted write.
                Err(_) => true,
            };
            if expired && std::fs::remove_dir_all(&dir).is_ok() {
                removed += 1;
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::remove_dir(parent);
                }
            } else {
                size += dir_size(&dir);
            }
        }
        self.quota.usage.lock().expect("quota lock").stored = size;
        removed
    }
}

/// The bytes of the files in `dir` and its subdirectories (a job: its files and one directory
/// per minion), each counted as at least [`MIN_CHARGE`] as [`Quota::charge`] counts them.
fn dir_size(dir: &Path) -> u64 {
    let mut size = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            size += dir_size(&entry.path());
        } else if let Ok(metadata) = entry.metadata() {
            size += metadata.len().max(MIN_CHARGE);
        }
    }
    size
}

/// What the job cache keeps of a return dict, as Salt's does per minion: the return, its code,
/// success; and the outputter it names (`highstate` for state runs), for `jobs.lookup_jid`.
pub fn kept(ret: &Value) -> (Value, Option<Value>) {
    let stored = ["return", "retcode", "success"]
        .into_iter()
        .filter_map(|key| map_get(ret, key).map(|value| (Value::from(key), value.clone())))
        .collect();
    (Value::Map(stored), map_get(ret, "out").cloned())
}

/// The returner for `master_job_cache: local_cache` and `--return local_cache`.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    JobCache::configured(options.config())
        .map(|cache| Arc::new(cache) as Arc<dyn Returner>)
        .map_err(|err| ReturnerError::Option {
            returner: "local_cache",
            option: "cachedir".to_owned(),
            problem: err.to_string(),
        })
}

impl JobCache {
    /// Runs `work` on the blocking pool: the cache is files.
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(JobCache) -> std::io::Result<T> + Send + 'static,
    ) -> Pending<'static, T> {
        let cache = self.clone();
        Box::pin(async move {
            let unavailable = |problem: String| ReturnerError::Unavailable {
                returner: "local_cache",
                problem,
            };
            tokio::task::spawn_blocking(move || work(cache))
                .await
                .map_err(|err| unavailable(err.to_string()))?
                .map_err(|err| unavailable(format!("the job cache: {err}")))
        })
    }
}

impl Returner for JobCache {
    fn name(&self) -> &'static str {
        "local_cache"
    }

    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        let returns = returns.to_vec();
        self.blocking(move |cache| {
            for ret in &returns {
                let text = |key| {
                    map_get(ret, key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                let (stored, out) = kept(ret);
                cache.save_return(text("jid"), text("id"), &stored, out.as_ref())?;
            }
            Ok(())
        })
    }

    fn save_load<'a>(
        &'a self,
        jid: &'a str,
        load: &'a Value,
        minions: &'a [String],
    ) -> Pending<'a, ()> {
        let (jid, load, minions) = (jid.to_owned(), load.clone(), minions.to_vec());
        self.blocking(move |cache| match cache.save_load(&jid, &load, &minions) {
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            saved => saved,
        })
    }

    fn get_load<'a>(&'a self, jid: &'a str) -> Pending<'a, Value> {
        let jid = jid.to_owned();
        self.blocking(move |cache| {
            Ok(cache
                .job(&jid)
                .map_or_else(|| Value::Map(Vec::new()), |job| job.load))
        })
    }

    fn get_jid<'a>(&'a self, jid: &'a str) -> Pending<'a, Value> {
        let jid = jid.to_owned();
        self.blocking(move |cache| {
            Ok(Value::Map(
                cache
                    .returns(&jid)
                    .into_iter()
                    .map(|(id, ret)| (Value::from(id), ret))
                    .collect(),
            ))
        })
    }

    /// `{jid: Salt's description of the job}`, as Salt's `get_jids` answers.
    fn get_jids(&self) -> Pending<'_, Value> {
        self.blocking(|cache| {
            Ok(Value::Map(
                cache
                    .jobs()
                    .into_iter()
                    .map(|job| {
                        let instance = super::jid_instance(&job.jid, &job.load);
                        (Value::from(job.jid), instance)
                    })
                    .collect(),
            ))
        })
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
        std::fs::write(
            dir.path().join("master"),
            format!(
                "cachedir: {}\nkeep_jobs_seconds: 3600\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let config = Config::load(crate::config::Role::Master, Some(dir.path())).unwrap();
        let cache = JobCache::configured(&config).unwrap();
        let load = crate::salt_yaml::load("{fun: test.ping, arg: []}").unwrap();
        cache
            .save_load("20261124084432504393", &load, &["web1".into()])
            .unwrap();
        assert!(cache.save_load("20261124084432504393", &load, &[]).is_err());
        cache
            .save_return("20261124084432504393", "web1", &Value::Boolean(true), None)
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

    #[test]
    fn returns_over_a_minions_share_or_the_caches_size_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("master"),
            format!(
                "cachedir: {}\nreturn_quota_bytes: 40000\njob_cache_max_bytes: 80000\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let config = Config::load(crate::config::Role::Master, Some(dir.path())).unwrap();
        let cache = JobCache::configured(&config).unwrap();
        cache.charge("web1", 24000).unwrap();
        let err = cache.charge("web1", 24000).unwrap_err();
        assert!(
            err.to_string().contains("return_quota_bytes (40000)"),
            "{err}"
        );
        // A tiny return counts as 16 KiB.
        cache.charge("web2", 100).unwrap();
        cache.charge("web3", 20000).unwrap();
        let err = cache.charge("web4", 20000).unwrap_err();
        assert!(
            err.to_string().contains("job_cache_max_bytes (80000)"),
            "{err}"
        );
        // Measuring the (empty) cache gives the room back.
        assert_eq!(cache.clean(), 0);
        cache.charge("web4", 20000).unwrap();
    }
}
