//! Listening on a bus's publish socket, attaching and re-attaching by itself.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

use super::{ClientError, connect};
use crate::event::Event;
use crate::ipc::{Endpoint, Stream};
use crate::wire::DEFAULT_MAX_FRAME;

/// The tag of the events a listener fires to see that the bus delivers to it.
pub const SYNC_TAG: &str = "halite/listen";

/// How long a listener waits for its sync event before firing another.
const SYNC_RETRY: Duration = Duration::from_millis(250);
use crate::wire::{self, FrameCodec};

/// First pause before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Salt's subscribers retry every second; never wait longer than that.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A change in a listener's connection, for callers that tell their user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenNotice {
    /// The publish socket cannot be reached yet; the listener keeps trying.
    Waiting {
        /// The socket.
        endpoint: Endpoint,
        /// Why it cannot connect.
        reason: String,
    },
    /// Connected (again) after waiting or losing the connection.
    Attached(Endpoint),
    /// The connection was lost (the daemon stopped or restarted); the listener keeps trying.
    Lost {
        /// The socket.
        endpoint: Endpoint,
        /// What happened.
        reason: String,
    },
}

/// A subscriber to one publish socket that survives daemon restarts. Events published while it
/// is disconnected are lost, as with Salt.
pub struct Listener {
    endpoint: Endpoint,
    frames: Option<FramedRead<Stream, FrameCodec>>,
    notify: Box<dyn FnMut(ListenNotice) + Send>,
    ever_connected: bool,
    /// Connections lost in a row within a second of attaching and without an event on them: a
    /// daemon that closes every connection at once (one refusing this user) is retried with
    /// backoff and one notice.
    quiet_losses: u32,
    attached_at: std::time::Instant,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// A listener for `endpoint`; it connects on first use.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            frames: None,
            notify: Box::new(|_| {}),
            ever_connected: false,
            quiet_losses: 0,
            attached_at: std::time::Instant::now(),
        }
    }

    /// Calls `notify` whenever the connection state changes.
    pub fn on_notice(mut self, notify: impl FnMut(ListenNotice) + Send + 'static) -> Self {
        self.notify = Box::new(notify);
        self
    }

    /// The publish socket listened on.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connects now, once, without retrying.
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        let stream = connect(&self.endpoint).await?;
        self.frames = Some(FramedRead::new(stream, FrameCodec::new(DEFAULT_MAX_FRAME)));
        self.ever_connected = true;
        self.attached_at = std::time::Instant::now();
        Ok(())
    }

    /// Waits until the bus delivers to this listener. A bus registers a subscriber when it
    /// accepts the connection, which may come after [`Listener::connect`] returned; an event
    /// published in between is not seen. Fires [`SYNC_TAG`]`/<token>` on `bus` until it comes
    /// back here, for at most `timeout`.
    pub async fn synced(
        &mut self,
        bus: &crate::ipc::BusAddress,
        choice: super::FramingChoice,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let token = format!(
            "{SYNC_TAG}/{}/{}",
            std::process::id(),
            crate::event::jid::gen_jid()
        );
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = Event {
                tag: token.clone(),
                data: crate::event::Value::Map(Vec::new()),
            };
            super::fire_once(bus, choice, event).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .wait_for(|event| event.tag == token, left.min(SYNC_RETRY))
                .await
            {
                Ok(_) => return Ok(()),
                Err(ClientError::Timeout { .. }) if !left.is_zero() => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Connects, retrying with capped backoff until it succeeds. A missing or refusing socket is
    /// waited for; a permission problem is returned, since waiting cannot fix it.
    async fn attach(&mut self) -> Result<(), ClientError> {
        let mut backoff = MIN_BACKOFF;
        let mut announced = false;
        loop {
            match self.connect().await {
                Ok(()) => {
                    if announced {
                        (self.notify)(ListenNotice::Attached(self.endpoint.clone()));
                    }
                    return Ok(());
                }
                Err(err @ ClientError::PermissionDenied(_)) => return Err(err),
                Err(err) => {
                    if !announced && !self.ever_connected {
                        let reason = match &err {
                            ClientError::Connect { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        (self.notify)(ListenNotice::Waiting {
                            endpoint: self.endpoint.clone(),
                            reason,
                        });
                    }
                    announced = true;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The next event, reconnecting as needed. Bodies that do not decode are skipped with a
    /// warning, where Salt's watcher would die.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            let Some(frames) = self.frames.as_mut() else {
                self.attach().await?;
                continue;
            };
            let reason = match frames.next().await {
                Some(Ok(Ok(frame))) => match wire::decode_body(&frame.body()) {
                    Ok(event) => {
                        self.quiet_losses = 0;
                        return Ok(event);
                    }
                    Err(err) => {
                        tracing::warn!("skipped an undecodable event on {}: {err}", self.endpoint);
                        continue;
                    }
                },
                Some(Ok(Err(ignored))) => {
                    tracing::warn!("skipped a frame on {}: {ignored}", self.endpoint);
                    continue;
                }
                Some(Err(err)) => err.to_string(),
                None if matches!(self.endpoint, Endpoint::Tcp(_)) => "the daemon closed the connection; with ipc_mode: tcp it refuses users other than root and its own".to_owned(),
                None => "the daemon closed the connection".to_owned(),
            };
            self.frames = None;
            if self.attached_at.elapsed() >= MAX_BACKOFF {
                self.quiet_losses = 0;
            }
            if self.quiet_losses == 0 {
                (self.notify)(ListenNotice::Lost {
                    endpoint: self.endpoint.clone(),
                    reason,
                });
            } else {
                let pause = MIN_BACKOFF.saturating_mul(1 << self.quiet_losses.min(10));
                tokio::time::sleep(pause.min(MAX_BACKOFF)).await;
            }
            self.quiet_losses = self.quiet_losses.saturating_add(1);
        }
    }

    /// The first event for which `wanted` is true, or a timeout error after `timeout`.
    pub async fn wait_for(
        &mut self,
        mut wanted: impl FnMut(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Event, ClientError> {
        let endpoint = self.endpoint.clone();
        tokio::time::timeout(timeout, async {
            loop {
                let event = self.next_event().await?;
                if wanted(&event) {
                    return Ok(event);
                }
            }
        })
        .await
        .map_err(|_| ClientError::Timeout {
            endpoint,
            waited: timeout,
        })?
    }
}
