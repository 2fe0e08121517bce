//! Flags every binary shares, spelled as Salt spells them.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};

use super::Generate;
use crate::config::{Config, Role};
use crate::functions::signature::Signature;
use crate::output::outputter::{HighstateOptions, Outputter};

/// Flags of every command.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Directory holding the `master` / `minion` config files [default: /etc/salt]
    #[arg(
        short = 'c',
        long = "config-dir",
        value_name = "DIR",
        env = "SALT_CONFIG_DIR"
    )]
    pub config_dir: Option<PathBuf>,

    /// Console log level: quiet, critical, error, warning, info, debug, trace, garbage, all
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Write a man page or shell completion script to stdout and exit
    #[arg(long, value_name = "WHAT", hide = true)]
    pub generate: Option<Generate>,
}

impl CommonArgs {
    /// Loads the configuration these flags point at.
    pub fn load(&self, role: Role) -> anyhow::Result<Config> {
        Ok(Config::load(role, self.config_dir.as_deref())?)
    }

    /// What a client command does first: console logging at `-l` (default warning), then the
    /// configuration.
    pub fn client_setup(&self, role: Role) -> anyhow::Result<Config> {
        let console = super::logging::level(self.log_level.as_deref().unwrap_or("warning"))?;
        super::logging::init(console)?;
        let config = self.load(role)?;
        // A daemon that switches to `user` listens as that user in tcp mode: its ports are
        // trusted too.
        if let Some(name) = config.get_str("user")?
            && let Ok(Some(user)) = nix::unistd::User::from_name(name)
        {
            crate::ipc::trust_daemon_user(user.uid.as_raw());
        }
        Ok(config)
    }
}

/// Where returns go besides the master: Salt's `--return`, `--return_config` and
/// `--return_kwargs`.
#[derive(Debug, Clone, Args)]
pub struct ReturnArgs {
    /// Also hand each return to these returners (comma-separated), e.g. mysql,rawfile_json
    #[arg(long = "return", value_name = "RETURNER")]
    pub returners: Option<String>,

    /// The profile the returners read their options under: <PROFILE>.<returner>.<option>
    #[arg(long = "return_config", value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Options over the returners' own, a YAML map, e.g. '{db: jobs}'
    #[arg(long = "return_kwargs", value_name = "YAML")]
    pub kwargs: Option<String>,
}

impl ReturnArgs {
    /// The returners named, each checked to exist.
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let names = self
            .returners
            .as_deref()
            .map(|names| crate::returners::listed(&crate::event::Value::from(names)))
            .unwrap_or_default();
        for name in &names {
            crate::returners::module(name)?;
        }
        Ok(names)
    }

    /// `--return_config`, as the load carries it.
    pub fn profile(&self) -> Option<crate::event::Value> {
        self.profile.as_deref().map(crate::event::Value::from)
    }

    /// `--return_kwargs`, read as YAML as Salt reads it; it must be a map.
    pub fn kwargs(&self) -> anyhow::Result<Option<crate::event::Value>> {
        let Some(text) = &self.kwargs else {
            return Ok(None);
        };
        match crate::salt_yaml::load(text) {
            Ok(map @ crate::event::Value::Map(_)) => Ok(Some(map)),
            _ => anyhow::bail!(
                "--return_kwargs must be a YAML map such as '{{db: jobs}}', not {text:?}"
            ),
        }
    }
}

