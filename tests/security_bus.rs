//! Attacks from the security sweep, each refused: local bus clients, minion events and the reactor.
