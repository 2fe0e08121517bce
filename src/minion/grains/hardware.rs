//! The machine's grains from /proc and /sys: CPU, memory, firmware (DMI), disks, EFI,
//! virtualisation, the init system, SELinux, ZFS, the kernel's command line. Salt 3007.8 runs
//! `systemd-detect-virt`, `dmidecode`, `lspci`, `selinuxenabled`, `man` and the like for some
//! of these; halite reads the files those commands read, so a minion starts without them.

use std::path::Path;

use super::Grains;
use crate::event::Value;

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `num_cpus`, `cpu_model`, `cpu_flags` from /proc/cpuinfo, read line by line as Salt does
/// (x86's `model name` and `flags`, ARM's `Processor` and `Features`, POWER's `cpu`).
pub(super) fn cpu(grains: &mut Grains) {
    let (mut count, mut model, mut flags) = (0u64, None::<String>, None::<Vec<Value>>);
    for line in read("/proc/cpuinfo").unwrap_or_default().lines() {
        // Salt splits on every ':' and keeps the second piece.
        let mut pieces = line.split(':');
        let (Some(key), Some(value)) = (pieces.next(), pieces.next()) else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => count += 1,
            "# processors" => count = value.parse().unwrap_or(count),
            "vendor_id" | "model name" | "cpu" => model = Some(value.to_owned()),
            "flags" | "Features" => {
                flags = Some(value.split_whitespace().map(Value::from).collect());
            }
            "Processor" => {
                model = Some(value.split('-').next().unwrap_or_default().to_owned());
                count = 1;
            }
            _ => {}
        }
    }
    grains.set("num_cpus", count);
    grains.set("cpu_model", model.unwrap_or_else(|| "Unknown".to_owned()));
    grains.set("cpu_flags", Value::Array(flags.unwrap_or_default()));
}

/// `mem_total` and `swap_total` in MiB, rounded down.
pub(super) fn memory(grains: &mut Grains) {
    let (mut mem, mut swap) = (0u64, 0u64);
    for line in read("/proc/meminfo").unwrap_or_default().lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib = || {
            rest.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        };
        match key.trim() {
            "MemTotal" => mem = kib().unwrap_or(0) / 1024,
            "SwapTotal" => swap = kib().unwrap_or(0) / 1024,
            _ => {}
        }
    }
    grains.set("mem_total", mem);
    grains.set("swap_total", swap);
}

const DMI: &str = "/sys/class/dmi/id";

/// The firmware's description (`biosversion`, `manufacturer`, `productname`, `uuid`, ...) from
/// /sys/class/dmi/id; a file the minion may not read (`product_serial` is root's) is left out.
pub(super) fn firmware(grains: &mut Grains) {
    if !Path::new(DMI).exists() {
        return;
    }
    for (grain, file) in [
        ("biosversion", "bios_version"),
        ("biosvendor", "bios_vendor"),
        ("boardname", "board_name"),
        ("productname", "product_name"),
        ("manufacturer", "sys_vendor"),
        ("biosreleasedate", "bios_date"),
        ("uuid", "product_uuid"),
        ("serialnumber", "product_serial"),
    ] {
        if let Ok(bytes) = std::fs::read(Path::new(DMI).join(file)) {
            let text = String::from_utf8_lossy(bytes.trim_ascii()).into_owned();
            let text = if grain == "uuid" {
                text.to_lowercase()
            } else {
                text
            };
            grains.set(grain, text);
        }
    }
}

/// `manufacturer`, `productname`, `serialnumber` from the device tree of boards without DMI
/// (ARM, POWER): its `model` (`maker,product`), `serial-number` or `system-id`.
pub(super) fn device_tree(grains: &mut Grains) {
    if !Path::new("/proc/device-tree").is_dir() {
        return;
    }
    let string = |name: &str| {
        read(Path::new("/proc/device-tree").join(name))
            .map(|text| text.trim_end_matches('\0').to_owned())
            .filter(|text| !text.is_empty())
    };
    if let Some(model) = string("model") {
        match model.split_once(',') {
            Some((maker, product)) => {
                grains.set("manufacturer", maker);
                grains.set("productname", product);
            }
            None => grains.set("productname", model),
        }
    }
    if let Some(serial) = string("serial-number").or_else(|| string("system-id")) {
        grains.set("serialnumber", serial);
    }
}

