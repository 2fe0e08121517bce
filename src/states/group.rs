//! The `group` states: `group.present` and `group.absent` through the `group.*` execution
//! functions, with Salt's comments and changes. `group.present` works out what differs from
//! the group as it is (Salt's `_changes`: gid, `members`, `addusers`, `delusers`), lists it in
//! the comment, applies it and checks again.

use super::user::{info, names};
use super::{StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::Value;
use crate::py::value::{py_str, repr, truthy};

/// `group.present`.
pub(super) const PRESENT: StateFunction = StateFunction {
    name: "group.present",
    required: &[],
    run: |call, ctx| Box::pin(present(call, ctx)),
    mod_watch: None,
};

/// `group.absent`.
pub(super) const ABSENT: StateFunction = StateFunction {
    name: "group.absent",
    required: &[],
    run: |call, ctx| Box::pin(absent(call, ctx)),
    mod_watch: None,
};

/// One difference between the group and what is wanted.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Gid(i64),
    /// `members: []` on a group with members: all of them go (Salt shows them as a set).
    DelAll(Vec<String>),
    Members(Vec<String>),
    AddUsers(Vec<String>),
    DelUsers(Vec<String>),
    /// A gid that is no number: Salt's `_changes` returns its own `{result, comment}`, which
    /// `group.present` then lists as two changes.
    InvalidGid,
}

fn list(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| Value::from(n.as_str())).collect())
}

impl Change {
    /// Its key(s) and value(s), as Salt's changes dict holds them.
    fn entries(&self) -> Vec<(&'static str, Value)> {
        match self {
            Change::Gid(gid) => vec![("gid", Value::from(*gid))],
            Change::DelAll(users) | Change::DelUsers(users) => vec![("delusers", list(users))],
            Change::Members(users) => vec![("members", list(users))],
            Change::AddUsers(users) => vec![("addusers", list(users))],
            Change::InvalidGid => vec![
                ("result", Value::Boolean(false)),
                ("comment", Value::from("Invalid gid")),
            ],
        }
    }

    /// Its line(s) in the comment: `key: value` with Python's `str()` of the value.
    fn lines(&self) -> String {
        match self {
            Change::DelAll(users) => {
                let shown: Vec<String> = users
                    .iter()
                    .map(|u| repr(&Value::from(u.as_str())))
                    .collect();
                format!("delusers: {{{}}}\n", shown.join(", "))
            }
            other => other
                .entries()
                .into_iter()
                .map(|(key, value)| format!("{key}: {}\n", py_str(&value)))
                .collect(),
        }
    }
}

