//! `salt-call`: see [`halite::cli::call`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::call::main()
}
