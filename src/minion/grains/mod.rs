//! Grains: facts about the minion's host, named and shaped as Salt 3007.8's core grains on
//! Linux, read natively (uname, /etc/os-release, /proc, /sys, rtnetlink, the resolver) once
//! when the minion starts; plus static grains from the minion config (`grains:`) and
//! `<config_dir>/grains`, which win. README, "Grains", lists them and where they differ.

mod hardware;
mod network;
mod os;

pub(crate) use os::os_release;

use sha2::Digest;

use crate::config::Config;
use crate::event::Value;
use crate::salt_yaml;

/// Grains being gathered, by name.
#[derive(Debug, Default)]
pub(super) struct Grains(Vec<(String, Value)>);

impl Grains {
    fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string grain, empty when absent or not a string.
    fn text(&self, key: &str) -> String {
        self.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
}

/// The minion's grains, sorted by name, static grains last.
pub fn grains(config: &Config) -> Vec<(Value, Value)> {
    let mut grains = core(config);
    grains.0.sort_by(|(a, _), (b, _)| a.cmp(b));
    let mut grains: Vec<(Value, Value)> = grains
        .0
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
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

fn core(config: &Config) -> Grains {
    let mut grains = Grains::default();
    let id = config.id().unwrap_or_default();
    grains.set("id", id.as_str());
    grains.set("server_id", server_id(&id));
    grains.set(
        "master",
        config
            .get("master")
            .cloned()
            .unwrap_or_else(|| "salt".into()),
    );
    uname(&mut grains);

    let release = os::os_release();
    os::distribution(&mut grains, release.as_ref());
    hardware::cpu(&mut grains);
    hardware::gpus(&mut grains);
    hardware::device_tree(&mut grains);
    hardware::memory(&mut grains);
    hardware::firmware(&mut grains);
    hardware::virtualisation(&mut grains);
    hardware::init(&mut grains);
    hardware::selinux(&mut grains);
    hardware::disks(&mut grains);
    hardware::efi(&mut grains);
    hardware::zfs(&mut grains);
    hardware::kernel_params(&mut grains);
    hardware::mdadm(&mut grains);
    let option = |name: &str| config.get_bool(name, false).unwrap_or(false);
    hardware::initiators(
        &mut grains,
        option("iscsi_grains"),
        option("nvme_grains"),
        option("fibre_channel_grains"),
    );
    let osarch = os::osarch(&grains.text("os_family"), &grains.text("cpuarch"));
    grains.set("osarch", osarch);
    os::release_data(&mut grains);
    grains.set(
        "ps",
        if grains.text("virtual") == "openvzhn" {
            r#"ps -fH -p $(grep -l "^envID:[[:space:]]*0\$" /proc/[0-9]*/status | sed -e "s=/proc/\([0-9]*\)/.*=\1=")  | awk '{ $7=""; print }'"#
        } else if grains.text("os_family") == "NILinuxRT" {
            "ps -o user,pid,ppid,tty,time,comm"
        } else {
            "ps -efHww"
        },
    );

    let interfaces = network::interfaces();
    network::addresses(&mut grains, &interfaces);
    network::gateways(&mut grains);
    network::dns(&mut grains);
    let localhost = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fqdn = network::fqdn(&localhost);
    let (host, domain) = fqdn.split_once('.').unwrap_or((&fqdn, ""));
    grains.set("host", host);
    grains.set("domain", domain);
    grains.set("localhost", localhost.as_str());
    network::fqdn_addresses(&mut grains, &fqdn);
    grains.set("fqdn", fqdn.as_str());
    // Off unless asked for, as in Salt 3006 and 3007 on every platform: one reverse lookup per
    // address, each a DNS query.
    if config
        .get_bool("enable_fqdns_grains", false)
        .unwrap_or(false)
    {
        network::fqdns(&mut grains, &interfaces);
    } else {
        grains.set("fqdns", Value::Array(Vec::new()));
    }

    process(&mut grains);
    if let Some(machine_id) = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
    {
        grains.set("machine_id", machine_id.trim());
    }
    grains.set(
        "transactional",
        hardware::which("transactional-update").is_some(),
    );
    locale(&mut grains);
    // halite's own version: the minion runs halite, not Salt.
    let version = env!("CARGO_PKG_VERSION");
    grains.set("saltversion", version);
    grains.set(
        "saltversioninfo",
        Value::Array(
            version
                .split('.')
                .filter_map(|part| part.parse::<u64>().ok())
                .map(Value::from)
                .collect(),
        ),
    );
    grains
}

/// `kernel`, `nodename`, `kernelrelease`, `kernelversion`, `cpuarch` from uname(2).
fn uname(grains: &mut Grains) {
    let Ok(uname) = nix::sys::utsname::uname() else {
        return;
    };
    for (key, field) in [
        ("kernel", uname.sysname()),
        ("nodename", uname.nodename()),
        ("kernelrelease", uname.release()),
        ("kernelversion", uname.version()),
        ("cpuarch", uname.machine()),
    ] {
        grains.set(key, field.to_string_lossy().into_owned());
    }
}

/// `server_id`: the id's SHA-256 as a number, modulo 2³¹ (its last 31 bits).
fn server_id(id: &str) -> u64 {
    let digest = sha2::Sha256::digest(id.as_bytes());
    let tail: [u8; 4] = digest[28..].try_into().unwrap_or_default();
    u64::from(u32::from_be_bytes(tail) & 0x7fff_ffff)
}

/// The process's grains: `pid`, `uid`, `gid`, `username`, `groupname` (the user's primary
/// group), `cwd`, `path`, `systempath`, `shell`.
fn process(grains: &mut Grains) {
    use nix::unistd::{Group, User, getegid, geteuid};
    grains.set("pid", u64::from(std::process::id()));
    let (uid, gid) = (geteuid(), getegid());
    grains.set("uid", u64::from(uid.as_raw()));
    grains.set("gid", u64::from(gid.as_raw()));
    let user = User::from_uid(uid).ok().flatten();
    if let Some(user) = &user {
        grains.set("username", user.name.as_str());
    }
    let group = user
        .and_then(|user| Group::from_gid(user.gid).ok().flatten())
        .map(|group| group.name)
        .unwrap_or_default();
    grains.set("groupname", group);
    if let Ok(cwd) = std::env::current_dir() {
        grains.set("cwd", cwd.to_string_lossy().into_owned());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let path = path.trim();
    grains.set("path", path);
    grains.set(
        "systempath",
        Value::Array(path.split(':').map(Value::from).collect()),
    );
    grains.set(
        "shell",
        std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
    );
}

/// `locale_info`: the language and encoding of the environment's LC_ALL / LC_CTYPE / LANG (the
/// C and POSIX locales read as Python reads them, `en_US` in UTF-8), and the local time zone's
/// abbreviation.
fn locale(grains: &mut Grains) {
    let setting = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .unwrap_or_default();
    let (language, encoding) = match setting.split_once('.') {
        _ if ["", "C", "POSIX", "C.UTF-8", "C.utf8"].contains(&setting.as_str()) => {
            ("en_US".to_owned(), "UTF-8".to_owned())
        }
        Some((language, encoding)) => {
            let encoding = encoding.split('@').next().unwrap_or_default();
            let encoding = match encoding.to_lowercase().replace('-', "").as_str() {
                "utf8" => "UTF-8".to_owned(),
                _ => encoding.to_owned(),
            };
            (language.to_owned(), encoding)
        }
        None => (setting.clone(), "ISO8859-1".to_owned()),
    };
    let timezone = local_zone()
        .to_offset_info(jiff::Timestamp::now())
        .abbreviation()
        .to_owned();
    grains.set(
        "locale_info",
        Value::Map(vec![
            ("defaultlanguage".into(), language.into()),
            ("defaultencoding".into(), encoding.into()),
            ("detectedencoding".into(), "utf-8".into()),
            ("timezone".into(), timezone.into()),
        ]),
    );
}

/// The local time zone: `$TZ`, else /etc/localtime read as it is (jiff's own lookup searches
/// the zoneinfo tree for its name, which costs start-up time for a name not needed here).
fn local_zone() -> jiff::tz::TimeZone {
    use jiff::tz::TimeZone;
    if let Ok(tz) = std::env::var("TZ")
        && let Ok(zone) =
            TimeZone::get(tz.trim_start_matches(':')).or_else(|_| TimeZone::posix(&tz))
    {
        return zone;
    }
    std::fs::read("/etc/localtime")
        .ok()
        .and_then(|data| TimeZone::tzif("localtime", &data).ok())
        .unwrap_or(TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_id_is_the_ids_sha256_modulo_two_to_the_31() {
        // Salt 3007.8's server_id for the id "web1".
        assert_eq!(server_id("web1"), 1826842219);
    }
}
