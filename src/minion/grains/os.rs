//! The distribution grains (`os`, `os_family`, `osrelease`, `oscodename`, `osfullname`, the
//! `lsb_distrib_*` ones) from /etc/os-release and /etc/lsb-release, derived as Salt 3007.8's
//! `core.os_data` does on a host without Python's `lsb_release` module (its packages ship none),
//! and `osrelease_info`, `osmajorrelease`, `osfinger`, `osarch` from those.

use super::Grains;
use crate::event::Value;

/// os-release's variables, with the defaults the specification gives NAME, ID and PRETTY_NAME.
pub(crate) type OsRelease = Vec<(String, String)>;

fn var<'a>(release: &'a OsRelease, name: &str) -> Option<&'a str> {
    release
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// /etc/os-release, else /usr/lib/os-release; `None` when neither can be read.
pub(crate) fn os_release() -> Option<OsRelease> {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()?;
    Some(parse_os_release(&text))
}

/// `KEY=value` lines, one quote (either kind) dropped from each end of the value and backslash
/// escapes of shell specials undone, as Python's `platform.freedesktop_os_release` reads them.
fn parse_os_release(text: &str) -> OsRelease {
    let mut release: OsRelease = [("NAME", "Linux"), ("ID", "linux"), ("PRETTY_NAME", "Linux")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.strip_prefix(['\'', '"']).unwrap_or(value);
        let value = value.strip_suffix(['\'', '"']).unwrap_or(value);
        let mut unescaped = String::with_capacity(value.len());
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('\\', Some(&next)) if "$\"'\\`".contains(next) => {
                    unescaped.push(next);
                    chars.next();
                }
                _ => unescaped.push(c),
            }
        }
        release.push((key.to_owned(), unescaped));
    }
    release
}

/// `lsb_distrib_{id,release,codename,description}` from /etc/lsb-release: the value up to the
/// first character that is not a word character, space, '.' or '-'.
fn lsb_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let field = key.strip_prefix("DISTRIB_")?;
            if !["ID", "RELEASE", "CODENAME", "DESCRIPTION"].contains(&field) {
                return None;
            }
            let value = value.strip_prefix(['\'', '"']).unwrap_or(value);
            let end = value
                .find(|c: char| !(c.is_alphanumeric() || c.is_whitespace() || "_.-".contains(c)))
                .unwrap_or(value.len());
            let value = &value[..end];
            (!value.is_empty()).then(|| {
                (
                    format!("lsb_distrib_{}", field.to_lowercase()),
                    value.trim_end().to_owned(),
                )
            })
        })
        .collect()
}

/// Salt's short `os` names for the start of an os-release NAME (spaces dropped, lowercase,
/// ten characters at most).
const OS_NAMES: &[(&str, &str)] = &[
    ("redhatente", "RedHat"),
    ("gentoobase", "Gentoo"),
    ("archarm", "Arch ARM"),
    ("arch", "Arch"),
    ("debian", "Debian"),
    ("raspbian", "Raspbian"),
    ("fedoraremi", "Fedora"),
    ("chapeau", "Chapeau"),
    ("korora", "Korora"),
    ("amazonami", "Amazon"),
    ("alt", "ALT"),
    ("enterprise", "OEL"),
    ("oracleserv", "OEL"),
    ("cloudserve", "CloudLinux"),
    ("cloudlinux", "CloudLinux"),
    ("almalinux", "AlmaLinux"),
    ("pidora", "Fedora"),
    ("scientific", "ScientificLinux"),
    ("synology", "Synology"),
    ("nilrt", "NILinuxRT"),
    ("poky", "Poky"),
    ("manjaro", "Manjaro"),
    ("manjarolin", "Manjaro"),
    ("univention", "Univention"),
    ("antergos", "Antergos"),
    ("sles", "SUSE"),
    ("void", "Void"),
    ("slesexpand", "RES"),
    ("linuxmint", "Mint"),
    ("neon", "KDE neon"),
    ("pop", "Pop"),
    ("rocky", "Rocky"),
    ("alibabaclo", "Alinux"),
    ("mendel", "Mendel"),
];