/// `mdadm`: the md devices /proc/mdstat lists, sorted; none without md.
pub(super) fn mdadm(grains: &mut Grains) {
    let Some(mdstat) = read("/proc/mdstat") else {
        return;
    };
    let mut devices: Vec<&str> = mdstat
        .lines()
        .filter(|line| {
            !line.starts_with("Personalities : ") && !line.starts_with("unused devices:")
        })
        .filter_map(|line| line.split_once(" : ").map(|(device, _)| device))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    grains.set(
        "mdadm",
        Value::Array(devices.into_iter().map(Value::from).collect()),
    );
}

/// The storage initiator names Salt gives when its options ask: `iscsi_iqn`
/// (`iscsi_grains: True`), `nvme_nqn` (`nvme_grains: True`), `fc_wwn`
/// (`fibre_channel_grains: True`).
pub(super) fn initiators(grains: &mut Grains, iscsi: bool, nvme: bool, fibre_channel: bool) {
    let lines = |path: &str, keep: &dyn Fn(&str) -> Option<String>| {
        Value::Array(
            read(path)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| keep(line.trim()))
                .map(Value::from)
                .collect(),
        )
    };
    if iscsi {
        let iqn = lines("/etc/iscsi/initiatorname.iscsi", &|line| {
            line.strip_prefix("InitiatorName=").map(str::to_owned)
        });
        grains.set("iscsi_iqn", iqn);
    }
    if nvme {
        let nqn = lines("/etc/nvme/hostnqn", &|line| {
            line.starts_with("nqn.").then(|| line.to_owned())
        });
        grains.set("nvme_nqn", nqn);
    }
    if fibre_channel {
        let mut wwns = Vec::new();
        for host in std::fs::read_dir("/sys/class/fc_host")
            .into_iter()
            .flatten()
            .flatten()
        {
            for line in read(host.path().join("port_name"))
                .unwrap_or_default()
                .lines()
            {
                // `0x` and the number.
                wwns.push(Value::from(line.trim_end().get(2..).unwrap_or_default()));
            }
        }
        grains.set("fc_wwn", Value::Array(wwns));
    }
}

/// `disks` (rotational) and `ssds` among /sys/block's devices that are not virtual, in the
/// directory's order.
pub(super) fn disks(grains: &mut Grains) {
    let (mut disks, mut ssds) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
    {
        let virtual_device = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.starts_with("../devices/virtual/"));
        if virtual_device {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match read(entry.path().join("queue/rotational"))
            .unwrap_or_default()
            .chars()
            .next()
        {
            Some('0') => ssds.push(Value::from(name)),
            Some('1') => disks.push(Value::from(name)),
            _ => {}
        }
    }
    grains.set("disks", Value::Array(disks));
    grains.set("ssds", Value::Array(ssds));
}

/// `efi` and `efi-secure-boot`: booted by EFI, and its SecureBoot variable set.
pub(super) fn efi(grains: &mut Grains) {
    let vars = ["/sys/firmware/efi/efivars", "/sys/firmware/efi/vars"]
        .into_iter()
        .find(|dir| Path::new(dir).exists());
    let secure = vars.is_some_and(|dir| {
        let pattern = if dir.ends_with("efivars") {
            format!("{dir}/SecureBoot-*")
        } else {
            format!("{dir}/SecureBoot-*/data")
        };
        let found: Vec<_> = glob::glob(&pattern)
            .map(|paths| paths.flatten().collect())
            .unwrap_or_default();
        found.len() == 1 && std::fs::read(&found[0]).is_ok_and(|bytes| bytes.last() == Some(&1))
    });
    grains.set("efi", vars.is_some());
    grains.set("efi-secure-boot", secure);
}

/// The first `name` on `$PATH` that is a file, as `which`.
pub(super) fn which(name: &str) -> Option<std::path::PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| name.into());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// `init`: systemd when /run/systemd/system exists, else what PID 1's command line names.
pub(super) fn init(grains: &mut Grains) {
    grains.set("init", init_system());
}

