//! The `ret` runners: what a returner stored, asked of the returner itself (Salt's `ret.*`
//! functions), and what the running master's returners stored, spooled and dropped.

use super::{RunnerError, failed};
use crate::config::Config;
use crate::event::{Value, map_get};
use crate::returners::Returner;
use crate::salt_yaml::CliArgs;
use crate::signature::{Signature, text};

pub(super) const GET_JID: Signature = Signature {
    name: "ret.get_jid",
    summary: "The returns a returner stored for a job, per minion",
    params: &["returner", "jid"],
    required: 2,
    kwargs: false,
    usage: "salt-run ret.get_jid RETURNER JID",
};

pub(super) const GET_FUN: Signature = Signature {
    name: "ret.get_fun",
    summary: "Each minion's latest return of a function a returner stored",
    params: &["returner", "fun"],
    usage: "salt-run ret.get_fun RETURNER FUNCTION",
    ..GET_JID
};

pub(super) const GET_JIDS: Signature = Signature {
    name: "ret.get_jids",
    summary: "The jobs a returner stored, with their loads",
    params: &["returner"],
    required: 1,
    usage: "salt-run ret.get_jids RETURNER",
    ..GET_JID
};

pub(super) const GET_MINIONS: Signature = Signature {
    name: "ret.get_minions",
    summary: "The minions a returner stored returns of",
    usage: "salt-run ret.get_minions RETURNER",
    ..GET_JIDS
};

pub(super) const STATS: Signature = Signature {
    name: "ret.stats",
    summary: "What the running master's returners stored, spooled and dropped",
    params: &[],
    required: 0,
    usage: "salt-run ret.stats",
    ..GET_JID
};

/// The returner the call names, built with the master's configuration.
fn returner(
    config: &Config,
    bound: &crate::signature::Bound,
) -> Result<std::sync::Arc<dyn Returner>, RunnerError> {
    let name = bound.get("returner").map(text).unwrap_or_default();
    crate::returners::build(&name, config, None, None).map_err(|err| failed(&err))
}

/// `ret.get_jid RETURNER JID`.
pub(super) async fn get_jid(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = GET_JID.bind(args)?;
    let jid = bound.get("jid").map(text).unwrap_or_default();
    returner(config, &bound)?
        .get_jid(&jid)
        .await
        .map_err(|err| failed(&err))
}

/// `ret.get_fun RETURNER FUNCTION`.
pub(super) async fn get_fun(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = GET_FUN.bind(args)?;
    let fun = bound.get("fun").map(text).unwrap_or_default();
    returner(config, &bound)?
        .get_fun(&fun)
        .await
        .map_err(|err| failed(&err))
}

/// `ret.get_jids RETURNER`.
pub(super) async fn get_jids(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = GET_JIDS.bind(args)?;
    returner(config, &bound)?
        .get_jids()
        .await
        .map_err(|err| failed(&err))
}

/// `ret.get_minions RETURNER`.
pub(super) async fn get_minions(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = GET_MINIONS.bind(args)?;
    let minions = returner(config, &bound)?
        .get_minions()
        .await
        .map_err(|err| failed(&err))?;
    Ok(Value::Array(minions.into_iter().map(Value::from).collect()))
}

/// `ret.stats`: asks the running master, over its local request socket, for each returner's
/// counters: `{returner: {stored, spooled, dropped, failed, queued, spool_bytes}}`.
pub(super) async fn stats(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    STATS.bind(args)?;
    let client = crate::client::local::LocalClient::new(config).map_err(|err| failed(&err))?;
    let reply = client
        .request(&crate::proto::message("returners", Vec::new()))
        .await
        .map_err(super::unreachable)?;
    Ok(map_get(&reply, "returners")
        .cloned()
        .unwrap_or(Value::Map(Vec::new())))
}
