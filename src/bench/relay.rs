//! The yardstick: the simplest correct forwarder over the same sockets and framing as a bus. It
//! splits frames, shares each one with every subscriber through one broadcast ring, and writes.
//! No validation, no per-subscriber budget, no reporting: what the machine allows, for the
//! benchmark to compare a bus against.

use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::ipc::BusAddress;
use crate::ipc::Endpoint;
use crate::wire::FrameCodec;

/// Frames a subscriber may fall behind before it loses some: large, so that the yardstick does
/// not win by dropping.
const RING: usize = 1 << 20;

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
        let (ring, _) = broadcast::channel::<Bytes>(RING);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    Ok((stream, _)) = pull.accept() => {
                        let ring = ring.clone();
                        tokio::spawn(async move {
                            let mut frames = FramedRead::new(stream, FrameCodec::new(crate::wire::DEFAULT_MAX_FRAME));
                            while let Some(Ok(Ok(frame))) = frames.next().await {
                                let _ = ring.send(frame.into_canonical());
                            }
                        });
                    }
                    Ok((stream, _)) = publish.accept() => {
                        let mut receiver = ring.subscribe();
                        tokio::spawn(async move {
                            let mut writer = BufWriter::with_capacity(64 * 1024, stream);
                            loop {
                                match receiver.recv().await {
                                    Ok(frame) => {
                                        if writer.write_all(&frame).await.is_err() {
                                            return;
                                        }
                                        if receiver.is_empty() && writer.flush().await.is_err() {
                                            return;
                                        }
                                    }
                                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                                    Err(broadcast::error::RecvError::Closed) => return,
                                }
                            }
                        });
                    }
                }
            }
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