fn init_system() -> String {
    if Path::new("/run/systemd/system").exists() {
        return "systemd".into();
    }
    let Ok(cmdline) = std::fs::read("/proc/1/cmdline") else {
        return "unknown".into();
    };
    let words: Vec<String> = String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let Some(first) = words.first() else {
        return "unknown".into();
    };
    let named = |program: &str| {
        which(program).is_some_and(|path| words.iter().any(|word| Path::new(word) == path))
    };
    if let Some(init) = which(first).filter(|path| path.to_string_lossy().ends_with("bin/init")) {
        // The init binary names the system it belongs to.
        let bytes = std::fs::read(init).unwrap_or_default().to_ascii_lowercase();
        return ["upstart", "sysvinit", "systemd"]
            .into_iter()
            .find(|name| memchr::memmem::find(&bytes, name.as_bytes()).is_some())
            .unwrap_or("unknown")
            .into();
    }
    if named("supervisord") {
        "supervisord"
    } else if named("dumb-init") {
        "dumb-init"
    } else if named("tini") {
        "tini"
    } else if words == ["runit"] || words.iter().any(|w| w == "/sbin/my_init") {
        "runit"
    } else {
        "unknown"
    }
    .into()
}

/// `selinux` (`enabled`, `enforced`), where SELinux's tools are installed, from selinuxfs.
pub(super) fn selinux(grains: &mut Grains) {
    if which("selinuxenabled").is_none() {
        return;
    }
    let enforce = read("/sys/fs/selinux/enforce");
    let mut selinux = vec![(Value::from("enabled"), Value::from(enforce.is_some()))];
    if which("getenforce").is_some() {
        let mode = match enforce.as_deref().map(str::trim) {
            Some("1") => "Enforcing",
            Some(_) => "Permissive",
            None => "Disabled",
        };
        selinux.push(("enforced".into(), mode.into()));
    }
    grains.set("selinux", Value::Map(selinux));
}

/// `zfs_support` (ZFS's module or zfs-fuse, and `zpool`) and `zfs_feature_flags` (the
/// zpool-features manual page is installed).
pub(super) fn zfs(grains: &mut Grains) {
    let supported = which("zpool").is_some()
        && (Path::new("/sys/module/zfs").exists() || which("zfs-fuse").is_some());
    let flags = which("man").is_some()
        && [
            "/usr/share/man/man7/zpool-features.7.gz",
            "/usr/share/man/man7/zpool-features.7",
            "/usr/share/man/man5/zpool-features.5.gz",
            "/usr/share/man/man5/zpool-features.5",
        ]
        .iter()
        .any(|page| Path::new(page).exists());
    grains.set("zfs_support", supported);
    grains.set("zfs_feature_flags", flags);
}

/// `kernelparams`: the kernel's command line, split as a shell would, each word a
/// `[name, value]` pair (value None without exactly one '=').
pub(super) fn kernel_params(grains: &mut Grains) {
    let Some(cmdline) = read("/proc/cmdline") else {
        return;
    };
    let words = shlex::split(&cmdline).unwrap_or_default();
    let params = words
        .iter()
        .map(|word| {
            let parts: Vec<&str> = word.split('=').collect();
            let value = if parts.len() == 2 {
                Value::from(parts[1].trim_matches('"'))
            } else {
                Value::Nil
            };
            Value::Array(vec![parts[0].into(), value])
        })
        .collect();
    grains.set("kernelparams", Value::Array(params));
}

/// `num_gpus` and `gpus`, given only when the host has no PCI display device: naming one
/// needs lspci's database, which halite does not read.
pub(super) fn gpus(grains: &mut Grains) {
    let display = std::fs::read_dir("/sys/bus/pci/devices")
        .into_iter()
        .flatten()
        .flatten()
        .any(|device| {
            read(device.path().join("class")).is_some_and(|class| class.starts_with("0x03"))
        });
    if !display {
        grains.set("num_gpus", 0);
        grains.set("gpus", Value::Array(Vec::new()));
    }
}

