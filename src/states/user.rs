//! The `user` states: `user.present` and `user.absent` through the `user.*` and `group.*`
//! execution functions, with Salt's comments and changes. `user.present` first works out what
//! differs from the account as it is (Salt's `_changes`), reports that in test mode, applies it
//! with the `user.ch*` functions, then reports what `user.info` shows changed and checks again.
//!
//! Primary groups are told apart by gid through `group.info`: a user's own or primary group
//! never counts as a supplementary group that `groups` must list.

use std::collections::BTreeMap;
use std::path::Path;

use super::{StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::Value;
use crate::py::value::{py_str, repr, truthy};

/// `user.present`.
pub(super) const PRESENT: StateFunction = StateFunction {
    name: "user.present",
    required: &[],
    run: |call, ctx| Box::pin(present(call, ctx)),
    mod_watch: None,
};

/// `user.absent`.
pub(super) const ABSENT: StateFunction = StateFunction {
    name: "user.absent",
    required: &[],
    run: |call, ctx| Box::pin(absent(call, ctx)),
    mod_watch: None,
};

/// `FUN NAME` (`user.info`, `group.info`): the account's fields, empty when there is none.
pub(super) async fn info(
    ctx: &StateContext,
    fun: &str,
    name: &str,
) -> Result<Vec<(Value, Value)>, StateError> {
    let answer = ctx.call(fun, vec![Value::from(name)], Vec::new()).await?;
    Ok(answer.ret.as_map().cloned().unwrap_or_default())
}

/// A field of an account read by [`info`].
fn field<'a>(info: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    info.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A list argument as names: a list, or one name (names separated by commas).
pub(super) fn names(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(|v| py_str(v).into_owned()).collect(),
        Value::Nil => Vec::new(),
        other => py_str(other)
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// The gids of groups looked up so far (Salt's `file.group_to_gid`; `None` for no such group).
#[derive(Default)]
struct Gids(BTreeMap<String, Option<i64>>);

impl Gids {
    async fn of(&mut self, ctx: &StateContext, group: &str) -> Result<Option<i64>, StateError> {
        if let Some(gid) = self.0.get(group) {
            return Ok(*gid);
        }
        let gid = field(&info(ctx, "group.info", group).await?, "gid").and_then(Value::as_i64);
        self.0.insert(group.to_owned(), gid);
        Ok(gid)
    }

    /// The gid a `gid` argument names: a number, or a group's name.
    async fn named(&mut self, ctx: &StateContext, gid: &Value) -> Result<Option<i64>, StateError> {
        match gid.as_i64() {
            Some(number) => Ok(Some(number)),
            None => self.of(ctx, &py_str(gid)).await,
        }
    }

    /// Drops from `list` every group whose gid is `gid`.
    async fn drop_gid(
        &mut self,
        ctx: &StateContext,
        list: &mut Vec<String>,
        gid: i64,
    ) -> Result<(), StateError> {
        let mut kept = Vec::with_capacity(list.len());
        for group in list.drain(..) {
            if self.of(ctx, &group).await? != Some(gid) {
                kept.push(group);
            }
        }
        *list = kept;
        Ok(())
    }
}

/// What `user.present` wants of the account.
struct Wanted {
    uid: Option<Value>,
    gid: Option<Value>,
    groups: Option<Vec<String>>,
    /// The optional groups that exist.
    optional_groups: Vec<String>,
    remove_groups: bool,
    home: Option<String>,
    createhome: bool,
    shell: Option<String>,
    fullname: Option<String>,
}

impl Wanted {
    fn from(call: &StateCall) -> Self {
        let truthy_arg = |key: &str| call.arg(key).filter(|v| truthy(v)).cloned();
        Self {
            uid: truthy_arg("uid"),
            gid: call.arg("gid").filter(|v| !v.is_nil()).cloned(),
            groups: call.arg("groups").filter(|v| !v.is_nil()).map(names),
            optional_groups: Vec::new(),
            remove_groups: call.arg_bool("remove_groups", true),
            home: truthy_arg("home").map(|v| py_str(&v).into_owned()),
            createhome: call.arg_bool("createhome", true),
            shell: truthy_arg("shell").map(|v| py_str(&v).into_owned()),
            fullname: call.arg_str("fullname"),
        }
    }
}

/// What differs between the account and what is wanted, in Salt's order; `None` when there is
/// no such user. `Err` holds the comment of a change that is not permitted.
async fn changes(
    ctx: &StateContext,
    name: &str,
    wanted: &Wanted,
    allow_uid_change: bool,
    allow_gid_change: bool,
) -> Result<Result<Option<Vec<(&'static str, Value)>>, String>, StateError> {
    let user = info(ctx, "user.info", name).await?;
    if user.is_empty() {
        return Ok(Ok(None));
    }
    let mut gids = Gids::default();
    let mut current: Vec<String> = field(&user, "groups").map(names).unwrap_or_default();
    let mut wanted_groups: Vec<String> = wanted
        .groups
        .iter()
        .flatten()
        .chain(&wanted.optional_groups)
        .cloned()
        .collect();
    // Unless asked to, groups the user is in stay.
    if !wanted.remove_groups || (wanted.groups.is_none() && wanted.optional_groups.is_empty()) {
        wanted_groups.extend(current.iter().cloned());
    }
    wanted_groups.sort();
    wanted_groups.dedup();
    let user_uid = field(&user, "uid").cloned().unwrap_or(Value::Nil);
    let user_gid = field(&user, "gid").and_then(Value::as_i64);
    let mut change: Vec<(&'static str, Value)> = Vec::new();
    if let Some(uid) = &wanted.uid
        && user_uid != *uid
    {
        change.push(("uid", uid.clone()));
    }
    let wanted_gid = match &wanted.gid {
        Some(gid) => gids.named(ctx, gid).await?,
        None => user_gid,
    };
    if let Some(gid) = &wanted.gid
        && wanted_gid.is_none_or(|g| Some(g) != user_gid)
    {
        change.push(("gid", gid.clone()));
    }
    // The primary group, wanted and current, is no supplementary group.
    if let Some(primary) = wanted_gid {
        gids.drop_gid(ctx, &mut current, primary).await?;
        gids.drop_gid(ctx, &mut wanted_groups, primary).await?;
    }
    if let Some(old) = user_gid.filter(|old| Some(*old) != wanted_gid) {
        gids.drop_gid(ctx, &mut current, old).await?;
    }
    // Nor is the group named after the user, unless asked for.
    if !wanted_groups.iter().any(|g| g == name) {
        current.retain(|g| g != name);
    }
    if groups_differ(
        ctx,
        &mut gids,
        &current,
        &wanted_groups,
        wanted.remove_groups,
    )
    .await?
        && (!wanted_groups.is_empty() || wanted.remove_groups)
    {
        change.push((
            "groups",
            Value::Array(
                wanted_groups
                    .iter()
                    .map(|g| Value::from(g.as_str()))
                    .collect(),
            ),
        ));
    }
    let user_text = |key| field(&user, key).map(|v| py_str(v).into_owned());
    if let Some(home) = &wanted.home
        && user_text("home").as_ref() != Some(home)
    {
        change.push(("home", Value::from(home.as_str())));
    }
    if wanted.createhome
        && let Some(home) = wanted.home.clone().or_else(|| user_text("home"))
        && !Path::new(&home).is_dir()
    {
        change.push(("homeDoesNotExist", Value::from(home)));
    }
    if let Some(shell) = &wanted.shell
        && user_text("shell").as_ref() != Some(shell)
    {
        change.push(("shell", Value::from(shell.as_str())));
    }
    if let Some(fullname) = &wanted.fullname
        && user_text("fullname").as_ref() != Some(fullname)
    {
        change.push(("fullname", Value::from(fullname.as_str())));
    }
    let mut errors = Vec::new();
    let shown = |v: Option<&Value>| v.map_or("None".to_owned(), |v| py_str(v).into_owned());
    for (key, allowed, was) in [
        ("uid", allow_uid_change, field(&user, "uid")),
        ("gid", allow_gid_change, field(&user, "gid")),
    ] {
        if let Some((_, to)) = change.iter().find(|(k, _)| *k == key)
            && !allowed
        {
            errors.push(format!(
                "- Changing {key} ({} -> {}) not permitted, set allow_{key}_change to True to force this change. Note that this will not change file ownership.",
                shown(was),
                shown(Some(to))
            ));
        }
    }
    if !errors.is_empty() {
        return Ok(Err(format!(
            "Encountered error checking for needed changes. Additional info follows:\n\n{}",
            errors.join("\n")
        )));
    }
    Ok(Ok(Some(change)))
}

/// Whether the supplementary groups must change (Salt's `_group_changes`): groups that differ
/// only by sharing a gid with another of them do not count.
async fn groups_differ(
    ctx: &StateContext,
    gids: &mut Gids,
    current: &[String],
    wanted: &[String],
    remove: bool,
) -> Result<bool, StateError> {
    let missing: Vec<&String> = wanted.iter().filter(|g| !current.contains(g)).collect();
    let extra: Vec<&String> = current.iter().filter(|g| !wanted.contains(g)).collect();
    if missing.is_empty() && (extra.is_empty() || !remove) {
        return Ok(false);
    }
    let diff: Vec<&String> = if remove {
        missing.into_iter().chain(extra).collect()
    } else {
        missing
    };
    let all: Vec<&String> = current
        .iter()
        .chain(wanted.iter().filter(|g| !current.contains(g)))
        .collect();
    for group in diff {
        let gid = gids.of(ctx, group).await?;
        let mut duplicate = false;
        for other in all.iter().filter(|other| **other != group) {
            if gid.is_some() && gids.of(ctx, other).await? == gid {
                duplicate = true;
            }
        }
        if !duplicate {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Python's `str()` of a change, as Salt lists it in comments.
fn shown(value: &Value) -> String {
    py_str(value).into_owned()
}

async fn present(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    let mut ret = StateResult::new(
        call,
        Some(true),
        format!("User {name} is present and up to date"),
    );
    let mut wanted = Wanted::from(call);
    // A comma would split the GECOS field, and Salt would change it on every run.
    for gecos in ["fullname", "roomnumber", "workphone"] {
        if let Some(value) = call.arg_str(gecos).filter(|v| v.contains(',')) {
            ret.result = Some(false);
            ret.comment = format!("Unsupported char ',' in {value}");
            return Ok(ret);
        }
    }
    let mut missing = Vec::new();
    for group in wanted.groups.iter().flatten() {
        if info(ctx, "group.info", group).await?.is_empty() {
            missing.push(group.as_str());
        }
    }
    if !missing.is_empty() {
        ret.result = Some(false);
        ret.comment = format!(
            "The following group(s) are not present: {}",
            missing.join(",")
        );
        return Ok(ret);
    }
    for group in call.arg("optional_groups").map(names).unwrap_or_default() {
        if !info(ctx, "group.info", &group).await?.is_empty() {
            wanted.optional_groups.push(group);
        }
    }
    let allow_uid = call.arg_bool("allow_uid_change", false);
    let allow_gid = call.arg_bool("allow_gid_change", false);
    let found = match changes(ctx, name, &wanted, allow_uid, allow_gid).await? {
        Ok(found) => found,
        Err(comment) => {
            ret.result = Some(false);
            ret.comment = comment;
            return Ok(ret);
        }
    };
    match found {
        None => create(call, ctx, &wanted, ret).await,
        Some(change) if change.is_empty() => Ok(ret),
        Some(change) if call.test => {
            ret.result = None;
            ret.comment = "The following user attributes are set to be changed:\n".to_owned();
            for (key, value) in &change {
                ret.comment.push_str(&format!("{key}: {}\n", shown(value)));
            }
            Ok(ret)
        }
        Some(change) => update(call, ctx, &wanted, change, ret).await,
    }
}

/// Applies `change` to the existing user, then reports what changed.
async fn update(
    call: &StateCall,
    ctx: &StateContext,
    wanted: &Wanted,
    mut change: Vec<(&'static str, Value)>,
    mut ret: StateResult,
) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    let user = || Value::from(name);
    let pre = info(ctx, "user.info", name).await?;
    let mut take = |key: &str| {
        change
            .iter()
            .position(|(k, _)| *k == key)
            .map(|at| change.remove(at).1)
    };
    let chhome = |home: Value| {
        ctx.call(
            "user.chhome",
            vec![user(), home],
            vec![("persist".to_owned(), Value::Boolean(false))],
        )
    };
    let home = take("home");
    let missing_home = take("homeDoesNotExist");
    if let Some(target) = missing_home.clone().or(home) {
        chhome(target).await?;
    }
    if let Some(missing) = missing_home {
        make_home(&py_str(&missing), &pre)?;
    }
    let groups = take("groups");
    // The rest have a `user.ch<key>` function each; groups go last, after the primary group.
    for (key, value) in change {
        ctx.call(&format!("user.ch{key}"), vec![user(), value], Vec::new())
            .await?;
    }
    if let Some(groups) = groups {
        ctx.call(
            "user.chgroups",
            vec![user(), groups, Value::Boolean(!wanted.remove_groups)],
            Vec::new(),
        )
        .await?;
    }
    let post = info(ctx, "user.info", name).await?;
    let changed: Vec<(Value, Value)> = post
        .iter()
        .filter(|(key, value)| pre.iter().find(|(k, _)| k == key).map(|(_, v)| v) != Some(value))
        .cloned()
        .collect();
    if !changed.is_empty() {
        ret.comment = format!("Updated user {name}");
        ret.changes = Value::Map(changed);
    }
    if let Ok(Some(left)) = changes(ctx, name, wanted, true, true).await?
        && !left.is_empty()
    {
        let left = Value::Map(left.into_iter().map(|(k, v)| (Value::from(k), v)).collect());
        ret.comment = format!("These values could not be changed: {}", repr(&left));
        ret.result = Some(false);
    }
    Ok(ret)
}

/// Creates a missing home directory and its missing parents, owned by the user, mode 0755 (as
/// Salt's `file.mkdir`).
fn make_home(home: &str, user: &[(Value, Value)]) -> Result<(), StateError> {
    use std::os::unix::fs::{DirBuilderExt, chown};
    let id = |key| {
        field(user, key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let fail = |err: std::io::Error| StateError::Invalid(format!("{home}: {err}"));
    let mut missing = Vec::new();
    let mut path = Path::new(home);
    while !path.is_dir() {
        missing.push(path);
        match path.parent() {
            Some(parent) => path = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .map_err(fail)?;
        chown(dir, id("uid"), id("gid")).map_err(fail)?;
    }
    Ok(())
}

/// Creates the user (Salt's `user.add` with the state's arguments), reporting its fields.
async fn create(
    call: &StateCall,
    ctx: &StateContext,
    wanted: &Wanted,
    mut ret: StateResult,
) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    if call.test {
        ret.result = None;
        ret.comment = format!("User {name} set to be added");
        return Ok(ret);
    }
    let mut groups: Vec<String> = wanted.groups.clone().unwrap_or_default();
    groups.extend(wanted.optional_groups.iter().cloned());
    let groups = (wanted.groups.is_some() || !wanted.optional_groups.is_empty())
        .then(|| Value::Array(groups.iter().map(|g| Value::from(g.as_str())).collect()));
    let arg = |key: &str| call.arg(key).cloned().unwrap_or(Value::Nil);
    let kwargs = vec![
        ("uid".to_owned(), arg("uid")),
        ("gid".to_owned(), arg("gid")),
        ("groups".to_owned(), groups.unwrap_or(Value::Nil)),
        ("home".to_owned(), arg("home")),
        ("shell".to_owned(), arg("shell")),
        (
            "unique".to_owned(),
            Value::Boolean(call.arg_bool("unique", true)),
        ),
        (
            "system".to_owned(),
            Value::Boolean(call.arg_bool("system", false)),
        ),
        ("fullname".to_owned(), arg("fullname")),
        ("createhome".to_owned(), Value::Boolean(wanted.createhome)),
    ];
    let added = ctx
        .call("user.add", vec![Value::from(name)], kwargs)
        .await?;
    if added.ret != Value::Boolean(true) {
        ret.result = Some(false);
        ret.comment = format!("Failed to create new user {name}");
        return Ok(ret);
    }
    ret.comment = format!("New user {name} created");
    let mut fields = info(ctx, "user.info", name).await?;
    if !wanted.createhome {
        // The account names a home that was not made.
        for (key, value) in &mut fields {
            if key.as_str() == Some("home") {
                *value = Value::from("");
            }
        }
    }
    ret.changes = Value::Map(fields);
    Ok(ret)
}

async fn absent(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    let user = info(ctx, "user.info", name).await?;
    if user.is_empty() {
        return Ok(StateResult::new(
            call,
            Some(true),
            format!("User {name} is not present"),
        ));
    }
    if call.test {
        return Ok(StateResult::new(
            call,
            None,
            format!("User {name} set for removal"),
        ));
    }
    let before: Vec<String> = field(&user, "groups").map(names).unwrap_or_default();
    let deleted = ctx
        .call(
            "user.delete",
            vec![
                Value::from(name),
                Value::Boolean(call.arg_bool("purge", false)),
                Value::Boolean(call.arg_bool("force", false)),
            ],
            Vec::new(),
        )
        .await?;
    if !truthy(&deleted.ret) {
        return Ok(StateResult::new(
            call,
            Some(false),
            format!("Failed to remove user {name}"),
        ));
    }
    // userdel also removes the user's own group when nobody else is in it.
    let mut changes = Vec::new();
    for group in before {
        if info(ctx, "group.info", &group).await?.is_empty() {
            changes.push((
                Value::from(format!("{group} group")),
                Value::from("removed"),
            ));
        }
    }
    changes.push((Value::from(name), Value::from("removed")));
    Ok(
        StateResult::new(call, Some(true), format!("Removed user {name}"))
            .with_changes(Value::Map(changes)),
    )
}

/// Accounts for tests: an in-memory passwd and group database behind the `user.*` and
/// `group.*` functions, recording every call that changes something.
#[cfg(test)]
pub(super) mod fake {
    use std::sync::{Arc, Mutex};

    use super::super::{Calling, Executed, ExecutionError, Salt, StateCall, StateContext};
    use super::super::{StateFunction, StateResult};
    use crate::config::{Config, Role};
    use crate::event::Value;
    use crate::py::value::py_str;
    use crate::salt_yaml::CliArgs;

    /// A user: name, uid, primary gid, home, shell.
    pub struct User(
        pub &'static str,
        pub i64,
        pub i64,
        pub &'static str,
        pub &'static str,
    );

    /// A group: name, gid, members.
    pub struct Group(pub &'static str, pub i64, pub Vec<&'static str>);

    #[derive(Default)]
    pub struct Accounts {
        db: Mutex<(Vec<User>, Vec<Group>)>,
        /// `fun arg…` of each call other than `*.info`.
        pub calls: Mutex<Vec<String>>,
    }

    fn text(v: &Value) -> String {
        py_str(v).into_owned()
    }

    impl Accounts {
        pub fn new(users: Vec<User>, groups: Vec<Group>) -> Arc<Self> {
            Arc::new(Self {
                db: Mutex::new((users, groups)),
                calls: Mutex::default(),
            })
        }

        fn user_info(&self, name: &str) -> Value {
            let db = self.db.lock().unwrap();
            let Some(user) = db.0.iter().find(|u| u.0 == name) else {
                return Value::Map(Vec::new());
            };
            let mut groups: Vec<Value> =
                db.1.iter()
                    .filter(|g| g.1 == user.2 || g.2.contains(&name))
                    .map(|g| Value::from(g.0))
                    .collect();
            groups.sort_by_key(text);
            let entries: Vec<(&str, Value)> = vec![
                ("gid", Value::from(user.2)),
                ("groups", Value::Array(groups)),
                ("home", Value::from(user.3)),
                ("name", Value::from(name)),
                ("shell", Value::from(user.4)),
                ("uid", Value::from(user.1)),
                ("fullname", Value::from("")),
            ];
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            )
        }

        fn group_info(&self, name: &str) -> Value {
            let db = self.db.lock().unwrap();
            db.1.iter()
                .find(|g| g.0 == name)
                .map_or(Value::Map(Vec::new()), |g| {
                    Value::Map(vec![
                        (Value::from("name"), Value::from(g.0)),
                        (Value::from("gid"), Value::from(g.1)),
                        (
                            Value::from("members"),
                            Value::Array(g.2.iter().map(|m| Value::from(*m)).collect()),
                        ),
                    ])
                })
        }

        /// Applies a change; names and values the tests use are leaked to fit the tables.
        fn change(&self, fun: &str, args: &CliArgs) -> Value {
            let arg = |i: usize| args.args.get(i).map(text).unwrap_or_default();
            let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
            let mut db = self.db.lock().unwrap();
            let (users, groups) = &mut *db;
            let user = |users: &[User]| users.iter().position(|u| u.0 == arg(0)).unwrap();
            let group = |groups: &[Group]| groups.iter().position(|g| g.0 == arg(0)).unwrap();
            match fun {
                "user.add" => {
                    let gid = 1000 + i64::try_from(groups.len()).unwrap();
                    groups.push(Group(leak(arg(0)), gid, Vec::new()));
                    users.push(User(leak(arg(0)), gid, gid, "/", "/bin/sh"));
                }
                "user.delete" => {
                    users.retain(|u| u.0 != arg(0));
                    groups.retain(|g| g.0 != arg(0));
                }
                "user.chshell" => {
                    let at = user(users);
                    users[at].4 = leak(arg(1));
                }
                "user.chhome" => {
                    let at = user(users);
                    users[at].3 = leak(arg(1));
                }
                "user.chgroups" => {
                    let name = leak(arg(0));
                    let wanted: Vec<String> =
                        args.args[1].as_array().unwrap().iter().map(text).collect();
                    for g in groups.iter_mut() {
                        g.2.retain(|m| *m != name);
                        if wanted.contains(&g.0.to_owned()) {
                            g.2.push(name);
                        }
                    }
                }
                "group.add" => groups.push(Group(leak(arg(0)), 2000, Vec::new())),
                "group.delete" => groups.retain(|g| g.0 != arg(0)),
                "group.adduser" => {
                    let at = group(groups);
                    groups[at].2.push(leak(arg(1)));
                }
                "group.deluser" => {
                    let at = group(groups);
                    groups[at].2.retain(|m| *m != arg(1));
                }
                "group.members" => {
                    let at = group(groups);
                    groups[at].2 = arg(1).split(',').map(|m| leak(m.to_owned())).collect();
                }
                other => panic!("{other} is not faked"),
            }
            Value::Boolean(true)
        }
    }

    impl Salt for Accounts {
        fn call<'a>(&'a self, fun: &'a str, args: CliArgs) -> Calling<'a> {
            Box::pin(async move {
                let ret = match fun {
                    "user.info" => self.user_info(&text(&args.args[0])),
                    "group.info" => self.group_info(&text(&args.args[0])),
                    _ => {
                        let shown: Vec<String> = args
                            .args
                            .iter()
                            .map(text)
                            .chain(args.kwargs.iter().map(|(k, v)| format!("{k}={}", text(v))))
                            .collect();
                        self.calls
                            .lock()
                            .unwrap()
                            .push(format!("{fun} {}", shown.join(" ")));
                        self.change(fun, &args)
                    }
                };
                Ok::<_, ExecutionError>(Executed { ret, retcode: 0 })
            })
        }
    }

    /// Runs `state` on `name` with `args` against `accounts`.
    pub fn run(
        state: &StateFunction,
        accounts: &Arc<Accounts>,
        name: &str,
        args: &[(&str, Value)],
        test: bool,
    ) -> StateResult {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(Role::Minion, Some(dir.path())).unwrap();
        let ctx = StateContext {
            renderer: Arc::new(crate::render::Renderer::new(&config)),
            config,
            grains: Value::Map(Vec::new()),
            pillar: Value::Map(Vec::new()),
            files: None,
            salt: accounts.clone(),
            jid: "20261203000000000000".to_owned(),
        };
        let call = StateCall {
            id: name.to_owned(),
            name: name.to_owned(),
            fun: state.name.to_owned(),
            sls: "s".to_owned(),
            saltenv: "base".to_owned(),
            args: args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            test,
            watch_changes: Vec::new(),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on((state.run)(&call, &ctx)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{Accounts, Group, User, run};
    use super::*;

    fn list(names: &[&str]) -> Value {
        Value::Array(names.iter().map(|n| Value::from(*n)).collect())
    }

    /// `ann` (uid 1000, her own group `ann` as primary) also in `staff`.
    fn ann() -> std::sync::Arc<Accounts> {
        Accounts::new(
            vec![User("ann", 1000, 1000, "/", "/bin/sh")],
            vec![
                Group("ann", 1000, vec![]),
                Group("staff", 50, vec!["ann"]),
                Group("wheel", 10, vec![]),
            ],
        )
    }

    #[test]
    fn a_missing_user_is_reported_in_test_mode_then_created_with_its_fields() {
        let accounts = Accounts::new(Vec::new(), vec![Group("wheel", 10, vec![])]);
        let args = [
            ("shell", Value::from("/bin/bash")),
            ("groups", list(&["wheel"])),
        ];
        let ret = run(&PRESENT, &accounts, "bob", &args, true);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (None, "User bob set to be added")
        );
        assert!(accounts.calls.lock().unwrap().is_empty());
        let ret = run(&PRESENT, &accounts, "bob", &args, false);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "New user bob created")
        );
        assert_eq!(
            accounts.calls.lock().unwrap()[0],
            "user.add bob uid=None gid=None groups=['wheel'] home=None shell=/bin/bash unique=True system=False fullname=None createhome=True"
        );
        assert_eq!(
            crate::event::map_get(&ret.changes, "name"),
            Some(&Value::from("bob"))
        );
    }

    #[test]
    fn a_user_as_wanted_is_left_alone_its_own_and_primary_groups_aside() {
        let accounts = ann();
        for args in [
            vec![("groups", list(&["staff"])), ("uid", Value::from(1000))],
            vec![
                ("shell", Value::from("/bin/sh")),
                ("gid", Value::from("ann")),
            ],
            vec![
                ("groups", list(&["ann"])),
                ("remove_groups", Value::Boolean(false)),
            ],
        ] {
            let ret = run(&PRESENT, &accounts, "ann", &args, false);
            assert_eq!(
                (ret.result, ret.comment.as_str()),
                (Some(true), "User ann is present and up to date"),
                "{args:?}"
            );
        }
        assert!(accounts.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn changes_are_listed_in_test_mode_and_applied_groups_last() {
        let accounts = ann();
        let args = [
            ("groups", list(&["wheel"])),
            ("shell", Value::from("/bin/bash")),
        ];
        let ret = run(&PRESENT, &accounts, "ann", &args, true);
        assert_eq!(ret.result, None);
        assert_eq!(
            ret.comment,
            "The following user attributes are set to be changed:\ngroups: ['wheel']\nshell: /bin/bash\n"
        );
        let ret = run(&PRESENT, &accounts, "ann", &args, false);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "Updated user ann")
        );
        assert_eq!(
            *accounts.calls.lock().unwrap(),
            [
                "user.chshell ann /bin/bash",
                "user.chgroups ann ['wheel'] False"
            ]
        );
        assert_eq!(
            crate::py::value::repr(&ret.changes),
            "{'groups': ['ann', 'wheel'], 'shell': '/bin/bash'}"
        );
    }

    #[test]
    fn uid_and_gid_changes_need_permission_and_groups_must_exist() {
        let accounts = ann();
        let ret = run(
            &PRESENT,
            &accounts,
            "ann",
            &[("uid", Value::from(7)), ("gid", Value::from("wheel"))],
            false,
        );
        assert_eq!(ret.result, Some(false));
        assert_eq!(
            ret.comment,
            "Encountered error checking for needed changes. Additional info follows:\n\n\
             - Changing uid (1000 -> 7) not permitted, set allow_uid_change to True to force this change. Note that this will not change file ownership.\n\
             - Changing gid (1000 -> wheel) not permitted, set allow_gid_change to True to force this change. Note that this will not change file ownership."
        );
        let ret = run(
            &PRESENT,
            &accounts,
            "ann",
            &[("groups", list(&["nope", "staff", "nada"]))],
            false,
        );
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (
                Some(false),
                "The following group(s) are not present: nope,nada"
            )
        );
        let ret = run(
            &PRESENT,
            &accounts,
            "ann",
            &[("fullname", Value::from("A, B"))],
            false,
        );
        assert_eq!(ret.comment, "Unsupported char ',' in A, B");
        assert!(accounts.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn a_missing_home_is_listed_as_salt_lists_it() {
        let accounts = ann();
        let ret = run(
            &PRESENT,
            &accounts,
            "ann",
            &[("home", Value::from("/nonexistent/ann"))],
            true,
        );
        assert_eq!(
            ret.comment,
            "The following user attributes are set to be changed:\nhome: /nonexistent/ann\nhomeDoesNotExist: /nonexistent/ann\n"
        );
        let ret = run(
            &PRESENT,
            &accounts,
            "ann",
            &[
                ("home", Value::from("/nonexistent/ann")),
                ("createhome", Value::Boolean(false)),
            ],
            true,
        );
        assert_eq!(
            ret.comment,
            "The following user attributes are set to be changed:\nhome: /nonexistent/ann\n"
        );
    }

    #[test]
    fn absent_removes_the_user_and_reports_the_groups_that_went_with_it() {
        let accounts = ann();
        let ret = run(&ABSENT, &accounts, "ann", &[], true);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (None, "User ann set for removal")
        );
        let ret = run(
            &ABSENT,
            &accounts,
            "ann",
            &[("purge", Value::Boolean(true))],
            false,
        );
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "Removed user ann")
        );
        assert_eq!(
            crate::py::value::repr(&ret.changes),
            "{'ann group': 'removed', 'ann': 'removed'}"
        );
        assert_eq!(
            *accounts.calls.lock().unwrap(),
            ["user.delete ann True False"]
        );
        let ret = run(&ABSENT, &accounts, "ann", &[], false);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "User ann is not present")
        );
    }
}
