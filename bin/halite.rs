//! `halite`: every command in one binary; see [`halite::cli::multicall`].

use std::process::ExitCode;

fn main() -> ExitCode {
    halite::cli::multicall::main()
}
