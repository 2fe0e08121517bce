//! The gate: connections that are not yet admitted (handshake, hello, the key decision), bounded
//! per address and in total.
//!
//! Nothing is held before a connection is accepted, so a silent peer cannot stop the accept loop.
//! An address with `link_unadmitted_per_address` connections waiting gets no more; when
//! `link_unadmitted_max` wait, one is evicted to let the new one in: from the network (IPv4 /24,
//! IPv6 /64) with the most connections waiting, its oldest still in a TLS handshake begun over
//! [`HANDSHAKE_GRACE`] ago (a real minion finishes within milliseconds); failing that, the
//! oldest connection of all. A flood from one network gives way first, and a minion in the
//! middle of its handshake is not pushed out by whatever arrives next.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock, which tests of the grace period can pause.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

/// `link_unadmitted_max`: connections that may wait for admission at once, from all addresses;
/// when full, the oldest is evicted.
const UNADMITTED_TOTAL: u64 = 512;

/// `link_unadmitted_per_address`: connections one address may have waiting for admission at
/// once; more are closed at once (raise it for many minions behind one NAT address).
const UNADMITTED_PER_ADDRESS: u64 = 32;

/// How long a handshake is left alone before it may give way to a new connection.
const HANDSHAKE_GRACE: Duration = Duration::from_millis(100);

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
    waiting: BTreeMap<u64, (IpAddr, CancellationToken, Instant)>,
    by_address: HashMap<IpAddr, usize>,
    by_network: HashMap<Network, usize>,
    /// The connections still in their TLS handshake, by network, oldest first.
    handshaking: HashMap<Network, BTreeSet<u64>>,
    evicted: u64,
    refused: u64,
    reported: Option<Instant>,
}

/// The network an address belongs to, for eviction: its IPv4 /24 or IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Network([u8; 8]);

impl Network {
    fn of(address: IpAddr) -> Self {
        let mut prefix = [0u8; 8];
        match address.to_canonical() {
            IpAddr::V4(v4) => prefix[..3].copy_from_slice(&v4.octets()[..3]),
            IpAddr::V6(v6) => prefix.copy_from_slice(&v6.octets()[..8]),
        }
        Self(prefix)
    }
}

