//! Handing returns to the returners a job, a command or a schedule names: each returner is built
//! once per daemon (per name, profile and kwargs) and kept, so that its connection pool is
//! shared by every return that follows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Returner, ReturnerError, build};
use crate::config::Config;
use crate::event::Value;

/// The returners of one daemon or command, built as they are first named.
#[derive(Debug, Clone)]
pub struct Deliveries {
    config: Config,
    built: Arc<Mutex<HashMap<String, Arc<dyn Returner>>>>,
}

impl Deliveries {
    /// Returners reading their options from `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            config: config.clone(),
            built: Arc::default(),
        }
    }

    /// The returner `name` with the `ret_config` profile and `ret_kwargs` given, built on first
    /// use.
    pub fn returner(
        &self,
        name: &str,
        profile: Option<&str>,
        kwargs: Option<&Value>,
    ) -> Result<Arc<dyn Returner>, ReturnerError> {
        let key = format!(
            "{name}\0{}\0{}",
            profile.unwrap_or_default(),
            kwargs.map(ToString::to_string).unwrap_or_default()
        );
        let mut built = self.built.lock().expect("returners lock");
        if let Some(returner) = built.get(&key) {
            return Ok(returner.clone());
        }
        let returner = build(name, &self.config, profile, kwargs)?;
        built.insert(key, returner.clone());
        Ok(returner)
    }

    /// Hands a job's return dict to each returner `names` lists; a returner that fails is
    /// logged with its name and does not keep the others from theirs.
    pub async fn job_return(
        &self,
        names: &[String],
        ret: &Value,
        profile: Option<&str>,
        kwargs: Option<&Value>,
    ) -> Vec<ReturnerError> {
        let mut failed = Vec::new();
        for name in names {
            let stored = match self.returner(name, profile, kwargs) {
                Ok(returner) => returner.returns(std::slice::from_ref(ret)).await,
                Err(err) => Err(err),
            };
            if let Err(err) = stored {
                tracing::error!("the return was not stored: {err}");
                failed.push(err);
            }
        }
        failed
    }
}
