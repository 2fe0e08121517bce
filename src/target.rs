//! Which minions a job is for: Salt's `glob` (default), `pcre`, `list`, `grain`, `grain_pcre` and
//! `compound` targets, node groups written out into compound targets ([`nodegroup`]), and the
//! top file's matching ([`top`]).
//!
//! The master matches targets against accepted ids (and the grains minions reported) to know
//! whom to expect; every minion matches again against itself before running a job, as Salt's do.

mod compound;
pub mod nodegroup;
pub(crate) mod top;

pub use compound::Compound;

use std::net::IpAddr;

use crate::event::Value;
use crate::py::fnmatch::fnmatch;
use crate::py::re::{Anchoring, Regex};
use crate::py::value::py_str;

/// A job's target.
#[derive(Debug, Clone)]
pub enum Target {
    /// A shell glob on the id.
    Glob(String),
    /// A Python regular expression matched at the start of the id (`re.match`).
    Pcre(Regex),
    /// Exact ids.
    List(Vec<String>),
    /// `key:glob` on the grains; nested keys are separated by `:`.
    Grain(String),
    /// `key:regex` on the grains, the regex matched at the start of the lowercased value.
    GrainPcre(String),
    /// `key:glob` on the pillar.
    Pillar(String),
    /// `key:regex` on the pillar.
    PillarPcre(String),
    /// An address or network the minion's `ipv4`/`ipv6` grains hold.
    IpCidr(Subnet),
    /// Words joined by `and`, `or`, `not` and parentheses (`G@os:Debian and web*`).
    Compound(Compound),
}

/// A target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The `tgt_type` is not one halite has.
    #[error(
        "unknown target type {0}: use glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, ipcidr, compound or nodegroup"
    )]
    UnknownType(String),
    /// A `pcre` target that is not a valid regular expression.
    #[error("invalid regular expression {pattern}: {reason}")]
    BadRegex {
        /// The expression.
        pattern: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A `grain` or `pillar` target without `key:value`.
    #[error("grain or pillar target {0} must be key:value")]
    BadGrain(String),
    /// An `ipcidr` target that is not an address or a network.
    #[error("{0} is not an IP address or network (such as 10.0.0.0/24)")]
    BadSubnet(String),
    /// `-N NAME` or `N@NAME` for a group the master's `nodegroups` does not define.
    #[error("Node group {name} unavailable in {file}: define it under nodegroups")]
    UnknownNodegroup {
        /// The group.
        name: String,
        /// The configuration file read.
        file: String,
    },
    /// A node group that cannot be written out.
    #[error("nodegroup {name} in {file} cannot be used: {reason}")]
    BadNodegroup {
        /// The group.
        name: String,
        /// What is wrong.
        reason: String,
        /// The configuration file read.
        file: String,
    },
    /// A compound target that is not a well-formed expression.
    #[error("invalid compound target {target}: {reason}")]
    BadCompound {
        /// The target.
        target: String,
        /// What is wrong.
        reason: String,
    },
}

impl Target {
    /// Parses `tgt` for `tgt_type` (Salt's names; `-E`/`-L`/`-G`/`-C` map to
    /// pcre/list/grain/compound).
    pub fn new(tgt: &Value, tgt_type: &str) -> Result<Self, TargetError> {
        let text = || py_str(tgt).into_owned();
        match tgt_type {
            "glob" => Ok(Target::Glob(text())),
            "pcre" => pcre(&text()).map(Target::Pcre),
            "list" => Ok(Target::List(match tgt {
                Value::Array(items) => items.iter().map(|i| py_str(i).into_owned()).collect(),
                other => list(&py_str(other)),
            })),
            "grain" | "grain_pcre" | "pillar" | "pillar_pcre" => {
                let expr = text();
                if !expr.contains(':') {
                    return Err(TargetError::BadGrain(expr));
                }
                Ok(match tgt_type {
                    "grain" => Target::Grain(expr),
                    "grain_pcre" => Target::GrainPcre(expr),
                    "pillar" => Target::Pillar(expr),
                    _ => Target::PillarPcre(expr),
                })
            }
            "ipcidr" => text()
                .parse()
                .map(Target::IpCidr)
                .map_err(|()| TargetError::BadSubnet(text())),
            "compound" => Compound::parse(&text()).map(Target::Compound),
            other => Err(TargetError::UnknownType(other.to_owned())),
        }
    }

