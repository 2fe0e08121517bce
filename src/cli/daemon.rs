//! What `salt-master`, `salt-minion` and `salt-api` share: logging, backgrounding, the pid file, dropping
//! privileges, telling systemd when they are ready or stopping, reopening their log file on
//! SIGHUP, and running until SIGINT or SIGTERM.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Uid, User};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::level_filters::LevelFilter;

use super::syslog::LogTarget;
use super::{CommonArgs, DaemonArgs, Exit, Runtime, execute, logging, notify, report};
use crate::api::Api;
use crate::config::{Config, Role};
use crate::master::Master;
use crate::minion::{LinkOutcome, Minion, Swarm};

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Daemon {
    /// `salt-master`.
    Master,
    /// `salt-minion`, or as many minions as `swarm` says.
    Minion {
        /// `--swarm N`.
        swarm: Option<std::num::NonZeroUsize>,
    },
    /// `salt-api`, which reads the master's config.
    Api,
}

impl Daemon {
    /// The config it reads.
    fn role(self) -> Role {
        match self {
            Daemon::Master | Daemon::Api => Role::Master,
            Daemon::Minion { .. } => Role::Minion,
        }
    }

    /// The options naming its log file and its pid file (salt-api has its own).
    fn log_and_pid_options(self) -> (&'static str, &'static str) {
        match self {
            Daemon::Api => ("api_logfile", "api_pidfile"),
            Daemon::Master | Daemon::Minion { .. } => ("log_file", "pidfile"),
        }
    }

    /// Its name in Salt's default log file, `/var/log/salt/<name>`.
    fn name(self) -> &'static str {
        match self {
            Daemon::Master => "master",
            Daemon::Minion { .. } => "minion",
            Daemon::Api => "api",
        }
    }
}

/// What a daemon settles before it starts anything, every option and argument checked: a start
/// goes on from here, `--check-config` stops here.
struct Setup {
    config: Config,
    console: LevelFilter,
    log_file: LogTarget,
    file_level: LevelFilter,
    pid_file: Option<PathBuf>,
    /// The configured `user` to become once bound; none when there is no one else to become.
    user: Option<User>,
    service: Service,
}

/// The daemon's own settings, read before it binds.
enum Service {
    Master(crate::master::Settings),
    Minion(crate::minion::Settings, Option<std::num::NonZeroUsize>),
    Api(crate::api::Settings),
}

impl Setup {
    /// Checks `config` and the arguments as a start of `daemon` does, in the order it does.
    fn new(
        daemon: Daemon,
        config: Config,
        common: &CommonArgs,
        args: &DaemonArgs,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let console = chosen_level(&config, ("-l", common.log_level.as_deref()), "log_level")?;
        let (log_option, pid_option) = daemon.log_and_pid_options();
        let log_file = match &args.log_file {
            Some(path) => LogTarget::parse("--log-file", path.to_str(), || {
                Ok(crate::config::from_start_dir(path))
            })?,
            None => LogTarget::parse(log_option, config.get_str(log_option)?, || {
                Ok(config.path(log_option, &format!("/var/log/salt/{}", daemon.name()))?)
            })?,
        };
        let file_level = chosen_level(
            &config,
            ("--log-file-level", args.log_file_level.as_deref()),
            "log_level_logfile",
        )?;
        // Paths given on the command line are from where it runs, also for a daemon that
        // then runs in `/`.
        let pid_file = match &args.pid_file {
            Some(path) => Some(crate::config::from_start_dir(path)),
            None => config
                .get_str(pid_option)?
                .map(|_| config.path(pid_option, ""))
                .transpose()?,
        };
        let user = service_user(&config)?;
        let service = match daemon {
            Daemon::Master => Service::Master(crate::master::Settings::from_config(&config)?),
            Daemon::Minion { swarm } => {
                let settings = crate::minion::Settings::from_config(&config)?;
                if let Some(size) = swarm {
                    Swarm::member_ids(&settings, size)?;
                }
                Service::Minion(settings, swarm)
            }
            Daemon::Api => Service::Api(crate::api::Settings::from_config(&config)?),
        };
        Ok(Self {
            config,
            console,
            log_file,
            file_level,
            pid_file,
            user,
            service,
        })
    }
}

