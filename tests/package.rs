//! The Debian package: `cargo deb` packs the `halite` binary this test run built (the debug
//! profile, so that CI compiles nothing more for it), and the package, unpacked into a
//! temporary root, holds it with Salt's command names linked to it, the units, logrotate file, man pages and completions, declares that it
//! replaces Salt's packages, and its binaries run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::COMMANDS;

const UNITS: [&str; 3] = ["salt-master", "salt-minion", "salt-api"];

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the package from the debug binaries into `dir`.
fn build_deb(dir: &Path) -> PathBuf {
    let deb = dir.join("halite.deb");
    run(cargo()
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(&deb)
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")));
    deb
}

/// Where the units are in the unpacked root (`lib` or `usr/lib`, by cargo-deb's version).
fn unit_dir(root: &Path) -> PathBuf {
    ["usr/lib/systemd/system", "lib/systemd/system"]
        .iter()
        .map(|dir| root.join(dir))
        .find(|dir| dir.join("salt-master.service").exists())
        .unwrap_or_else(|| panic!("no salt-master.service under {}", root.display()))
}

#[test]
fn deb_installs_binaries_units_logrotate_and_docs_that_replace_salts_packages() {
    if cargo()
        .args(["deb", "--version"])
        .output()
        .map_or(true, |out| !out.status.success())
    {
        return eprintln!("SKIPPED: no cargo-deb (tests/cargo-tools.sh installs it)");
    }
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        return eprintln!("SKIPPED: no dpkg-deb (not a Debian system)");
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());
    let fields = |field: &str| {
        let output = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(field));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(fields("Package"), "halite");
    for field in ["Conflicts", "Replaces"] {
        assert_eq!(
            fields(field),
            "salt-common, salt-master, salt-minion, salt-api",
            "{field}"
        );
    }
    assert_eq!(
        fields("Provides"),
        "",
        "halite is not Salt's Python library"
    );
    assert!(fields("Depends").contains("libc6"), "{}", fields("Depends"));

    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    // One binary, Salt's command names linked to it; each name runs its own command.
    let halite = Command::new(root.join("usr/bin/halite")).output().unwrap();
    assert_eq!(halite.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&halite.stderr).contains("link it as one of salt-master,"),
        "{}",
        String::from_utf8_lossy(&halite.stderr)
    );
    for name in COMMANDS {
        let binary = root.join("usr/bin").join(name);
        assert_eq!(
            std::fs::read_link(&binary).unwrap(),
            Path::new("halite"),
            "{name}"
        );
        let output = run(Command::new(&binary).arg("--version"));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
        );
        let section = if matches!(name, "salt-master" | "salt-minion" | "salt-api") {
            8
        } else {
            1
        };
        for file in [
            format!("usr/share/man/man{section}/{name}.{section}"),
            format!("usr/share/bash-completion/completions/{name}"),
            format!("usr/share/zsh/vendor-completions/_{name}"),
            format!("usr/share/fish/vendor_completions.d/{name}.fish"),
        ] {
            let found = root.join(&file).exists() || root.join(format!("{file}.gz")).exists();
            assert!(found, "no {file}");
        }
    }
    let logrotate = std::fs::read_to_string(root.join("etc/logrotate.d/halite")).unwrap();
    assert!(!logrotate.contains("\tcopytruncate"), "{logrotate}");
    assert!(root.join("usr/share/doc/halite/copyright").exists());

    let units = unit_dir(&root);
    for unit in UNITS {
        let text = std::fs::read_to_string(units.join(format!("{unit}.service"))).unwrap();
        assert!(text.contains("\nType=notify\n"), "{unit}: {text}");
        assert!(
            text.contains(&format!("\nExecStart=/usr/bin/{unit}\n")),
            "{unit}: {text}"
        );
    }
    // Installed for the operator to enable: the package starts no daemon by itself.
    let scripts = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&scripts));
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    // An upgrade re-enables what the operator had enabled, and restarts what was running.
    let lines: Vec<&str> = postinst.lines().collect();
    for (at, line) in lines.iter().enumerate() {
        if line.contains("deb-systemd-helper enable") {
            let guard = lines[..at].iter().rev().take(2);
            assert!(
                guard.clone().any(|l| l.contains("was-enabled")),
                "{postinst}"
            );
        }
    }

    verify_units(&root, &units);
}

/// `systemd-analyze verify` on the unpacked units, against the host's systemd units, with
/// `ExecStart=` moved into the unpacked root (its `/usr/bin/<unit>` is checked above).
fn verify_units(root: &Path, units: &Path) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return eprintln!("units not verified: SKIPPED (no systemd-analyze)");
    }
    let copies = root.parent().unwrap().join("units");
    std::fs::create_dir_all(&copies).unwrap();
    let mut command = Command::new("systemd-analyze");
    command.args(["verify", "--man=no", "--generators=no"]);
    for unit in UNITS {
        let name = format!("{unit}.service");
        let text = std::fs::read_to_string(units.join(&name)).unwrap();
        let moved = text.replace(
            "\nExecStart=/usr/bin/",
            &format!("\nExecStart={}/usr/bin/", root.display()),
        );
        std::fs::write(copies.join(&name), moved).unwrap();
        command.arg(copies.join(&name));
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Only what concerns our units: the host's own may have warnings of their own.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            UNITS
                .iter()
                .any(|unit| line.contains(&format!("{unit}.service")))
        })
        .collect();
    assert!(ours.is_empty(), "{}", ours.join("\n"));
}
