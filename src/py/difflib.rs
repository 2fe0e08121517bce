//! Python's `difflib.unified_diff`, hunk for hunk: Salt shows file changes as its output, and a
//! diff from another algorithm (Myers, patience) groups lines differently on the same input.
//!
//! The matcher is `SequenceMatcher(None, a, b)`: the longest matching block first, recursively
//! on both sides, with the "popular element" heuristic (`autojunk`) for sequences of 200 items
//! or more, exactly as CPython does it.

use std::collections::HashMap;

/// One step of turning `a` into `b`: Python's opcode tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Equal,
    Replace,
    Delete,
    Insert,
}

/// `(tag, i1, i2, j1, j2)`: `a[i1..i2]` becomes `b[j1..j2]`.
type Opcode = (Tag, usize, usize, usize, usize);

/// `SequenceMatcher(None, a, b)` with its default `autojunk=True`.
struct Matcher<'a, T> {
    a: &'a [T],
    b: &'a [T],
    /// Where each element of `b` occurs, ascending; popular elements are left out.
    b2j: HashMap<&'a T, Vec<usize>>,
}

impl<'a, T: std::hash::Hash + Eq> Matcher<'a, T> {
    fn new(a: &'a [T], b: &'a [T]) -> Self {
        let mut b2j: HashMap<&T, Vec<usize>> = HashMap::new();
        for (index, item) in b.iter().enumerate() {
            b2j.entry(item).or_default().push(index);
        }
        if b.len() >= 200 {
            let threshold = b.len() / 100 + 1;
            b2j.retain(|_, indices| indices.len() <= threshold);
        }
        Self { a, b, b2j }
    }

    /// The longest block `a[i..i+k] == b[j..j+k]` inside the ranges, earliest in `a`, then in
    /// `b`, then extended over equal neighbours the index left out.
    fn longest_match(
        &self,
        alo: usize,
        ahi: usize,
        blo: usize,
        bhi: usize,
    ) -> (usize, usize, usize) {
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for i in alo..ahi {
            let mut next: HashMap<usize, usize> = HashMap::new();
            if let Some(indices) = self.b2j.get(&self.a[i]) {
                for &j in indices {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j
                        .checked_sub(1)
                        .and_then(|prev| j2len.get(&prev))
                        .copied()
                        .unwrap_or(0)
                        + 1;
                    next.insert(j, k);
                    if k > bestsize {
                        (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                    }
                }
            }
            j2len = next;
        }
        while besti > alo && bestj > blo && self.a[besti - 1] == self.b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && self.a[besti + bestsize] == self.b[bestj + bestsize]
        {
            bestsize += 1;
        }
        (besti, bestj, bestsize)
    }

    /// The matching blocks, adjacent ones merged, ending with `(len(a), len(b), 0)`.
    fn matching_blocks(&self) -> Vec<(usize, usize, usize)> {
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        let mut blocks = Vec::new();
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.longest_match(alo, ahi, blo, bhi);
            if k > 0 {
                blocks.push((i, j, k));
                if alo < i && blo < j {
                    queue.push((alo, i, blo, j));
                }
                if i + k < ahi && j + k < bhi {
                    queue.push((i + k, ahi, j + k, bhi));
                }
            }
        }
        blocks.sort_unstable();
        let mut merged: Vec<(usize, usize, usize)> = Vec::new();
        let (mut i1, mut j1, mut k1) = (0, 0, 0);
        for (i2, j2, k2) in blocks {
            if i1 + k1 == i2 && j1 + k1 == j2 {
                k1 += k2;
            } else {
                if k1 > 0 {
                    merged.push((i1, j1, k1));
                }
                (i1, j1, k1) = (i2, j2, k2);
            }
        }
        if k1 > 0 {
            merged.push((i1, j1, k1));
        }
        merged.push((self.a.len(), self.b.len(), 0));
        merged
    }

    fn opcodes(&self) -> Vec<Opcode> {
        let (mut i, mut j) = (0, 0);
        let mut codes = Vec::new();
        for (ai, bj, size) in self.matching_blocks() {
            let tag = match (i < ai, j < bj) {
                (true, true) => Some(Tag::Replace),
                (true, false) => Some(Tag::Delete),
                (false, true) => Some(Tag::Insert),
                (false, false) => None,
            };
            if let Some(tag) = tag {
                codes.push((tag, i, ai, j, bj));
            }
            (i, j) = (ai + size, bj + size);
            if size > 0 {
                codes.push((Tag::Equal, ai, i, bj, j));
            }
        }
        codes
    }