impl Inner {
    fn remove(&mut self, serial: u64) -> Option<CancellationToken> {
        let (address, evicted, _) = self.waiting.remove(&serial)?;
        if let Some(count) = self.by_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.by_address.remove(&address);
            }
        }
        let network = Network::of(address);
        if let Some(count) = self.by_network.get_mut(&network) {
            *count -= 1;
            if *count == 0 {
                self.by_network.remove(&network);
            }
        }
        self.finish_handshake(address, serial);
        Some(evicted)
    }

    fn finish_handshake(&mut self, address: IpAddr, serial: u64) {
        let network = Network::of(address);
        if let Some(serials) = self.handshaking.get_mut(&network) {
            serials.remove(&serial);
            if serials.is_empty() {
                self.handshaking.remove(&network);
            }
        }
    }

    /// Who gives way when the gate is full: from the network with the most waiting, its oldest
    /// handshake begun over [`HANDSHAKE_GRACE`] ago; else the oldest connection of all.
    fn victim(&self) -> Option<u64> {
        self.handshaking
            .iter()
            .filter_map(|(network, serials)| {
                let oldest = *serials.first()?;
                let (_, _, since) = self.waiting.get(&oldest)?;
                (since.elapsed() >= HANDSHAKE_GRACE).then_some((network, oldest))
            })
            .max_by_key(|(network, _)| self.by_network.get(network).copied().unwrap_or(0))
            .map(|(_, oldest)| oldest)
            .or_else(|| self.waiting.keys().next().copied())
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
        // 0: no limit, as the options say.
        let count = |key, default| {
            config.get_u64(key, default).map(|n| match n {
                0 => usize::MAX,
                n => usize::try_from(n).unwrap_or(usize::MAX),
            })
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
            && let Some(victim) = inner.victim()
            && let Some(evicted) = inner.remove(victim)
        {
            evicted.cancel();
            inner.evicted += 1;
            inner.report(self.total, self.per_address);
        }
        inner.serial += 1;
        let serial = inner.serial;
        let evicted = CancellationToken::new();
        inner
            .waiting
            .insert(serial, (address, evicted.clone(), Instant::now()));
        *inner.by_address.entry(address).or_default() += 1;
        *inner.by_network.entry(Network::of(address)).or_default() += 1;
        inner
            .handshaking
            .entry(Network::of(address))
            .or_default()
            .insert(serial);
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

    /// The connection finished its TLS handshake: it gives way only after those still in theirs.
    pub fn handshake_done(&self) {
        let mut inner = self.gate.lock();
        if let Some(&(address, _, _)) = inner.waiting.get(&self.serial) {
            inner.finish_handshake(address, self.serial);
        }
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

    #[tokio::test(start_paused = true)]
    async fn a_full_gate_evicts_handshakes_of_the_busiest_network_first() {
        let gate = Gate::new(4, 4);
        let minion = gate.enter(IpAddr::from([192, 168, 1, 10])).unwrap();
        minion.handshake_done();
        let lone = gate.enter(IpAddr::from([172, 16, 0, 1])).unwrap();
        let flood: Vec<_> = (1..=2)
            .map(|n| gate.enter(IpAddr::from([10, 0, 0, n])).unwrap())
            .collect();
        tokio::time::advance(HANDSHAKE_GRACE - Duration::from_millis(1)).await;
        let victim = gate.lock().victim();
        assert_eq!(
            victim,
            Some(minion.serial),
            "within the grace period no handshake gives way, the oldest of all does"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let victim = gate.lock().victim();
        assert_eq!(
            victim,
            Some(flood[0].serial),
            "at its end, the flood's oldest"
        );
        let _next = gate.enter(IpAddr::from([10, 0, 0, 3])).unwrap();
        assert!(
            flood[0].evicted().is_cancelled(),
            "the busiest network's oldest gave way"
        );
        assert!(
            !minion.evicted().is_cancelled(),
            "a finished handshake stays"
        );
        assert!(!lone.evicted().is_cancelled());
    }

    /// Regression: `0`, documented as no limit, let one connection wait.
    #[test]
    fn zero_in_the_options_means_no_limit() {
        let dir = std::env::temp_dir().join(format!("halite-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("master"),
            "link_unadmitted_max: 0\nlink_unadmitted_per_address: 0\n",
        )
        .unwrap();
        let config = crate::config::Config::load(crate::config::Role::Master, Some(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        let gate = Gate::configured(&config.unwrap()).unwrap();
        let address = IpAddr::from([10, 0, 0, 1]);
        let tickets: Vec<_> = (0..2000).map(|_| gate.enter(address)).collect();
        assert!(tickets.iter().all(|ticket| {
            ticket
                .as_ref()
                .is_some_and(|ticket| !ticket.evicted().is_cancelled())
        }));
    }

    #[test]
    fn a_handshake_just_begun_is_not_pushed_out_by_the_next_arrival() {
        let gate = Gate::new(3, 3);
        let idle: Vec<_> = (1..=2)
            .map(|n| {
                let ticket = gate.enter(IpAddr::from([10, 0, 0, n])).unwrap();
                ticket.handshake_done();
                ticket
            })
            .collect();
        let minion = gate.enter(IpAddr::from([192, 168, 1, 10])).unwrap();
        let _next = gate.enter(IpAddr::from([10, 0, 0, 3])).unwrap();
        assert!(
            !minion.evicted().is_cancelled(),
            "its handshake is under way"
        );
        assert!(
            idle[0].evicted().is_cancelled(),
            "the oldest gave way instead"
        );
    }
}
