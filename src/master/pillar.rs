//! The master's answer to a minion's pillar request: the pillar compiled from the master's
//! `pillar_roots` for the session's own minion id and the grains it said hello with, never for
//! an id a request names, so a minion never receives another minion's pillar.

use crate::config::Config;
use crate::event::Value;
use crate::proto::link::{Answer, Failure};

/// The pillar of `minion_id` (with `grains`), only `pillarenv`'s when given.
pub(super) async fn answer(
    config: &Config,
    minion_id: &str,
    grains: &Value,
    pillarenv: Option<String>,
) -> Result<Answer, Failure> {
    let mut request = crate::pillar::Request::new(minion_id.to_owned(), grains.clone());
    request.pillarenv = pillarenv;
    let config = config.clone();
    // Rendering reads files and runs templates: off the runtime's workers.
    let compiled = tokio::task::spawn_blocking(move || crate::pillar::compile(&config, &request))
        .await
        .map_err(|err| Failure::Pillar {
            reason: err.to_string(),
        })?
        .map_err(|err| Failure::Pillar {
            reason: err.to_string(),
        })?;
    Ok(Answer::Pillar(std::sync::Arc::new(compiled.pillar)))
}