    /// The opcodes in hunks with `n` lines of context.
    fn grouped_opcodes(&self, n: usize) -> Vec<Vec<Opcode>> {
        let mut codes = self.opcodes();
        if codes.is_empty() {
            codes.push((Tag::Equal, 0, 1, 0, 1));
        }
        if let Some(first) = codes.first_mut()
            && first.0 == Tag::Equal
        {
            let (tag, i1, i2, j1, j2) = *first;
            *first = (
                tag,
                i1.max(i2.saturating_sub(n)),
                i2,
                j1.max(j2.saturating_sub(n)),
                j2,
            );
        }
        if let Some(last) = codes.last_mut()
            && last.0 == Tag::Equal
        {
            let (tag, i1, i2, j1, j2) = *last;
            *last = (tag, i1, i2.min(i1 + n), j1, j2.min(j1 + n));
        }
        let mut groups = Vec::new();
        let mut group = Vec::new();
        for (tag, mut i1, i2, mut j1, j2) in codes {
            if tag == Tag::Equal && i2 - i1 > 2 * n {
                group.push((tag, i1, i2.min(i1 + n), j1, j2.min(j1 + n)));
                groups.push(std::mem::take(&mut group));
                i1 = i1.max(i2.saturating_sub(n));
                j1 = j1.max(j2.saturating_sub(n));
            }
            group.push((tag, i1, i2, j1, j2));
        }
        if !(group.is_empty() || group.len() == 1 && group[0].0 == Tag::Equal) {
            groups.push(group);
        }
        groups
    }
}

/// Python's `_format_range_unified`.
fn range(start: usize, stop: usize) -> String {
    let length = stop - start;
    match length {
        1 => format!("{}", start + 1),
        0 => format!("{start},0"),
        _ => format!("{},{length}", start + 1),
    }
}

/// `"".join(difflib.unified_diff(a, b))`: lines keep their own endings (a line without one runs
/// into the next, as in Python), headers `--- \n+++ \n`, three lines of context; empty when
/// the sequences are equal.
pub(crate) fn unified_diff(a: &[String], b: &[String]) -> String {
    let matcher = Matcher::new(a, b);
    let mut out = String::new();
    for (index, group) in matcher.grouped_opcodes(3).iter().enumerate() {
        if index == 0 {
            out.push_str("--- \n+++ \n");
        }
        let (first, last) = (group[0], group[group.len() - 1]);
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(first.1, last.2),
            range(first.3, last.4)
        ));
        for &(tag, i1, i2, j1, j2) in group {
            if tag == Tag::Equal {
                for line in &a[i1..i2] {
                    out.push(' ');
                    out.push_str(line);
                }
                continue;
            }
            if matches!(tag, Tag::Replace | Tag::Delete) {
                for line in &a[i1..i2] {
                    out.push('-');
                    out.push_str(line);
                }
            }
            if matches!(tag, Tag::Replace | Tag::Insert) {
                for line in &b[j1..j2] {
                    out.push('+');
                    out.push_str(line);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.split_inclusive('\n').map(str::to_owned).collect()
    }

    /// Outputs of CPython 3.11's `"".join(difflib.unified_diff(a, b))`.
    #[test]
    fn hunks_match_cpython() {
        assert_eq!(unified_diff(&lines("a\n"), &lines("a\n")), "");
        assert_eq!(
            unified_diff(&lines("hello\n"), &lines("world\n")),
            "--- \n+++ \n@@ -1 +1 @@\n-hello\n+world\n"
        );
        assert_eq!(
            unified_diff(&lines(""), &lines("a\nb\n")),
            "--- \n+++ \n@@ -0,0 +1,2 @@\n+a\n+b\n"
        );
        assert_eq!(
            unified_diff(&lines("a\nb"), &lines("a\nc")),
            "--- \n+++ \n@@ -1,2 +1,2 @@\n a\n-b+c"
        );
        let old: String = (1..=20).map(|n| format!("{n}\n")).collect();
        let new = old.replace("3\n", "three\n").replace("17\n", "");
        assert_eq!(
            unified_diff(&lines(&old), &lines(&new)),
            "--- \n+++ \n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n@@ -10,11 +10,10 @@\n 10\n 11\n 12\n-13\n+1three\n 14\n 15\n 16\n-17\n 18\n 19\n 20\n"
        );
        assert_eq!(
            unified_diff(&lines("x\na\nb\na\n"), &lines("a\nb\na\nb\ny\n")),
            "--- \n+++ \n@@ -1,4 +1,5 @@\n-x\n a\n b\n a\n+b\n+y\n"
        );
    }

    /// Past 200 lines a line in more than 1% of them is "popular": CPython matches around it.
    #[test]
    fn popular_lines_are_left_out_of_the_index_as_cpython_does() {
        let a: Vec<String> = (0..240)
            .map(|i| {
                if i % 3 == 0 {
                    "x\n".to_owned()
                } else {
                    format!("{i}\n")
                }
            })
            .collect();
        let mut b = a.clone();
        b[5] = "five\n".to_owned();
        b.drain(100..104);
        b.insert(200, "x\n".to_owned());
        b.insert(201, "new\n".to_owned());
        assert_eq!(
            unified_diff(&a, &b),
            "--- \n+++ \n@@ -3,7 +3,7 @@\n 2\n x\n 4\n-5\n+five\n x\n 7\n 8\n@@ -98,10 +98,6 @@\n 97\n 98\n x\n-100\n-101\n-x\n-103\n 104\n x\n 106\n@@ -203,6 +199,8 @@\n 202\n 203\n x\n+new\n+x\n 205\n 206\n x\n"
        );
    }
}
