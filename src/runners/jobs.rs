//! The `jobs` runners: what the job cache knows about jobs, and which jobs minions run now.

use super::{RunnerError, failed, unreachable};
use crate::client::ClientError;
use crate::client::local::{LocalClient, Outcome, Published};
use crate::config::Config;
use crate::event::{Value, map_get};
use crate::proto::PublishRequest;
use crate::returners::Returner;
use crate::returners::local_cache::{CachedJob, JobCache};
use crate::salt_yaml::CliArgs;
use crate::signature::{Signature, text};
use std::sync::Arc;

pub(super) const LOOKUP_JID: Signature = Signature {
    name: "jobs.lookup_jid",
    summary: "The returns the job cache holds for a job, per minion",
    params: &["jid"],
    required: 1,
    kwargs: false,
    usage: "salt-run jobs.lookup_jid JID",
};

pub(super) const LIST_JOBS: Signature = Signature {
    name: "jobs.list_jobs",
    summary: "The jobs in the job cache: function, arguments, target, user, start time",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "salt-run jobs.list_jobs",
};

pub(super) const ACTIVE: Signature = Signature {
    name: "jobs.active",
    summary: "The jobs minions run now, asked of every minion",
    usage: "salt-run jobs.active",
    ..LIST_JOBS
};

pub(super) const LIST_JOB: Signature = Signature {
    name: "jobs.list_job",
    summary: "One job from the job cache: function, arguments, target, user, start time and each minion's return",
    params: &["jid", "ext_source"],
    required: 1,
    kwargs: false,
    usage: "salt-run jobs.list_job JID",
};

pub(super) const PRINT_JOB: Signature = Signature {
    name: "jobs.print_job",
    summary: "One job from the job cache, under its jid, with each minion's return",
    usage: "salt-run jobs.print_job JID",
    ..LIST_JOB
};

/// The returner jobs are read from, as Salt's jobs runners pick it: `ext_job_cache`, else the
/// call's `ext_source`, else `master_job_cache` (`local_cache` by default).
fn job_store(
    config: &Config,
    ext_source: Option<&Value>,
) -> Result<Arc<dyn Returner>, RunnerError> {
    let configured = |option| {
        config
            .get(option)
            .map(crate::returners::listed)
            .and_then(|names| names.into_iter().next())
    };
    let name = configured("ext_job_cache")
        .or_else(|| ext_source.map(text).filter(|name| !name.is_empty()))
        .or_else(|| configured("master_job_cache"))
        .unwrap_or_else(|| "local_cache".to_owned());
    crate::returners::build(&name, config, None, None).map_err(|err| failed(&err))
}

/// `{minion: return dict}` of a job, sorted by minion.
async fn returns(store: &dyn Returner, jid: &str) -> Result<Vec<(String, Value)>, RunnerError> {
    let found = store.get_jid(jid).await.map_err(|err| failed(&err))?;
    let mut returns: Vec<(String, Value)> = found
        .as_map()
        .into_iter()
        .flatten()
        .map(|(id, ret)| (crate::py::value::py_str(id).into_owned(), ret.clone()))
        .collect();
    returns.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(returns)
}

/// `jobs.lookup_jid` against the job store.
pub(super) async fn run_lookup_jid(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = LOOKUP_JID.bind(args)?;
    let store = job_store(config, None)?;
    let jid = bound.get("jid").map(text).unwrap_or_default();
    Ok(lookup_jid(returns(&*store, &jid).await?))
}

/// `jobs.list_jobs` against the job store.
pub(super) async fn run_list_jobs(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    LIST_JOBS.bind(args)?;
    let store = job_store(config, None)?;
    let jobs = store.get_jids().await.map_err(|err| failed(&err))?;
    // Each store answers Salt's description of each job; listed by jid.
    let mut jobs: Vec<(Value, Value)> = jobs.as_map().cloned().unwrap_or_default();
    jobs.sort_by(|a, b| crate::py::value::py_str(&a.0).cmp(&crate::py::value::py_str(&b.0)));
    Ok(Value::Map(jobs))
}

/// `jobs.list_job JID`: `{jid, Function, …, StartTime, Result: {minion: return dict}}`.
pub(super) async fn run_list_job(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = LIST_JOB.bind(args)?;
    let jid = bound.get("jid").map(text).unwrap_or_default();
    let mut fields = vec![(Value::from("jid"), Value::from(jid.as_str()))];
    fields.extend(job_fields(config, &bound, &jid).await?);
    Ok(Value::Map(fields))
}

/// `jobs.print_job JID`: `{jid: {Function, …, StartTime, Result: {minion: return dict}}}`.
pub(super) async fn run_print_job(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = PRINT_JOB.bind(args)?;
    let jid = bound.get("jid").map(text).unwrap_or_default();
    let fields = job_fields(config, &bound, &jid).await?;
    Ok(Value::Map(vec![(
        Value::from(jid.as_str()),
        Value::Map(fields),
    )]))
}