/// Salt's `os_family` for an `os`; any other is its own family.
const OS_FAMILIES: &[(&str, &str)] = &[
    ("Ubuntu", "Debian"),
    ("Fedora", "RedHat"),
    ("Chapeau", "RedHat"),
    ("Korora", "RedHat"),
    ("FedBerry", "RedHat"),
    ("CentOS", "RedHat"),
    ("CentOS Stream", "RedHat"),
    ("GoOSe", "RedHat"),
    ("Scientific", "RedHat"),
    ("Amazon", "RedHat"),
    ("CloudLinux", "RedHat"),
    ("AlmaLinux", "RedHat"),
    ("OVS", "RedHat"),
    ("OEL", "RedHat"),
    ("XCP", "RedHat"),
    ("XCP-ng", "RedHat"),
    ("XenServer", "RedHat"),
    ("RES", "RedHat"),
    ("Sangoma", "RedHat"),
    ("VMware Photon OS", "RedHat"),
    ("Mandrake", "Mandriva"),
    ("Mint", "Debian"),
    ("VMwareESX", "VMware"),
    ("Bluewhite64", "Bluewhite"),
    ("Slamd64", "Slackware"),
    ("SLES", "Suse"),
    ("SUSE Enterprise Server", "Suse"),
    ("SUSE  Enterprise Server", "Suse"),
    ("SLED", "Suse"),
    ("openSUSE", "Suse"),
    ("SUSE", "Suse"),
    ("openSUSE Leap", "Suse"),
    ("openSUSE Tumbleweed", "Suse"),
    ("SLES_SAP", "Suse"),
    ("Arch ARM", "Arch"),
    ("Manjaro", "Arch"),
    ("Manjaro ARM", "Arch"),
    ("Antergos", "Arch"),
    ("EndeavourOS", "Arch"),
    ("ALT", "RedHat"),
    ("Trisquel", "Debian"),
    ("GCEL", "Debian"),
    ("Linaro", "Debian"),
    ("elementary OS", "Debian"),
    ("elementary", "Debian"),
    ("Univention", "Debian"),
    ("ScientificLinux", "RedHat"),
    ("Raspbian", "Debian"),
    ("Devuan", "Debian"),
    ("antiX", "Debian"),
    ("Kali", "Debian"),
    ("Parrot OS", "Debian"),
    ("neon", "Debian"),
    ("Cumulus", "Debian"),
    ("Deepin", "Debian"),
    ("NILinuxRT", "NILinuxRT"),
    ("KDE neon", "Debian"),
    ("Void", "Void"),
    ("IDMS", "Debian"),
    ("Funtoo", "Gentoo"),
    ("TurnKey", "Debian"),
    ("Pop", "Debian"),
    ("Rocky", "RedHat"),
    ("AstraLinuxCE", "Debian"),
    ("AstraLinuxSE", "Debian"),
    ("Alinux", "RedHat"),
    ("Mendel", "Debian"),
    ("OSMC", "Debian"),
];

fn lookup<'a>(table: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The `os` grain for an os-release NAME and ID: a few (ID, NAME) pairs by name, else NAME
/// without its "Linux" / "GNU/Linux" word, shortened through [`OS_NAMES`].
fn derive_os(name: &str, id: &str) -> String {
    match (id, name) {
        ("astra", "Astra Linux (Orel)") => return "AstraLinuxCE".into(),
        ("astra", "Astra Linux (Smolensk)") => return "AstraLinuxSE".into(),
        ("pop", "Pop!_OS") => return "Pop".into(),
        _ => {}
    }
    let distro = without_linux(name).trim().to_owned();
    let short: String = distro
        .replace(' ', "")
        .to_lowercase()
        .chars()
        .take(10)
        .collect();
    lookup(OS_NAMES, &short).map_or(distro, str::to_owned)
}

