//! The link across real interfaces: the master and a minion in separate network namespaces,
//! joined by a veth pair.

use std::process::Command;
use std::time::Duration;

use crate::support::{Cluster, stdout, wait_until};

/// Two namespaces and the veth pair between them, removed on drop.
struct Namespaces {
    master: String,
    minion: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|err| format!("cannot run ip: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Namespaces {
    fn create(tag: u32, subnet: u32) -> Result<Self, String> {
        let namespaces = Self {
            master: format!("hlm{tag}"),
            minion: format!("hln{tag}"),
        };
        let (veth_master, veth_minion) = (format!("hvm{tag}"), format!("hvn{tag}"));
        ip(&["netns", "add", &namespaces.master])?;
        ip(&["netns", "add", &namespaces.minion])?;
        ip(&[
            "link",
            "add",
            &veth_master,
            "type",
            "veth",
            "peer",
            "name",
            &veth_minion,
        ])?;
        ip(&["link", "set", &veth_master, "netns", &namespaces.master])?;
        ip(&["link", "set", &veth_minion, "netns", &namespaces.minion])?;
        for (ns, veth, host) in [
            (&namespaces.master, &veth_master, 1),
            (&namespaces.minion, &veth_minion, 2),
        ] {
            let address = format!("10.201.{subnet}.{host}/24");
            ip(&["-n", ns, "addr", "add", &address, "dev", veth])?;
            ip(&["-n", ns, "link", "set", veth, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        let _ = ip(&["netns", "del", &self.master]);
        let _ = ip(&["netns", "del", &self.minion]);
    }
}

#[test]
fn master_and_minion_in_separate_network_namespaces() {
    let tag = std::process::id() % 100_000;
    let subnet = tag % 250;
    let namespaces = match Namespaces::create(tag, subnet) {
        Ok(namespaces) => namespaces,
        Err(reason) => {
            eprintln!(
                "SKIPPED: network namespaces cannot be created here ({reason}); this test needs root and iproute2"
            );
            return;
        }
    };
    let master_address = format!("10.201.{subnet}.1");
    let mut cluster = Cluster::new("auto_accept: True\nlink_keepalive: 1\n");
    cluster.edit_master_config(
        "interface: 127.0.0.1",
        &format!("interface: {master_address}"),
    );
    cluster.start_master_under(&["ip", "netns", "exec", &namespaces.master]);
    cluster.configure_minion("far1", "link_keepalive: 1\n");
    let config = cluster.minion_dir("far1").join("etc/minion");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("master: 127.0.0.1", &format!("master: {master_address}"));
    std::fs::write(&config, text).unwrap();
    let _minion = cluster.spawn_minion_under("far1", &["ip", "netns", "exec", &namespaces.minion]);
    cluster.wait_connected(&["far1"]);
    let output = cluster.run("salt", &["far1", "grains.get", "ipv4", "--out=json"]);
    let text = stdout(&output);
    assert!(
        text.contains(&format!("\"10.201.{subnet}.2\"")),
        "the minion answers from its own namespace: {text}"
    );
    assert!(
        cluster
            .master_log()
            .contains(&format!("minion far1 connected from 10.201.{subnet}.2:")),
        "{}",
        cluster.master_log()
    );
    // A cable pulled, not a connection closed: no FIN arrives, the keepalive finds out.
    let down = ip(&[
        "-n",
        &namespaces.minion,
        "link",
        "set",
        &format!("hvn{tag}"),
        "down",
    ]);
    assert!(down.is_ok(), "{down:?}");
    let gone = format!("minion far1 (10.201.{subnet}.2:");
    assert!(
        wait_until(Duration::from_secs(10), || cluster
            .master_log()
            .lines()
            .any(|line| line.contains(&gone) && line.ends_with("disconnected"))),
        "{}",
        cluster.master_log()
    );
}
