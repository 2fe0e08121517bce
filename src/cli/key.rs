//! `salt-key`: list, accept, reject and delete minion keys in the master's `pki_dir`, with
//! Salt's rules, prompts and output, firing `salt/key` on the master's bus for each change; and
//! `--gen-keys`, a key pair made beforehand for a minion installed unattended.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use super::args::Sink;
use super::{Exit, Generate, Runtime, execute, logging};
use crate::client::Publisher;
use crate::config::{Config, Role};
use crate::event::{Event, Value};
use crate::keys::{KeyChange, KeyPair, KeyState, KeyStore, fingerprint, id_problem};
use crate::output::outputter::{Indent, Outputter};

/// Manage the master's minion keys: list, accept, reject, delete and fingerprint them.
///
/// salt-key works on the master's key store (pki_dir) directly: a minion's key waits in
/// "pending" until accepted, and only minions with accepted keys receive jobs. Without an
/// action it lists every key, grouped by state.
#[derive(Debug, Parser)]
#[command(name = "salt-key", version, disable_version_flag = true)]
#[command(
    after_help = "Examples:\n  salt-key -L\n  salt-key -a 'web*' -y\n  salt-key -r db1 --include-accepted\n  salt-key -d old-minion -y\n  salt-key -F\n  salt-key --gen-keys web1 --gen-keys-dir /tmp/seed"
)]
pub struct Args {
    /// Directory holding the master config file [default: /etc/salt]
    #[arg(
        short = 'c',
        long = "config-dir",
        value_name = "DIR",
        env = "SALT_CONFIG_DIR"
    )]
    config_dir: Option<PathBuf>,

    /// Console log level
    #[arg(long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,

    /// Write a man page or shell completion script to stdout and exit
    #[arg(long, value_name = "WHAT", hide = true)]
    generate: Option<Generate>,

    #[command(flatten)]
    version: super::args::VersionArgs,

    /// List the keys in one state: acc, pre (or un), rej, den, or all
    #[arg(
        short = 'l',
        long = "list",
        value_name = "STATE",
        group = "action",
        value_parser = super::args::Suggested(|| KeyState::LIST_NAMES.to_vec()),
        hide_possible_values = true
    )]
    list: Option<String>,

    /// List every key (the default action)
    #[arg(short = 'L', long = "list-all", group = "action")]
    list_all: bool,

    /// Accept the pending keys matching ID (a glob; commas separate several)
    #[arg(short = 'a', long = "accept", value_name = "ID", group = "action")]
    accept: Option<String>,

    /// Accept every pending key
    #[arg(short = 'A', long = "accept-all", group = "action")]
    accept_all: bool,

    /// Reject the pending keys matching ID
    #[arg(short = 'r', long = "reject", value_name = "ID", group = "action")]
    reject: Option<String>,

    /// Reject every pending key
    #[arg(short = 'R', long = "reject-all", group = "action")]
    reject_all: bool,

    /// Delete the keys matching ID, in any state
    #[arg(short = 'd', long = "delete", value_name = "ID", group = "action")]
    delete: Option<String>,

    /// Delete every key
    #[arg(short = 'D', long = "delete-all", group = "action")]
    delete_all: bool,

    /// Print the fingerprints of the keys matching ID
    #[arg(short = 'f', long = "finger", value_name = "ID", group = "action")]
    finger: Option<String>,

    /// Print every fingerprint, the master's own keys included
    #[arg(short = 'F', long = "finger-all", group = "action")]
    finger_all: bool,

    /// Print the public keys matching ID
    #[arg(short = 'p', long = "print", value_name = "ID", group = "action")]
    print: Option<String>,

    /// Print every public key
    #[arg(short = 'P', long = "print-all", group = "action")]
    print_all: bool,

    /// Write a new key pair NAME.pem and NAME.pub, to pre-seed minion NAME, and print its
    /// fingerprint (an existing NAME.pem is kept)
    #[arg(long = "gen-keys", value_name = "NAME", group = "action")]
    gen_keys: Option<String>,

    /// The directory --gen-keys writes to, created if missing
    #[arg(long = "gen-keys-dir", value_name = "DIR", default_value = ".")]
    gen_keys_dir: PathBuf,

    /// Salt's RSA key size for --gen-keys (2048 to 32768); halite's keys are Ed25519, of one
    /// size, so it is checked and has no effect
    #[arg(long = "keysize", value_name = "BITS", value_parser = clap::value_parser!(u32).range(2048..=32768))]
    keysize: Option<u32>,

    /// Answer yes to the confirmation prompt
    #[arg(short = 'y', long = "yes")]
    yes: bool,

    /// Let -r and -R reject accepted keys too
    #[arg(long = "include-accepted")]
    include_accepted: bool,

    /// Let -a and -A accept rejected keys too
    #[arg(long = "include-rejected")]
    include_rejected: bool,

    /// Let -a, -A, -r and -R act on denied keys too
    #[arg(long = "include-denied")]
    include_denied: bool,

    /// Same as --include-accepted with -r and --include-rejected with -a
    #[arg(long = "include-all")]
    include_all: bool,

    /// Outputter: key (default), json, yaml, nested, txt, raw
    #[arg(long = "out", visible_alias = "output", value_name = "OUTPUTTER")]
    out: Option<String>,

    /// Never colour the output
    #[arg(long = "no-color", visible_alias = "no-colour")]
    no_color: bool,

    /// Colour the output even when it is not a terminal
    #[arg(long = "force-color", visible_alias = "force-colour")]
    force_color: bool,

    #[command(flatten)]
    destination: super::args::DestinationArgs,
}

