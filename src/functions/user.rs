//! The `user` and `group` modules on Linux, as Salt's `useradd` and `groupadd`: accounts read
//! through NSS (`getent`, `id`) and changed with the shadow tools (`useradd`, `usermod`,
//! `userdel`, `groupadd`, `groupdel`, `gpasswd`). Returns are Salt's: an account's fields as a
//! map (`{}` for none), True or False for a change.

use super::cmd::run_words;
use super::{Call, FunctionError, Outcome, bind};
use crate::event::Value;
use crate::signature::{Signature, text, truthy};

const fn signature(
    name: &'static str,
    summary: &'static str,
    params: &'static [&'static str],
    required: usize,
    usage: &'static str,
) -> Signature {
    Signature {
        name,
        summary,
        params,
        required,
        kwargs: false,
        usage,
    }
}

pub(super) const USER_INFO: Signature = signature(
    "user.info",
    "A user's fields (uid, gid, groups, home, shell, gecos…); {} if there is none",
    &["name"],
    1,
    "user.info NAME",
);
pub(super) const USER_ADD: Signature = signature(
    "user.add",
    "Creates a user with useradd: whether it was",
    &[
        "name",
        "uid",
        "gid",
        "groups",
        "home",
        "shell",
        "unique",
        "system",
        "fullname",
        "createhome",
    ],
    1,
    "user.add NAME [uid=UID] [gid=GID] [groups=[G, …]] [home=DIR] [shell=SHELL] [system=False] [createhome=True]",
);
pub(super) const USER_DELETE: Signature = signature(
    "user.delete",
    "Deletes a user with userdel (remove: its home too): whether it was",
    &["name", "remove", "force"],
    1,
    "user.delete NAME [remove=False] [force=False]",
);
pub(super) const USER_CHUID: Signature = signature(
    "user.chuid",
    "Changes a user's uid: whether it is now",
    &["name", "uid"],
    2,
    "user.chuid NAME UID",
);
pub(super) const USER_CHGID: Signature = signature(
    "user.chgid",
    "Changes a user's primary group: whether it is now",
    &["name", "gid"],
    2,
    "user.chgid NAME GID",
);
pub(super) const USER_CHSHELL: Signature = signature(
    "user.chshell",
    "Changes a user's shell: whether it is now",
    &["name", "shell"],
    2,
    "user.chshell NAME SHELL",
);
pub(super) const USER_CHHOME: Signature = signature(
    "user.chhome",
    "Changes a user's home (persist: moving its files): whether it is now",
    &["name", "home", "persist"],
    2,
    "user.chhome NAME HOME [persist=False]",
);
pub(super) const USER_CHFULLNAME: Signature = signature(
    "user.chfullname",
    "Changes a user's full name, the GECOS field's other parts kept: whether it is now",
    &["name", "fullname"],
    2,
    "user.chfullname NAME FULLNAME",
);
pub(super) const USER_CHGROUPS: Signature = signature(
    "user.chgroups",
    "Sets a user's supplementary groups (append: adds them): whether usermod did",
    &["name", "groups", "append"],
    2,
    "user.chgroups NAME GROUP[,GROUP…] [append=False]",
);
pub(super) const GROUP_INFO: Signature = signature(
    "group.info",
    "A group's name, passwd, gid and members; {} if there is none",
    &["name"],
    1,
    "group.info NAME",
);
pub(super) const GROUP_ADD: Signature = signature(
    "group.add",
    "Creates a group with groupadd: whether it was",
    &["name", "gid", "system", "non_unique"],
    1,
    "group.add NAME [gid=GID] [system=False] [non_unique=False]",
);
pub(super) const GROUP_DELETE: Signature = signature(
    "group.delete",
    "Deletes a group with groupdel: whether it was",
    &["name"],
    1,
    "group.delete NAME",
);
pub(super) const GROUP_CHGID: Signature = signature(
    "group.chgid",
    "Changes a group's gid: whether it is now",
    &["name", "gid", "non_unique"],
    2,
    "group.chgid NAME GID",
);
pub(super) const GROUP_ADDUSER: Signature = signature(
    "group.adduser",
    "Adds a user to a group with gpasswd: whether it was",
    &["name", "username"],
    2,
    "group.adduser GROUP USER",
);
pub(super) const GROUP_DELUSER: Signature = signature(
    "group.deluser",
    "Removes a user from a group with gpasswd: whether it was",
    &["name", "username"],
    2,
    "group.deluser GROUP USER",
);
pub(super) const GROUP_MEMBERS: Signature = signature(
    "group.members",
    "Sets a group's members (names separated by commas): whether gpasswd did",
    &["name", "members_list"],
    2,
    "group.members GROUP USER[,USER…]",
);

