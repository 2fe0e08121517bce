//! The runs the `state.*` functions ask for: SLS files, the highstate (the top file's SLS
//! files for this minion), one ID, one state; and the compiled views of them (`show_*`).
//!
//! Each returns the results by tag, or Salt's list of compile errors.

use indexmap::IndexMap;

use super::StateContext;
use super::high::{self, Chunk, High};
use super::run::{RunOptions, Runner};
use super::sls::Compiler;
use crate::event::{Value, map_get};
use crate::target::top::{self, Top};

/// Compile errors (Salt returns them as a list of strings, with return code 1).
pub type Errors = Vec<String>;

/// The tag of the result Salt gives a highstate that has nothing to run.
const NO_STATES: &str = "no_|-states_|-states_|-None";

/// Renders, compiles and runs `high` (Salt's `call_high`).
async fn call_high(
    ctx: &StateContext,
    options: &RunOptions,
    mut high: High,
) -> Result<Value, Errors> {
    let mut errors = high::reconcile_extend(&mut high, false);
    errors.extend(high::verify_high(&high));
    if !errors.is_empty() {
        return Err(errors);
    }
    errors.extend(high::requisite_in(&mut high));
    high::apply_exclude(&mut high);
    if !errors.is_empty() {
        return Err(errors);
    }
    let chunks = high::compile(&high);
    Ok(results(
        Runner::new(ctx, options.clone(), chunks).run().await,
    ))
}

fn results(running: IndexMap<String, Value>) -> Value {
    Value::Map(
        running
            .into_iter()
            .map(|(tag, ret)| (Value::from(tag), ret))
            .collect(),
    )
}

/// `state.sls`/`state.apply x`: the SLS files `mods` of `saltenv`, with `exclude`.
pub async fn sls(
    ctx: &StateContext,
    mods: &[String],
    saltenv: &str,
    exclude: Vec<Value>,
    options: &RunOptions,
) -> Result<Value, Errors> {
    let matches = IndexMap::from([(saltenv.to_owned(), mods.to_vec())]);
    let (mut high, errors) = Compiler::new(ctx).render_highstate(&matches).await;
    if !errors.is_empty() {
        return Err(errors);
    }
    high.exclude.extend(exclude);
    call_high(ctx, options, high).await
}

/// `state.show_sls`: the high data of `mods`, `extend` blocks still apart.
pub async fn show_sls(ctx: &StateContext, mods: &[String], saltenv: &str) -> Result<Value, Errors> {
    let matches = IndexMap::from([(saltenv.to_owned(), mods.to_vec())]);
    let (high, mut errors) = Compiler::new(ctx).render_highstate(&matches).await;
    errors.extend(high::verify_high(&high));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(high.to_value())
}

/// `state.show_low_sls`: the chunks of `mods`, in order.
pub async fn show_low_sls(
    ctx: &StateContext,
    mods: &[String],
    saltenv: &str,
) -> Result<Value, Errors> {
    let matches = IndexMap::from([(saltenv.to_owned(), mods.to_vec())]);
    let (high, mut errors) = Compiler::new(ctx).render_highstate(&matches).await;
    errors.extend(high::verify_high(&high));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Value::Array(
        high::compile(&high).iter().map(Chunk::to_value).collect(),
    ))
}

/// `state.sls_id`: the chunks of ID `id` in `mods`, with their requisites; an empty map when
/// no chunk has that ID.
pub async fn sls_id(
    ctx: &StateContext,
    id: &str,
    mods: &[String],
    saltenv: &str,
    options: &RunOptions,
) -> Result<Value, Errors> {
    let matches = IndexMap::from([(saltenv.to_owned(), mods.to_vec())]);
    let (mut high, mut errors) = Compiler::new(ctx).render_highstate(&matches).await;
    errors.extend(high::verify_high(&high));
    errors.extend(high::requisite_in(&mut high));
    if !errors.is_empty() {
        return Err(errors);
    }
    let chunks = high::compile(&high);
    let mut ret = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        if chunk.id == id {
            let running = Runner::new(ctx, options.clone(), chunks.clone())
                .run_one(index)
                .await;
            ret.extend(running);
        }
    }
    Ok(results(ret.into_iter().collect()))
}

/// `state.single`: one state function (`module.function`) on one name, `args` its
/// arguments.
pub async fn single(
    ctx: &StateContext,
    fun: &str,
    name: &str,
    args: Vec<(String, Value)>,
    options: &RunOptions,
) -> Result<Value, Errors> {
    let (state, function) = fun.split_once('.').unwrap_or((fun, ""));
    let chunk = Chunk {
        state: state.to_owned(),
        name: name.to_owned(),
        fun: function.split('.').next().unwrap_or_default().to_owned(),
        id: name.to_owned(),
        sls: String::new(),
        env: String::new(),
        included_from: Vec::new(),
        args,
        order: 0.0,
    };
    if super::find(&format!("{}.{}", chunk.state, chunk.fun)).is_none() {
        return Err(vec![format!(
            "Specified state '{}.{}' was not found",
            chunk.state, chunk.fun
        )]);
    }
    let tag = chunk.tag();
    let ret = Runner::new(ctx, options.clone(), vec![chunk])
        .call_alone()
        .await;
    Ok(Value::Map(vec![(Value::from(tag), ret)]))
}

