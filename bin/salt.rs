//! `salt`: see [`halite::cli::salt`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::salt::main()
}