/// The log level the command line's `flag` gives, else option `key`, else warning; an unknown
/// name is refused naming the flag, or the option and its file.
fn chosen_level(
    config: &Config,
    (flag, given): (&str, Option<&str>),
    key: &str,
) -> anyhow::Result<LevelFilter> {
    if let Some(name) = given {
        return logging::level(name).with_context(|| format!("{flag} {name}"));
    }
    match config.get_str(key)? {
        Some(name) => {
            logging::level(name).with_context(|| format!("option {key} {}", config.place(key)))
        }
        None => Ok(LevelFilter::WARN),
    }
}

/// Starts `daemon` and serves until stopped.
pub(crate) fn main(daemon: Daemon, common: &CommonArgs, args: &DaemonArgs) -> ExitCode {
    if args.check_config {
        return check_config(daemon, common, args);
    }
    let start = || -> anyhow::Result<Setup> {
        let setup = Setup::new(daemon, common.load(daemon.role())?, common, args)?;
        if args.daemon {
            // Before any thread exists: forking a threaded process is unsound.
            background().context("cannot run in the background")?;
        }
        logging::init_daemon(
            setup.console,
            (&setup.log_file, setup.file_level),
            args.daemon,
        )?;
        // Once, at start: a typo would otherwise be a default nobody asked for.
        for warning in setup.config.warnings() {
            tracing::warn!("{warning}");
        }
        for failure in setup.config.set_aside_broken_schedules() {
            tracing::error!("{failure}");
        }
        Ok(setup)
    };
    let Setup {
        config,
        pid_file,
        user,
        service,
        ..
    } = match start() {
        Ok(setup) => setup,
        Err(err) => return report(err),
    };
    let code = execute(Runtime::MultiThread, || async move {
        let shutdown = CancellationToken::new();
        let stopped = {
            let (shutdown, pid_file) = (shutdown.clone(), pid_file.clone());
            tokio::spawn(async move {
                let signal = super::stop_signal().await;
                tracing::info!("received {signal:?}, shutting down");
                notify::stopping();
                shutdown.cancel();
                // A second signal means now: work still draining is given up.
                let again = super::stop_signal().await;
                tracing::warn!("received {again:?} again, stopping at once");
                if let Some(pid_file) = pid_file {
                    let _ = std::fs::remove_file(pid_file);
                }
                logging::flush();
                std::process::exit(i32::from(again.code()));
            })
        };
        // logrotate moves the log file away and sends SIGHUP; the reactor reloads on it too.
        // Caught from here on, before the daemon says it is ready: SIGHUP's default ends it.
        let mut hangup = signal(SignalKind::hangup()).context("cannot catch SIGHUP")?;
        let hangups = tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                logging::reopen();
            }
        });
        let watchdog = tokio::spawn(notify::watchdog());
        // A daemon stopped by a failed service still removes its pid file.
        let outcome: anyhow::Result<Exit> = match service {
            Service::Api(settings) => {
                let api = Api::bind(settings).await?;
                finish_setup(&config, pid_file.as_deref(), user)?;
                api.run(shutdown)
                    .await
                    .map(|()| Exit::Success)
                    .map_err(Into::into)
            }
            Service::Master(settings) => {
                let master = Master::bind(settings).await?;
                finish_setup(&config, pid_file.as_deref(), user)?;
                master
                    .run(shutdown)
                    .await
                    .map(|()| Exit::Success)
                    .map_err(Into::into)
            }
            Service::Minion(settings, Some(size)) => {
                let swarm = Swarm::prepare(settings, size).await?;
                finish_setup(&config, pid_file.as_deref(), user)?;
                swarm
                    .run(shutdown)
                    .await
                    .map(|_| Exit::Success)
                    .map_err(Into::into)
            }
            Service::Minion(settings, None) => {
                let minion = Minion::bind(settings).await?;
                finish_setup(&config, pid_file.as_deref(), user)?;
                let outcome = minion.run(shutdown).await.map_err(Into::into);
                outcome.map(|outcome| match outcome {
                    LinkOutcome::Stopped => Exit::Success,
                    LinkOutcome::Refused => Exit::KeyRefused,
                    LinkOutcome::WrongMaster => Exit::WrongMaster,
                })
            }
        };
        for task in [stopped, hangups, watchdog] {
            task.abort();
        }
        if let Some(pid_file) = pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
        outcome
    });
    logging::flush();
    code
}