/// `name` without each "Linux" or "GNU/Linux" (any case) that follows a non-word character,
/// and that character.
fn without_linux(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if !(c.is_alphanumeric() || c == '_') {
            let word = ["gnu/linux", "linux"].into_iter().find(|word| {
                after
                    .get(..word.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(word))
            });
            if let Some(word) = word {
                rest = &after[word.len()..];
                continue;
            }
        }
        out.push(c);
        rest = after;
    }
    out
}

/// The vendor and version of a CPE_NAME (`cpe:/o:vendor:product:version` or the 2.3 form).
fn cpe(name: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = name.split(':').collect();
    if parts.len() <= 4 || parts[0] != "cpe" {
        return None;
    }
    let star = |s: &str| (s != "*").then(|| s.to_owned());
    if parts[1].starts_with('/') {
        Some((parts[2].to_owned(), Some(parts[4].to_owned())))
    } else if parts[1] == "2.3" && (parts.len() == 6 || (8..=13).contains(&parts.len())) {
        Some((star(parts[3]).unwrap_or_default(), star(parts[5])))
    } else {
        None
    }
}

/// The codename in a VERSION such as `9.3 (Blue Onyx)` or `15, Leap`, as the `distro` package
/// reads it: the first parenthesised text without digits, or the text after a comma.
fn version_codename(version: &str) -> Option<String> {
    for (at, c) in version.char_indices() {
        let rest = &version[at + 1..];
        let found = match c {
            '(' => rest.find(')').map(|end| &rest[..end]).filter(|inside| {
                !inside.is_empty() && !inside.contains(|c: char| c.is_ascii_digit())
            }),
            ',' => {
                let text = rest.trim_start();
                let end = text
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(text.len());
                Some(&text[..end]).filter(|text| !text.is_empty())
            }
            _ => None,
        };
        if let Some(found) = found {
            return Some(found.trim().to_owned());
        }
    }
    None
}

