//! The event-bus server a master or minion owns: subscribers connect to the publish socket,
//! senders connect to the pull socket, and every accepted event goes to every subscriber.
//!
//! Each event is framed once and the same bytes are shared by all subscribers through a bounded
//! ring ([`tokio::sync::broadcast`]): a subscriber that falls more than
//! [`DEFAULT_SUBSCRIBER_BACKLOG`] events behind loses the oldest ones (counted and logged) instead
//! of slowing the senders or the other subscribers, and the daemon's memory stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::BusAddress;
use crate::event::Event;
use crate::ipc::{Listener, Peer, Stream};
use crate::wire::{self, FrameCodec, Framing};

/// How many events a subscriber may fall behind before it loses the oldest.
pub const DEFAULT_SUBSCRIBER_BACKLOG: usize = 4096;

/// Connections accepted at once per socket; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4096;

/// The largest frame a pull connection may send; larger ones close that connection.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// What kind of bus this is, which decides how strictly senders are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A master bus: bodies that do not decode as events are dropped, as Salt's master does.
    Master,
    /// A minion bus: bodies are relayed as received, as Salt's minion does.
    Minion,
}

/// How to run a bus.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Where to listen.
    pub address: BusAddress,
    /// Master or minion rules.
    pub node: Node,
    /// The framing written to subscribers.
    pub publish_framing: Framing,
    /// The largest frame accepted from a sender.
    pub max_frame: usize,
    /// How far a subscriber may fall behind.
    pub subscriber_backlog: usize,
}

impl BusOptions {
    /// Salt's socket modes: a master's publish socket is group-readable (0660); every other bus
    /// socket is private to the owner (0600).
    fn modes(&self) -> (u32, u32) {
        match self.node {
            Node::Master => (0o660, 0o600),
            Node::Minion => (0o600, 0o600),
        }
    }
}

/// Failure to start a bus.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {endpoint}: {source}")]
pub struct BusError {
    endpoint: String,
    source: std::io::Error,
}

/// One published event: its frame as subscribers receive it, and where its body starts.
#[derive(Debug, Clone)]
struct Published {
    frame: Bytes,
    body_start: usize,
}

/// Publishes into a running bus and subscribes to it from inside the daemon.
#[derive(Debug, Clone)]
pub struct BusHandle {
    sender: broadcast::Sender<Published>,
    framing: Framing,
    published: Arc<AtomicU64>,
}

impl BusHandle {
    /// Publishes an already-encoded body to every subscriber.
    pub fn publish_body(&self, body: &[u8]) {
        let mut frame = Vec::with_capacity(body.len() + 24);
        wire::encode_frame(body, self.framing, &mut frame);
        let body_start = frame.len() - body.len();
        self.published.fetch_add(1, Ordering::Relaxed);
        // Sending fails only when nobody listens, and then there is nobody to lose the event.
        let _ = self.sender.send(Published {
            frame: Bytes::from(frame),
            body_start,
        });
    }

    /// Stamps and publishes an event the daemon itself fires.
    pub fn fire(&self, mut event: Event) {
        event.stamp();
        let mut body = Vec::new();
        wire::encode_body(&event.tag, &event.data, &mut body);
        self.publish_body(&body);
    }

    /// A new in-process subscription, seeing events published from now on.
    pub fn subscribe(&self) -> BusSubscription {
        BusSubscription {
            receiver: self.sender.subscribe(),
        }
    }

