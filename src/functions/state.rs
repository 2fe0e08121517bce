//! The `state` module: `state.apply`, `state.sls`, `state.highstate`, `state.top`,
//! `state.sls_id`, `state.single` and the `show_*` views, over the state system of
//! [`crate::states`], with Salt's return codes (1 for compile errors, 2 for a failed state)
//! and its refusal to start a state run while another runs.
//!
//! States call execution functions through [`crate::states::Salt`], implemented here over the
//! registry: the states layer sits below this one.

use std::sync::Arc;

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::event::{Value, map_get};
use crate::py::value::py_str;
use crate::salt_yaml::CliArgs;
use crate::signature::{Bound, Signature, text, truthy};
use crate::states::apply::{self, Errors};
use crate::states::{Calling, Executed, ExecutionError, RunOptions, Salt, StateContext};

/// Salt's return code for a state that failed (`EX_STATE_FAILURE`).
const EX_STATE_FAILURE: i64 = 2;

/// The outputter Salt names in the returns of state runs.
const HIGHSTATE: &str = "highstate";

/// Keyword arguments every state run takes (Salt reads them from `**kwargs`).
const RUN_PARAMS: &[&str] = &[
    "test",
    "queue",
    "saltenv",
    "pillar",
    "state_events",
    "exclude",
];

pub(super) const APPLY: Signature = Signature {
    name: "state.apply",
    summary: "Applies the SLS files given, or the highstate (the top file's SLS files) without any",
    params: &["mods"],
    required: 0,
    kwargs: true,
    usage: "state.apply [SLS[,SLS…]] [test=True] [saltenv=ENV] [pillar={…}] [exclude=…]",
};

pub(super) const SLS: Signature = Signature {
    name: "state.sls",
    summary: "Applies the SLS files given",
    params: &["mods"],
    required: 1,
    kwargs: true,
    usage: "state.sls SLS[,SLS…] [test=True] [saltenv=ENV] [pillar={…}] [exclude=…]",
};

pub(super) const HIGHSTATE_SIGNATURE: Signature = Signature {
    name: "state.highstate",
    summary: "Applies the SLS files the top file gives this minion",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "state.highstate [test=True] [saltenv=ENV] [pillar={…}]",
};

pub(super) const TOP: Signature = Signature {
    name: "state.top",
    summary: "Applies the SLS files the given top file gives this minion",
    params: &["topfn"],
    required: 1,
    kwargs: true,
    usage: "state.top TOPFILE [test=True] [saltenv=ENV]",
};

pub(super) const SLS_ID: Signature = Signature {
    name: "state.sls_id",
    summary: "Applies one ID of the SLS files given, with its requisites",
    params: &["id_", "mods"],
    required: 2,
    kwargs: true,
    usage: "state.sls_id ID SLS[,SLS…] [test=True] [saltenv=ENV]",
};

pub(super) const SINGLE: Signature = Signature {
    name: "state.single",
    summary: "Applies one state function: state.single pkg.installed name=vim",
    params: &["fun", "name"],
    required: 2,
    kwargs: true,
    usage: "state.single MODULE.FUNCTION NAME [key=value …] [test=True]",
};

pub(super) const SHOW_SLS: Signature = Signature {
    name: "state.show_sls",
    summary: "The high data of the SLS files given",
    params: &["mods"],
    required: 1,
    kwargs: true,
    usage: "state.show_sls SLS[,SLS…] [saltenv=ENV]",
};

pub(super) const SHOW_LOW_SLS: Signature = Signature {
    name: "state.show_low_sls",
    summary: "The low chunks of the SLS files given, in the order they run",
    params: &["mods"],
    required: 1,
    kwargs: true,
    usage: "state.show_low_sls SLS[,SLS…] [saltenv=ENV]",
};

pub(super) const SHOW_HIGHSTATE: Signature = Signature {
    name: "state.show_highstate",
    summary: "The high data of this minion's highstate",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "state.show_highstate [saltenv=ENV]",
};

pub(super) const SHOW_TOP: Signature = Signature {
    name: "state.show_top",
    summary: "The SLS files the top file gives this minion, per environment",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "state.show_top",
};

pub(super) const RUNNING: Signature = Signature {
    name: "state.running",
    summary: "The state runs in progress on this minion",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "state.running",
};

/// The execution functions as states see them: the registry, run in the caller's context.
struct Registry(Context);

impl Salt for Registry {
    fn call<'a>(&'a self, fun: &'a str, args: CliArgs) -> Calling<'a> {
        Box::pin(async move {
            let call = Call {
                fun: fun.to_owned(),
                args,
            };
            let outcome = super::run(&call, &self.0).await;
            if outcome.error {
                return Err(ExecutionError(text(&outcome.ret)));
            }
            Ok(Executed {
                ret: outcome.ret,
                retcode: outcome.retcode,
            })
        })
    }
}

/// Which state function of this module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Apply,
    Sls,
    Highstate,
    Top,
    SlsId,
    Single,
    ShowSls,
    ShowLowSls,
    ShowHighstate,
    ShowTop,
}

