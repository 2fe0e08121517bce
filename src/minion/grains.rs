//! Grains: facts about the minion's host, computed natively, plus static grains from the
//! minion config (`grains:`) and `<config_dir>/grains`, which win.

use crate::config::Config;
use crate::event::Value;
use crate::salt_yaml;

/// The minion's grains, in a stable order.
pub fn grains(config: &Config) -> Vec<(Value, Value)> {
    let uname = nix::sys::utsname::uname().ok();
    let field = |get: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname
            .as_ref()
            .map(|u| get(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let release = os_release();
    let os_id = release
        .iter()
        .find(|(k, _)| k == "ID")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let (os, os_family) = os_names(os_id);
    let fqdn = config.get_str("id").ok().flatten().map(str::to_owned);
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut grains: Vec<(Value, Value)> = vec![
        ("id".into(), config.id().unwrap_or_default().into()),
        (
            "host".into(),
            host.split('.').next().unwrap_or_default().into(),
        ),
        ("nodename".into(), field(|u| u.nodename()).into()),
        ("fqdn".into(), fqdn.unwrap_or(host).into()),
        ("kernel".into(), field(|u| u.sysname()).into()),
        ("kernelrelease".into(), field(|u| u.release()).into()),
        ("cpuarch".into(), field(|u| u.machine()).into()),
        (
            "num_cpus".into(),
            (std::thread::available_parallelism().map_or(1, usize::from) as u64).into(),
        ),
        ("os".into(), os.into()),
        ("os_family".into(), os_family.into()),
        ("mem_total".into(), mem_total_mib().into()),
        ("ipv4".into(), addresses(false)),
        ("ipv6".into(), addresses(true)),
        (
            "osrelease".into(),
            release
                .iter()
                .find(|(k, _)| k == "VERSION_ID")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
                .into(),
        ),
    ];
    let mut statics = Vec::new();
    if let Some(Value::Map(configured)) = config.get("grains") {
        statics.extend(configured.iter().cloned());
    }
    if let Ok(text) = std::fs::read_to_string(config.config_dir().join("grains"))
        && let Ok(Value::Map(file)) = salt_yaml::load(&text)
    {
        statics.extend(file);
    }
    for (key, value) in statics {
        match grains.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = value,
            None => grains.push((key, value)),
        }
    }
    grains
}

/// `MemTotal` in MiB, as Salt's `mem_total`.
fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib / 1024)
}

/// The host's addresses of one family, loopback included, sorted and without duplicates.
fn addresses(v6: bool) -> Value {
    let mut found: Vec<String> = nix::ifaddrs::getifaddrs()
        .map(|interfaces| {
            interfaces
                .filter_map(|interface| interface.address)
                .filter_map(|address| {
                    if v6 {
                        address.as_sockaddr_in6().map(|a| a.ip().to_string())
                    } else {
                        address.as_sockaddr_in().map(|a| a.ip().to_string())
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.dedup();
    Value::Array(found.into_iter().map(Value::from).collect())
}

/// The `KEY=value` pairs of `/etc/os-release`, quotes removed (none when it cannot be read).
pub fn os_release() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// Salt's `os` and `os_family` names for an os-release `ID`.
fn os_names(id: &str) -> (String, &'static str) {
    let os = match id {
        "debian" => "Debian".to_owned(),
        "ubuntu" => "Ubuntu".to_owned(),
        "rhel" => "RedHat".to_owned(),
        "centos" => "CentOS".to_owned(),
        "fedora" => "Fedora".to_owned(),
        "rocky" => "Rocky".to_owned(),
        "almalinux" => "AlmaLinux".to_owned(),
        "arch" => "Arch".to_owned(),
        "alpine" => "Alpine".to_owned(),
        "opensuse-leap" | "opensuse-tumbleweed" | "sles" => "SUSE".to_owned(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    };
    let family = match id {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" => "Debian",
        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "amzn" | "ol" => "RedHat",
        "arch" | "manjaro" => "Arch",
        "alpine" => "Alpine",
        "opensuse-leap" | "opensuse-tumbleweed" | "sles" => "Suse",
        _ => "Unknown",
    };
    (os, family)
}