/// `--check-config`: loads the configuration and runs the checks of a start ([`Setup::new`]),
/// and checks that each file the reactor names exists; reports every problem (what a start warns
/// about counts: in CI and before a restart it is most likely a mistake) and starts nothing.
fn check_config(daemon: Daemon, common: &CommonArgs, args: &DaemonArgs) -> ExitCode {
    let config = match common.load(daemon.role()) {
        Ok(config) => config,
        Err(err) => return report(err),
    };
    let mut problems = Vec::new();
    match Setup::new(daemon, config.clone(), common, args) {
        Ok(setup) => problems.extend(host_problems(daemon, &setup)),
        Err(err) => problems.push(super::describe(&err)),
    }
    problems.extend(config.warnings().iter().map(ToString::to_string));
    let reactor = crate::reactor::rules::Rules::from_config(&config);
    problems.extend(reactor.problems.iter().cloned());
    problems.extend(reactor.missing_files());
    let file = config.file();
    let shown = if !problems.is_empty() {
        problems
            .iter()
            .try_for_each(|problem| super::print_err(&format!("error: {problem}")))
    } else if config.file_exists() {
        super::print(format!("configuration OK: {}\n", file.display()))
    } else {
        // As Salt, the daemon starts on the defaults without its file.
        super::print(format!(
            "configuration OK: {} does not exist, so the defaults were checked\n",
            file.display()
        ))
    };
    match shown {
        Err(err) => report(err.into()),
        Ok(()) if problems.is_empty() => Exit::Success.into(),
        Ok(()) => Exit::Failure.into(),
    }
}

/// What a start would trip over on this host, found without creating or changing anything: a
/// directory it writes that is a file or not writable by the user it runs as, an address to
/// listen on (`interface`, `rest_cherrypy.host`) that is not this host's, its own key that it
/// cannot load.
fn host_problems(daemon: Daemon, setup: &Setup) -> Vec<String> {
    let config = &setup.config;
    let mut problems = Vec::new();
    // With `user`, the daemon hands pki_dir, cachedir and sock_dir to that user itself; the
    // log and pid file directories it must be able to write as they are (to reopen the log, to
    // remove the pid file).
    let mut dirs = vec![("cachedir", config.cachedir().ok(), true)];
    if daemon != Daemon::Api {
        dirs.push(("pki_dir", config.pki_dir().ok(), true));
        if !config.tcp_mode().unwrap_or(false) {
            dirs.push(("sock_dir", config.sock_dir().ok(), true));
        }
    }
    let (log_option, pid_option) = daemon.log_and_pid_options();
    if let LogTarget::File(path) = &setup.log_file {
        dirs.push((log_option, path.parent().map(Path::to_owned), false));
    }
    if let Some(path) = &setup.pid_file {
        dirs.push((pid_option, path.parent().map(Path::to_owned), false));
    }
    for (option, dir, handed_over) in dirs {
        let Some(dir) = dir.filter(|dir| !dir.as_os_str().is_empty()) else {
            continue;
        };
        if let Some(file) = crate::config::file_in_the_way(&dir) {
            problems.push(format!(
                "{option} {}: {} is a file, not a directory; move the file away or set {option} to another path",
                dir.display(),
                file.display()
            ));
        } else if dir.is_dir() {
            if let Some(user) = unwritable_by(&dir, setup.user.as_ref(), handed_over) {
                problems.push(format!(
                    "{option} {} is not writable by user {user}, whom the daemon runs as; make it writable by {user} or set {option} to another path",
                    dir.display()
                ));
            }
        } else if let Some(parent) = dir.ancestors().skip(1).find(|parent| parent.is_dir())
            && let Some(user) = unwritable_by(parent, None, false)
        {
            // The start creates it, before it becomes any other user.
            problems.push(format!(
                "{option} {} cannot be created: {} is not writable by user {user}; create it or set {option} to another path",
                dir.display(),
                parent.display()
            ));
        }
    }
    // Where the daemon listens, by binding a free port there.
    let listen = match &setup.service {
        Service::Master(settings) => Some(("interface", settings.address().ip())),
        Service::Api(settings) => Some(("rest_cherrypy.host", settings.address().ip())),
        Service::Minion(..) => None,
    };
    if let Some((option, address)) = listen
        && let Err(err) = std::net::TcpListener::bind((address, 0))
    {
        problems.push(format!(
            "{option} {address} is not an address of this host ({err}); set {option} to an address of this host, or 0.0.0.0 for all"
        ));
    }
    let key = match daemon {
        Daemon::Master => Some("master"),
        Daemon::Minion { .. } => Some("minion"),
        Daemon::Api => None,
    };
    if let (Some(name), Ok(pki_dir)) = (key, config.pki_dir())
        && let Err(err) = crate::keys::KeyPair::check(&pki_dir, name)
    {
        problems.push(err.to_string());
    }
    problems
}

