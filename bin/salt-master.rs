//! `salt-master`: see [`halite::cli::master`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::master::main()
}