/// A job's description and its returns, as Salt's `list_job` and `print_job` show them; a job
/// the store does not know is `{"Error": …}` with an empty `Result`, as in Salt.
async fn job_fields(
    config: &Config,
    bound: &crate::signature::Bound,
    jid: &str,
) -> Result<Vec<(Value, Value)>, RunnerError> {
    let store = job_store(config, bound.get("ext_source"))?;
    let load = store.get_load(jid).await.map_err(|err| failed(&err))?;
    let mut fields = if load.as_map().is_none_or(Vec::is_empty) {
        vec![(
            Value::from("Error"),
            Value::from("Cannot contact returner or no job with this jid"),
        )]
    } else {
        summary(jid, &load)
    };
    let result = store.get_jid(jid).await.map_err(|err| failed(&err))?;
    fields.push((Value::from("Result"), result));
    Ok(fields)
}

/// `jobs.active` against the master's job cache and its minions.
pub(super) async fn run_active(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let cache = JobCache::configured(config).map_err(|err| failed(&err))?;
    ACTIVE.bind(args)?;
    let client = LocalClient::new(config).map_err(|err| failed(&err))?;
    active(&client, &cache).await.map_err(unreachable)
}

/// `jobs.lookup_jid JID`: `{minion: return}` for every return stored, `{}` for an unknown jid;
/// from a store that keeps only the return value, that value (Salt's fails on it);
/// as Salt's, `{"outputter": out, "data": {minion: return}}` when the first return names an
/// outputter (`highstate` for state runs), for salt-run to print the returns with it.
fn lookup_jid(returns: Vec<(String, Value)>) -> Value {
    let outputter = returns
        .first()
        .and_then(|(_, stored)| map_get(stored, "out"))
        .filter(|out| out.as_str().is_some_and(|name| !name.is_empty()))
        .cloned();
    let data = Value::Map(
        returns
            .into_iter()
            .map(|(id, stored)| {
                // A store that keeps the return value alone (Salt's sqlite3) answers it bare.
                let ret = match map_get(&stored, "return") {
                    Some(ret) => ret.clone(),
                    None => stored,
                };
                (Value::from(id), ret)
            })
            .collect(),
    );
    match outputter {
        Some(outputter) => Value::Map(vec![
            (Value::from("outputter"), outputter),
            (Value::from("data"), data),
        ]),
        None => data,
    }
}

/// A runner's return that names its outputter (`{"outputter", "data"}` exactly, as
/// `jobs.lookup_jid` returns for state runs): the outputter's name and the data to print.
pub fn named_outputter(returned: &Value) -> Option<(&str, &Value)> {
    let entries = returned.as_map()?;
    if entries.len() != 2 {
        return None;
    }
    let outputter = map_get(returned, "outputter")?.as_str()?;
    Some((outputter, map_get(returned, "data")?))
}

/// Salt's description of a job, as map entries.
fn summary(jid: &str, load: &Value) -> Vec<(Value, Value)> {
    match crate::returners::jid_instance(jid, load) {
        Value::Map(entries) => entries,
        _ => Vec::new(),
    }
}

/// `jobs.active`: asks every minion what it runs (`saltutil.running`) and returns
/// `{jid: {…, Running: [{minion: pid}], Returned: [minions]}}`.
pub async fn active(client: &LocalClient, cache: &JobCache) -> Result<Value, ClientError> {
    let mut listener = client.listen().await?;
    let request = PublishRequest {
        tgt: Value::from("*"),
        tgt_type: "glob".to_owned(),
        fun: "saltutil.running".to_owned(),
        arg: Value::Array(Vec::new()),
        ret: String::new(),
        user: "root".to_owned(),
        jid: None,
        ret_config: None,
        ret_kwargs: None,
    };
    let published: Published = client.publish(&request).await?;
    let mut running: Vec<(String, Value)> = Vec::new();
    if !published.jid.is_empty() {
        client
            .gather(&mut listener, &published, "root", |outcome| {
                if let Outcome::Returned(ret) = outcome
                    && let Some(jobs) = ret.value().as_array()
                {
                    running.extend(jobs.iter().map(|job| (ret.id.clone(), job.clone())));
                }
            })
            .await?;
    }
    let mut active: Vec<(Value, Value)> = Vec::new();
    for (id, job) in running {
        let Some(jid) = map_get(&job, "jid")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        let pid = map_get(&job, "pid").cloned().unwrap_or(Value::Nil);
        let entry = Value::Map(vec![(Value::from(id.as_str()), pid)]);
        if let Some((_, Value::Map(fields))) =
            active.iter_mut().find(|(k, _)| k.as_str() == Some(&jid))
        {
            if let Some((_, Value::Array(list))) = fields
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some("Running"))
            {
                list.push(entry);
            }
            continue;
        }
        let cached = cache.job(&jid).unwrap_or(CachedJob {
            jid: jid.clone(),
            load: job.clone(),
            minions: Vec::new(),
            stored: std::time::SystemTime::now(),
        });
        let mut fields = summary(&cached.jid, &cached.load);
        fields.push((Value::from("Running"), Value::Array(vec![entry])));
        let returned = cache
            .returns(&jid)
            .into_iter()
            .map(|(id, _)| Value::from(id))
            .collect();
        fields.push((Value::from("Returned"), Value::Array(returned)));
        active.push((Value::from(jid), Value::Map(fields)));
    }
    Ok(Value::Map(active))
}