/// Entry point of `salt-key`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(exit) = super::preempt::<Args>(args.generate, args.version.versions_report) {
        return exit;
    }
    execute(Runtime::SingleThread, || run(args))
}

/// One section's keys, each with a value (nothing, a fingerprint, the key text).
type SectionKeys = (Section, Vec<(String, Option<String>)>);

/// Keys grouped by section.
type Grouped = Vec<SectionKeys>;

/// A section of `salt-key`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Local,
    State(KeyState),
}

impl Section {
    fn heading(self) -> &'static str {
        match self {
            Section::Local => "Local Keys:",
            Section::State(state) => state.heading(),
        }
    }

    fn json_key(self) -> &'static str {
        match self {
            Section::Local => "local",
            Section::State(state) => state.dir_name(),
        }
    }

    fn color(self) -> u8 {
        match self {
            Section::Local | Section::State(KeyState::Denied) => 35,
            Section::State(KeyState::Accepted) => 32,
            Section::State(KeyState::Pending) => 31,
            Section::State(KeyState::Rejected) => 34,
        }
    }
}

/// How the key listings print: the outputter, colour, json/yaml indent, and where to.
struct Listing<'a> {
    out: Option<&'a str>,
    color: bool,
    indent: Indent,
    sink: Sink,
}

impl Listing<'_> {
    fn print(&mut self, grouped: &Grouped) -> anyhow::Result<()> {
        let text = render(grouped, self.out, self.color, self.indent)?;
        Ok(self.sink.write(&text)?)
    }
}

fn render(
    grouped: &Grouped,
    out: Option<&str>,
    color: bool,
    indent: Indent,
) -> anyhow::Result<String> {
    let Some(out) = out.filter(|out| *out != "key") else {
        return Ok(render_key(grouped, color));
    };
    let outputter: Outputter = out.parse()?;
    let mut ordered: Vec<&SectionKeys> = grouped.iter().collect();
    ordered.sort_by_key(|(section, _)| match section {
        Section::Local => 0,
        Section::State(state) => {
            1 + KeyState::SALT_ORDER
                .iter()
                .position(|s| s == state)
                .unwrap_or(0)
        }
    });
    let map = Value::Map(
        ordered
            .into_iter()
            .map(|(section, keys)| {
                let value = if keys.iter().all(|(_, v)| v.is_none()) {
                    Value::Array(
                        keys.iter()
                            .map(|(id, _)| Value::from(id.as_str()))
                            .collect(),
                    )
                } else {
                    Value::Map(
                        keys.iter()
                            .map(|(id, v)| {
                                (
                                    Value::from(id.as_str()),
                                    Value::from(v.clone().unwrap_or_default()),
                                )
                            })
                            .collect(),
                    )
                };
                (Value::from(section.json_key()), value)
            })
            .collect(),
    );
    Ok(outputter.render_with(&map, color, 0, indent))
}