/// The name of the user the daemon runs as when it cannot write `dir`: this user (by
/// `access(2)`) without a `user` to become, else that user (by the directory's owner and mode),
/// unless the daemon hands `dir` to it.
fn unwritable_by(dir: &Path, user: Option<&User>, handed_over: bool) -> Option<String> {
    use nix::unistd::{AccessFlags, Group, access};
    use std::os::unix::fs::MetadataExt;
    let Some(user) = user else {
        access(dir, AccessFlags::W_OK | AccessFlags::X_OK).err()?;
        let uid = Uid::effective();
        return Some(match User::from_uid(uid) {
            Ok(Some(me)) => me.name,
            _ => uid.to_string(),
        });
    };
    if handed_over || user.uid.is_root() {
        return None;
    }
    let meta = std::fs::metadata(dir).ok()?;
    let member = || {
        meta.gid() == user.gid.as_raw()
            || Group::from_gid(meta.gid().into())
                .ok()
                .flatten()
                .is_some_and(|group| group.mem.contains(&user.name))
    };
    let needed = if meta.uid() == user.uid.as_raw() {
        0o300
    } else if member() {
        0o030
    } else {
        0o003
    };
    (meta.mode() & needed != needed).then(|| user.name.clone())
}

/// After binding: write the pid file, switch to the configured `user`, then tell the service
/// manager the daemon is ready (its sockets listen: connections queue until served).
fn finish_setup(
    config: &Config,
    pid_file: Option<&Path>,
    user: Option<User>,
) -> anyhow::Result<()> {
    if let Some(path) = pid_file {
        if let Some(dir) = path.parent() {
            crate::config::create_dir_all(std::fs::DirBuilder::new().recursive(true), dir)
                .with_context(|| {
                    format!("cannot create the pid file's directory {}", dir.display())
                })?;
        }
        use std::io::Write;
        crate::config::open_plain_file(
            path,
            // Emptied only once known to be a plain file of its own.
            std::fs::OpenOptions::new().create(true).write(true),
        )
        .and_then(|mut file| {
            file.set_len(0)?;
            writeln!(file, "{}", std::process::id())
        })
        .with_context(|| format!("cannot write pid file {}", path.display()))?;
    }
    if let Some(user) = user {
        switch_user(config, user)?;
    }
    notify::ready();
    release_foreground();
    Ok(())
}

/// The write end of the pipe a `-d` daemon's stderr goes to until it is ready.
static FOREGROUND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks readiness on the pipe a waiting foreground reads: no message holds a NUL.
const READY: u8 = 0;

/// `-d`: the daemon goes on in a child of its own session, in `/`, while this process waits
/// until it is ready (exit 0) or has failed (its messages on this stderr, its exit code), so
/// that a port in use or a bad key is not a silent success, as Salt checks before it forks.
#[allow(unsafe_code)]
fn background() -> nix::Result<()> {
    use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe, setsid};
    let (read, write) = pipe()?;
    // SAFETY: no thread exists yet (see the caller), so the child may run on as it is.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(write);
            std::process::exit(wait_until_ready(read, child));
        }
        ForkResult::Child => {
            drop(read);
            setsid()?;
            std::env::set_current_dir("/").map_err(|_| Errno::last())?;
            let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
            dup2_stdin(&null)?;
            dup2_stdout(&null)?;
            dup2_stderr(&write)?;
            FOREGROUND.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }
}