    /// Whether matching needs the minions' grains.
    pub fn needs_grains(&self) -> bool {
        match self {
            Target::Grain(_) | Target::GrainPcre(_) | Target::IpCidr(_) => true,
            Target::Compound(compound) => compound.needs_grains(),
            _ => false,
        }
    }

    /// Whether matching needs the minion's pillar.
    pub fn needs_pillar(&self) -> bool {
        match self {
            Target::Pillar(_) | Target::PillarPcre(_) => true,
            Target::Compound(compound) => compound.needs_pillar(),
            _ => false,
        }
    }

    /// Whether the minion `id` with these `facts` may be targeted: it is, or that depends on
    /// facts not known here (the minion decides, as with Salt's greedy matching). Deciding
    /// who gets a job, or whom a job could reach, takes this side.
    pub fn matches(&self, id: &str, facts: Facts<'_>) -> bool {
        self.eval(id, facts) != Some(false)
    }

    /// Whether the minion `id` with these `facts` is certainly targeted. Deciding whom a
    /// permission covers takes this side.
    pub fn certainly_matches(&self, id: &str, facts: Facts<'_>) -> bool {
        self.eval(id, facts) == Some(true)
    }

    /// Whether the minion `id` with these `facts` is targeted; `None` when that depends on
    /// facts not known here.
    pub fn eval(&self, id: &str, facts: Facts<'_>) -> Option<bool> {
        match self {
            Target::Glob(glob) => Some(fnmatch(id, glob)),
            Target::Pcre(regex) => Some(regex.is_match(id)),
            Target::List(ids) => Some(ids.iter().any(|listed| listed == id)),
            Target::Grain(expr) => facts.grains_match(expr, ":", Pattern::Glob),
            Target::GrainPcre(expr) => facts.grains_match(expr, ":", Pattern::Regex),
            Target::Pillar(expr) => facts.pillar_match(expr, ":", Pattern::Glob),
            Target::PillarPcre(expr) => facts.pillar_match(expr, ":", Pattern::Regex),
            Target::IpCidr(subnet) => facts.in_subnet(subnet),
            Target::Compound(compound) => compound.eval(id, facts),
        }
    }
}

/// What a target is matched against besides the id. `None` is data not known where the match
/// is made (grains of a minion the master never heard from, every minion's pillar on the
/// master): its terms are unknown ([`Target::eval`]), and the minion decides.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The minion's grains.
    pub grains: Option<&'a Value>,
    /// The minion's pillar.
    pub pillar: Option<&'a Value>,
}

impl<'a> Facts<'a> {
    /// Grains alone; the pillar is not known here.
    pub fn grains(grains: Option<&'a Value>) -> Self {
        Self {
            grains,
            pillar: None,
        }
    }

    fn grains_match(&self, expr: &str, delimiter: &str, how: Pattern) -> Option<bool> {
        self.grains
            .map(|grains| subdict_match(grains, expr, delimiter, how))
    }

    fn pillar_match(&self, expr: &str, delimiter: &str, how: Pattern) -> Option<bool> {
        self.pillar
            .map(|pillar| subdict_match(pillar, expr, delimiter, how))
    }

    /// Salt's `ipcidr` match: an address in the `ipv4` or `ipv6` grain, or one of them in the
    /// network.
    fn in_subnet(&self, subnet: &Subnet) -> Option<bool> {
        let grains = self.grains?;
        let family = if subnet.address.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let addresses = crate::event::map_get(grains, family).and_then(Value::as_array);
        Some(addresses.is_some_and(|addresses| {
            addresses.iter().any(|address| {
                py_str(address)
                    .parse::<IpAddr>()
                    .is_ok_and(|address| subnet.contains(address))
            })
        }))
    }
}

/// An address (`10.0.0.5`) or a network (`10.0.0.0/24`, host bits clear, as Python's
/// `ip_network` insists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    address: IpAddr,
    prefix: u32,
}

