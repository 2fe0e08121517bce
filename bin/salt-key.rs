//! `salt-key`: see [`halite::cli::key`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::key::main()
}
