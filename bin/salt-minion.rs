//! `salt-minion`: see [`halite::cli::minion`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::minion::main()
}