/// A `passwd` entry (`getent passwd NAME`) as Salt's `user.info` shows it, `groups` apart:
/// the GECOS field split into its five parts.
pub(super) fn parse_passwd(line: &str, groups: Vec<String>) -> Option<Value> {
    let fields: Vec<&str> = line.splitn(7, ':').collect();
    let [name, passwd, uid, gid, gecos, home, shell] = fields[..] else {
        return None;
    };
    let mut gecos: Vec<&str> = gecos.splitn(5, ',').collect();
    gecos.resize(5, "");
    let number = |n: &str| n.parse::<u64>().ok().map(Value::from);
    let mut entries = vec![
        ("gid", number(gid)?),
        (
            "groups",
            Value::Array(groups.into_iter().map(Value::from).collect()),
        ),
        ("home", Value::from(home)),
        ("name", Value::from(name)),
        ("passwd", Value::from(passwd)),
        ("shell", Value::from(shell)),
        ("uid", number(uid)?),
    ];
    for (key, value) in ["fullname", "roomnumber", "workphone", "homephone", "other"]
        .into_iter()
        .zip(gecos)
    {
        entries.push((key, Value::from(value)));
    }
    Some(Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    ))
}

/// The GECOS field of the user `info` shows with its full name replaced, trailing empty parts
/// dropped as Salt's `_build_gecos` drops them.
fn gecos_with(info: &Value, fullname: &str) -> String {
    let part = |key| {
        crate::event::map_get(info, key)
            .map(text)
            .unwrap_or_default()
    };
    let parts = [
        fullname.to_owned(),
        part("roomnumber"),
        part("workphone"),
        part("homephone"),
        part("other"),
    ];
    parts.join(",").trim_end_matches(',').to_owned()
}

/// A `group` entry (`getent group NAME`) as Salt's `group.info` shows it.
pub(super) fn parse_group(line: &str) -> Option<Value> {
    let fields: Vec<&str> = line.splitn(4, ':').collect();
    let [name, passwd, gid, members] = fields[..] else {
        return None;
    };
    let members = members
        .split(',')
        .filter(|m| !m.is_empty())
        .map(Value::from)
        .collect();
    Some(Value::Map(vec![
        (Value::from("name"), Value::from(name)),
        (Value::from("passwd"), Value::from(passwd)),
        (Value::from("gid"), Value::from(gid.parse::<u64>().ok()?)),
        (Value::from("members"), Value::Array(members)),
    ]))
}

/// One entry of an NSS database, or None when `getent` finds none.
async fn getent(database: &str, key: &str) -> Result<Option<String>, FunctionError> {
    // getent would take a number as an id; Salt's lookups are by name only.
    if key.is_empty() || key.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let ran = run_words(&["getent", database, key], &[]).await?;
    Ok((ran.retcode == 0)
        .then(|| ran.stdout.lines().next().map(str::to_owned))
        .flatten())
}

/// `user.info` of `name`: `{}` when there is no such user.
async fn user_info(name: &str) -> Result<Value, FunctionError> {
    let Some(line) = getent("passwd", name).await? else {
        return Ok(Value::Map(Vec::new()));
    };
    // Every group the user is in, its primary group among them, sorted as Salt sorts them.
    let ran = run_words(&["id", "-Gn", name], &[]).await?;
    let mut groups: Vec<String> = ran.stdout.split_whitespace().map(str::to_owned).collect();
    groups.sort();
    groups.dedup();
    Ok(parse_passwd(&line, groups).unwrap_or_else(|| Value::Map(Vec::new())))
}

/// `group.info` of `name`.
async fn group_info(name: &str) -> Result<Value, FunctionError> {
    Ok(getent("group", name)
        .await?
        .and_then(|line| parse_group(&line))
        .unwrap_or_else(|| Value::Map(Vec::new())))
}

/// Runs `words`: whether it exited 0.
async fn succeeds(words: &[&str]) -> Result<bool, FunctionError> {
    Ok(run_words(words, &[]).await?.retcode == 0)
}

/// A bound argument as text, `None` when absent, null or empty.
fn given(bound: &crate::signature::Bound, key: &str) -> Option<String> {
    bound
        .get(key)
        .filter(|v| !v.is_nil())
        .map(text)
        .filter(|t| !t.is_empty())
}

