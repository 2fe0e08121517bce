//! A load generator for any bus that speaks Salt's IPC protocol (halite's, a real salt-master's,
//! or the [`relay`] it carries as a yardstick): N publishers, M reading subscribers and some
//! stalled ones, events of a given size, flat out or paced. It reports throughput, latency
//! percentiles, and per subscriber what was delivered, dropped and reordered.
//!
//! Events are `halite/bench/<run>` with data `{"p": publisher, "n": sequence, "t": send time,
//! "x": padding}` packed at fixed offsets, so publishers patch a template instead of encoding
//! and subscribers read three integers instead of decoding.

pub mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

use crate::client::{ClientError, Publisher, connect};
use crate::config::FramingChoice;
use crate::event::{Event, Value};
use crate::ipc::BusAddress;
use crate::wire::{self, FrameCodec, Framing};

/// What load to generate.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Concurrent publishers, each on its own connection.
    pub publishers: usize,
    /// Subscribers that read everything.
    pub subscribers: usize,
    /// Subscribers that connect and never read.
    pub stalled: usize,
    /// Size of each event's body (tag and packed data), in bytes.
    pub size: usize,
    /// Events in all, shared among the publishers.
    pub count: u64,
    /// Events per second in all; `None` sends flat out.
    pub rate: Option<f64>,
    /// How long subscribers wait for a missing event before counting it dropped.
    pub idle: Duration,
    /// How to frame events for the pull socket.
    pub framing: FramingChoice,
}

/// What one reading subscriber saw.
#[derive(Debug, Clone, Default)]
pub struct SubscriberReport {
    /// Events received.
    pub delivered: u64,
    /// Events sent but never received.
    pub dropped: u64,
    /// Events that arrived after a later one from the same publisher.
    pub reordered: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Events sent.
    pub sent: u64,
    /// Frame size on the wire, in bytes.
    pub frame_bytes: usize,
    /// From the first send to the last receipt.
    pub elapsed: Duration,
    /// Latency from send to receipt, in microseconds: p50, p90, p99, p99.9, max.
    pub latency_us: [f64; 5],
    /// One entry per reading subscriber.
    pub subscribers: Vec<SubscriberReport>,
}