/// The top files of every environment rendered and merged as `top_file_merging_strategy`
/// says (Salt's `get_tops` and `merge_tops`), with the environments there are.
async fn get_top(ctx: &StateContext, top_file: &str) -> Result<(Top, Vec<String>), Errors> {
    let mut compiler = Compiler::new(ctx);
    let envs = compiler.envs().await;
    let mut tops = Vec::new();
    let mut errors = Vec::new();
    for env in &envs {
        match compiler.render_top(env, top_file).await {
            Ok(top) => tops.push((env.clone(), top.into_iter().collect())),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let strategy = ctx
        .config
        .get_str("top_file_merging_strategy")
        .ok()
        .flatten()
        .unwrap_or("merge");
    let default_top = ctx
        .config
        .get_str("default_top")
        .ok()
        .flatten()
        .unwrap_or("base");
    let top = top::merge_states(&tops, top::Strategy::named(strategy), default_top)
        .map_err(|err| vec![err.to_string()])?;
    Ok((top, envs))
}

/// The result Salt returns for a highstate with nothing to do.
fn no_states(comment: &str) -> Value {
    Value::Map(vec![(
        Value::from(NO_STATES),
        Value::Map(vec![
            (Value::from("result"), Value::Boolean(false)),
            (Value::from("comment"), Value::from(comment)),
            (Value::from("name"), Value::from("No States")),
            (Value::from("changes"), Value::Map(Vec::new())),
            (Value::from("__run_num__"), Value::from(0)),
        ]),
    )])
}

/// The top file's matches for this minion, restricted to `saltenv` when given; `top_file`
/// replaces the configured top file (`state_top`, `top.sls` by default).
async fn matches(
    ctx: &StateContext,
    saltenv: Option<&str>,
    top_file: Option<&str>,
) -> Result<IndexMap<String, Vec<String>>, Errors> {
    let configured = ctx
        .config
        .get_str("state_top")
        .ok()
        .flatten()
        .unwrap_or("top.sls");
    let (top, envs) = get_top(ctx, top_file.unwrap_or(configured)).await?;
    let id = ctx.config.id().unwrap_or_default();
    let mut matches: IndexMap<String, Vec<String>> = top::matches(
        &top,
        &id,
        &ctx.grains,
        &ctx.pillar,
        top::Purpose::States,
        None,
        &envs,
    )
    .into_iter()
    .filter(|(_, list)| !list.is_empty())
    .collect();
    if let Some(saltenv) = saltenv {
        matches.retain(|env, _| env == saltenv);
    }
    Ok(matches)
}

/// `state.highstate`/`state.apply`/`state.top`: every SLS the top file (`top_file`, else the
/// configured one) gives this minion.
pub async fn highstate(
    ctx: &StateContext,
    saltenv: Option<&str>,
    top_file: Option<&str>,
    options: &RunOptions,
) -> Result<Value, Errors> {
    let matches = matches(ctx, saltenv, top_file).await?;
    if matches.is_empty() {
        return Ok(no_states(
            "No Top file or master_tops data matches found. Please see master log for details.",
        ));
    }
    let (high, errors) = Compiler::new(ctx).render_highstate(&matches).await;
    if !errors.is_empty() {
        return Err(errors);
    }
    if high.ids.is_empty() {
        return Ok(no_states("No states found for this minion"));
    }
    call_high(ctx, options, high).await
}

/// `state.show_highstate`: the highstate's high data.
pub async fn show_highstate(ctx: &StateContext, saltenv: Option<&str>) -> Result<Value, Errors> {
    let matches = matches(ctx, saltenv, None).await?;
    let (high, errors) = Compiler::new(ctx).render_highstate(&matches).await;
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(high.to_value())
}

/// `state.show_top`: environment → the SLS files this minion gets.
pub async fn show_top(ctx: &StateContext) -> Result<Value, Errors> {
    let matches = matches(ctx, None, None).await?;
    Ok(Value::Map(
        matches
            .into_iter()
            .map(|(env, list)| {
                (
                    Value::from(env),
                    Value::Array(list.into_iter().map(Value::from).collect()),
                )
            })
            .collect(),
    ))
}

/// Whether a run's results hold a failed state (Salt's `check_result`: an empty run fails too).
pub fn failed(results: &Value) -> bool {
    match results.as_map() {
        None => true,
        Some(entries) if entries.is_empty() => true,
        Some(entries) => entries
            .iter()
            .any(|(_, ret)| map_get(ret, "result") == Some(&Value::Boolean(false))),
    }
}
