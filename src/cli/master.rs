//! `salt-master`: the master daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs};

/// The Salt master daemon: admits minions by key, publishes jobs and collects their returns.
///
/// salt-master runs the master's event bus, accepts minion sessions whose keys are accepted,
/// publishes the jobs salt and the API send, stores the returns in the job cache and runs the
/// reactor. It runs in the foreground unless -d is given.
#[derive(Debug, Parser)]
#[command(name = "salt-master", version, disable_version_flag = true)]
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