/// In the waiting foreground: copies the daemon's messages to stderr until it says it is
/// ready (0) or ends (its exit code).
fn wait_until_ready(read: OwnedFd, child: nix::unistd::Pid) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    use std::io::{Read, Write};
    let mut pipe = std::fs::File::from(read);
    let mut stderr = std::io::stderr();
    let mut buf = [0_u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let (message, ready) = match buf[..n].iter().position(|byte| *byte == READY) {
                    Some(at) => (&buf[..at], true),
                    None => (&buf[..n], false),
                };
                let _ = stderr.write_all(message);
                if ready {
                    return 0;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, code)) => code,
        _ => i32::from(Exit::Failure.code()),
    }
}

/// In a `-d` daemon that is ready: tells the waiting foreground so and sends stderr to
/// `/dev/null` from now on (the log file has what follows).
fn release_foreground() {
    if !FOREGROUND.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let _ = nix::unistd::write(std::io::stderr(), &[READY]);
    if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_WRONLY, Mode::empty()) {
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// The configured `user` the daemon becomes once bound, checked at start as Salt checks it: the
/// user must exist, and only root can become someone else. `None` when there is no one else to
/// become.
fn service_user(config: &Config) -> anyhow::Result<Option<User>> {
    let Some(name) = config.get_str("user")? else {
        return Ok(None);
    };
    let user = User::from_name(name)
        .with_context(|| format!("cannot look up user {name}"))?
        .with_context(|| format!("user {name} (config option user) does not exist"))?;
    if user.uid == Uid::effective() {
        return Ok(None);
    }
    if !Uid::effective().is_root() {
        bail!(
            "cannot switch to user {name}: only root can; start as {name} or remove the user option"
        );
    }
    Ok(Some(user))
}

/// Runs as `user`, as Salt does. Socket files, `pki_dir` and `cachedir` are handed to that user
/// first, and the user's own groups replace root's.
fn switch_user(config: &Config, user: User) -> anyhow::Result<()> {
    use nix::unistd::{initgroups, setgid, setuid};
    let name = user.name.as_str();
    let owner = Owner {
        uid: user.uid,
        gid: user.gid,
    };
    if !config.tcp_mode()? {
        let sock_dir = config.sock_dir()?;
        if let Some(dir) = open_configured_dir(&sock_dir, "sock_dir")? {
            chown_fd(&dir, owner)
                .with_context(|| format!("cannot hand {} to user {name}", sock_dir.display()))?;
            let bus = config.bus()?;
            // The master's request socket too, so that its user can publish jobs.
            let requests = match config.role() {
                Role::Master => Some(crate::proto::request::endpoint(config)?),
                Role::Minion => None,
            };
            let sockets = [
                bus.publish.path(),
                bus.pull.path(),
                requests.as_ref().and_then(|endpoint| endpoint.path()),
            ];
            for socket in sockets.into_iter().flatten().filter_map(Path::file_name) {
                hand_over_entry(&dir, Path::new(socket), owner, None).with_context(|| {
                    format!("cannot hand {} to user {name}", sock_dir.display())
                })?;
            }
        }
    }
    // Keys and caches are written after the switch (pending keys, job returns).
    for (option, dir) in [
        ("pki_dir", config.pki_dir()?),
        ("cachedir", config.cachedir()?),
    ] {
        hand_over_tree(&dir, owner, option)
            .with_context(|| format!("cannot hand {} to user {name}", dir.display()))?;
    }
    logging::hand_log_to(user.uid, user.gid)?;
    let c_name = std::ffi::CString::new(name)
        .with_context(|| format!("user {name} (config option user) is not a valid name"))?;
    // Without this the daemon would keep root's supplementary groups (0, shadow, …).
    initgroups(&c_name, user.gid)
        .with_context(|| format!("cannot switch to the groups of {name}"))?;
    setgid(user.gid).with_context(|| format!("cannot switch to the group of {name}"))?;
    setuid(user.uid).with_context(|| format!("cannot switch to user {name}"))?;
    Ok(())
}

/// Who a daemon's files are handed to.
#[derive(Clone, Copy)]
struct Owner {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
}

/// The deepest nesting handed over: halite's own trees are a few levels deep, and each level
/// holds a descriptor open.
const MAX_TREE_DEPTH: usize = 32;

/// Opens a directory the daemon is configured with, without following a link in its last
/// component: the service user may own the directory's contents from an earlier run, never
/// where it leads. `None` when it does not exist yet.
fn open_configured_dir(path: &Path, option: &str) -> anyhow::Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        // O_NOFOLLOW with O_DIRECTORY reports a link as either.
        Err(Errno::ELOOP | Errno::ENOTDIR) if path.is_symlink() => bail!(
            "{option} {} is a symbolic link, which is not handed to the service user; \
             set {option} to the directory it points to",
            path.display()
        ),
        Err(Errno::ENOTDIR) => bail!("{option} {} is not a directory", path.display()),
        Err(errno) => Err(errno).with_context(|| format!("cannot open {}", path.display())),
    }
}