fn as_map(changes: &[Change]) -> Value {
    Value::Map(
        changes
            .iter()
            .flat_map(Change::entries)
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// What `group.present` wants of the group.
struct Wanted {
    gid: Option<Value>,
    addusers: Option<Vec<String>>,
    delusers: Option<Vec<String>>,
    members: Option<Vec<String>>,
}

/// A gid argument as Python's `int()` reads it.
fn gid_number(gid: &Value) -> Option<i64> {
    match gid {
        Value::Boolean(b) => Some(i64::from(*b)),
        Value::F64(f) if f.is_finite() => Some(f.trunc() as i64),
        other => other.as_i64().or_else(|| py_str(other).trim().parse().ok()),
    }
}

/// What differs from the group as it is; `None` when there is no such group.
async fn changes(
    ctx: &StateContext,
    name: &str,
    wanted: &Wanted,
) -> Result<Option<Vec<Change>>, StateError> {
    let group = info(ctx, "group.info", name).await?;
    if group.is_empty() {
        return Ok(None);
    }
    let field = |key: &str| {
        group
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    let members: Vec<String> = field("members").map(names).unwrap_or_default();
    let mut change = Vec::new();
    if let Some(gid) = wanted.gid.as_ref().filter(|g| truthy(g)) {
        match gid_number(gid) {
            Some(gid) if field("gid").and_then(Value::as_i64) != Some(gid) => {
                change.push(Change::Gid(gid));
            }
            Some(_) => {}
            None => return Ok(Some(vec![Change::InvalidGid])),
        }
    }
    let differs = |wanted: &[String]| {
        wanted.iter().any(|u| !members.contains(u)) || members.iter().any(|m| !wanted.contains(m))
    };
    match &wanted.members {
        Some(wanted) if wanted.is_empty() && !members.is_empty() => {
            let mut all = members.clone();
            all.sort();
            all.dedup();
            change.push(Change::DelAll(all));
        }
        Some(wanted) if differs(wanted) => change.push(Change::Members(wanted.clone())),
        _ => {}
    }
    let to_add: Vec<String> = wanted
        .addusers
        .iter()
        .flatten()
        .filter(|u| !members.contains(u))
        .cloned()
        .collect();
    if !to_add.is_empty() {
        change.push(Change::AddUsers(to_add));
    }
    let to_delete: Vec<String> = wanted
        .delusers
        .iter()
        .flatten()
        .filter(|u| members.contains(u))
        .cloned()
        .collect();
    if !to_delete.is_empty() {
        // A later `delusers` replaces what `members: []` put there, as in Salt's dict.
        change.retain(|c| !matches!(c, Change::DelAll(_)));
        change.push(Change::DelUsers(to_delete));
    }
    Ok(Some(change))
}

async fn present(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    let list_arg = |key: &str| call.arg(key).filter(|v| !v.is_nil()).map(names);
    let wanted = Wanted {
        gid: call.arg("gid").filter(|v| !v.is_nil()).cloned(),
        addusers: list_arg("addusers"),
        delusers: list_arg("delusers"),
        members: list_arg("members"),
    };
    let mut ret = StateResult::new(
        call,
        Some(true),
        format!("Group {name} is present and up to date"),
    );
    if wanted.members.is_some() && (wanted.addusers.is_some() || wanted.delusers.is_some()) {
        ret.result = None;
        ret.comment = "Error: Conflicting options \"members\" with \"addusers\" and/or \"delusers\" can not be used together. ".to_owned();
        return Ok(ret);
    }
    if let (Some(add), Some(del)) = (&wanted.addusers, &wanted.delusers)
        && add.iter().any(|u| del.contains(u))
    {
        ret.result = None;
        ret.comment = "Error. Same user(s) can not be added and deleted simultaneously".to_owned();
        return Ok(ret);
    }
    let non_unique = call.arg_bool("non_unique", false);
    let Some(change) = changes(ctx, name, &wanted).await? else {
        return create(call, ctx, &wanted, non_unique, ret).await;
    };
    if change.is_empty() {
        return Ok(ret);
    }
    ret.comment = "The following group attributes are set to be changed:\n".to_owned();
    for one in &change {
        ret.comment.push_str(&one.lines());
    }
    if call.test {
        ret.result = None;
        return Ok(ret);
    }
    let group = || Value::from(name);
    for one in &change {
        match one {
            Change::Gid(_) => {
                ctx.call(
                    "group.chgid",
                    vec![group(), wanted.gid.clone().unwrap_or(Value::Nil)],
                    vec![("non_unique".to_owned(), Value::Boolean(non_unique))],
                )
                .await?;
            }
            Change::AddUsers(users) => {
                for user in users {
                    ctx.call(
                        "group.adduser",
                        vec![group(), Value::from(user.as_str())],
                        Vec::new(),
                    )
                    .await?;
                }
            }
            Change::DelAll(users) | Change::DelUsers(users) => {
                for user in users {
                    ctx.call(
                        "group.deluser",
                        vec![group(), Value::from(user.as_str())],
                        Vec::new(),
                    )
                    .await?;
                }
            }
            Change::Members(users) => {
                ctx.call(
                    "group.members",
                    vec![group(), Value::from(users.join(","))],
                    Vec::new(),
                )
                .await?;
            }
            Change::InvalidGid => {}
        }
    }
    let left = changes(ctx, name, &wanted).await?.unwrap_or_default();
    if left.is_empty() {
        ret.changes = Value::Map(vec![(
            Value::from("Final"),
            Value::from("All changes applied successfully"),
        )]);
    } else {
        ret.result = Some(false);
        ret.comment.push_str("Some changes could not be applied");
        ret.changes = Value::Map(vec![(Value::from("Failed"), as_map(&left))]);
    }
    Ok(ret)
}

/// Creates the group, then sets its members, reporting its fields.
async fn create(
    call: &StateCall,
    ctx: &StateContext,
    wanted: &Wanted,
    non_unique: bool,
    mut ret: StateResult,
) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    if call.test {
        ret.result = None;
        ret.comment = format!("Group {name} set to be added");
        return Ok(ret);
    }
    let added = ctx
        .call(
            "group.add",
            vec![Value::from(name)],
            vec![
                ("gid".to_owned(), wanted.gid.clone().unwrap_or(Value::Nil)),
                (
                    "system".to_owned(),
                    Value::Boolean(call.arg_bool("system", false)),
                ),
                ("non_unique".to_owned(), Value::Boolean(non_unique)),
            ],
        )
        .await?;
    if !truthy(&added.ret) {
        ret.result = Some(false);
        ret.comment = format!("Failed to create new group {name}");
        return Ok(ret);
    }
    let members = wanted
        .addusers
        .as_ref()
        .filter(|users| !users.is_empty())
        .or(wanted.members.as_ref().filter(|users| !users.is_empty()));
    if let Some(members) = members {
        ctx.call(
            "group.members",
            vec![Value::from(name), Value::from(members.join(","))],
            Vec::new(),
        )
        .await?;
    }
    ret.comment = format!("New group {name} created");
    ret.changes = Value::Map(info(ctx, "group.info", name).await?);
    if let Some(left) = changes(ctx, name, wanted).await?
        && !left.is_empty()
    {
        ret.result = Some(false);
        ret.comment =
            format!("Group {name} has been created but, some changes could not be applied");
        ret.changes = Value::Map(vec![(Value::from("Failed"), as_map(&left))]);
    }
    Ok(ret)
}

async fn absent(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let name = call.name.as_str();
    if info(ctx, "group.info", name).await?.is_empty() {
        return Ok(StateResult::new(call, Some(true), "Group not present"));
    }
    if call.test {
        return Ok(StateResult::new(
            call,
            None,
            format!("Group {name} is set for removal"),
        ));
    }
    let deleted = ctx
        .call("group.delete", vec![Value::from(name)], Vec::new())
        .await?;
    Ok(if truthy(&deleted.ret) {
        StateResult::new(call, Some(true), format!("Removed group {name}"))
            .with_changes(Value::Map(vec![(Value::from(name), Value::from(""))]))
    } else {
        StateResult::new(call, Some(false), format!("Failed to remove group {name}"))
    })
}

#[cfg(test)]
mod tests {
    use super::super::user::fake::{Accounts, Group, User, run};
    use super::*;

    fn list(names: &[&str]) -> Value {
        Value::Array(names.iter().map(|n| Value::from(*n)).collect())
    }

    fn staff() -> std::sync::Arc<Accounts> {
        Accounts::new(
            vec![User("ann", 1000, 1000, "/", "/bin/sh")],
            vec![Group("staff", 50, vec!["ann"])],
        )
    }

    #[test]
    fn a_missing_group_is_created_then_given_its_members() {
        let accounts = Accounts::new(Vec::new(), Vec::new());
        let args = [
            ("gid", Value::from(2000)),
            ("members", list(&["ann", "bob"])),
        ];
        let ret = run(&PRESENT, &accounts, "devs", &args, true);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (None, "Group devs set to be added")
        );
        let ret = run(&PRESENT, &accounts, "devs", &args, false);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "New group devs created")
        );
        assert_eq!(
            repr(&ret.changes),
            "{'name': 'devs', 'gid': 2000, 'members': ['ann', 'bob']}"
        );
        assert_eq!(
            *accounts.calls.lock().unwrap(),
            [
                "group.add devs gid=2000 system=False non_unique=False",
                "group.members devs ann,bob"
            ]
        );
        let ret = run(&PRESENT, &accounts, "devs", &args, false);
        assert_eq!(ret.comment, "Group devs is present and up to date");
    }

    #[test]
    fn changes_are_listed_then_applied_and_checked() {
        let accounts = staff();
        let args = [
            ("gid", Value::from("50")),
            ("addusers", list(&["bob", "ann"])),
        ];
        let ret = run(&PRESENT, &accounts, "staff", &args, true);
        assert_eq!(ret.result, None);
        assert_eq!(
            ret.comment,
            "The following group attributes are set to be changed:\naddusers: ['bob']\n"
        );
        let ret = run(&PRESENT, &accounts, "staff", &args, false);
        assert_eq!(ret.result, Some(true));
        assert_eq!(
            repr(&ret.changes),
            "{'Final': 'All changes applied successfully'}"
        );
        assert_eq!(*accounts.calls.lock().unwrap(), ["group.adduser staff bob"]);
        let ret = run(
            &PRESENT,
            &accounts,
            "staff",
            &[("members", list(&[]))],
            false,
        );
        assert_eq!(
            ret.comment,
            "The following group attributes are set to be changed:\ndelusers: {'ann', 'bob'}\n"
        );
        assert_eq!(
            accounts.calls.lock().unwrap()[1..],
            ["group.deluser staff ann", "group.deluser staff bob"]
        );
    }

    #[test]
    fn bad_arguments_are_reported_as_salt_reports_them() {
        let accounts = staff();
        let ret = run(
            &PRESENT,
            &accounts,
            "staff",
            &[("members", list(&["a"])), ("delusers", list(&["b"]))],
            false,
        );
        assert_eq!(ret.result, None);
        assert!(ret.comment.starts_with("Error: Conflicting options"));
        let ret = run(
            &PRESENT,
            &accounts,
            "staff",
            &[("addusers", list(&["a"])), ("delusers", list(&["a"]))],
            false,
        );
        assert_eq!(
            ret.comment,
            "Error. Same user(s) can not be added and deleted simultaneously"
        );
        let ret = run(
            &PRESENT,
            &accounts,
            "staff",
            &[("gid", Value::from("x"))],
            false,
        );
        assert_eq!(ret.result, Some(false));
        assert_eq!(
            ret.comment,
            "The following group attributes are set to be changed:\nresult: False\ncomment: Invalid gid\nSome changes could not be applied"
        );
        assert_eq!(
            repr(&ret.changes),
            "{'Failed': {'result': False, 'comment': 'Invalid gid'}}"
        );
        assert!(accounts.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn absent_removes_a_group_that_is_there() {
        let accounts = staff();
        let ret = run(&ABSENT, &accounts, "staff", &[], true);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (None, "Group staff is set for removal")
        );
        let ret = run(&ABSENT, &accounts, "staff", &[], false);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "Removed group staff")
        );
        assert_eq!(repr(&ret.changes), "{'staff': ''}");
        let ret = run(&ABSENT, &accounts, "staff", &[], false);
        assert_eq!(
            (ret.result, ret.comment.as_str()),
            (Some(true), "Group not present")
        );
    }
}