/// What `systemd-detect-virt` would print, from the files it reads: a container first
/// (PID 1's environment, the markers Docker and Podman leave, systemd's note), then a
/// hypervisor from the DMI vendor strings or the clock source it gives the guest.
fn detect_virt() -> Option<&'static str> {
    if Path::new("/proc/vz").exists() && !Path::new("/proc/bc").exists() {
        return Some("openvz");
    }
    let osrelease = read("/proc/sys/kernel/osrelease").unwrap_or_default();
    if osrelease.contains("Microsoft") || osrelease.contains("WSL") {
        return Some("wsl");
    }
    let container = read("/run/systemd/container").or_else(|| {
        std::fs::read("/proc/1/environ").ok().and_then(|environ| {
            environ
                .split(|b| *b == 0)
                .find_map(|var| var.strip_prefix(b"container="))
                .map(|value| String::from_utf8_lossy(value).into_owned())
        })
    });
    if let Some(name) = container {
        return Some(match name.trim() {
            "lxc" => "lxc",
            "lxc-libvirt" => "lxc-libvirt",
            "systemd-nspawn" => "systemd-nspawn",
            "docker" => "docker",
            "podman" => "podman",
            "rkt" => "rkt",
            "wsl" => "wsl",
            "proot" => "proot",
            "pouch" => "pouch",
            _ => "container-other",
        });
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman");
    }
    if Path::new("/.dockerenv").exists() {
        return Some("docker");
    }
    let dmi = |file: &str| read(Path::new(DMI).join(file)).unwrap_or_default();
    let vendors = [
        dmi("product_name"),
        dmi("sys_vendor"),
        dmi("board_vendor"),
        dmi("bios_vendor"),
        dmi("product_version"),
    ];
    let from_dmi = vendors.iter().find_map(|vendor| {
        [
            ("KVM", "kvm"),
            ("OpenStack", "kvm"),
            ("KubeVirt", "kvm"),
            ("Amazon EC2", "amazon"),
            ("QEMU", "qemu"),
            ("VMware", "vmware"),
            ("VMW", "vmware"),
            ("innotek GmbH", "oracle"),
            ("VirtualBox", "oracle"),
            ("Oracle Corporation", "oracle"),
            ("Xen", "xen"),
            ("Bochs", "bochs"),
            ("Parallels", "parallels"),
            ("BHYVE", "bhyve"),
            ("Hyper-V", "microsoft"),
            ("Apple Virtualization", "apple"),
            ("Google Compute Engine", "google"),
        ]
        .into_iter()
        .find(|(prefix, _)| vendor.starts_with(prefix))
        .map(|(_, name)| name)
    });
    // These vendors run on KVM but are named for themselves, as systemd does.
    if let Some(name @ ("oracle" | "xen" | "amazon" | "parallels" | "google")) = from_dmi {
        return Some(name);
    }
    let clocks = read("/sys/devices/system/clocksource/clocksource0/available_clocksource")
        .unwrap_or_default();
    if clocks.contains("kvm-clock") {
        return Some("kvm");
    }
    if clocks.contains("hyperv") {
        return Some("microsoft");
    }
    if read("/sys/hypervisor/type").is_some_and(|kind| kind.trim() == "xen") {
        return Some("xen");
    }
    from_dmi
}