/// Flags of the commands that print a return value.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Outputter for the return: nested, json, yaml, txt, raw, quiet, highstate [default: the
    /// one the return names, else nested]
    #[arg(long = "out", visible_alias = "output", value_name = "OUTPUTTER")]
    pub out: Option<String>,

    /// Never colour the output
    #[arg(long = "no-color", visible_alias = "no-colour")]
    pub no_color: bool,

    /// Colour the output even when it is not a terminal
    #[arg(long = "force-color", visible_alias = "force-colour")]
    pub force_color: bool,

    /// How the highstate outputter shows each state: full, terse, mixed or changes (each
    /// optionally with _id) [default: the config's state_output, full]
    #[arg(
        long = "state-output",
        visible_alias = "state_output",
        value_name = "MODE"
    )]
    pub state_output: Option<String>,

    /// Whether the highstate outputter shows states that succeeded without changes [default:
    /// the config's state_verbose, True]
    #[arg(
        long = "state-verbose",
        visible_alias = "state_verbose",
        value_name = "BOOL",
        value_parser = ["True", "true", "False", "false"]
    )]
    pub state_verbose: Option<String>,
}

impl OutputArgs {
    /// The outputter choice these flags and `config` make, checked once.
    pub fn choice(&self, config: &Config) -> anyhow::Result<OutputChoice> {
        let cli = self.out.as_deref().map(str::parse).transpose()?;
        let mut highstate = HighstateOptions::from_config(config)?;
        if let Some(state_output) = &self.state_output {
            highstate.set_state_output(state_output);
        }
        if let Some(verbose) = &self.state_verbose {
            highstate.verbose = verbose.eq_ignore_ascii_case("true");
        }
        Ok(OutputChoice { cli, highstate })
    }

    /// Whether to colour the output (see [`wants_color`]).
    pub fn color(&self, config: &Config) -> anyhow::Result<bool> {
        wants_color(self.force_color, self.no_color, config)
    }
}

/// Whether to colour: as the flags say when given; otherwise not when `NO_COLOR` is set to
/// anything (no-color.org) or the config says `color: False`, as Salt's option; otherwise only
/// on a terminal.
pub(crate) fn wants_color(force: bool, never: bool, config: &Config) -> anyhow::Result<bool> {
    // Read first, so that a bad value is refused whatever the flags say.
    let configured = config.get_bool("color", true)?;
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    if force {
        return Ok(true);
    }
    if never || no_color_env || !configured {
        return Ok(false);
    }
    Ok(std::io::stdout().is_terminal())
}

/// `--out` and the highstate outputter's options, to pick the outputter of each return.
#[derive(Debug, Clone, Copy)]
pub struct OutputChoice {
    cli: Option<Outputter>,
    highstate: HighstateOptions,
}

impl OutputChoice {
    /// The outputter for a return that names `named` (its `out`) or none, as Salt picks it.
    pub fn outputter(&self, named: Option<&str>) -> Outputter {
        Outputter::for_return(self.cli, named, self.highstate)
    }
}

/// Flags of the daemons.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Run in the background
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,

    /// Log file path [default: the config's log_file, /var/log/salt/<daemon>]
    #[arg(long = "log-file", value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Log level of the log file [default: the config's log_level_logfile, or warning]
    #[arg(long = "log-file-level", value_name = "LEVEL")]
    pub log_file_level: Option<String>,

    /// Write the process id to this file [default: the config's pidfile]
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
}

/// The FUNCTION argument of `salt-run` and `salt-call`, over the functions the command knows
/// (its registry's and its own). Any name parses, so an unknown one gets the command's own
/// "is not available" and Salt's exit status rather than clap's error; the names known are its
/// possible values, for the shell completions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FunctionName(pub fn() -> Vec<&'static Signature>);

impl FunctionName {
    /// The names known, in order.
    pub fn names(self) -> Vec<&'static str> {
        (self.0)().iter().map(|signature| signature.name).collect()
    }

    /// The argument's help: `lead`, then every name ("a, b or c").
    pub fn help(self, lead: &str) -> String {
        let names = self.names();
        match names.split_last() {
            Some((last, [])) => format!("{lead}: {last}"),
            Some((last, rest)) => format!("{lead}: {} or {last}", rest.join(", ")),
            None => lead.to_owned(),
        }
    }
}

impl TypedValueParser for FunctionName {
    type Value = String;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(command, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new((self.0)().into_iter().map(|signature| {
            PossibleValue::new(signature.name).help(signature.summary)
        })))
    }
}