/// A list argument: a list, or names separated by commas.
fn names(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().map(text).collect(),
        Some(Value::Nil) | None => Vec::new(),
        Some(other) => text(other)
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// Which `user` or `group` function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    UserInfo,
    UserAdd,
    UserDelete,
    UserChuid,
    UserChgid,
    UserChshell,
    UserChhome,
    UserChfullname,
    UserChgroups,
    GroupInfo,
    GroupAdd,
    GroupDelete,
    GroupChgid,
    GroupAdduser,
    GroupDeluser,
    GroupMembers,
}

impl Kind {
    fn signature(self) -> &'static Signature {
        match self {
            Kind::UserInfo => &USER_INFO,
            Kind::UserAdd => &USER_ADD,
            Kind::UserDelete => &USER_DELETE,
            Kind::UserChuid => &USER_CHUID,
            Kind::UserChgid => &USER_CHGID,
            Kind::UserChshell => &USER_CHSHELL,
            Kind::UserChhome => &USER_CHHOME,
            Kind::UserChfullname => &USER_CHFULLNAME,
            Kind::UserChgroups => &USER_CHGROUPS,
            Kind::GroupInfo => &GROUP_INFO,
            Kind::GroupAdd => &GROUP_ADD,
            Kind::GroupDelete => &GROUP_DELETE,
            Kind::GroupChgid => &GROUP_CHGID,
            Kind::GroupAdduser => &GROUP_ADDUSER,
            Kind::GroupDeluser => &GROUP_DELUSER,
            Kind::GroupMembers => &GROUP_MEMBERS,
        }
    }
}

/// Changes one field of a user to `value` with `usermod FLAG ARG NAME` unless it has the value
/// (`arg` makes usermod's argument from the user's fields when the flag sets more than the field); whether it has it afterwards
/// (Salt's `_chattrib`).
async fn change_user(
    name: &str,
    field: &str,
    value: &str,
    flag: &str,
    arg: Option<fn(&Value, &str) -> String>,
) -> Result<bool, FunctionError> {
    let has = |info: &Value| {
        crate::event::map_get(info, field).is_some_and(|current| text(current) == value)
    };
    let before = user_info(name).await?;
    if before.as_map().is_none_or(|m| m.is_empty()) {
        return Err(FunctionError::Invalid(format!(
            "User '{name}' does not exist"
        )));
    }
    if has(&before) {
        return Ok(true);
    }
    let arg = arg.map_or_else(|| value.to_owned(), |arg| arg(&before, value));
    let mut words = vec!["usermod", flag, &arg];
    if field == "home" && flag == "-d" && value.is_empty() {
        words.pop();
    }
    words.push(name);
    run_words(&words, &[]).await?;
    Ok(has(&user_info(name).await?))
}

