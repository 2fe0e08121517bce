//! `salt-api`: see [`halite::cli::api`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::api::main()
}
