//! halite: SaltStack's local event bus and the command-line tools around it, in Rust.
//!
//! halite speaks Salt's IPC event protocol byte for byte, so its binaries (`salt-master`,
//! `salt-minion`, `salt-call`, `salt-run`, `salt`, `salt-key`) work against real Salt daemons'
//! buses and real Salt's Python event library works against halite's daemons. Its masters and
//! minions talk over their own authenticated, encrypted link.
//!
//! # Layout
//!
//! - [`event`]: the domain: an [`event::Event`] is a tag plus msgpack-shaped data; tag matching
//!   with Salt's match types; `_stamp`, tags and jids as Salt writes them.
//! - [`wire`]: Salt's IPC framing (bare msgpack maps and length-prefixed), msgpack bytes to and
//!   from events; nothing else in the crate knows bytes.
//! - [`ipc`]: the sockets a bus lives on: Unix sockets or loopback TCP.
//! - [`bench`]: a load generator and reference relay for any bus speaking Salt's protocol.
//! - [`bus`]: the event-bus server: publish and pull endpoints, fan-out to bounded
//!   per-subscriber queues.
//! - [`client`]: what every command uses: connect to a bus, fire, listen, reconnect, and find out
//!   which framing a pull socket accepts.
//! - [`config`]: Salt-compatible master and minion configuration files, defaults and paths.
//! - [`salt_yaml`]: YAML with Salt's scalar rules, for command-line arguments and config files.
//! - [`output`]: Salt's outputters and `state.event`'s line format.
//! - [`keys`]: key pairs and the master's key store, in Salt's layout, with Salt's admission
//!   rules.
//! - [`link`]: the master–minion link: sessions of msgpack messages behind an interface, over
//!   TLS 1.3 with pinned raw public keys.
//! - [`target`]: Salt's glob, pcre, list and grain targets.
//! - [`functions`]: the execution functions minions run (`test.*`, `cmd.*`, `grains.*`, …).
//! - [`master`]: the master daemon: sessions, publishing, returns, the job cache, the local
//!   request socket, the `jobs` runners.
//! - [`minion`]: the minion daemon: its own bus, its session with the master, jobs, and the
//!   `fire_master` relay.
//! - [`runners`]: runner functions (`event.send`, `jobs.*`, `http.query`, …) for `salt-run` and
//!   reactions, announced with Salt's `salt/run/…` events.
//! - [`wheel`]: the `key` wheel functions reactions call.
//! - [`reactor`]: tag globs to Jinja+YAML SLS files to actions, in a bounded worker pool.
//! - [`cli`]: one module per binary: arguments, `run()`, and the one place errors are reported.

pub mod bench;
pub mod bus;
pub mod cli;
pub mod client;
pub mod config;
pub mod event;
pub mod functions;
pub mod ipc;
pub mod keys;
pub mod link;
pub mod master;
pub mod minion;
pub mod output;
pub mod py;
pub mod reactor;
pub mod runners;
pub mod salt_yaml;
pub mod target;
pub mod wheel;
pub mod wire;