/// Runs one `user` or `group` function.
pub(super) async fn run(call: &Call, kind: Kind) -> Result<Outcome, FunctionError> {
    let bound = bind(call, kind.signature())?;
    let name = bound.get("name").map(text).unwrap_or_default();
    let flag = |key| bound.get(key).is_some_and(truthy);
    let value = |key| given(&bound, key).unwrap_or_default();
    let ret: Value = match kind {
        Kind::UserInfo => user_info(&name).await?,
        Kind::GroupInfo => group_info(&name).await?,
        Kind::UserAdd => {
            let mut words: Vec<String> = vec!["useradd".into()];
            for (key, option) in [
                ("shell", "-s"),
                ("uid", "-u"),
                ("gid", "-g"),
                ("home", "-d"),
            ] {
                if let Some(given) = given(&bound, key) {
                    words.extend([option.to_owned(), given]);
                }
            }
            words.push(
                if bound.get("createhome").is_none_or(truthy) {
                    "-m"
                } else {
                    "-M"
                }
                .into(),
            );
            if bound.get("unique").is_some_and(|u| !truthy(u)) {
                words.push("-o".into());
            }
            if flag("system") {
                words.push("-r".into());
            }
            if let Some(fullname) = given(&bound, "fullname") {
                words.extend(["-c".to_owned(), fullname]);
            }
            words.push(name.clone());
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let created = succeeds(&words).await?;
            let groups = names(bound.get("groups"));
            if created && !groups.is_empty() {
                succeeds(&["usermod", "-G", &groups.join(","), &name]).await?;
            }
            Value::from(created)
        }
        Kind::UserDelete => {
            let mut words = vec!["userdel"];
            if flag("remove") {
                words.push("-r");
            }
            if flag("force") {
                words.push("-f");
            }
            words.push(&name);
            let ran = run_words(&words, &[]).await?;
            // Debian's userdel exits 12 when the user had no mail spool: deleted all the same.
            Value::from(ran.retcode == 0 || (ran.retcode == 12 && ran.stderr.contains("mail")))
        }
        Kind::UserChuid => Value::from(change_user(&name, "uid", &value("uid"), "-u", None).await?),
        Kind::UserChgid => Value::from(change_user(&name, "gid", &value("gid"), "-g", None).await?),
        Kind::UserChshell => {
            Value::from(change_user(&name, "shell", &value("shell"), "-s", None).await?)
        }
        Kind::UserChhome => {
            let flag = if flag("persist") { "-md" } else { "-d" };
            Value::from(change_user(&name, "home", &value("home"), flag, None).await?)
        }
        Kind::UserChfullname => {
            let fullname = bound.get("fullname").map(text).unwrap_or_default();
            Value::from(change_user(&name, "fullname", &fullname, "-c", Some(gecos_with)).await?)
        }
        Kind::UserChgroups => {
            let groups = names(bound.get("groups"));
            let mut words = vec!["usermod"];
            if flag("append") {
                words.push("-a");
            }
            let joined = groups.join(",");
            words.extend(["-G", &joined, &name]);
            Value::from(succeeds(&words).await?)
        }
        Kind::GroupAdd => {
            let mut words: Vec<String> = vec!["groupadd".into()];
            if let Some(gid) = given(&bound, "gid") {
                words.extend(["-g".to_owned(), gid]);
                if flag("non_unique") {
                    words.push("-o".into());
                }
            }
            if flag("system") {
                words.push("-r".into());
            }
            words.push(name.clone());
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            Value::from(succeeds(&words).await?)
        }
        Kind::GroupDelete => Value::from(succeeds(&["groupdel", &name]).await?),
        Kind::GroupChgid => {
            let gid = value("gid");
            let mut words = vec!["groupmod", "-g", &gid];
            if flag("non_unique") {
                words.push("-o");
            }
            words.push(&name);
            run_words(&words, &[]).await?;
            let after = group_info(&name).await?;
            Value::from(crate::event::map_get(&after, "gid").is_some_and(|g| text(g) == gid))
        }
        Kind::GroupAdduser => {
            Value::from(succeeds(&["gpasswd", "--add", &value("username"), &name]).await?)
        }
        Kind::GroupDeluser => {
            Value::from(succeeds(&["gpasswd", "--delete", &value("username"), &name]).await?)
        }
        Kind::GroupMembers => {
            Value::from(succeeds(&["gpasswd", "--members", &value("members_list"), &name]).await?)
        }
    };
    Ok(Outcome::ok(ret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_entries_read_as_salts_user_info() {
        let info = parse_passwd(
            "hs1:x:4711:4712:Hal Ite,Room 1,,:/home/hs1:/bin/sh",
            vec!["hs1".into(), "hsgrp".into()],
        )
        .unwrap();
        assert_eq!(
            crate::py::value::repr(&info),
            "{'gid': 4712, 'groups': ['hs1', 'hsgrp'], 'home': '/home/hs1', 'name': 'hs1', \
             'passwd': 'x', 'shell': '/bin/sh', 'uid': 4711, 'fullname': 'Hal Ite', \
             'roomnumber': 'Room 1', 'workphone': '', 'homephone': '', 'other': ''}"
        );
        assert!(parse_passwd("broken:line", Vec::new()).is_none());
    }

    #[test]
    fn a_new_full_name_keeps_the_other_gecos_parts() {
        let info = parse_passwd("hs1:x:1:1:Old,Room 1,,,:/h:/bin/sh", Vec::new()).unwrap();
        assert_eq!(gecos_with(&info, "New Name"), "New Name,Room 1");
        let bare = parse_passwd("hs1:x:1:1::/h:/bin/sh", Vec::new()).unwrap();
        assert_eq!(gecos_with(&bare, "Hal"), "Hal");
    }

    #[test]
    fn group_entries_read_as_salts_group_info() {
        assert_eq!(
            crate::py::value::repr(&parse_group("hsgrp:x:4711:a,b").unwrap()),
            "{'name': 'hsgrp', 'passwd': 'x', 'gid': 4711, 'members': ['a', 'b']}"
        );
        assert_eq!(
            crate::py::value::repr(&parse_group("empty:x:1:").unwrap()),
            "{'name': 'empty', 'passwd': 'x', 'gid': 1, 'members': []}"
        );
    }
}
