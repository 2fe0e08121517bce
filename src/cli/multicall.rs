//! `halite`: every command in one binary, which runs the one it is called by — the package
//! installs it once and links Salt's command names to it, as BusyBox does. The daemons hold
//! nearly all of the library, so one binary weighs what one daemon does instead of seven.

use std::path::Path;
use std::process::ExitCode;

/// A command's entry point.
type Main = fn() -> ExitCode;

/// The commands by the names they answer to.
const COMMANDS: [(&str, Main); 7] = [
    ("salt-master", super::master::main),
    ("salt-minion", super::minion::main),
    ("salt-api", super::api::main),
    ("salt", super::salt::main),
    ("salt-call", super::call::main),
    ("salt-run", super::run::main),
    ("salt-key", super::key::main),
];

/// Entry point of `halite`: runs the command named by how it was called (`argv[0]`).
pub fn main() -> ExitCode {
    let called = std::env::args_os()
        .next()
        .and_then(|arg0| Some(Path::new(&arg0).file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    match COMMANDS.iter().find(|(name, _)| *name == called) {
        Some((_, command)) => command(),
        None => {
            let names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
            // Nothing more can be said if stderr is gone; the exit code still says it.
            let _ = super::print_err(&format!(
                "halite runs the command it is called as: link it as one of {} (ln -s halite /usr/bin/salt-run) and run that name",
                names.join(", ")
            ));
            ExitCode::from(2)
        }
    }
}
