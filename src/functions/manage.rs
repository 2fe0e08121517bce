//! Asking a running minion's service to change what it runs, as Salt's `beacons` and
//! `schedule` modules do: a manage request on the minion's bus ([`crate::proto::manage`]), and
//! the completion event that answers it.

use std::time::Duration;

use super::{Call, Context, FunctionError, bind};
use crate::client::{Listener, fire_once};
use crate::event::{Event, Value, map_get};
use crate::output::outputter::Outputter;
use crate::proto::manage::{Manage, REQUEST_KEY};
use crate::signature::{Bound, Signature, text, truthy};

/// A `beacons.*` or `schedule.*` call: its arguments, and the way to the minion's service.
pub(super) struct Request<'a> {
    pub(super) ctx: &'a Context,
    pub(super) bound: Bound,
    pub(super) fun: &'static str,
    manage: &'static Manage,
    /// How long to wait for the service's answer when the call does not say (`timeout`).
    wait: Duration,
}

impl<'a> Request<'a> {
    pub(super) fn new(
        call: &'a Call,
        ctx: &'a Context,
        signature: &Signature,
        manage: &'static Manage,
        wait: Duration,
    ) -> Result<Self, FunctionError> {
        Ok(Self {
            ctx,
            bound: bind(call, signature)?,
            fun: signature.name,
            manage,
            wait,
        })
    }

    /// A keyword argument beyond the signature's parameters.
    pub(super) fn extra(&self, key: &str) -> Option<&Value> {
        self.bound
            .extra
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// `test=True`.
    pub(super) fn test(&self) -> bool {
        self.extra("test").is_some_and(truthy)
    }

    /// The `name` parameter.
    pub(super) fn name(&self) -> String {
        self.bound.get("name").map(text).unwrap_or_default()
    }

    /// A boolean parameter, `default` when not given.
    pub(super) fn flag(&self, param: &str, default: bool) -> bool {
        self.bound.get(param).map_or(default, truthy)
    }

    /// How long to wait for the answer.
    pub(super) fn timeout(&self) -> Duration {
        self.extra("timeout")
            .and_then(crate::config::seconds)
            .unwrap_or(self.wait)
    }

    /// The way to the minion's service.
    pub(super) fn service(&self) -> Service<'_> {
        Service {
            ctx: self.ctx,
            manage: self.manage,
            fun: self.fun,
            timeout: self.timeout(),
        }
    }
}

/// The way to one of the minion's services, for the function `fun`.
pub(super) struct Service<'a> {
    pub(super) ctx: &'a Context,
    pub(super) manage: &'static Manage,
    /// The function asking, for messages.
    pub(super) fun: &'a str,
    /// How long to wait for an answer.
    pub(super) timeout: Duration,
}

impl Service<'_> {
    /// Sends `fields` (with `func`) and waits for the answer: its data, or `None` when it did
    /// not come in time (or `func` gets none).
    pub(super) async fn ask(
        &self,
        func: &str,
        fields: Vec<(&str, Value)>,
    ) -> Result<Option<Value>, FunctionError> {
        let Some(complete) = self.manage.complete_tag(func) else {
            self.tell(func, fields).await?;
            return Ok(None);
        };
        // Listening before asking, so that the answer cannot come first.
        let mut listener = Listener::new(self.ctx.config.bus()?.publish.clone());
        listener
            .connect()
            .await
            .map_err(|err| self.unreachable(err))?;
        let config = &self.ctx.config;
        listener
            .synced(&config.bus()?, config.framing()?, self.timeout)
            .await
            .map_err(|err| self.unreachable(err))?;
        let request_id = request_id();
        self.send(func, Some(&request_id), fields).await?;
        Ok(listener
            .wait_for(
                |event| {
                    event.tag == complete
                        && map_get(&event.data, REQUEST_KEY)
                            .is_none_or(|id| id.as_str() == Some(request_id.as_str()))
                },
                self.timeout,
            )
            .await
            .ok()
            .map(|event| event.data))
    }

    /// Sends `fields` (with `func`) without waiting for anything.
    pub(super) async fn tell(
        &self,
        func: &str,
        fields: Vec<(&str, Value)>,
    ) -> Result<(), FunctionError> {
        self.send(func, None, fields).await
    }

    async fn send(
        &self,
        func: &str,
        request_id: Option<&str>,
        fields: Vec<(&str, Value)>,
    ) -> Result<(), FunctionError> {
        let config = &self.ctx.config;
        let mut data = vec![(Value::from("func"), Value::from(func))];
        // The minion echoes it in its answer, so that calls at the same time do not take each
        // other's answers (Salt's minion does not: there, they can).
        if let Some(id) = request_id {
            data.push((Value::from(REQUEST_KEY), Value::from(id)));
        }
        data.extend(
            fields
                .into_iter()
                .map(|(key, value)| (Value::from(key), value)),
        );
        fire_once(
            &config.bus()?,
            config.framing()?,
            Event::new(self.manage.tag, Value::Map(data))?,
        )
        .await
        .map_err(|err| self.unreachable(err))
    }

    fn unreachable(&self, err: crate::client::ClientError) -> FunctionError {
        let what = self.manage.what;
        FunctionError::Invalid(format!(
            "{}: the minion's event bus is not reachable ({err}); {what}.* manage the {what} of a running salt-minion: start it with this config, or check -c",
            self.fun
        ))
    }
}

/// An id for one request, unique among this host's processes.
fn request_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{}-{n}-{}",
        std::process::id(),
        crate::event::jid::gen_jid()
    )
}

/// `{key: value}` as Salt's `yaml.safe_dump` writes it, block style.
pub(super) fn yaml(key: &str, value: Value) -> String {
    Outputter::Yaml.render(&Value::Map(vec![(key.into(), value)]), false)
}