/// `os`, `os_family`, `oscodename`, `osfullname`, `osrelease` and the `lsb_distrib_*` grains.
pub(super) fn distribution(grains: &mut Grains, release: Option<&OsRelease>) {
    let lsb = std::fs::read_to_string("/etc/lsb-release")
        .map(|text| lsb_release(&text))
        .unwrap_or_default();
    for (key, value) in &lsb {
        grains.set(key, value.as_str());
    }
    let empty = OsRelease::new();
    let release = release.unwrap_or(&empty);
    let get = |name: &str| var(release, name);
    if let (Some(name), Some(id)) = (get("NAME"), get("ID")) {
        grains.set("os", derive_os(name, id));
        grains.set("osfullname", name.trim());
    }
    let described = grains.text("lsb_distrib_description");
    if described.to_lowercase().starts_with("antergos") {
        grains.set("osfullname", "Antergos Linux");
    } else if grains.get("lsb_distrib_id").is_none() && !release.is_empty() {
        if let Some(name) = get("NAME") {
            grains.set("lsb_distrib_id", name.trim());
        }
        if let Some(version) = get("VERSION_ID") {
            grains.set("lsb_distrib_release", version);
        }
        if let Some(codename) = get("VERSION_CODENAME").or_else(|| get("PRETTY_NAME")) {
            grains.set("lsb_distrib_codename", codename);
        }
        if let Some((vendor, version)) = get("CPE_NAME").and_then(cpe) {
            let vendor = vendor.to_lowercase();
            if vendor == "suse" || vendor == "opensuse" {
                grains.set("os", "SUSE");
                if get("NAME") == Some("openSUSE Leap") {
                    grains.set("osfullname", "Leap");
                } else if let Some(tumbleweed @ "Tumbleweed") = get("VERSION") {
                    grains.set("osfullname", tumbleweed);
                }
                if let Some(version) = version.filter(|_| vendor == "opensuse")
                    && !version.is_empty()
                {
                    grains.set("lsb_distrib_release", version);
                }
            }
        }
        if get("ID").map(str::trim) == Some("mendel")
            && let Some(third) = get("PRETTY_NAME").and_then(|p| p.split_whitespace().nth(2))
        {
            grains.set("lsb_distrib_release", third);
        }
    }
    // What the `distro` package answers when the LSB grains do not.
    let distro_name = get("NAME").unwrap_or_default().to_owned();
    let distro_version = get("VERSION_ID").unwrap_or_default().to_owned();
    let distro_codename = get("VERSION_CODENAME")
        .or_else(|| get("UBUNTU_CODENAME"))
        .map(str::to_owned)
        .or_else(|| get("VERSION").and_then(version_codename))
        .unwrap_or_default();
    if grains.get("osfullname").is_none() {
        let id = match grains.get("lsb_distrib_id") {
            Some(_) => grains.text("lsb_distrib_id"),
            None => distro_name,
        };
        let full = if id.to_lowercase().starts_with("nilrt") {
            "nilrt"
        } else {
            id.trim()
        };
        grains.set("osfullname", full);
    }
    let codename = grains.text("lsb_distrib_codename");
    if ["CentOS Linux 7", "CentOS Linux 8"]
        .iter()
        .any(|old| codename.contains(old))
    {
        grains.remove("lsb_distrib_release");
    }
    let osrelease = match grains.get("lsb_distrib_release") {
        Some(_) => grains.text("lsb_distrib_release"),
        None => distro_version,
    };
    grains.set("osrelease", osrelease.trim());
    let os = grains.text("os");
    let codename = grains.text("lsb_distrib_codename");
    if !codename.is_empty()
        && ["Rocky", "AlmaLinux", "AstraLinuxSE"]
            .iter()
            .any(|name| os.contains(name))
        && let Some((_, inside)) = codename.split_once('(')
    {
        let inside = inside.split_once(')').map_or(inside, |(first, _)| first);
        let codename = if os == "AstraLinuxSE" {
            inside
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_lowercase()
        } else {
            inside.to_owned()
        };
        grains.set("lsb_distrib_codename", codename);
    }
    let mut oscodename = grains.text("lsb_distrib_codename").trim().to_owned();
    if oscodename.is_empty() || oscodename.contains("Red Hat") {
        oscodename = distro_codename;
    }
    grains.set("oscodename", oscodename);
    if grains.get("os").is_none() {
        let os = derive_os(&grains.text("osfullname"), "");
        grains.set("os", os);
    }
    let os = grains.text("os");
    grains.set("os_family", lookup(OS_FAMILIES, &os).unwrap_or(&os));
}

/// `osarch`: the package architecture, Debian's names on its family (what `dpkg
/// --print-architecture` prints for a native install), the kernel's elsewhere.
pub(super) fn osarch(os_family: &str, cpuarch: &str) -> String {
    if os_family != "Debian" {
        return cpuarch.to_owned();
    }
    match cpuarch {
        "x86_64" => "amd64",
        "i386" | "i486" | "i586" | "i686" => "i386",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armv6l" | "armv8l" => "armhf",
        "ppc64le" => "ppc64el",
        "mips64" => "mips64el",
        "loongarch64" => "loong64",
        other => other,
    }
    .to_owned()
}

