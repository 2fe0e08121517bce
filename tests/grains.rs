//! Grains against real Salt: halite's `salt-call --local grains.items` and Salt 3007.8's on the
//! same host, the same configuration, working directory and environment, compared grain by
//! grain. Every grain both have must be equal, but for the few listed in [`DIFFERENT`]; Salt's
//! grains halite does not give are listed in [`OMITTED`]; any other difference fails.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{bin, stderr, stdout};

/// Grains whose values differ on purpose, and why (checked by [`different_on_purpose`]).
const DIFFERENT: &[(&str, &str)] = &[
    (
        "pid",
        "the process's own id: each salt-call is its own process",
    ),
    (
        "saltversion",
        "halite's version: the minion runs halite, not Salt",
    ),
    ("saltversioninfo", "halite's version, as numbers"),
    (
        "locale_info",
        "timezone: Salt says \"unknown\" when python-dateutil is missing; halite names the zone",
    ),
    (
        "fqdn_ip4",
        "halite sorts the addresses; Salt's order is a Python set's",
    ),
    (
        "fqdn_ip6",
        "halite sorts the addresses; Salt's order is a Python set's",
    ),
];

/// Salt's grains halite leaves out, and why; the last ones only on some hosts.
const OMITTED: &[(&str, &str)] = &[
    ("pythonversion", "halite has no Python interpreter"),
    ("pythonpath", "halite has no Python interpreter"),
    ("pythonexecutable", "halite has no Python interpreter"),
    ("saltpath", "halite has no Salt package on disk"),
    ("zmqversion", "halite does not use ZeroMQ"),
    (
        "package",
        "how Salt was installed (onedir, pip, system); halite is one binary",
    ),
    (
        "systemd",
        "its version and features come from running `systemctl --version`; grains run no commands",
    ),
    (
        "lvm",
        "Salt runs `lvm vgs` and `lvm lvs` where LVM is installed",
    ),
    ("zpool", "Salt runs `zpool list` where ZFS is installed"),
    (
        "virtual_hv_version",
        "Xen's hypervisor details, read on Xen only",
    ),
    (
        "virtual_hv_version_info",
        "Xen's hypervisor details, read on Xen only",
    ),
    (
        "virtual_hv_features",
        "Xen's hypervisor details, read on Xen only",
    ),
    (
        "virtual_hv_features_list",
        "Xen's hypervisor details, read on Xen only",
    ),
    (
        "num_gpus",
        "given only on a host without a PCI display device: naming one needs lspci's database",
    ),
    (
        "gpus",
        "given only on a host without a PCI display device: naming one needs lspci's database",
    ),
];

/// How many of [`OMITTED`] halite never gives.
const ALWAYS_OMITTED: usize = 7;

fn lab() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hg")
        .tempdir_in("/tmp")
        .unwrap();
    let r = dir.path().display();
    std::fs::create_dir_all(dir.path().join("conf")).unwrap();
    std::fs::write(
        dir.path().join("conf/minion"),
        format!(
            "id: web1\nroot_dir: {r}/root\ncachedir: {r}/root/cache\npki_dir: {r}/root/pki\nsock_dir: {r}/root/sock\nlog_file: {r}/root/log\nfile_client: local\niscsi_grains: True\nnvme_grains: True\nfibre_channel_grains: True\n"
        ),
    )
    .unwrap();
    dir
}

fn grains_items(program: &Path, lab: &Path) -> serde_json::Map<String, Value> {
    let output = Command::new(program)
        .current_dir(lab)
        .args(["--local", "-c"])
        .arg(lab.join("conf"))
        .args(["grains.items", "--out=json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        program.display(),
        stderr(&output)
    );
    let parsed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    match parsed.get("local") {
        Some(Value::Object(grains)) => grains.clone(),
        other => panic!("{}: no grains: {other:?}", program.display()),
    }
}

/// Whether a grain listed in [`DIFFERENT`] differs only as its reason says.
fn different_on_purpose(key: &str, ours: &Value, theirs: &Value) -> bool {
    match key {
        "pid" => ours.is_u64() && theirs.is_u64(),
        "saltversion" => ours == env!("CARGO_PKG_VERSION") && theirs.is_string(),
        "saltversioninfo" => ours.is_array() && theirs.is_array(),
        "locale_info" => {
            let without_zone = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().map(|m| m.remove("timezone"));
                v
            };
            without_zone(ours) == without_zone(theirs)
                && (theirs["timezone"] == "unknown" || theirs["timezone"] == ours["timezone"])
                && ours["timezone"]
                    .as_str()
                    .is_some_and(|zone| !zone.is_empty())
        }
        "fqdn_ip4" | "fqdn_ip6" => {
            let mut sorted: Vec<Value> = theirs.as_array().cloned().unwrap_or_default();
            sorted.sort_by_key(|v| v.to_string());
            ours.as_array() == Some(&sorted)
        }
        _ => false,
    }
}

#[test]
fn grains_items_matches_salt_3007_8_on_the_same_host() {
    let venv = match crate::conformance::installed("3007.8") {
        Ok(venv) => venv,
        Err(missing) => {
            eprintln!("SKIPPED the comparison with Salt's grains: {missing}");
            return;
        }
    };
    let lab = lab();
    let theirs = grains_items(&venv.join("bin/salt-call"), lab.path());
    let ours = grains_items(&bin("salt-call"), lab.path());
    let listed = |list: &[(&str, &str)], key: &str| list.iter().any(|(k, _)| *k == key);
    let mut problems = Vec::new();
    for (key, value) in &theirs {
        match ours.get(key) {
            None if listed(OMITTED, key) => {}
            None => problems.push(format!("{key}: missing (Salt's is {value})")),
            Some(ours) if ours == value => {}
            Some(ours) if listed(DIFFERENT, key) && different_on_purpose(key, ours, value) => {}
            Some(ours) => problems.push(format!("{key}: halite's {ours} != Salt's {value}")),
        }
    }
    for key in ours.keys().filter(|key| !theirs.contains_key(*key)) {
        problems.push(format!("{key}: Salt has no such grain on this host"));
    }
    for (key, _) in &OMITTED[..ALWAYS_OMITTED] {
        if ours.contains_key(*key) {
            problems.push(format!("{key}: listed as omitted but given"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of Salt's {} grains differ:\n{}",
        problems.len(),
        theirs.len(),
        problems.join("\n")
    );
}
