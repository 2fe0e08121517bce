//! Configuration hygiene: unknown options warned once with the nearest known one, values of the
//! wrong kind refused at start with the option and its file, each error printed once, and
//! `--check-config`.

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::{Lab, stderr, wait_output};

/// Runs `daemon` on the lab's config until it exits by itself (or 10 s).
fn run_daemon(lab: &Lab, daemon: &str, args: &[&str]) -> Output {
    wait_output(
        lab.cmd(daemon)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(10),
    )
}

#[test]
fn a_misspelt_option_is_warned_once_at_start_with_the_nearest_option() {
    // worker_threads is Salt's (halite does not use it) and mysql.host configures a module:
    // neither is a typo.
    let mut lab = Lab::with_config("reactr: []\nworker_threads: 4\nmysql.host: db\n", "");
    lab.start_master();
    let (_, err) = lab.take_daemon().stop();
    let warning = format!(
        "unknown option reactr in {}: did you mean reactor?",
        lab.etc().join("master").display()
    );
    assert_eq!(err.matches(&warning).count(), 1, "{err}");
    assert_eq!(lab.log("master").matches(&warning).count(), 1);
    assert!(
        !err.contains("worker_threads") && !err.contains("mysql"),
        "{err}"
    );
    // Commands stay quiet about it.
    let output = lab.run("salt-run", &["test.arg", "1"]);
    assert!(!stderr(&output).contains("reactr"), "{}", stderr(&output));
}

#[test]
fn a_value_of_the_wrong_kind_stops_master_and_minion_at_start_naming_option_and_file() {
    let lab = Lab::with_config("timeout: soon\n", "");
    let output = run_daemon(&lab, "salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    let expected = format!(
        "error: option timeout in {}: expected a number of seconds, got \"soon\"\n",
        lab.etc().join("master").display()
    );
    assert_eq!(stderr(&output), expected);

    // An included file is named as the one that sets it.
    let lab = Lab::new();
    std::fs::create_dir(lab.etc().join("minion.d")).unwrap();
    let conf = lab.etc().join("minion.d/tuning.conf");
    std::fs::write(&conf, "recon_max: many\n").unwrap();
    let output = run_daemon(&lab, "salt-minion", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: option recon_max in {}: expected a non-negative integer, got \"many\"\n",
            conf.display()
        )
    );
}

#[test]
fn a_yaml_error_is_printed_once_by_daemons_and_commands() {
    let lab = Lab::new();
    for role in ["master", "minion"] {
        std::fs::write(lab.etc().join(role), "timeout: [\nid: x: y\n").unwrap();
    }
    for (command, args) in [
        ("salt-master", &[][..]),
        ("salt-minion", &[]),
        ("salt-api", &[]),
        ("salt-master", &["--check-config"]),
        ("salt-run", &["test.arg"]),
        ("salt-call", &["--local", "test.ping"]),
        ("salt", &["*", "test.ping"]),
    ] {
        let output = run_daemon(&lab, command, args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command}: {err}");
        assert_eq!(err.matches("invalid YAML").count(), 1, "{command}: {err}");
        assert_eq!(err.lines().count(), 1, "{command}: {err}");
    }
}

#[test]
fn check_config_reports_every_problem_and_starts_nothing() {
    let lab = Lab::new();
    for daemon in ["salt-master", "salt-minion", "salt-api"] {
        let output = run_daemon(&lab, daemon, &["--check-config"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{daemon}: {}",
            stderr(&output)
        );
        let role = if daemon == "salt-minion" {
            "minion"
        } else {
            "master"
        };
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("configuration OK: {}\n", lab.etc().join(role).display())
        );
    }
    assert!(!lab.master_sock_dir().exists(), "nothing was started");

    let lab = Lab::with_config(
        "file_root: {}\nloop_interval: often\nreactor:\n  - 'app/*': [/nonexistent/react.sls]\n",
        "",
    );
    let output = run_daemon(&lab, "salt-master", &["--check-config"]);
    assert_eq!(output.status.code(), Some(1));
    let file = lab.etc().join("master").display().to_string();
    assert_eq!(
        stderr(&output),
        format!(
            "error: option loop_interval in {file}: expected a number of seconds, got \"often\"\n\
             error: unknown option file_root in {file}: did you mean file_roots?\n\
             error: reactor: /nonexistent/react.sls (for app/*) names no file\n"
        )
    );
    assert!(output.stdout.is_empty());
    assert!(!lab.master_sock_dir().exists(), "nothing was started");
}