/// `virtual` and `virtual_subtype`, from the detection above mapped to Salt's names, then the
/// file checks Salt's `_virtual` makes itself (chroot, OpenVZ, Xen, QEMU's CPU, the DMI
/// product, PID 1's control groups and environment).
pub(super) fn virtualisation(grains: &mut Grains) {
    let mut kind = "physical".to_owned();
    let mut subtype: Option<String> = None;
    match detect_virt() {
        Some(
            name @ ("qemu" | "kvm" | "oracle" | "xen" | "bochs" | "chroot" | "uml"
            | "systemd-nspawn"),
        ) => kind = name.into(),
        Some("vmware") => kind = "VMware".into(),
        Some("microsoft") => kind = "VirtualPC".into(),
        Some(name @ ("lxc" | "lxc-libvirt" | "podman" | "docker" | "amazon")) => {
            let (k, s) = match name {
                "podman" => ("container", "Podman"),
                "docker" => ("container", "Docker"),
                "amazon" => ("Nitro", "Amazon EC2"),
                _ => ("container", "LXC"),
            };
            kind = k.into();
            subtype = Some(s.into());
        }
        _ => {}
    }
    if let (Ok(root), Ok(init_root)) = (
        nix::sys::stat::stat("/"),
        nix::sys::stat::stat("/proc/1/root/."),
    ) && (root.st_dev, root.st_ino) != (init_root.st_dev, init_root.st_ino)
    {
        subtype = Some("chroot".into());
    }
    if Path::new("/proc/vz").is_dir() {
        if Path::new("/proc/vz/version").is_file() {
            kind = "openvzhn".into();
        } else if Path::new("/proc/vz/veinfo").is_file() {
            kind = "openvzve".into();
        }
    }
    for line in read("/proc/self/status").unwrap_or_default().lines() {
        if let Some(id) = line.strip_prefix("envID:")
            && let Ok(id) = id.trim().parse::<u64>()
        {
            kind = if id == 0 { "openvzhn" } else { "openvzve" }.into();
        }
    }
    let xen = ["/proc/sys/xen", "/sys/bus/xen", "/proc/xen"];
    if xen.iter().any(|dir| Path::new(dir).is_dir()) {
        if Path::new("/proc/xen/xsd_kva").is_file() {
            subtype = Some("Xen Dom0".into());
        } else if grains.text("productname") == "HVM domU" {
            subtype = Some("Xen HVM DomU".into());
        } else if let Some(capabilities) = read("/proc/xen/capabilities") {
            subtype = Some(if capabilities.contains("control_d") {
                "Xen Dom0".into()
            } else {
                "Xen PV DomU".into()
            });
        } else if Path::new("/sys/bus/xen/drivers/xenconsole").is_dir() {
            subtype = Some("Xen PV DomU".into());
        }
        if subtype
            .as_deref()
            .is_some_and(|s| s.to_lowercase().contains("dom"))
        {
            kind = "xen".into();
        }
    }
    if read("/proc/cpuinfo").is_some_and(|cpuinfo| cpuinfo.contains("QEMU Virtual CPU")) {
        kind = "kvm".into();
    }
    if let Ok(bytes) = std::fs::read("/sys/devices/virtual/dmi/id/product_name") {
        let product = String::from_utf8_lossy(&bytes);
        if product.contains("VirtualBox") {
            kind = "VirtualBox".into();
        } else if product.contains("RHEV Hypervisor") {
            (kind, subtype) = ("kvm".into(), Some("rhev".into()));
        } else if product.contains("oVirt Node") {
            (kind, subtype) = ("kvm".into(), Some("ovirt".into()));
        } else if product.contains("Google") {
            kind = "gce".into();
        } else if product.contains("BHYVE") {
            kind = "bhyve".into();
        }
    }
    if let Some(cgroup) = read("/proc/1/cgroup") {
        if cgroup.contains(":/lxc/") {
            (kind, subtype) = ("container".into(), Some("LXC".into()));
        } else if cgroup.contains(":/kubepods/") {
            subtype = Some("kubernetes".into());
        } else if cgroup.contains(":/libpod_parent/") {
            subtype = Some("libpod".into());
        } else if [":/system.slice/docker", ":/docker/", ":/docker-ce/"]
            .iter()
            .any(|marker| cgroup.contains(marker))
        {
            (kind, subtype) = ("container".into(), Some("Docker".into()));
        }
    }
    if subtype.as_deref() != Some("LXC")
        && std::fs::read("/proc/1/environ")
            .is_ok_and(|environ| memchr::memmem::find(&environ, b"container=lxc").is_some())
    {
        (kind, subtype) = ("container".into(), Some("LXC".into()));
    }
    if subtype.is_some() && kind == "physical" {
        kind = "virtual".into();
    }
    if ["qemu", "kvm", "xen", "amazon"].contains(&kind.as_str()) {
        // What `dmidecode -t system` would show, from the same DMI table.
        let dmi = |file: &str| read(Path::new(DMI).join(file)).unwrap_or_default();
        if dmi("sys_vendor").trim() == "Amazon EC2" {
            if kind != "xen" {
                kind = "Nitro".into();
            }
            subtype = Some(format!("Amazon EC2 ({})", dmi("product_name").trim()));
        } else if dmi("product_version").contains(".amazon") {
            subtype = Some("Amazon EC2".into());
        }
    }
    grains.set("virtual", kind);
    if let Some(subtype) = subtype {
        grains.set("virtual_subtype", subtype);
    }
}
