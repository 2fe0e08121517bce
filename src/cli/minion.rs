//! `salt-minion`: the minion daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs};

/// The Salt minion daemon: runs the minion event bus, keeps a session with the master, runs the
/// jobs it sends and forwards fire_master events to it.
#[derive(Debug, Parser)]
#[command(name = "salt-minion", version, disable_version_flag = true, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Entry point of `salt-minion`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
    }
    super::daemon::main(Daemon::Minion, &args.common, &args.daemon)
}
