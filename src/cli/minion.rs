//! `salt-minion`: the minion daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs};

/// The Salt minion daemon: keeps a session with the master and runs the jobs it sends.
///
/// salt-minion runs the minion's event bus, connects to its master with its key pair, runs the
/// jobs the master publishes and returns their results, fires fire_master events to it, and
/// runs its schedule and beacons. It runs in the foreground unless -d is given.
#[derive(Debug, Parser)]
#[command(name = "salt-minion", version, disable_version_flag = true)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    daemon: DaemonArgs,

    /// Run N minions in this process, to load a master: ids <id>-0 to <id>-<N-1>, each with its
    /// own key (in <pki_dir>/swarm/), session and grains, answering jobs; no event bus,
    /// beacons, schedule or reactor
    #[arg(long, value_name = "N")]
    swarm: Option<std::num::NonZeroUsize>,
}

/// Entry point of `salt-minion`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
    }
    super::daemon::main(
        Daemon::Minion { swarm: args.swarm },
        &args.common,
        &args.daemon,
    )
}
