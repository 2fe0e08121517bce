//! `salt-api`: the REST API daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs};

/// Salt's REST API (rest_cherrypy) and its event stream, served from the master's host: reads
/// the rest_cherrypy block of the master config; with none, plain HTTP on 127.0.0.1:8000.
#[derive(Debug, Parser)]
#[command(name = "salt-api", version, disable_version_flag = true, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Entry point of `salt-api`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = args.common.preempt::<Args>() {
        return exit;
    }
    super::daemon::main(Daemon::Api, &args.common, &args.daemon)
}
