//! Flags every binary shares, spelled as Salt spells them.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};

use super::Generate;
use crate::config::{Config, Role};
use crate::output::outputter::{HighstateOptions, Indent, Outputter};
use crate::signature::Signature;

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

    #[command(flatten)]
    version: VersionArgs,
}

impl CommonArgs {
    /// What the binary `C` does instead of its work when asked: `--generate` or `-V`.
    pub fn preempt<C: clap::CommandFactory>(&self) -> Option<std::process::ExitCode> {
        super::preempt::<C>(self.generate, self.version.versions_report)
    }

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

/// `--version`, and `-V` for Salt's versions report (which takes Salt's `-V` from clap's
/// `--version`). Every command has them; a command using this sets `disable_version_flag`.
#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Print the version and exit
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// Print the versions of halite and the system, in Salt's report layout, and exit
    #[arg(short = 'V', long = "versions-report")]
    pub versions_report: bool,
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

/// Salt's `--no-parse`, for the commands that read a function's arguments.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// Keyword arguments (comma-separated names) whose values stay the text given instead of
    /// being read as YAML, e.g. --no-parse=password for password=0123
    #[arg(long = "no-parse", value_name = "NAME,...", env = "SALT_NO_PARSE")]
    no_parse: Option<String>,
}

impl ParseArgs {
    /// The function's arguments, split and read as Salt reads them.
    pub fn parse(&self, raw: &[String]) -> crate::salt_yaml::CliArgs {
        let names: Vec<&str> = self
            .no_parse
            .as_deref()
            .map(|names| names.split(',').map(str::trim).collect())
            .unwrap_or_default();
        crate::salt_yaml::parse_cli_args_no_parse(raw, &names)
    }
}

/// Flags of the commands that print a return value.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Outputter for the return: nested, json, yaml, txt, raw, quiet, highstate [default: the
    /// one the return names, else nested]
    #[arg(
        long = "out",
        visible_alias = "output",
        value_name = "OUTPUTTER",
        value_parser = Suggested(|| Outputter::names().collect()),
        hide_possible_values = true
    )]
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

    #[command(flatten)]
    destination: DestinationArgs,
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

    /// Whether to colour what the command prints on stdout (see [`wants_color`]).
    pub fn color(&self, config: &Config) -> anyhow::Result<bool> {
        wants_color(self.force_color, self.no_color, config)
    }

    /// Where and how the returns print, checked once: the outputter choice, colour, indent,
    /// and the output file opened.
    pub fn printer(&self, config: &Config) -> anyhow::Result<Printer> {
        Ok(Printer {
            choice: self.choice(config)?,
            color: self
                .destination
                .color(self.force_color, self.no_color, config)?,
            indent: self.destination.indent(config)?,
            sink: self.destination.open()?,
        })
    }
}

/// Where returns print and how json and yaml indent them: Salt's `--out-file`,
/// `--out-file-append` and `--out-indent`. Only the returns go to the file; job ids, prompts
/// and errors stay on the terminal, as in Salt.
#[derive(Debug, Clone, Args)]
pub struct DestinationArgs {
    /// Indent json and yaml output N spaces a level; a negative N prints json on one line and
    /// yaml in flow style [default: the config's output_indent, else json 4, yaml 2]
    #[arg(
        long = "out-indent",
        visible_alias = "output-indent",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub out_indent: Option<i64>,

    /// Write the returns to FILE instead of stdout, emptying it first (uncoloured unless
    /// --force-color)
    #[arg(long = "out-file", visible_alias = "output-file", value_name = "FILE")]
    pub out_file: Option<PathBuf>,

    /// With --out-file: add to the end of FILE instead of emptying it
    #[arg(
        long = "out-file-append",
        visible_alias = "output-file-append",
        requires = "out_file"
    )]
    pub out_file_append: bool,
}

impl DestinationArgs {
    /// Whether to colour the returns, given `--force-color` and `--no-color`: as
    /// [`wants_color`] says, but never in a file unless forced.
    pub fn color(&self, force: bool, never: bool, config: &Config) -> anyhow::Result<bool> {
        wants_color(force, never || self.out_file.is_some(), config)
    }