    /// How many events have been published since the bus started.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

/// An in-process subscriber of a running bus.
#[derive(Debug)]
pub struct BusSubscription {
    receiver: broadcast::Receiver<Published>,
}

impl BusSubscription {
    /// The next event body, or `None` once the bus has shut down. Events lost because this
    /// subscriber fell behind are logged and skipped.
    pub async fn next_body(&mut self) -> Option<Bytes> {
        loop {
            match self.receiver.recv().await {
                Ok(published) => return Some(published.frame.slice(published.body_start..)),
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!("in-process subscriber fell behind and lost {lost} events");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// A bound, not yet running bus.
#[derive(Debug)]
pub struct Bus {
    options: BusOptions,
    publish: Listener,
    pull: Listener,
    handle: BusHandle,
}

impl Bus {
    /// Binds both sockets with Salt's permissions. The publish socket is bound first so that
    /// nothing a sender manages to fire can precede the first possible subscriber.
    pub async fn bind(options: BusOptions) -> Result<Self, BusError> {
        let (publish_mode, pull_mode) = options.modes();
        let bind = |endpoint: &crate::ipc::Endpoint, mode| {
            let endpoint = endpoint.clone();
            async move {
                endpoint.bind(mode).await.map_err(|source| BusError {
                    endpoint: endpoint.to_string(),
                    source,
                })
            }
        };
        let publish = bind(&options.address.publish, publish_mode).await?;
        let pull = bind(&options.address.pull, pull_mode).await?;
        let (sender, _) = broadcast::channel(options.subscriber_backlog.max(1));
        let handle = BusHandle {
            sender,
            framing: options.publish_framing,
            published: Arc::default(),
        };
        Ok(Self {
            options,
            publish,
            pull,
            handle,
        })
    }

    /// A handle to publish and subscribe from inside the daemon.
    pub fn handle(&self) -> BusHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, finishes delivering every
    /// event already accepted to the subscribers still connected, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let Bus {
            options,
            publish,
            pull,
            handle,
        } = self;
        let pullers = TaskTracker::new();
        let subscribers = TaskTracker::new();
        let drained = CancellationToken::new();
        // One accept loop per socket: an accept future that loses a `select!` race may have
        // taken a connection off the queue already, so accepts are never raced against each
        // other, only against shutdown.
        let accept_senders = accept_loop(&pull, &shutdown, |stream, peer, slot| {
            let (handle, options, shutdown) = (handle.clone(), options.clone(), shutdown.clone());
            pullers.spawn(async move {
                serve_sender(stream, &peer, &options, &handle, shutdown).await;
                drop(slot);
            });
        });
        let accept_subscribers = accept_loop(&publish, &shutdown, |stream, peer, slot| {
            let (receiver, drained) = (handle.sender.subscribe(), drained.clone());
            subscribers.spawn(async move {
                serve_subscriber(stream, &peer, receiver, drained).await;
                drop(slot);
            });
        });
        tokio::join!(accept_senders, accept_subscribers);
        drop((publish, pull));
        pullers.close();
        pullers.wait().await;
        // Everything accepted is now queued; the subscribers write out what they hold and stop.
        drained.cancel();
        subscribers.close();
        subscribers.wait().await;
    }
}

/// Accepts connections until shutdown, at most [`MAX_CONNECTIONS`] served at once.
async fn accept_loop<F>(listener: &Listener, shutdown: &CancellationToken, mut serve: F)
where
    F: FnMut(Stream, Peer, OwnedSemaphorePermit),
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = accept(listener, &slots) => accepted,
        };
        if let Some((stream, peer, slot)) = accepted {
            serve(stream, peer, slot);
        }
    }
}

async fn accept(
    listener: &Listener,
    slots: &Arc<Semaphore>,
) -> Option<(Stream, Peer, OwnedSemaphorePermit)> {
    let permit = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, permit)),
        Err(err) => {
            tracing::warn!("accepting a bus connection failed: {err}");
            // Out of file descriptors and similar errors persist for a moment; don't spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            None
        }
    }
}

/// Reads frames from one sender until it disconnects, sends garbage, or the bus shuts down.
async fn serve_sender(
    stream: Stream,
    peer: &Peer,
    options: &BusOptions,
    handle: &BusHandle,
    shutdown: CancellationToken,
) {
    let mut frames = FramedRead::new(stream, FrameCodec::new(options.max_frame));
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            () = shutdown.cancelled() => return,
        };
        match frame {
            None => return,
            Some(Ok(Ok(body))) => {
                if options.node == Node::Master
                    && let Err(err) = wire::validate_body(&body)
                {
                    tracing::warn!("dropped an event from {peer} on the pull socket: {err}");
                    continue;
                }
                handle.publish_body(&body);
            }
            Some(Ok(Err(ignored))) => {
                tracing::warn!("ignored a frame from {peer} on the pull socket: {ignored}");
            }
            Some(Err(err)) => {
                tracing::error!("closed the pull connection from {peer}: {err}");
                return;
            }
        }
    }
}

/// Writes every published frame to one subscriber until it disconnects or the bus has drained.
async fn serve_subscriber(
    stream: Stream,
    peer: &Peer,
    mut receiver: broadcast::Receiver<Published>,
    drained: CancellationToken,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    // Subscribers never send anything meaningful; reading only tells us when they leave.
    let mut discard = [0u8; 512];
    let mut lost_total: u64 = 0;
    loop {
        let next = tokio::select! {
            biased;
            received = receiver.recv() => received,
            read = reader.read(&mut discard) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            () = drained.cancelled(), if receiver.is_empty() => break,
        };
        match next {
            Ok(published) => {
                if writer.write_all(&published.frame).await.is_err() {
                    return;
                }
                // Write in batches while events are already waiting, flush when caught up.
                if receiver.is_empty() && writer.flush().await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                lost_total += lost;
                tracing::warn!(
                    "subscriber {peer} fell behind: dropped its {lost} oldest events ({lost_total} so far)"
                );
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}
