//! The yardstick: the simplest correct forwarder over the same sockets and framing as a bus,
//! built as the reference relay the bus is measured against is. Each read from a sender is
//! forwarded as runs of whole frames, one buffer per run, to every subscriber's bounded queue;
//! a full queue makes the sender wait (lossless, like Salt's await on every write). No
//! validation, no per-subscriber budget, no reporting: what the machine allows.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ipc::{BusAddress, Endpoint, Stream};
use crate::wire::{Chunk, FrameCodec};

/// Runs of frames a subscriber's queue holds before its senders wait.
const QUEUE: usize = 1024;

/// How much a subscriber's writer gathers into one write.
const GATHER: usize = 256 * 1024;

/// The subscribers' queues.
type Subscribers = Arc<Mutex<Vec<mpsc::Sender<Bytes>>>>;

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    address: BusAddress,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay with its sockets in `dir`.
    pub async fn start(dir: &Path) -> std::io::Result<Self> {
        let address = BusAddress {
            publish: Endpoint::Unix(dir.join("relay_pub.ipc")),
            pull: Endpoint::Unix(dir.join("relay_pull.ipc")),
        };
        let publish = address.publish.bind(0o600).await?;
        let pull = address.pull.bind(0o600).await?;
        let subscribers = Subscribers::default();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let tasks = TaskTracker::new();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    Ok((stream, _)) = pull.accept() => {
                        tasks.spawn(forward(stream, subscribers.clone(), stop.clone()));
                    }
                    Ok((stream, _)) = publish.accept() => {
                        let (queue, taken) = mpsc::channel(QUEUE);
                        subscribers.lock().expect("subscriber list lock").push(queue);
                        tasks.spawn(write(stream, taken, stop.clone()));
                    }
                }
            }
            tasks.close();
            tasks.wait().await;
        });
        Ok(Self {
            address,
            shutdown,
            task,
        })
    }

    /// Where the relay listens.
    pub fn address(&self) -> &BusAddress {
        &self.address
    }

    /// Stops accepting and removes the sockets.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Reads a sender and hands each run of whole frames to every subscriber.
async fn forward(mut stream: Stream, subscribers: Subscribers, stop: CancellationToken) {
    let mut codec = FrameCodec::new(crate::wire::DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::with_capacity(GATHER);
    let mut runs: Vec<Chunk> = Vec::new();
    loop {
        if buf.capacity() - buf.len() < GATHER / 2 {
            buf.reserve(GATHER);
        }
        let read = tokio::select! {
            read = stream.read_buf(&mut buf) => read,
            () = stop.cancelled() => return,
        };
        if !matches!(read, Ok(n) if n > 0) {
            return;
        }
        if codec.decode_chunks(&mut buf, |_| true, &mut runs).is_err() {
            return;
        }
        let queues: Vec<_> = subscribers.lock().expect("subscriber list lock").clone();
        let mut gone = false;
        for run in runs.drain(..) {
            for queue in &queues {
                gone |= queue.send(run.bytes.clone()).await.is_err();
            }
        }
        if gone {
            subscribers
                .lock()
                .expect("subscriber list lock")
                .retain(|queue| !queue.is_closed());
        }
    }
}

/// Writes a subscriber's queue, gathering small runs into one write.
async fn write(stream: Stream, mut taken: mpsc::Receiver<Bytes>, stop: CancellationToken) {
    let (_, mut writer) = tokio::io::split(stream);
    let mut gathered = Vec::with_capacity(GATHER);
    loop {
        let run = tokio::select! {
            run = taken.recv() => run,
            () = stop.cancelled() => return,
        };
        let Some(run) = run else { return };
        let written = if run.len() >= GATHER / 4 {
            writer.write_all(&run).await
        } else {
            gathered.clear();
            gathered.extend_from_slice(&run);
            while gathered.len() < GATHER {
                match taken.try_recv() {
                    Ok(next) => gathered.extend_from_slice(&next),
                    Err(_) => break,
                }
            }
            writer.write_all(&gathered).await
        };
        if written.is_err() {
            return;
        }
    }
}
