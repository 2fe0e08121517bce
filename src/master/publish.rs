//! Publishing a job: resolve the target against accepted keys, allocate the jid, store the
//! load, fire Salt's publish events and send the job to the targeted minions.

use std::sync::Arc;

use super::Shared;
use crate::event::{Event, Value, jid};
use crate::keys::KeyState;
use crate::proto::PublishRequest;
use crate::proto::message;
use crate::target::Target;

fn list(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| Value::from(id.as_str())).collect())
}

/// Publishes `request`; the reply is `{"jid", "minions", "missing", "connected"}` (`jid` empty
/// when no minion matched, and then nothing is sent and no event fired, as with Salt).
pub(super) async fn publish(
    shared: &Arc<Shared>,
    request: PublishRequest,
) -> Result<Value, String> {
    let target = Target::new(&request.tgt, &request.tgt_type).map_err(|err| err.to_string())?;
    if let Some(asked) = request.jid.as_deref()
        && !jid::is_plain_jid(asked)
    {
        return Err(format!(
            "{asked:?} is not a jid: a jid is 20 digits, maybe with a _suffix of letters, digits, '_', '.' or '-'"
        ));
    }
    let accepted = shared
        .keys
        .ids(KeyState::Accepted)
        .map_err(|err| err.to_string())?;
    let minions: Vec<String> = if target.needs_grains() {
        // Grains of minions not seen since the master started are read from the cache.
        let (shared, target, accepted) = (Arc::clone(shared), target.clone(), accepted.clone());
        tokio::task::spawn_blocking(move || {
            accepted
                .into_iter()
                .filter(|id| target.matches(id, shared.sessions.grains(&shared, id).as_deref()))
                .collect()
        })
        .await
        .map_err(|err| format!("matching grains failed: {err}"))?
    } else {
        accepted
            .iter()
            .filter(|id| target.matches(id, None))
            .cloned()
            .collect()
    };
    let missing: Vec<String> = match &target {
        Target::List(ids) => ids
            .iter()
            .filter(|id| !accepted.contains(id))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let connected: Vec<String> = shared
        .sessions
        .connected()
        .into_iter()
        .filter(|id| minions.contains(id))
        .collect();
    let reply = |jid: &str, minions: &[String], connected: &[String]| {
        Value::Map(vec![
            (Value::from("jid"), Value::from(jid)),
            (Value::from("minions"), list(minions)),
            (Value::from("missing"), list(&missing)),
            (Value::from("connected"), list(connected)),
        ])
    };
    if minions.is_empty() {
        return Ok(reply("", &[], &[]));
    }
    let (jid, load) = store(shared, &request, &minions).await?;
    shared.fire(&jid, vec![("minions", list(&minions))]);
    shared.fire(
        &format!("salt/job/{jid}/new"),
        vec![
            ("jid", Value::from(jid.as_str())),
            ("tgt_type", Value::from(request.tgt_type.as_str())),
            ("tgt", request.tgt.clone()),
            ("user", Value::from(request.user.as_str())),
            ("fun", Value::from(request.fun.as_str())),
            ("arg", request.arg.clone()),
            ("minions", list(&minions)),
            ("missing", list(&missing)),
        ],
    );
    if let (Ok(event), Value::Map(_)) = (
        Event::new(format!("salt/job/{jid}/publish"), load.clone()),
        &load,
    ) {
        shared.bus.fire(event);
    }
    let job = message("publish", vec![(Value::from("load"), load)]);
    for id in &connected {
        shared.sessions.send(id, job.clone());
    }
    Ok(reply(&jid, &minions, &connected))
}

/// Allocates the jid (or takes the caller's) and stores the load; a jid already in the cache
/// is replaced by a fresh one, as Salt's `prep_jid` does.
async fn store(
    shared: &Shared,
    request: &PublishRequest,
    minions: &[String],
) -> Result<(String, Value), String> {
    let mut jid = request.jid.clone().unwrap_or_else(jid::gen_jid);
    for _ in 0..100 {
        let load = Value::Map(vec![
            (Value::from("fun"), Value::from(request.fun.as_str())),
            (Value::from("arg"), request.arg.clone()),
            (Value::from("tgt"), request.tgt.clone()),
            (Value::from("jid"), Value::from(jid.as_str())),
            (Value::from("ret"), Value::from(request.ret.as_str())),
            (
                Value::from("tgt_type"),
                Value::from(request.tgt_type.as_str()),
            ),
            (Value::from("user"), Value::from(request.user.as_str())),
        ]);
        let jobs = shared.jobs.clone();
        let (stored_jid, stored_load, ids) = (jid.clone(), load.clone(), minions.to_vec());
        let saved =
            tokio::task::spawn_blocking(move || jobs.save_load(&stored_jid, &stored_load, &ids))
                .await
                .map_err(|err| err.to_string())?;
        match saved {
            Ok(()) => return Ok((jid, load)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                tokio::time::sleep(std::time::Duration::from_micros(1)).await;
                jid = jid::gen_jid();
            }
            Err(err) => return Err(format!("cannot store the job in the job cache: {err}")),
        }
    }
    Err("cannot allocate a new jid".to_owned())
}