impl std::str::FromStr for Subnet {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| ())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix.parse::<u32>().map_err(|_| ())?
            }
            // As Python's `ip_network`, an IPv4 network may give a netmask (`/255.255.0.0`)
            // or a host mask (`/0.0.255.255`) instead of a length.
            Some(mask) if address.is_ipv4() => {
                let mask = u32::from(mask.parse::<std::net::Ipv4Addr>().map_err(|_| ())?);
                let ones = mask.leading_ones();
                let zeros = mask.leading_zeros();
                if mask.checked_shl(ones).unwrap_or(0) == 0 {
                    ones
                } else if (!mask).checked_shl(zeros).unwrap_or(0) == 0 {
                    zeros
                } else {
                    return Err(());
                }
            }
            Some(_) => return Err(()),
        };
        let subnet = Subnet { address, prefix };
        if prefix > bits || subnet.masked(address) != bits_of(address) {
            return Err(());
        }
        Ok(subnet)
    }
}

impl Subnet {
    fn masked(&self, address: IpAddr) -> u128 {
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let host = bits - self.prefix;
        let value = bits_of(address);
        if host >= 128 {
            0
        } else {
            value >> host << host
        }
    }

    fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv4() == self.address.is_ipv4() && self.masked(address) == bits_of(self.address)
    }
}

fn bits_of(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A Python regex matched at the start (`re.match`).
fn pcre(pattern: &str) -> Result<Regex, TargetError> {
    Regex::new(pattern, Anchoring::Match, pattern).map_err(|err| TargetError::BadRegex {
        pattern: pattern.to_owned(),
        reason: err.to_string(),
    })
}

/// A comma-separated list of ids.
fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How the last part of a grain expression is compared with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// `fnmatch`, case-insensitive.
    Glob,
    /// `re.match` on the lowercased value with the lowercased pattern.
    Regex,
}

/// Salt's `subdict_match`: `expr` split at each `delimiter` into a key path and a pattern, the
/// deepest key path first; a list value matches when one element does, a map when the
/// pattern names one of its keys (or matches deeper, `*` for any).
fn subdict_match(data: &Value, expr: &str, delimiter: &str, how: Pattern) -> bool {
    let parts: Vec<&str> = expr.split(delimiter).collect();
    (1..parts.len()).rev().any(|split| {
        let key = parts[..split].join(delimiter);
        let (value, pattern) = if key == "*" {
            (Some(data), expr.to_owned())
        } else {
            (
                crate::event::traverse(data, &key, delimiter),
                parts[split..].join(delimiter),
            )
        };
        match value {
            // Salt's traversal default is `{}`, so an empty map is as good as missing.
            None => false,
            Some(Value::Map(entries)) if entries.is_empty() => false,
            Some(map @ Value::Map(_)) => dict_match(map, &pattern, how),
            Some(Value::Array(items)) => items.iter().any(|item| {
                (item.is_map() && dict_match(item, &pattern, how))
                    || scalar_match(item, &pattern, how)
            }),
            Some(other) => scalar_match(other, &pattern, how),
        }
    })
}

/// Salt's `_dict_match`: `*` or a key of the map, a deeper `key:pattern`, or with a leading
/// `*:` any value of the map.
fn dict_match(map: &Value, pattern: &str, how: Pattern) -> bool {
    let (wildcard, pattern) = match pattern.strip_prefix("*:") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    if pattern == "*"
        || crate::event::map_get(map, pattern).is_some()
        || subdict_match(map, pattern, ":", how)
    {
        return true;
    }
    wildcard
        && map.as_map().is_some_and(|entries| {
            entries.iter().any(|(_, value)| match value {
                Value::Map(_) => dict_match(value, pattern, how),
                Value::Array(items) => items.iter().any(|item| scalar_match(item, pattern, how)),
                other => scalar_match(other, pattern, how),
            })
        })
}

