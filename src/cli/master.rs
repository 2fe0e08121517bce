//! `salt-master`: the master daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs, generate};

/// The Salt master daemon: runs the master event bus, admits minions by key, publishes jobs and
/// collects their returns.
#[derive(Debug, Parser)]
#[command(name = "salt-master", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Entry point of `salt-master`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = args.common.generate {
        return generate::<Args>(what);
    }
    super::daemon::main(Daemon::Master, &args.common, &args.daemon)
}