    /// The indent: `--out-indent`, else the config's `output_indent` (a number, or `pretty`
    /// for json sorted and indented 4), else each outputter's own.
    pub fn indent(&self, config: &Config) -> anyhow::Result<Indent> {
        if let Some(n) = self.out_indent {
            return anyhow::Context::with_context(Indent::from_number(n), || {
                format!("--out-indent {n}")
            });
        }
        match config.get("output_indent") {
            None | Some(crate::event::Value::Nil) => Ok(Indent::Default),
            Some(value) if value.as_str() == Some("pretty") => Ok(Indent::Pretty),
            Some(value) => match value.as_i64().map(Indent::from_number) {
                Some(Ok(indent)) => Ok(indent),
                _ => Err(crate::config::ConfigError::BadValue {
                    key: "output_indent".to_owned(),
                    value: value.to_string(),
                    expected: "expected a number of spaces up to 64, or pretty",
                }
                .into()),
            },
        }
    }

    /// Opens the output file, emptying it unless appending, or stdout without one. Done before
    /// any work, so that a path that cannot be written costs nothing.
    pub fn open(&self) -> anyhow::Result<Sink> {
        let Some(path) = &self.out_file else {
            return Ok(Sink::Stdout);
        };
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if self.out_file_append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        match options.open(path) {
            Ok(file) => Ok(Sink::File {
                file,
                path: path.clone(),
            }),
            Err(err) => Err(super::output_error(&path.display().to_string(), &err).into()),
        }
    }
}

/// Where the returns go: stdout, or the `--out-file`.
#[derive(Debug)]
pub enum Sink {
    /// The terminal or pipe.
    Stdout,
    /// The output file, opened for writing or appending, and its path for errors.
    File { file: std::fs::File, path: PathBuf },
}

impl Sink {
    /// Writes `text` whole, at once, and flushes it.
    pub fn write(&mut self, text: &str) -> std::io::Result<()> {
        match self {
            Sink::Stdout => super::print(text),
            Sink::File { file, path } => std::io::Write::write_all(file, text.as_bytes())
                .map_err(|err| super::output_error(&path.display().to_string(), &err)),
        }
    }
}

/// Prints returns as the output flags say (see [`OutputArgs::printer`]).
#[derive(Debug)]
pub struct Printer {
    choice: OutputChoice,
    color: bool,
    indent: Indent,
    sink: Sink,
}

impl Printer {
    /// The outputter for a return that names `named` or none (see [`OutputChoice`]).
    pub fn outputter(&self, named: Option<&str>) -> Outputter {
        self.choice.outputter(named)
    }

    /// Renders `value` with `outputter` and writes it out.
    pub fn print(
        &mut self,
        outputter: Outputter,
        value: &crate::event::Value,
    ) -> std::io::Result<()> {
        let text = outputter.render_with(value, self.color, 0, self.indent);
        self.sink.write(&text)
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

    /// Log file path [default: the config's log_file (salt-api: api_logfile), or
    /// /var/log/salt/<daemon>]
    #[arg(long = "log-file", value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Log level of the log file [default: the config's log_level_logfile, or warning]
    #[arg(long = "log-file-level", value_name = "LEVEL")]
    pub log_file_level: Option<String>,

    /// Write the process id to this file [default: the config's pidfile (salt-api:
    /// api_pidfile)]
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Check the configuration as a start would (YAML, includes, option values, log levels, the
    /// user, TLS files), and the reactor's files, and exit: 0 when it is sound, 1 with each problem
    /// on stderr (unknown options and includes that match nothing count)
    #[arg(long = "check-config")]
    pub check_config: bool,
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

/// A value any word parses as, so that an unknown one gets the command's own message (Salt's),
/// with the usual names as its possible values, for the shell completions: outputters for
/// `--out`, key states for `salt-key -l`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Suggested(pub fn() -> Vec<&'static str>);

impl TypedValueParser for Suggested {
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
        Some(Box::new((self.0)().into_iter().map(PossibleValue::new)))
    }
}