/// `osrelease_info` (numbers as integers), `osmajorrelease`, `osfinger`.
pub(super) fn release_data(grains: &mut Grains) {
    let osrelease = grains.text("osrelease");
    if osrelease.is_empty() {
        return;
    }
    let info: Vec<Value> = osrelease
        .split('.')
        .map(|part| {
            if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
                part.parse::<u64>()
                    .map_or_else(|_| part.into(), Value::from)
            } else {
                part.into()
            }
        })
        .collect();
    let first = info[0].clone();
    grains.set("osrelease_info", Value::Array(info));
    let major = match &first {
        Value::Integer(n) => n.as_u64(),
        other => other.as_str().and_then(|s| s.trim().parse().ok()),
    };
    if let Some(major) = major {
        grains.set("osmajorrelease", major);
    }
    let os = grains.text("os");
    let name =
        if ["Debian", "FreeBSD", "OpenBSD", "NetBSD", "Mac", "Raspbian"].contains(&os.as_str()) {
            os.clone()
        } else {
            grains.text("osfullname")
        };
    let version = if os == "Ubuntu" || os == "Pop" {
        osrelease
    } else {
        match first {
            Value::Integer(n) => n.to_string(),
            other => other.as_str().unwrap_or_default().to_owned(),
        }
    };
    grains.set("osfinger", format!("{name}-{version}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grains_for(os_release: &str) -> Grains {
        let mut grains = Grains::default();
        distribution(&mut grains, Some(&parse_os_release(os_release)));
        release_data(&mut grains);
        grains
    }

    #[test]
    fn debian_ubuntu_and_rocky_read_as_salt_names_them() {
        let debian = grains_for(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        for (key, value) in [
            ("os", Value::from("Debian")),
            ("os_family", "Debian".into()),
            ("osfullname", "Debian GNU/Linux".into()),
            ("oscodename", "bookworm".into()),
            ("osrelease", "12".into()),
            ("osrelease_info", Value::Array(vec![12.into()])),
            ("osmajorrelease", 12.into()),
            ("osfinger", "Debian-12".into()),
        ] {
            assert_eq!(debian.get(key), Some(&value), "{key}");
        }
        let ubuntu = grains_for(
            "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n",
        );
        assert_eq!(ubuntu.get("os_family"), Some(&"Debian".into()));
        assert_eq!(ubuntu.get("osfinger"), Some(&"Ubuntu-22.04".into()));
        assert_eq!(
            ubuntu.get("osrelease_info"),
            Some(&Value::Array(vec![22.into(), 4.into()]))
        );
        let rocky = grains_for(
            "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\nCPE_NAME=\"cpe:/o:rocky:rocky:9::baseos\"\n",
        );
        assert_eq!(rocky.get("os"), Some(&"Rocky".into()));
        assert_eq!(rocky.get("os_family"), Some(&"RedHat".into()));
        assert_eq!(rocky.get("oscodename"), Some(&"Blue Onyx".into()));
        assert_eq!(rocky.get("osfinger"), Some(&"Rocky Linux-9".into()));
        let rhel = grains_for(
            "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n",
        );
        assert_eq!(rhel.get("os"), Some(&"RedHat".into()));
        assert_eq!(rhel.get("oscodename"), Some(&"Plow".into()));
        let leap = grains_for(
            "NAME=\"openSUSE Leap\"\nVERSION=\"15.5\"\nID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"openSUSE Leap 15.5\"\nCPE_NAME=\"cpe:/o:opensuse:leap:15.5\"\n",
        );
        assert_eq!(leap.get("os"), Some(&"SUSE".into()));
        assert_eq!(leap.get("os_family"), Some(&"Suse".into()));
        assert_eq!(leap.get("osfullname"), Some(&"Leap".into()));
        assert_eq!(without_linux("Debian GNU/Linux"), "Debian");
        assert_eq!(without_linux("Rocky Linux"), "Rocky");
        assert_eq!(without_linux("Linux Mint"), "Linux Mint");
        assert_eq!(
            lsb_release("DISTRIB_ID=Ubuntu\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\nX=1\n"),
            vec![
                ("lsb_distrib_id".to_owned(), "Ubuntu".to_owned()),
                (
                    "lsb_distrib_description".to_owned(),
                    "Ubuntu 22.04.4 LTS".to_owned()
                )
            ]
        );
        assert_eq!(
            parse_os_release("A='x'\nB=\"a \\$b\"\nbad line\n")[3..],
            [
                ("A".to_owned(), "x".to_owned()),
                ("B".to_owned(), "a $b".to_owned())
            ]
        );
    }

    #[test]
    fn osarch_uses_debian_names_on_debian() {
        assert_eq!(osarch("Debian", "x86_64"), "amd64");
        assert_eq!(osarch("Debian", "aarch64"), "arm64");
        assert_eq!(osarch("RedHat", "x86_64"), "x86_64");
    }
}
