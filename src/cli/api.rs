//! `salt-api`: the REST API daemon.

use std::process::ExitCode;

use clap::Parser;

use super::daemon::Daemon;
use super::{CommonArgs, DaemonArgs};

/// Salt's REST API (rest_cherrypy) and its event stream, served from the master's host.
///
/// salt-api reads the rest_cherrypy block of the master config (with none, plain HTTP on
/// 127.0.0.1:8000), authenticates users by eauth, runs their local, runner and wheel calls
/// through the master, and streams the master's events. It runs in the foreground unless -d is
/// given.
#[derive(Debug, Parser)]
#[command(name = "salt-api", version, disable_version_flag = true)]
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