impl BenchReport {
    /// Events delivered per second to each reading subscriber, on average, from the first send
    /// to the last receipt (the send rate when nobody reads).
    pub fn events_per_second(&self) -> f64 {
        let delivered = match self.subscribers.len() {
            0 => self.sent as f64,
            n => {
                self.subscribers
                    .iter()
                    .map(|s| s.delivered as f64)
                    .sum::<f64>()
                    / n as f64
            }
        };
        delivered / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as a value for Salt's outputters.
    pub fn to_value(&self) -> Value {
        let rate = self.events_per_second();
        let entry = |k: &str, v: Value| (Value::from(k), v);
        let round = |x: f64| Value::from((x * 10.0).round() / 10.0);
        Value::Map(vec![
            entry("events", Value::from(self.sent)),
            entry("frame_bytes", Value::from(self.frame_bytes as u64)),
            entry(
                "seconds",
                Value::from((self.elapsed.as_secs_f64() * 1e4).round() / 1e4),
            ),
            entry("events_per_second", round(rate)),
            entry("mb_per_second", round(rate * self.frame_bytes as f64 / 1e6)),
            entry(
                "latency_us",
                Value::Map(
                    ["p50", "p90", "p99", "p99.9", "max"]
                        .iter()
                        .zip(self.latency_us)
                        .map(|(k, v)| entry(k, round(v)))
                        .collect(),
                ),
            ),
            entry(
                "subscribers",
                Value::Array(
                    self.subscribers
                        .iter()
                        .map(|s| {
                            Value::Map(vec![
                                entry("delivered", Value::from(s.delivered)),
                                entry("dropped", Value::from(s.dropped)),
                                entry("reordered", Value::from(s.reordered)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The bus could not be reached or lost a connection.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A socket failed mid-run.
    #[error("bench connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The subscribers never saw the warm-up event.
    #[error(
        "the subscribers never saw the warm-up event on {0}: is this the publish socket of the same bus?"
    )]
    NoWarmup(crate::ipc::Endpoint),
}

/// Offsets in the packed data, after the 4-entry map marker.
const P_AT: usize = 4;
const N_AT: usize = 11;
const T_AT: usize = 22;
const FIXED_DATA: usize = 37;

/// The body of event `n` of publisher `p`, sent `t` ns into the run.
fn template(tag: &str, size: usize) -> (Vec<u8>, usize) {
    let mut body = Vec::with_capacity(size.max(64));
    body.extend_from_slice(tag.as_bytes());
    body.extend_from_slice(b"\n\n");
    let data = body.len();
    let pad = size.saturating_sub(data + FIXED_DATA);
    body.extend_from_slice(
        b"\x84\xa1p\xce\0\0\0\0\xa1n\xcf\0\0\0\0\0\0\0\0\xa1t\xcf\0\0\0\0\0\0\0\0\xa1x\xc6",
    );
    body.extend_from_slice(&(pad as u32).to_be_bytes());
    body.resize(body.len() + pad, b'x');
    (body, data)
}

/// Reads `(p, n, t)` from a bench body, if it is one of this run's.
fn parse(body: &[u8], tag: &[u8]) -> Option<(usize, u64, u64)> {
    let data = body.strip_prefix(tag)?.strip_prefix(b"\n\n")?;
    let field = |at: usize, width: usize| -> Option<u64> {
        Some(
            data.get(at..at + width)?
                .iter()
                .fold(0, |acc, b| (acc << 8) | u64::from(*b)),
        )
    };
    if data.first() != Some(&0x84) {
        return None;
    }
    Some((field(P_AT, 4)? as usize, field(N_AT, 8)?, field(T_AT, 8)?))
}

/// Runs the load against the bus at `address`.
pub async fn run(address: &BusAddress, options: &BenchOptions) -> Result<BenchReport, BenchError> {
    let tag = format!("halite/bench/{}", std::process::id());
    let origin = Instant::now();
    let _stalled = {
        let mut held = Vec::new();
        for _ in 0..options.stalled {
            held.push(connect(&address.publish).await?);
        }
        held
    };
    let ready = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..options.subscribers {
        let stream = connect(&address.publish).await?;
        readers.push(tokio::spawn(subscribe(
            stream,
            tag.clone(),
            options.clone(),
            origin,
            ready.clone(),
        )));
    }
    // Warm up: wait until every subscriber is registered; this also finds the framing out.
    let mut warm = Publisher::connect(address, options.framing).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready.load(Ordering::Relaxed) < options.subscribers {
        if Instant::now() > deadline {
            return Err(BenchError::NoWarmup(address.publish.clone()));
        }
        warm.fire(Event::new(format!("{tag}/warmup"), Value::Map(Vec::new())).expect("valid"))
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let framing = warm.framing().unwrap_or(Framing::Bare);
    warm.close().await?;

    let (body, data_at) = template(&tag, options.size);
    let mut frame = Vec::new();
    wire::encode_frame(&body, framing, &mut frame);
    let body_at = frame.len() - body.len() + data_at;
    let per_publisher = options.count / options.publishers as u64;
    let extra = options.count % options.publishers as u64;
    let started = origin.elapsed();
    let mut senders = Vec::new();
    for p in 0..options.publishers {
        let count = per_publisher + u64::from((p as u64) < extra);
        let rate = options.rate.map(|r| r / options.publishers as f64);
        let stream = connect(&address.pull).await?;
        senders.push(tokio::spawn(publish(
            stream,
            frame.clone(),
            body_at,
            p,
            count,
            rate,
            origin,
        )));
    }
    for sender in senders {
        sender.await.expect("publisher task")?;
    }
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    let mut subscribers = Vec::new();
    let mut last = started;
    for reader in readers {
        let (report, histogram, last_seen) = reader.await.expect("subscriber task")?;
        latency.add(&histogram).expect("same histogram bounds");
        subscribers.push(report);
        last = last.max(last_seen);
    }
    let quantile = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(BenchReport {
        sent: options.count,
        frame_bytes: frame.len(),
        elapsed: last.saturating_sub(started),
        latency_us: [
            quantile(0.5),
            quantile(0.9),
            quantile(0.99),
            quantile(0.999),
            latency.max() as f64 / 1000.0,
        ],
        subscribers,
    })
}

/// Sends `count` events: flat out in batches of frames, or one at a time at `rate` per second.
async fn publish(
    mut stream: crate::ipc::Stream,
    frame: Vec<u8>,
    body_at: usize,
    p: usize,
    count: u64,
    rate: Option<f64>,
    origin: Instant,
) -> Result<(), BenchError> {
    const BATCH_BYTES: usize = 64 * 1024;
    let mut buffer = Vec::with_capacity(BATCH_BYTES + frame.len());
    let started = Instant::now();
    for n in 0..count {
        if let Some(rate) = rate {
            // The whole run's length was checked with the options.
            let due = crate::config::seconds(&Value::F64(n as f64 / rate))
                .map_or(started, |after| started + after);
            tokio::time::sleep_until(due.into()).await;
        }
        let at = buffer.len();
        buffer.extend_from_slice(&frame);
        let fields = &mut buffer[at + body_at..];
        fields[P_AT..P_AT + 4].copy_from_slice(&(p as u32).to_be_bytes());
        fields[N_AT..N_AT + 8].copy_from_slice(&n.to_be_bytes());
        let sent = origin.elapsed().as_nanos() as u64;
        fields[T_AT..T_AT + 8].copy_from_slice(&sent.to_be_bytes());
        if rate.is_some() || buffer.len() >= BATCH_BYTES || n + 1 == count {
            stream.write_all(&buffer).await?;
            buffer.clear();
        }
    }
    stream.flush().await?;
    Ok(())
}

/// Reads until every event arrived or none came for `options.idle`.
async fn subscribe(
    mut stream: crate::ipc::Stream,
    tag: String,
    options: BenchOptions,
    origin: Instant,
    ready: Arc<AtomicUsize>,
) -> Result<(SubscriberReport, Histogram<u64>, Duration), BenchError> {
    let mut codec = FrameCodec::new(crate::wire::DEFAULT_MAX_FRAME);
    let mut buffer = BytesMut::with_capacity(256 * 1024);
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    let mut highest: Vec<Option<u64>> = vec![None; options.publishers];
    let mut report = SubscriberReport::default();
    let warmup = format!("{tag}/warmup");
    let mut warmed = false;
    let mut last_seen = Duration::ZERO;
    let tag = tag.into_bytes();
    while report.delivered < options.count {
        let wait = if warmed {
            options.idle
        } else {
            Duration::from_secs(15)
        };
        match tokio::time::timeout(wait, stream.read_buf(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Err(err)) => return Err(err.into()),
            Ok(Ok(_)) => {}
        }
        while let Some(frame) = codec.decode(&mut buffer).map_err(std::io::Error::other)? {
            let Ok(frame) = frame else { continue };
            let body = frame.body();
            let Some((p, n, t)) = parse(&body, &tag) else {
                if !warmed && body.starts_with(warmup.as_bytes()) {
                    warmed = true;
                    ready.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            let now = origin.elapsed();
            last_seen = now;
            let _ = histogram.record((now.as_nanos() as u64).saturating_sub(t).max(1));
            report.delivered += 1;
            if let Some(slot) = highest.get_mut(p) {
                match *slot {
                    Some(high) if n < high => report.reordered += 1,
                    _ => *slot = Some(n),
                }
            }
        }
    }
    report.dropped = options.count.saturating_sub(report.delivered);
    Ok((report, histogram, last_seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_the_requested_size_and_parses_back() {
        let (mut body, data_at) = template("halite/bench/1", 100);
        assert_eq!(body.len(), 100);
        body[data_at + N_AT..data_at + N_AT + 8].copy_from_slice(&7u64.to_be_bytes());
        assert_eq!(parse(&body, b"halite/bench/1"), Some((0, 7, 0)));
        let decoded = wire::decode_body(&body).unwrap();
        assert_eq!(decoded.get("n").and_then(Value::as_u64), Some(7));
        assert_eq!(parse(&body, b"halite/bench/2"), None);
    }
}
