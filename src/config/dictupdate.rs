//! Salt's `dictupdate`: how `minion.d/*.conf` files, pillar sources, included SLS files and
//! `pillar.get`'s defaults are merged.

use crate::event::Value;

/// `pillar_source_merging_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// `smart` (with YAML), `recurse` and `none`: maps merged recursively, later wins.
    Recurse,
    /// `overwrite`: a later top-level key replaces the earlier one whole.
    Overwrite,
}

impl Strategy {
    /// The strategy a configured name stands for; Salt falls back to `recurse` for names it
    /// does not know, and so does halite for `aggregate` and `list`, which it lacks.
    pub(crate) fn named(name: &str) -> Self {
        match name {
            "overwrite" => Strategy::Overwrite,
            "smart" | "recurse" | "none" => Strategy::Recurse,
            other => {
                tracing::warn!(
                    "pillar_source_merging_strategy {other:?} is not one halite has: merging recursively"
                );
                Strategy::Recurse
            }
        }
    }
}

/// Salt's `merge`: `upd` merged into a copy of `dest`.
pub(crate) fn merge(dest: &Value, upd: &Value, strategy: Strategy, merge_lists: bool) -> Value {
    let mut merged = dest.clone();
    if let (Strategy::Overwrite, Value::Map(entries), Value::Map(updates)) =
        (strategy, &mut merged, upd)
    {
        for (key, value) in updates {
            if let Some(slot) = entries.iter_mut().find(|(k, _)| k == key) {
                slot.1 = value.clone();
            }
        }
    }
    update(&mut merged, upd, merge_lists);
    merged
}

/// Salt's `update`: each key of `upd` into `dest`; maps on both sides are merged recursively,
/// lists on both sides are replaced (or, with `merge_lists`, extended by the new items not
/// already there); anything else is replaced. A new key goes last, a known one keeps its
/// place. Non-maps are left alone.
pub(crate) fn update(dest: &mut Value, upd: &Value, merge_lists: bool) {
    let (Value::Map(entries), Value::Map(updates)) = (dest, upd) else {
        return;
    };
    for (key, value) in updates {
        match entries.iter_mut().find(|(k, _)| k == key) {
            None => entries.push((key.clone(), value.clone())),
            Some((_, old)) => match (&mut *old, value) {
                (Value::Map(_), Value::Map(_)) => update(old, value, merge_lists),
                (Value::Array(items), Value::Array(new)) if merge_lists => {
                    for item in new {
                        if !items.contains(item) {
                            items.push(item.clone());
                        }
                    }
                }
                _ => *old = value.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        crate::salt_yaml::load(text).unwrap()
    }

    #[test]
    fn recursive_merge_keeps_order_and_replaces_lists_unless_asked() {
        let a = yaml("{x: {a: 1, l: [1, 2], n: {p: 1}}, y: 1}");
        let b = yaml("{x: {b: 2, l: [2, 3], n: 5}, z: 3, y: {k: v}}");
        assert_eq!(
            merge(&a, &b, Strategy::Recurse, false).to_string(),
            r#"{"x": {"a": 1, "l": [2, 3], "n": 5, "b": 2}, "y": {"k": "v"}, "z": 3}"#
        );
        assert_eq!(
            merge(&a, &b, Strategy::Recurse, true).to_string(),
            r#"{"x": {"a": 1, "l": [1, 2, 3], "n": 5, "b": 2}, "y": {"k": "v"}, "z": 3}"#
        );
        assert_eq!(
            merge(&a, &b, Strategy::Overwrite, false).to_string(),
            r#"{"x": {"b": 2, "l": [2, 3], "n": 5}, "y": {"k": "v"}, "z": 3}"#
        );
    }
}
