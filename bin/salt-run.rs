//! `salt-run`: see [`halite::cli::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::run::main()
}
