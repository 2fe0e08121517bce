//! The `service` module on systemd, as Salt's `systemd_service`: each function one
//! `systemctl` command on the unit (`NAME.service` unless NAME names a unit type). Commands
//! that change a unit run in a scope of their own (`systemd-run --scope`) where systemd runs
//! the machine, so a service restarting the minion does not take the command down with it.

use std::path::Path;

use super::cmd::run_words;
use super::{Call, Context, FunctionError, Outcome, bind};
use crate::signature::{Signature, text, truthy};

/// The unit types systemd knows; any other name is a service.
const UNIT_TYPES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
];

/// Exists when systemd is PID 1 (`sd_booted`).
const SYSTEMD_BOOTED: &str = "/run/systemd/system";

const fn signature(
    name: &'static str,
    summary: &'static str,
    params: &'static [&'static str],
    usage: &'static str,
) -> Signature {
    Signature {
        name,
        summary,
        params,
        required: 1,
        kwargs: true,
        usage,
    }
}

pub(super) const START: Signature = signature(
    "service.start",
    "Starts a service: True, or the error systemctl gave",
    &["name", "no_block"],
    "service.start NAME [no_block=False]",
);
pub(super) const STOP: Signature = signature(
    "service.stop",
    "Stops a service: whether systemctl did",
    &["name", "no_block"],
    "service.stop NAME [no_block=False]",
);
pub(super) const RESTART: Signature = signature(
    "service.restart",
    "Restarts a service: True, or the error systemctl gave",
    &["name", "no_block"],
    "service.restart NAME [no_block=False]",
);
pub(super) const RELOAD: Signature = signature(
    "service.reload",
    "Reloads a service's configuration: True, or the error systemctl gave",
    &["name", "no_block"],
    "service.reload NAME [no_block=False]",
);
pub(super) const STATUS: Signature = signature(
    "service.status",
    "Whether a service is active",
    &["name", "sig"],
    "service.status NAME",
);
pub(super) const ENABLED: Signature = signature(
    "service.enabled",
    "Whether a service starts at boot",
    &["name"],
    "service.enabled NAME",
);
pub(super) const DISABLED: Signature = signature(
    "service.disabled",
    "Whether a service does not start at boot",
    &["name"],
    "service.disabled NAME",
);
pub(super) const ENABLE: Signature = signature(
    "service.enable",
    "Makes a service start at boot: True, or the error systemctl gave",
    &["name", "no_block"],
    "service.enable NAME",
);
pub(super) const DISABLE: Signature = signature(
    "service.disable",
    "Stops a service from starting at boot: whether systemctl did",
    &["name", "no_block"],
    "service.disable NAME",
);
pub(super) const AVAILABLE: Signature = signature(
    "service.available",
    "Whether systemd knows the service",
    &["name"],
    "service.available NAME",
);

/// What a `service` function does with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Start,
    Stop,
    Restart,
    Reload,
    Status,
    Enabled,
    Disabled,
    Enable,
    Disable,
    Available,
}

impl Action {
    fn signature(self) -> &'static Signature {
        match self {
            Action::Start => &START,
            Action::Stop => &STOP,
            Action::Restart => &RESTART,
            Action::Reload => &RELOAD,
            Action::Status => &STATUS,
            Action::Enabled => &ENABLED,
            Action::Disabled => &DISABLED,
            Action::Enable => &ENABLE,
            Action::Disable => &DISABLE,
            Action::Available => &AVAILABLE,
        }
    }
}

