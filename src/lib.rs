//! halite: SaltStack's local event bus and the command-line tools around it, in Rust.
//!
//! halite speaks Salt's IPC event protocol byte for byte, so its binaries (`salt-master`,
//! `salt-minion`, `salt-call`, `salt-run`, `salt`, `salt-key`) work against real Salt daemons'
//! buses and real Salt's Python event library works against halite's daemons. Its masters and
//! minions talk over their own authenticated, encrypted link.
//!
//! # Layers
//!
//! From the bottom up. A module uses only modules of the layers below its own, never one of its
//! own layer or above (a test reads this list and every `crate::` path to check it), so a path
//! tells where a behaviour lives and the client library never depends on a daemon.
//!
//! 1. [`py`]: Python semantics, the one place halite imitates Python: `repr`/`str`/truthiness/
//!    ordering of msgpack values, Python-exact JSON, `fnmatch`, `re` on a linear-time engine.
//!    At the bottom because Salt's own rules (tag matching, targets, autosign) are built on it.
//! 2. [`event`]: the domain: an [`event::Event`] is a tag plus msgpack-shaped data; `state.event`'s
//!    tag matching; `_stamp`, tags and jids as Salt writes them.
//! 3. [`salt_yaml`], [`wire`], [`ipc`], [`services`], [`children`]: YAML with Salt's scalar
//!    rules; Salt's IPC framing and frame limit (nothing else knows bytes); the sockets a bus
//!    lives on and a bus's address; the tracked services a daemon runs and the order they stop
//!    in; the commands it starts, restarted with a growing delay and killed with it.
//! 4. [`config`], [`signature`]: Salt-compatible master and minion configuration, defaults and
//!    paths; knows no bus. A function's signature and binding command-line arguments to it as
//!    Python would, shared by the execution, runner and wheel registries.
//! 5. [`fileserver`]: the files under `file_roots`, `salt://` URLs and the seam a minion's file
//!    cache reads through, refusing every path that leaves its root.
//! 6. [`proto`]: Salt's payloads as types: what local clients send the master, job loads, link
//!    messages (the file server's requests and replies among them), returns, and the events
//!    halite fires under Salt's tags, each in Salt's field order.
//! 7. [`keys`], [`target`], [`output`]: key pairs and the key store with Salt's admission rules;
//!    Salt's targets; Salt's outputters and `state.event`'s lines.
//! 8. [`link`], [`bus`], [`client`]: the master–minion link (sessions behind an interface, TLS
//!    1.3 with pinned raw public keys); the event-bus server with bounded per-subscriber queues;
//!    what every command uses to fire, listen, reconnect and ask the master.
//! 9. [`render`], [`returners`], [`bench`], [`beacons`], [`schedule`], [`cluster`]: Jinja+YAML
//!    SLS rendering; job stores (Salt's local job cache); the bus load generator; the beacon
//!    modules and the minion service that runs them; the minion's schedule: its jobs read, when
//!    each is due, and the changes `schedule.*` asks for (the service that runs the jobs is the
//!    minion's); masters clustered on NATS JetStream: their bus shared through a stream, and
//!    replayed from it.
//! 10. [`states`], [`pillar`]: the state compiler and runtime with the state modules; pillar
//!     compiled from `pillar_roots` for one minion.
//! 11. [`runners`]: runner functions for `salt-run` and reactions, announced with Salt's events.
//! 12. [`functions`]: the execution functions minions run, `state.*` and `pillar.*` among them
//!     (`sys.list_runners` reads the runners' registry).
//! 13. [`wheel`]: the `key` wheel functions.
//! 14. [`reactor`]: tag globs to SLS files to actions, in a bounded worker pool.
//! 15. [`master`], [`minion`], [`api`]: the daemons, each a list of [`services`] that stop in
//!     order, and `salt-api`, a client of the master serving Salt's REST API.
//! 16. [`cli`]: one module per binary: arguments, `run()`, and the one place errors are reported.
//!
//! Public are the modules the binaries, the client library's users and the integration tests
//! need; the daemons, Python semantics, YAML, rendering and the job store are the crate's own.

pub(crate) mod api;
pub mod beacons;
pub(crate) mod bench;
pub mod bus;
pub(crate) mod children;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod event;
pub mod fileserver;
pub mod functions;
pub mod ipc;
pub mod keys;
pub mod link;
pub(crate) mod master;
pub(crate) mod minion;
pub mod output;
pub mod pillar;
pub mod proto;
pub(crate) mod py;
pub mod reactor;
pub(crate) mod render;
pub mod returners;
pub mod runners;
pub(crate) mod salt_yaml;
pub mod schedule;
pub(crate) mod services;
pub mod signature;
pub mod states;
pub(crate) mod target;
pub mod wheel;
pub mod wire;
