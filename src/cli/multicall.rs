//! `halite`: every command in one binary, which runs the one it is called by — the package
//! installs it once and links Salt's command names to it, as BusyBox does. The daemons hold
//! nearly all of the library, so one binary weighs what one daemon does instead of seven.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

/// A command's entry point.
type Main = fn() -> ExitCode;

/// A command's clap definition, for its one-line description.
type Definition = fn() -> clap::Command;

/// The commands by the names they answer to.
const COMMANDS: [(&str, Main, Definition); 7] = [
    (
        "salt-master",
        super::master::main,
        super::master::Args::command,
    ),
    (
        "salt-minion",
        super::minion::main,
        super::minion::Args::command,
    ),
    ("salt-api", super::api::main, super::api::Args::command),
    ("salt", super::salt::main, super::salt::Args::command),
    ("salt-call", super::call::main, super::call::Args::command),
    ("salt-run", super::run::main, super::run::Args::command),
    ("salt-key", super::key::main, super::key::Args::command),
];

/// Entry point of `halite`: runs the command named by how it was called (`argv[0]`); called by
/// another name, prints what it is for `--help` and `--version`, and says how to use it.
pub fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let called = args
        .next()
        .and_then(|arg0| Some(Path::new(&arg0).file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    if let Some((_, command, _)) = COMMANDS.iter().find(|(name, ..)| *name == called) {
        return command();
    }
    let names: Vec<&str> = COMMANDS.iter().map(|(name, ..)| *name).collect();
    let version = format!("halite {}", env!("CARGO_PKG_VERSION"));
    // Nothing more can be said if stdout or stderr is gone; the exit code still says it.
    match args.next().as_ref().and_then(|arg| arg.to_str()) {
        Some("-h" | "--help") => {
            let _ = super::print(help(&version));
            ExitCode::SUCCESS
        }
        Some("--version") => {
            let _ = super::print(format!("{version}\n"));
            ExitCode::SUCCESS
        }
        _ => {
            let _ = super::print_err(&format!(
                "halite runs the command it is called as: link it as one of {} (ln -s halite /usr/bin/salt-run) and run that name; halite --help says more",
                names.join(", ")
            ));
            ExitCode::from(2)
        }
    }
}

/// `halite --help`: what the binary is, the names it answers to with what each does, and how
/// to call one.
fn help(version: &str) -> String {
    let mut text = format!(
        "{version}: SaltStack's daemons and commands rebuilt in Rust, all seven in this one binary.\n\n\
         It runs the command it is called as: the package links each name below to it\n\
         (/usr/bin/salt-run -> halite); elsewhere link one yourself (ln -s halite salt-run).\n\
         Each command has its own --help.\n\nCommands:\n"
    );
    let width = COMMANDS
        .iter()
        .map(|(name, ..)| name.len())
        .max()
        .unwrap_or(0);
    for (name, _, definition) in COMMANDS {
        let about = definition()
            .get_about()
            .map(|about| about.to_string())
            .unwrap_or_default();
        text.push_str(&format!("  {name:width$}  {about}\n"));
    }
    text.push_str(
        "\nOptions (as halite):\n  -h, --help     Print this help\n      --version  Print the version\n",
    );
    text
}
