//! The gate: connections that are not yet admitted (handshake, hello, the key decision), bounded
//! per address and in total.
//!
//! Nothing is held before a connection is accepted, so a silent peer cannot stop the accept loop.
//! An address with `link_unadmitted_per_address` connections waiting gets no more; when
//! `link_unadmitted_max` wait, the oldest is evicted to let the new one in. A real minion says who
//! it is within milliseconds, so under a flood from many addresses the ones evicted are the idle
//! ones.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

/// `link_unadmitted_max`: connections that may wait for admission at once, from all addresses;
/// when full, the oldest is evicted.
const UNADMITTED_TOTAL: u64 = 512;

/// `link_unadmitted_per_address`: connections one address may have waiting for admission at
/// once; more are closed at once (raise it for many minions behind one NAT address).
const UNADMITTED_PER_ADDRESS: u64 = 32;

/// How often a full gate is reported in the log, at most.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Connections waiting for admission.
#[derive(Debug)]
pub struct Gate {
    total: usize,
    per_address: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    serial: u64,
    /// By arrival: the first is the oldest.
    waiting: BTreeMap<u64, (IpAddr, CancellationToken)>,
    by_address: HashMap<IpAddr, usize>,
    evicted: u64,
    refused: u64,
    reported: Option<Instant>,
}

impl Inner {
    fn remove(&mut self, serial: u64) -> Option<CancellationToken> {
        let (address, evicted) = self.waiting.remove(&serial)?;
        if let Some(count) = self.by_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.by_address.remove(&address);
            }
        }
        Some(evicted)
    }

    /// Logs what the gate turned away, at most every [`REPORT_EVERY`].
    fn report(&mut self, total: usize, per_address: usize) {
        if self.reported.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
            return;
        }
        self.reported = Some(Instant::now());
        tracing::warn!(
            "minion port under pressure: closed {} connections of addresses with {per_address} waiting and evicted {} oldest waiting ones ({total} may wait for admission)",
            self.refused,
            self.evicted
        );
        self.refused = 0;
        self.evicted = 0;
    }
}

impl Gate {
    /// The master's gate: `link_unadmitted_max` and `link_unadmitted_per_address`.
    pub fn configured(config: &crate::config::Config) -> Result<Arc<Self>, ConfigError> {
        let count = |key, default| {
            config
                .get_u64(key, default)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(Self::new(
            count("link_unadmitted_max", UNADMITTED_TOTAL)?,
            count("link_unadmitted_per_address", UNADMITTED_PER_ADDRESS)?,
        ))
    }

    /// A gate letting `total` connections wait, `per_address` of them from one address.
    pub fn new(total: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_address: per_address.max(1),
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("gate lock")
    }

    /// A place for a new connection from `address`, or `None` when that address already has as
    /// many waiting as it may. When the gate is full, the oldest waiting connection is evicted.
    pub fn enter(self: &Arc<Self>, address: IpAddr) -> Option<Ticket> {
        let mut inner = self.lock();
        if inner.by_address.get(&address).copied().unwrap_or(0) >= self.per_address {
            inner.refused += 1;
            inner.report(self.total, self.per_address);
            return None;
        }
        if inner.waiting.len() >= self.total
            && let Some(oldest) = inner.waiting.keys().next().copied()
            && let Some(evicted) = inner.remove(oldest)
        {
            evicted.cancel();
            inner.evicted += 1;
            inner.report(self.total, self.per_address);
        }
        inner.serial += 1;
        let serial = inner.serial;
        let evicted = CancellationToken::new();
        inner.waiting.insert(serial, (address, evicted.clone()));
        *inner.by_address.entry(address).or_default() += 1;
        Some(Ticket {
            gate: self.clone(),
            serial,
            evicted,
        })
    }
}

/// A connection's place at the gate, given back when dropped.
pub struct Ticket {
    gate: Arc<Gate>,
    serial: u64,
    evicted: CancellationToken,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the gate: it lists every waiting connection.
        f.debug_struct("Ticket")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl Ticket {
    /// Cancelled when the gate evicts this connection to make room for a newer one.
    pub fn evicted(&self) -> CancellationToken {
        self.evicted.clone()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.lock().remove(self.serial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_a_full_gate_evicts_the_oldest() {
        let gate = Gate::new(3, 2);
        let (a, b, c) = (
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 2]),
            IpAddr::from([10, 0, 0, 3]),
        );
        let first = gate.enter(a).unwrap();
        let _second = gate.enter(a).unwrap();
        assert!(
            gate.enter(a).is_none(),
            "a third from one address waits for none"
        );
        let _third = gate.enter(b).unwrap();
        assert!(!first.evicted().is_cancelled());
        let _fourth = gate.enter(c).unwrap();
        assert!(first.evicted().is_cancelled(), "the oldest gave way");
        assert_eq!(gate.lock().waiting.len(), 3);
        drop(first);
        assert_eq!(
            gate.lock().waiting.len(),
            3,
            "an evicted ticket was already counted out"
        );
        assert!(gate.enter(a).is_some(), "a's evicted place is free again");
    }
}