impl Kind {
    fn signature(self) -> &'static Signature {
        match self {
            Kind::Apply => &APPLY,
            Kind::Sls => &SLS,
            Kind::Highstate => &HIGHSTATE_SIGNATURE,
            Kind::Top => &TOP,
            Kind::SlsId => &SLS_ID,
            Kind::Single => &SINGLE,
            Kind::ShowSls => &SHOW_SLS,
            Kind::ShowLowSls => &SHOW_LOW_SLS,
            Kind::ShowHighstate => &SHOW_HIGHSTATE,
            Kind::ShowTop => &SHOW_TOP,
        }
    }

    /// Whether the function runs states (its return is shown by the `highstate` outputter).
    fn runs(self) -> bool {
        !matches!(
            self,
            Kind::ShowSls | Kind::ShowLowSls | Kind::ShowHighstate | Kind::ShowTop
        )
    }
}

/// SLS names from `mods`: a list, or text separated by commas.
fn split_mods(mods: Option<&Value>) -> Vec<String> {
    match mods {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(|m| py_str(m).into_owned()).collect(),
        Some(one) => py_str(one)
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// Salt's refusal while another state run is in progress: one line per run. As Salt's, a job
/// gives way only to runs older than itself (by jid), so that two started at once do not both
/// give way to each other.
fn conflicts(ctx: &Context) -> Vec<String> {
    let own = ctx.job.as_ref().map(|job| job.jid.as_str());
    ctx.running
        .snapshot()
        .iter()
        .filter(|job| own.is_none_or(|own| job.jid.as_str() < own))
        .filter_map(|job| {
            let fun = map_get(&job.load, "fun").map(text)?;
            // Functions that only look (`state.running`, `state.show_*`) apply nothing: Salt
            // counts them too, which makes a state run fail while someone watches the minion.
            let applies = crate::py::fnmatch::fnmatch(&fun, "state.*")
                && fun != "state.running"
                && !fun.starts_with("state.show_");
            applies.then(|| {
                format!(
                    "The function \"{fun}\" is running as PID {} and was started at {} with jid {}",
                    std::process::id(),
                    crate::event::jid::jid_to_time(&job.jid),
                    job.jid
                )
            })
        })
        .collect()
}

/// The minion's pillar (through `pillar.items` when this minion has it), with the `pillar=`
/// override merged on top.
async fn pillar(ctx: &Context, bound: &Bound) -> Result<Value, FunctionError> {
    let mut pillar = match super::find("pillar.items") {
        Some(_) => {
            let call = Call {
                fun: "pillar.items".to_owned(),
                args: CliArgs::default(),
            };
            let outcome = super::run(&call, ctx).await;
            if outcome.error {
                Value::Map(Vec::new())
            } else {
                outcome.ret
            }
        }
        None => Value::Map(Vec::new()),
    };
    match extra(bound, "pillar") {
        None | Some(Value::Nil) => {}
        Some(Value::Map(overrides)) => {
            if let Value::Map(entries) = &mut pillar {
                for (key, value) in overrides {
                    crate::event::map_set(entries, key.clone(), value.clone());
                }
            }
        }
        Some(_) => {
            return Err(FunctionError::Invalid(
                "Pillar data must be formatted as a dictionary, unless pillar_enc is specified."
                    .to_owned(),
            ));
        }
    }
    Ok(pillar)
}

/// A `key=value` argument the function takes through `**kwargs`.
fn extra<'a>(bound: &'a Bound, key: &str) -> Option<&'a Value> {
    bound.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Runs a `state` function.
pub(super) async fn run(call: &Call, ctx: &Context, kind: Kind) -> Result<Outcome, FunctionError> {
    let bound = bind(call, kind.signature())?;
    // `concurrent=True` runs beside other state runs, as Salt allows.
    let conflict = if extra(&bound, "concurrent").is_some_and(truthy) {
        Vec::new()
    } else {
        conflicts(ctx)
    };
    if !conflict.is_empty() {
        return Ok(Outcome::with_retcode(
            Value::Array(conflict.into_iter().map(Value::from).collect()),
            super::EX_GENERIC,
        ));
    }
    let test = match extra(&bound, "test") {
        Some(test) => truthy(test),
        None => ctx.config.get_bool("test", false)?,
    };
    let saltenv = extra(&bound, "saltenv")
        .filter(|env| !env.is_nil())
        .map(text)
        .or_else(|| {
            ctx.config
                .get_str("saltenv")
                .ok()
                .flatten()
                .map(str::to_owned)
        });
    let options = RunOptions {
        test,
        state_events: match extra(&bound, "state_events") {
            Some(events) => truthy(events),
            None => ctx.config.get_bool("state_events", false)?,
        },
        // Without the minion daemon's bus (salt-call) there is no way to the master: Salt's
        // salt-call --local fires no state events either.
        local: ctx.bus.is_none(),
        failhard: ctx.config.get_bool("failhard", false)?,
    };
    let states = StateContext {
        config: ctx.config.clone(),
        grains: ctx.grains.clone(),
        pillar: pillar(ctx, &bound).await?,
        files: ctx.files.clone(),
        salt: Arc::new(Registry(ctx.clone())),
        renderer: Arc::new(crate::render::Renderer::new(&ctx.config)),
        jid: ctx
            .job
            .as_ref()
            .map_or_else(crate::event::jid::gen_jid, |job| job.jid.clone()),
    };
    let env = saltenv.clone().unwrap_or_else(|| "base".to_owned());
    let mods = split_mods(bound.get("mods"));
    let exclude = match extra(&bound, "exclude") {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(one) => py_str(one)
            .split(',')
            .map(|sls| Value::from(sls.trim()))
            .collect(),
    };
    let returned: Result<Value, Errors> = match kind {
        Kind::Apply if mods.is_empty() => {
            apply::highstate(&states, saltenv.as_deref(), None, &options).await
        }
        Kind::Highstate => apply::highstate(&states, saltenv.as_deref(), None, &options).await,
        Kind::Top => {
            let topfn = bound.get("topfn").map(text).unwrap_or_default();
            apply::highstate(&states, saltenv.as_deref(), Some(&topfn), &options).await
        }
        Kind::Apply | Kind::Sls => apply::sls(&states, &mods, &env, exclude, &options).await,
        Kind::SlsId => {
            let id = bound.get("id_").map(text).unwrap_or_default();
            let ran = apply::sls_id(&states, &id, &mods, &env, &options).await;
            if ran
                .as_ref()
                .is_ok_and(|ret| ret.as_map().is_some_and(Vec::is_empty))
            {
                return Err(FunctionError::Arguments {
                    fun: call.fun.clone(),
                    problem: format!(
                        "No matches for ID '{id}' found in SLS '{}' within saltenv '{env}'",
                        text(bound.get("mods").unwrap_or(&Value::Nil))
                    ),
                });
            }
            ran
        }
        Kind::Single => {
            let fun = bound.get("fun").map(text).unwrap_or_default();
            if !fun.contains('.') {
                return Ok(Outcome::with_retcode(
                    "Invalid function passed",
                    super::EX_GENERIC,
                ));
            }
            let name = bound.get("name").map(text).unwrap_or_default();
            let args = bound
                .extra
                .iter()
                .filter(|(key, _)| !RUN_PARAMS.contains(&key.as_str()))
                .cloned()
                .collect();
            apply::single(&states, &fun, &name, args, &options).await
        }
        Kind::ShowSls => apply::show_sls(&states, &mods, &env).await,
        Kind::ShowLowSls => apply::show_low_sls(&states, &mods, &env).await,
        Kind::ShowHighstate => apply::show_highstate(&states, saltenv.as_deref()).await,
        Kind::ShowTop => apply::show_top(&states).await,
    };
    let mut outcome = match returned {
        Err(errors) => Outcome::with_retcode(
            Value::Array(errors.into_iter().map(Value::from).collect()),
            super::EX_GENERIC,
        ),
        Ok(results) if kind.runs() && apply::failed(&results) => {
            Outcome::with_retcode(results, EX_STATE_FAILURE)
        }
        Ok(results) => Outcome::ok(results),
    };
    if kind.runs() {
        outcome.outputter = Some(HIGHSTATE);
    }
    Ok(outcome)
}

/// `state.running`: the state runs in progress, as Salt's refusal words them.
pub(super) fn running(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    bind(call, &RUNNING)?;
    Ok(Outcome::ok(Value::Array(
        conflicts(ctx).into_iter().map(Value::from).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Salt 3007.8's answer to a second state run, seen with two `salt-call`s.
    #[test]
    fn a_state_run_is_refused_while_another_runs() {
        let config = crate::config::Config::load(
            crate::config::Role::Minion,
            Some(std::path::Path::new("/nonexistent/halite")),
        )
        .unwrap();
        let running = super::super::RunningJobs::default();
        let job = |jid: &str, fun: &str| super::super::Job {
            jid: jid.to_owned(),
            load: crate::salt_yaml::load(&format!("{{fun: {fun}, jid: '{jid}'}}")).unwrap(),
        };
        let _other = running.enter(job("20261203052611503387", "test.sleep"));
        let ctx = Context {
            config,
            grains: Value::Map(Vec::new()),
            job: Some(job("20261203052612000000", "state.sls")),
            bus: None,
            to_master: None,
            running: running.clone(),
            files: None,
            pillar: crate::pillar::PillarSource::local(),
        };
        assert!(conflicts(&ctx).is_empty(), "only state runs conflict");
        let _first = running.enter(job("20261203052611503388", "state.apply"));
        let _own = running.enter(job("20261203052612000000", "state.sls"));
        // A run started after this one waits for it, not the other way round.
        let _later = running.enter(job("20261203052613000000", "state.sls"));
        assert_eq!(
            conflicts(&ctx),
            [format!(
                "The function \"state.apply\" is running as PID {} and was started at 2026, Dec 03 05:26:11.503388 with jid 20261203052611503388",
                std::process::id()
            )]
        );
    }
}
