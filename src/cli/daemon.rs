//! What `salt-master` and `salt-minion` share: logging, backgrounding, the pid file, dropping
//! privileges, and running until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::{CommonArgs, DaemonArgs, Exit, Runtime, execute, logging, report};
use crate::config::{Config, Role};
use crate::master::Master;
use crate::minion::{LinkOutcome, Minion};

/// Starts the daemon of `role` and serves until stopped.
pub(crate) fn main(role: Role, common: &CommonArgs, args: &DaemonArgs) -> ExitCode {
    let setup = || -> anyhow::Result<(Config, Option<PathBuf>)> {
        let config = common.load(role)?;
        let console = logging::level(
            common
                .log_level
                .as_deref()
                .or(config.get_str("log_level")?)
                .unwrap_or("warning"),
        )?;
        let log_file = match &args.log_file {
            Some(path) => path.clone(),
            None => config.path("log_file", &format!("/var/log/salt/{}", role.name()))?,
        };
        let file_level = logging::level(
            args.log_file_level
                .as_deref()
                .or(config.get_str("log_level_logfile")?)
                .unwrap_or("warning"),
        )?;
        let pid_file = match &args.pid_file {
            Some(path) => Some(path.clone()),
            None => config
                .get_str("pidfile")?
                .map(|_| config.path("pidfile", ""))
                .transpose()?,
        };
        if args.daemon {
            // Before any thread exists: forking a threaded process is unsound.
            nix::unistd::daemon(false, false).context("cannot run in the background")?;
        }
        logging::init(console, Some((&log_file, file_level)))?;
        Ok((config, pid_file))
    };
    let (config, pid_file) = match setup() {
        Ok(ready) => ready,
        Err(err) => return report(err),
    };
    execute(Runtime::MultiThread, || async move {
        let shutdown = CancellationToken::new();
        let stopped = {
            let (shutdown, pid_file) = (shutdown.clone(), pid_file.clone());
            tokio::spawn(async move {
                let signal = super::stop_signal().await;
                tracing::info!("received {signal:?}, shutting down");
                shutdown.cancel();
                // A second signal means now: work still draining is given up.
                let again = super::stop_signal().await;
                tracing::warn!("received {again:?} again, stopping at once");
                if let Some(pid_file) = pid_file {
                    let _ = std::fs::remove_file(pid_file);
                }
                std::process::exit(i32::from(again.code()));
            })
        };
        let mut outcome = Exit::Success;
        match role {
            Role::Master => {
                let master = Master::bind(&config).await?;
                finish_setup(&config, pid_file.as_deref())?;
                master.run(shutdown).await;
            }
            Role::Minion => {
                let minion = Minion::bind(&config).await?;
                finish_setup(&config, pid_file.as_deref())?;
                outcome = match minion.run(shutdown).await {
                    LinkOutcome::Stopped => Exit::Success,
                    LinkOutcome::Refused => Exit::Code(77),
                    LinkOutcome::WrongMaster => Exit::Code(42),
                };
            }
        }
        stopped.abort();
        if let Some(pid_file) = pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
        Ok(outcome)
    })
}

/// After binding: write the pid file, then switch to the configured `user`.
fn finish_setup(config: &Config, pid_file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = pid_file {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
    }
    switch_user(config)
}

/// Runs as the configured `user`, as Salt does: only when it names someone else, and only
/// possible when started as root. Socket files are handed to that user first.
fn switch_user(config: &Config) -> anyhow::Result<()> {
    use nix::unistd::{Gid, Uid, User, chown, setgid, setuid};
    let Some(name) = config.get_str("user")? else {
        return Ok(());
    };
    let user = User::from_name(name)
        .with_context(|| format!("cannot look up user {name}"))?
        .with_context(|| format!("user {name} (config option user) does not exist"))?;
    if user.uid == Uid::effective() {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        bail!(
            "cannot switch to user {name}: only root can; start as {name} or remove the user option"
        );
    }
    if !config.tcp_mode()? {
        let sock_dir = config.sock_dir()?;
        let bus = config.bus()?;
        for path in [
            Some(sock_dir.as_path()),
            bus.publish.path(),
            bus.pull.path(),
        ]
        .into_iter()
        .flatten()
        {
            chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("cannot hand {} to user {name}", path.display()))?;
        }
    }
    // Keys and caches are written after the switch (pending keys, job returns).
    for dir in [config.pki_dir()?, config.cachedir()?] {
        chown_tree(&dir, user.uid, user.gid)
            .with_context(|| format!("cannot hand {} to user {name}", dir.display()))?;
    }
    setgid(Gid::from_raw(user.gid.as_raw()))
        .with_context(|| format!("cannot switch to the group of {name}"))?;
    setuid(user.uid).with_context(|| format!("cannot switch to user {name}"))?;
    Ok(())
}

/// Hands a directory tree to `uid`:`gid`; a tree that does not exist yet is left alone.
fn chown_tree(path: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> std::io::Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    nix::unistd::chown(path, Some(uid), Some(gid))?;
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