/// Salt's `_match`: the value's text against the pattern, both lowercased.
fn scalar_match(value: &Value, pattern: &str, how: Pattern) -> bool {
    let text = py_str(value).to_lowercase();
    let pattern = pattern.to_lowercase();
    match how {
        Pattern::Glob => fnmatch(&text, &pattern),
        // An invalid regex matches nothing, as Salt logs and returns False.
        Pattern::Regex => pcre(&pattern).is_ok_and(|regex| regex.is_match(&text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grains() -> Value {
        crate::salt_yaml::load(
            "{os: Debian, roles: [web, db], num_cpus: 2, ip: {eth0: [10.0.0.1]}}",
        )
        .unwrap()
    }

    #[test]
    fn targets_match_as_salts_do() {
        let id = "web1.example.com";
        let t = |tgt: &str, kind: &str| Target::new(&Value::from(tgt), kind).unwrap();
        assert!(t("web*", "glob").matches(id, Facts::default()));
        assert!(!t("db*", "glob").matches(id, Facts::default()));
        assert!(t("web\\d", "pcre").matches(id, Facts::default()));
        assert!(!t("\\d", "pcre").matches(id, Facts::default()));
        assert!(t("db1,web1.example.com", "list").matches(id, Facts::default()));
        assert!(!t("web1", "list").matches(id, Facts::default()));
        let g = grains();
        assert!(t("os:debian", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(t("roles:we*", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(t("num_cpus:2", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(t("ip:eth0:10.0.*", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(!t("os:RedHat", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(t("os:RedHat", "grain").matches(id, Facts::default()));
        assert!(Target::new(&Value::from("os"), "grain").is_err());
        assert!(Target::new(&Value::from("x"), "nodegroup").is_err());
        assert!(t("web* and G@os:debian", "compound").matches(id, Facts::grains(Some(&g))));
        assert!(t("web* and not G@os:debian", "compound").needs_grains());
        let tier = Value::Map(vec![(Value::from("tier"), Value::from("Prod"))]);
        assert!(t("tier:p.*", "grain_pcre").matches(id, Facts::grains(Some(&tier))));
        // Salt's subdict matching: a map value matches by key, not by a glob on its keys.
        assert!(t("ip:eth0", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(!t("ip:eth*", "grain").matches(id, Facts::grains(Some(&g))));
        assert!(t("ip:*:10.0.0.1", "grain").matches(id, Facts::grains(Some(&g))));
        let listed = Value::Array(vec![Value::from("web1.example.com")]);
        assert!(
            Target::new(&listed, "list")
                .unwrap()
                .matches(id, Facts::default())
        );
    }

    #[test]
    fn pillar_and_subnet_targets_match_as_salts_do() {
        let t = |tgt: &str, kind: &str| Target::new(&Value::from(tgt), kind).unwrap();
        let grains =
            crate::salt_yaml::load("{ipv4: [127.0.0.1, 10.1.2.3], ipv6: ['::1', 'fd00::5']}")
                .unwrap();
        let pillar = crate::salt_yaml::load("{role: web, env: {tier: Prod}}").unwrap();
        let facts = Facts {
            grains: Some(&grains),
            pillar: Some(&pillar),
        };
        assert!(t("role:web", "pillar").matches("m", facts));
        assert!(t("env:tier:prod", "pillar").matches("m", facts));
        assert!(!t("role:db", "pillar").matches("m", facts));
        assert!(t("role:w.b", "pillar_pcre").matches("m", facts));
        // The master knows no pillar: the minion decides.
        assert!(t("role:db", "pillar").matches("m", Facts::grains(Some(&grains))));
        assert!(t("10.1.0.0/16", "ipcidr").matches("m", facts));
        assert!(t("10.1.2.3", "ipcidr").matches("m", facts));
        assert!(!t("10.1.2.4", "ipcidr").matches("m", facts));
        assert!(!t("192.168.0.0/16", "ipcidr").matches("m", facts));
        assert!(t("fd00::/8", "ipcidr").matches("m", facts));
        assert!(t("0.0.0.0/0", "ipcidr").matches("m", facts));
        assert!(t("10.1.0.0/255.255.0.0", "ipcidr").matches("m", facts));
        assert!(t("10.1.0.0/0.0.255.255", "ipcidr").matches("m", facts));
        assert!(!t("10.2.0.0/255.255.0.0", "ipcidr").matches("m", facts));
        assert!(t("0.0.0.0/0.0.0.0", "ipcidr").matches("m", facts));
        for bad in [
            "10.1.2.3/16",
            "10.0.0.0/33",
            "web",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/",
            "10.0.0.0/255.0.255.0",
            "fd00::/ffff::",
        ] {
            assert!(Target::new(&Value::from(bad), "ipcidr").is_err(), "{bad}");
        }
        assert!(
            t(
                "I@role:web and S@10.1.0.0/16 and not J@env:tier:^dev",
                "compound"
            )
            .matches("m", facts)
        );
        assert!(t("I@role:web", "compound").needs_pillar());
    }

    #[test]
    fn unknown_facts_follow_kleene_logic() {
        let pillar = crate::salt_yaml::load("{role: web}").unwrap();
        let known = Facts {
            grains: None,
            pillar: Some(&pillar),
        };
        let eval = |tgt: &str, facts| {
            Target::new(&Value::from(tgt), "compound")
                .unwrap()
                .eval("m1", facts)
        };
        let unknown = Facts::default();
        // (expression, with the pillar unknown, with it known)
        let table = [
            ("I@role:web", None, Some(true)),
            ("not I@role:web", None, Some(false)),
            ("not I@role:db", None, Some(true)),
            ("not ( not I@role:db )", None, Some(false)),
            ("m1 and I@role:db", None, Some(false)),
            ("m2 and I@role:db", Some(false), Some(false)),
            ("m2 and not I@role:db", Some(false), Some(false)),
            ("m1 or I@role:db", Some(true), Some(true)),
            ("m2 or I@role:db", None, Some(false)),
            ("m2 or not I@role:db", None, Some(true)),
            ("not ( m2 or I@role:db )", None, Some(true)),
            ("m1 and not ( m2 and I@role:db )", Some(true), Some(true)),
            ("m1 or m2 and I@role:db", Some(true), Some(true)),
            ("m1 and m2 or I@role:web", None, Some(true)),
        ];
        for (tgt, without, with) in table {
            assert_eq!(eval(tgt, unknown), without, "{tgt} without the pillar");
            assert_eq!(eval(tgt, known), with, "{tgt} with the pillar");
        }
        // Unknown grains, too; `matches` takes unknown as targeted, `certainly_matches` not.
        let t = Target::new(&Value::from("not G@os:Debian"), "compound").unwrap();
        assert!(t.matches("m1", unknown));
        assert!(!t.certainly_matches("m1", unknown));
        let t = Target::new(&Value::from("10.0.0.0/8"), "ipcidr").unwrap();
        assert_eq!(t.eval("m1", unknown), None);
    }

    #[test]
    fn nesting_is_capped_and_flat_chains_are_not() {
        let deep =
            |open: &str, depth: usize| format!("{}m1{}", open.repeat(depth), " )".repeat(depth));
        for depth in [30_000, compound::MAX_DEPTH + 1] {
            let err = Compound::parse(&deep("( ", depth)).unwrap_err().to_string();
            assert!(err.contains("nest deeper than 100"), "{err}");
            let err = Compound::parse(&deep("not ( ", depth))
                .unwrap_err()
                .to_string();
            assert!(err.contains("nest deeper than 100"), "{err}");
            // One line, not the whole target.
            assert!(err.len() < 300, "{err}");
        }
        let t = Compound::parse(&deep("( not ", compound::MAX_DEPTH / 2)).unwrap();
        assert_eq!(t.eval("m1", Facts::default()), Some(true));
        // A long flat chain is one list: parsed, matched and dropped without deep recursion.
        let flat = format!("{}m1", "x or ".repeat(150_000));
        let t = Compound::parse(&flat).unwrap();
        assert_eq!(t.eval("m1", Facts::default()), Some(true));
        assert_eq!(t.eval("m2", Facts::default()), Some(false));
        drop(t);
        let flat = format!("{}m1", "x and not ".repeat(150_000));
        let t = Compound::parse(&flat).unwrap();
        assert_eq!(t.eval("m1", Facts::default()), Some(false));
    }
}