/// Hands a directory tree to `owner`; a tree that does not exist yet is left alone. The walk
/// goes by directory descriptors and never follows a link, so neither a link planted in the tree
/// nor a directory swapped for one mid-walk can lead it to a file outside.
fn hand_over_tree(path: &Path, owner: Owner, option: &str) -> anyhow::Result<()> {
    let Some(fd) = open_configured_dir(path, option)? else {
        return Ok(());
    };
    hand_over_contents(fd, owner, path, 0)
}

fn hand_over_contents(dir: OwnedFd, owner: Owner, path: &Path, depth: usize) -> anyhow::Result<()> {
    chown_fd(&dir, owner).with_context(|| format!("cannot hand over {}", path.display()))?;
    let mut listing =
        nix::dir::Dir::from_fd(dir).with_context(|| format!("cannot list {}", path.display()))?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(name).to_owned());
        }
    }
    for name in names {
        let child = path.join(&name);
        if let Some(subdir) = hand_over_entry(&listing, Path::new(&name), owner, Some(&child))? {
            if depth + 1 >= MAX_TREE_DEPTH {
                bail!(
                    "{} is nested more than {MAX_TREE_DEPTH} directories deep; \
                     halite makes nothing that deep: remove it",
                    child.display()
                );
            }
            hand_over_contents(subdir, owner, &child, depth + 1)?;
        }
    }
    Ok(())
}

/// Hands the entry `name` of `dir` to `owner` as it is now: a link is left alone, and so is a
/// regular file with other names (a hard link, maybe to a file of root's), with a warning. A
/// directory is returned open, not yet handed over, for the walk of the tree at path `tree`;
/// outside a walk (a socket file) a directory is refused.
fn hand_over_entry(
    dir: &impl AsFd,
    name: &Path,
    owner: Owner,
    tree: Option<&Path>,
) -> anyhow::Result<Option<OwnedFd>> {
    let shown = || tree.map_or_else(|| name.display().to_string(), |p| p.display().to_string());
    // O_PATH opens the entry itself, whatever it is, without reading it or following a link.
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno).with_context(|| format!("cannot open {}", shown())),
    };
    let stat = nix::sys::stat::fstat(&fd).with_context(|| format!("cannot inspect {}", shown()))?;
    match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFLNK => Ok(None),
        SFlag::S_IFDIR => {
            if tree.is_none() {
                bail!("{} is a directory, not the file this daemon made", shown());
            }
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let opened = nix::fcntl::openat(&fd, ".", flags, Mode::empty())
                .with_context(|| format!("cannot open {}", shown()))?;
            Ok(Some(opened))
        }
        _ => {
            if owned_by(&stat, owner) {
                return Ok(None);
            }
            if stat.st_nlink > 1 {
                tracing::warn!(
                    "not handing {} to the service user: it has {} names, and another may be \
                     outside this directory",
                    shown(),
                    stat.st_nlink
                );
                return Ok(None);
            }
            nix::unistd::fchownat(
                &fd,
                "",
                Some(owner.uid),
                Some(owner.gid),
                AtFlags::AT_EMPTY_PATH,
            )
            .with_context(|| format!("cannot hand over {}", shown()))?;
            Ok(None)
        }
    }
}

fn owned_by(stat: &nix::sys::stat::FileStat, owner: Owner) -> bool {
    stat.st_uid == owner.uid.as_raw() && stat.st_gid == owner.gid.as_raw()
}

fn chown_fd(fd: &impl AsFd, owner: Owner) -> nix::Result<()> {
    if owned_by(&nix::sys::stat::fstat(fd)?, owner) {
        return Ok(());
    }
    nix::unistd::fchown(fd, Some(owner.uid), Some(owner.gid))
}