/// The unit a service name means.
pub(super) fn unit(name: &str) -> String {
    if UNIT_TYPES.iter().any(|suffix| name.ends_with(suffix)) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// systemctl's errors without the scope's own line.
fn without_scope(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.starts_with("Running scope as unit"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `systemctl [--no-block] VERB UNIT`, in a scope of its own when it changes the unit
/// (`scoped`) and systemd runs the machine.
async fn systemctl(
    verb: &str,
    unit: &str,
    no_block: bool,
    scoped: bool,
    ctx: &Context,
) -> Result<super::cmd::Ran, FunctionError> {
    let mut words = Vec::new();
    if scoped && Path::new(SYSTEMD_BOOTED).is_dir() && ctx.config.get_bool("systemd.scope", true)? {
        words.extend(["systemd-run", "--scope"]);
    }
    words.push("systemctl");
    if no_block {
        words.push("--no-block");
    }
    words.extend([verb, unit]);
    if verb == "status" {
        words.extend(["-n", "0"]);
    }
    run_words(&words, &[]).await
}

/// Whether `systemctl is-enabled` says the unit starts at boot (an alias: whether its unit
/// does).
async fn enabled(unit: &str, ctx: &Context) -> Result<bool, FunctionError> {
    let ran = systemctl("is-enabled", unit, false, false, ctx).await?;
    if ran.retcode == 0 && ran.stdout != "alias" {
        return Ok(true);
    }
    if ran.stdout == "alias" {
        let id = run_words(&["systemctl", "show", unit, "-P", "Id"], &[]).await?;
        let aliased = systemctl("is-enabled", &id.stdout, false, false, ctx).await?;
        return Ok(aliased.retcode == 0);
    }
    Ok(false)
}

/// Runs one `service` function.
pub(super) async fn run(
    call: &Call,
    ctx: &Context,
    action: Action,
) -> Result<Outcome, FunctionError> {
    let bound = bind(call, action.signature())?;
    let unit = unit(&bound.get("name").map(text).unwrap_or_default());
    let no_block = bound.get("no_block").is_some_and(truthy);
    // A change that fails is an error with systemctl's words for start, restart, reload and
    // enable; stop and disable answer False, as Salt's do.
    let change = |verb: &'static str, raises: bool| {
        let unit = unit.clone();
        async move {
            let ran = systemctl(verb, &unit, no_block, true, ctx).await?;
            if ran.retcode != 0 && raises {
                return Err(FunctionError::Invalid(without_scope(&ran.stderr)));
            }
            Ok(Outcome::ok(ran.retcode == 0))
        }
    };
    match action {
        Action::Start => change("start", true).await,
        Action::Stop => change("stop", false).await,
        Action::Restart => change("restart", true).await,
        Action::Reload => change("reload", true).await,
        Action::Enable => change("enable", true).await,
        Action::Disable => change("disable", false).await,
        Action::Status => {
            let ran = systemctl("is-active", &unit, false, false, ctx).await?;
            Ok(Outcome::ok(ran.retcode == 0))
        }
        Action::Enabled => Ok(Outcome::ok(enabled(&unit, ctx).await?)),
        Action::Disabled => Ok(Outcome::ok(!enabled(&unit, ctx).await?)),
        Action::Available => {
            let ran = systemctl("status", &unit, false, false, ctx).await?;
            Ok(Outcome::ok(available(ran.retcode)))
        }
    }
}

/// Whether `systemctl status`'s exit status means the unit exists (systemd 231 and later:
/// 4 is "no such unit").
pub(super) fn available(retcode: i64) -> bool {
    (0..4).contains(&retcode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_a_unit_type_are_services() {
        assert_eq!(unit("nginx"), "nginx.service");
        assert_eq!(unit("fstrim.timer"), "fstrim.timer");
        assert_eq!(unit("nginx.service"), "nginx.service");
    }

    #[test]
    fn status_exit_codes_below_four_mean_the_unit_exists() {
        assert!(available(0), "running");
        assert!(available(3), "stopped");
        assert!(!available(4), "no such unit");
    }

    #[test]
    fn scope_lines_are_left_out_of_errors() {
        assert_eq!(
            without_scope("Running scope as unit: run-r1.scope\nJob for x.service failed."),
            "Job for x.service failed."
        );
    }
}