/// Salt's `key` outputter: a heading per section, one line per key (`id:  value` when there is
/// a value), the whole right-trimmed.
fn render_key(grouped: &Grouped, color: bool) -> String {
    let mut out = String::new();
    let paint = |code: u8, bold: bool, text: &str| {
        if color {
            let weight = if bold { "1;" } else { "" };
            format!("\x1b[0;{weight}{code}m{text}\x1b[0;0m\n")
        } else {
            format!("{text}\n")
        }
    };
    for (section, keys) in grouped {
        out.push_str(&paint(section.color(), true, section.heading()));
        for (id, value) in keys {
            let line = match value {
                Some(value) => format!("{id}:  {value}"),
                None => id.clone(),
            };
            out.push_str(&paint(section.color(), false, &line));
        }
    }
    let trimmed = out.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

/// The keys in `states` matching a comma-separated list of globs, grouped by state.
fn matching(store: &KeyStore, globs: &str, states: &[KeyState]) -> anyhow::Result<Grouped> {
    let globs: Vec<&str> = globs.split(',').collect();
    let states: Vec<KeyState> = KeyState::ALL
        .into_iter()
        .filter(|state| states.contains(state))
        .collect();
    Ok(store
        .matching(&globs, &states)?
        .into_iter()
        .map(|(state, ids)| {
            (
                Section::State(state),
                ids.into_iter().map(|id| (id, None)).collect(),
            )
        })
        .collect())
}

async fn run(args: Args) -> anyhow::Result<Exit> {
    let console = logging::level(args.log_level.as_deref().unwrap_or("warning"))?;
    logging::init(console)?;
    let config = Config::load(Role::Master, args.config_dir.as_deref())?;
    if let Some(name) = &args.gen_keys {
        return gen_keys(&args, name, &config);
    }
    let pki_dir = config.pki_dir()?;
    let store = KeyStore::open(&pki_dir)?;
    // Only the listings go to --out-file, uncoloured unless forced; prompts stay here.
    let mut listing = Listing {
        out: args.out.as_deref(),
        color: args
            .destination
            .color(args.force_color, args.no_color, &config)?,
        indent: args.destination.indent(&config)?,
        sink: args.destination.open()?,
    };
    let all = "*".to_owned();
    let change = if let Some(glob) = args.accept.as_ref().or(args.accept_all.then_some(&all)) {
        Some((KeyChange::Accept, glob))
    } else if let Some(glob) = args.reject.as_ref().or(args.reject_all.then_some(&all)) {
        Some((KeyChange::Reject, glob))
    } else {
        args.delete
            .as_ref()
            .or(args.delete_all.then_some(&all))
            .map(|glob| (KeyChange::Delete, glob))
    };
    if let Some((change, glob)) = change {
        return apply(&args, &config, &store, change, glob, &mut listing).await;
    }
    let hash_type = config.hash_type()?.to_owned();
    let finger = args.finger.as_ref().or(args.finger_all.then_some(&all));
    let print = args.print.as_ref().or(args.print_all.then_some(&all));
    let grouped = if let Some(glob) = finger.or(print) {
        let mut grouped = matching(&store, glob, &KeyState::ALL)?;
        let value = |text: &str| {
            if finger.is_some() {
                fingerprint(text, &hash_type).unwrap_or_default()
            } else {
                text.trim_end().to_owned()
            }
        };
        for (section, keys) in &mut grouped {
            if let Section::State(state) = section {
                for (id, slot) in keys.iter_mut() {
                    *slot = store.key(*state, id).map(|text| value(&text));
                }
            }
        }
        if finger.is_some() {
            let local: Vec<(String, Option<String>)> = ["master.pem", "master.pub"]
                .into_iter()
                .filter(|name| {
                    glob.split(',')
                        .any(|g| crate::py::fnmatch::fnmatch(name, g))
                })
                .filter_map(|name| {
                    let text = std::fs::read_to_string(pki_dir.join(name)).ok()?;
                    Some((name.to_owned(), Some(value(&text))))
                })
                .collect();
            if !local.is_empty() {
                grouped.insert(0, (Section::Local, local));
            }
        }
        grouped
    } else {
        let states = match &args.list {
            Some(arg) => KeyState::for_list(arg).ok_or_else(|| {
                anyhow::anyhow!(
                    "'{arg}' is not a valid argument to '--list': use acc, pre, un, rej, den or all"
                )
            })?,
            None => KeyState::ALL.to_vec(),
        };
        // Every listed state, empty ones too.
        states
            .into_iter()
            .map(|state| {
                let ids = store.ids(state)?;
                Ok((
                    Section::State(state),
                    ids.into_iter().map(|id| (id, None)).collect(),
                ))
            })
            .collect::<anyhow::Result<_>>()?
    };
    listing.print(&grouped)?;
    Ok(Exit::Success)
}

/// `--gen-keys NAME`: the pair in `--gen-keys-dir`, and its fingerprint as Salt prints it
/// (`return:` and the fingerprint, nested).
fn gen_keys(args: &Args, name: &str, config: &Config) -> anyhow::Result<Exit> {
    if let Some(problem) = id_problem(name) {
        anyhow::bail!("cannot name a key pair {name:?}: {problem}");
    }
    let dir: &Path = &args.gen_keys_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    if let Some(bits) = args.keysize {
        super::print_err(&format!(
            "--keysize {bits} has no effect: halite's keys are Ed25519, whose size is fixed"
        ))?;
    }
    let (pair, created) = KeyPair::load_or_generate(dir, name)?;
    if !created {
        super::print_err(&format!(
            "{} exists and is kept; move it away to generate a new pair",
            dir.join(format!("{name}.pem")).display()
        ))?;
    }
    let finger = fingerprint(pair.public_pem(), config.hash_type()?).unwrap_or_default();
    let color = super::args::wants_color(args.force_color, args.no_color, config)?;
    let outputter: Outputter = match args.out.as_deref() {
        None | Some("key") => Outputter::Nested,
        Some(out) => out.parse()?,
    };
    let shown = Value::Map(vec![(Value::from("return"), Value::from(finger))]);
    super::print(outputter.render(&shown, color))?;
    Ok(Exit::Success)
}

async fn apply(
    args: &Args,
    config: &Config,
    store: &KeyStore,
    change: KeyChange,
    glob: &str,
    listing: &mut Listing<'_>,
) -> anyhow::Result<Exit> {
    let include_rejected =
        change == KeyChange::Accept && (args.include_all || args.include_rejected);
    let include_accepted =
        change == KeyChange::Reject && (args.include_all || args.include_accepted);
    let states: Vec<KeyState> = match change {
        KeyChange::Delete => KeyState::ALL.to_vec(),
        _ => {
            let mut states = vec![KeyState::Pending];
            if include_accepted {
                states.push(KeyState::Accepted);
            }
            if include_rejected {
                states.push(KeyState::Rejected);
            }
            if args.include_denied {
                states.push(KeyState::Denied);
            }
            states
        }
    };
    let grouped = matching(store, glob, &states)?;
    if grouped.is_empty() {
        let mut kinds = vec!["unaccepted"];
        let wording_accepted =
            include_accepted || (change == KeyChange::Delete && args.include_accepted);
        let wording_rejected =
            include_rejected || (change == KeyChange::Delete && args.include_rejected);
        if wording_accepted {
            kinds.push("accepted");
        }
        if wording_rejected {
            kinds.push("rejected");
        }
        if args.include_denied {
            kinds.push("denied");
        }
        let kinds = match kinds.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => kinds.join(""),
        };
        super::print(format!(
            "The key glob '{glob}' does not match any {kinds} keys.\n"
        ))?;
        return Ok(Exit::Success);
    }
    super::print(format!(
        "The following keys are going to be {}:\n",
        change.verb()
    ))?;
    listing.print(&grouped)?;
    if !args.yes && !confirm(change)? {
        return Ok(Exit::Success);
    }
    let mut events = Vec::new();
    // Accept and reject work through the states in the order they were asked for.
    let mut ordered: Vec<&SectionKeys> = grouped.iter().collect();
    if change != KeyChange::Delete {
        ordered.sort_by_key(|(section, _)| match section {
            Section::State(state) => states.iter().position(|s| s == state).unwrap_or(0),
            Section::Local => 0,
        });
    }
    for (section, keys) in ordered {
        let Section::State(state) = section else {
            continue;
        };
        for (id, _) in keys {
            let cachedir = config.cachedir().ok();
            match change.apply(store, cachedir.as_deref(), id, *state) {
                Ok(event) => events.push(event),
                Err(err) => {
                    super::print_err(&format!("Error: {err}"))?;
                    continue;
                }
            }
            super::print(format!("Key for minion {id} {}.\n", change.verb()))?;
        }
    }
    announce(config, events).await;
    Ok(Exit::Success)
}

/// Asks Salt's question; accept and reject default to yes, delete to no.
fn confirm(change: KeyChange) -> anyhow::Result<bool> {
    let (prompt, default) = match change {
        KeyChange::Delete => ("Proceed? [N/y] ", false),
        _ => ("Proceed? [n/Y] ", true),
    };
    super::print(prompt)?;
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer)? == 0 {
        super::print_err("Error: EOF when reading a line")?;
        return Ok(false);
    }
    let answer = answer.trim().to_lowercase();
    Ok(if answer.is_empty() {
        default
    } else {
        answer.starts_with('y')
    })
}

/// Fires the `salt/key` events on the master's bus; without a running master they are dropped,
/// as Salt's are.
async fn announce(config: &Config, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let (Ok(bus), Ok(framing)) = (config.bus(), config.framing()) else {
        return;
    };
    let Ok(mut publisher) = Publisher::connect(&bus, framing).await else {
        tracing::debug!("the master is not running; salt/key events are not sent");
        return;
    };
    for event in events {
        if let Err(err) = publisher.fire(event).await {
            tracing::warn!("cannot send salt/key to the master: {err}");
            return;
        }
    }
    let _ = publisher.close().await;
}
