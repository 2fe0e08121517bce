//! `salt-master`: the master daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs};

/// The Salt master daemon: runs the master event bus, admits minions by key, publishes jobs and
/// collects their returns.
#[derive(Debug, Parser)]
#[command(name = "salt-master", version, disable_version_flag = true, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Entry point of `salt-master`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
    }
    super::daemon::main(Daemon::Master, &args.common, &args.daemon)
}
