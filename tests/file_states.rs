//! The `file` states against real Salt 3007.8: the same `state.single` calls, in the same
//! order, with halite's `salt-call --local` and Salt's, each in its own directory; the JSON
//! returns (with the directory's path set aside) and the files left behind must be the same.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value as Json;

use crate::conformance::venv;
use crate::state_runs::{call, differences};
use crate::support::bin;

/// The calls, `{D}` standing for the lab's directory.
const CALLS: &[&[&str]] = &[
    &["file.managed", "name={D}/t/a", "contents=hello"],
    &["file.managed", "name={D}/t/a", "contents=hello"],
    &["file.managed", "name={D}/t/a", "contents=world"],
    &[
        "file.managed",
        "name={D}/t/a",
        "contents=[a, b, c]",
        "test=True",
    ],
    &["file.managed", "name={D}/t/a", "contents=hello", "mode=600"],
    &["file.managed", "name={D}/t/a", "mode=644", "test=True"],
    &["file.managed", "name={D}/t/a", "mode=644"],
    &["file.managed", "name={D}/t/b/c", "contents=x"],
    &[
        "file.managed",
        "name={D}/t/b/c",
        "contents=x",
        "makedirs=True",
    ],
    &["file.managed", "name=t/x", "contents=x"],
    &["file.managed", "name={D}/t/new", "contents=x", "test=True"],
    &["file.managed", "name={D}/t/empty"],
    &["file.managed", "name={D}/t/s", "source=salt://f.txt"],
    &["file.managed", "name={D}/t/s", "source=salt://f.txt"],
    &[
        "file.managed",
        "name={D}/t/s",
        "source=salt://g.txt",
        "test=True",
    ],
    &[
        "file.managed",
        "name={D}/t/s",
        "source=salt://g.txt",
        "show_changes=False",
    ],
    &[
        "file.managed",
        "name={D}/t/s2",
        "source=salt://f.txt",
        "mode=600",
    ],
    &["file.managed", "name={D}/t/s3", "source=salt://nope"],
    &[
        "file.managed",
        "name={D}/t/s3",
        "source=salt://../etc/passwd",
    ],
    &[
        "file.managed",
        "name={D}/t/s4",
        "source=salt://tpl.j2",
        "template=jinja",
        "context={foo: bar}",
    ],
    &["file.managed", "name={D}/t/s5", "source=salt://bin"],
    &["file.managed", "name={D}/t/s5", "source=salt://f.txt"],
    &[
        "file.managed",
        "name={D}/t/s6",
        "source=[salt://nope, salt://f.txt]",
    ],
    &[
        "file.managed",
        "name={D}/t/s7",
        "source=[salt://nope, salt://nope2]",
    ],
    &["file.managed", "name={D}/t/s8", "source={D}/srv/f.txt"],
    &["file.managed", "name={D}/t/s9", "source={D}/srv/nope"],
    &["file.append", "name={D}/t/ap", "text=three"],
    &["file.append", "name={D}/t/ap", "text=[three, four]"],
    &["file.append", "name={D}/t/ap", "text=[three, four]"],
    &["file.append", "name={D}/t/ap", "text=five", "test=True"],
    &["file.directory", "name={D}/t/dd"],
    &["file.directory", "name={D}/t/dd"],
    &["file.directory", "name={D}/t/dd", "mode=700", "test=True"],
    &["file.directory", "name={D}/t/dd", "mode=700"],
    &["file.directory", "name={D}/t/x/y/z"],
    &["file.directory", "name={D}/t/x/y/z", "makedirs=True"],
    &["file.directory", "name={D}/t/a"],
    &["file.absent", "name={D}/t/s2", "test=True"],
    &["file.absent", "name={D}/t/s2"],
    &["file.absent", "name={D}/t/s2"],
    &["file.absent", "name={D}/t/x", "test=True"],
    &["file.absent", "name={D}/t/x"],
    &[
        "file.symlink",
        "name={D}/t/ln",
        "target={D}/t/a",
        "test=True",
    ],
    &["file.symlink", "name={D}/t/ln", "target={D}/t/a"],
    &["file.symlink", "name={D}/t/ln", "target={D}/t/a"],
    &[
        "file.symlink",
        "name={D}/t/ln",
        "target={D}/t/s",
        "test=True",
    ],
    &["file.symlink", "name={D}/t/ln", "target={D}/t/s"],
    &["file.symlink", "name={D}/t/s8", "target={D}/t/a"],
    &[
        "file.symlink",
        "name={D}/t/s8",
        "target={D}/t/a",
        "force=True",
    ],
    &["file.symlink", "name={D}/t/n/m/ln", "target={D}/t/a"],
    &[
        "file.symlink",
        "name={D}/t/n/m/ln",
        "target={D}/t/a",
        "makedirs=True",
    ],
    &["file.symlink", "name={D}/t/dd", "target={D}/t/a"],
];

/// A `--local` minion over a file tree, with the files the calls manage under `t/`.
fn lab(dir: &Path) {
    let d = dir.display();
    for (path, data) in [
        ("srv/f.txt", &b"line1\nline2\n"[..]),
        ("srv/g.txt", b"line1\nchanged\n"),
        ("srv/tpl.j2", b"hi {{ grains['id'] }} {{ foo }}\n"),
        ("srv/bin", b"\x00\x01\x02"),
        ("t/ap", b"one\ntwo"),
    ] {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, data).unwrap();
    }
    std::fs::write(
        dir.join("minion"),
        format!(
            "id: m1\nfile_client: local\nroot_dir: {d}/root\ncachedir: {d}/root/cache\npki_dir: {d}/root/pki\nsock_dir: {d}/root/sock\nlog_file: {d}/root/log\nfile_roots:\n  base: [{d}/srv]\n"
        ),
    )
    .unwrap();
}

/// The return with the lab's directory written as `{D}`.
fn placed(value: Json, dir: &Path) -> Json {
    let text = value.to_string().replace(&dir.display().to_string(), "{D}");
    serde_json::from_str(&text).unwrap()
}

/// Every path under `t/` with what it is: a file's bytes and mode, a directory's mode, a
/// link's target (with the directory set aside).
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.join("t")];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let name = path.strip_prefix(dir).unwrap().display().to_string();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap().display().to_string();
            found.push(format!(
                "{name} -> {}",
                target.replace(&dir.display().to_string(), "{D}")
            ));
        } else if meta.is_dir() {
            found.push(format!("{name}/ {mode:o}"));
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else {
            found.push(format!(
                "{name} {mode:o} {:?}",
                std::fs::read(&path).unwrap()
            ));
        }
    }
    found.sort();
    found
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn file_states_return_and_leave_what_salt_3007_8_does() {
    let salt_call = venv("3007.8").join("bin/salt-call");
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    lab(ours.path());
    lab(theirs.path());
    for args in CALLS {
        let fill = |dir: &Path| -> Vec<String> {
            std::iter::once("state.single".to_owned())
                .chain(
                    args.iter()
                        .map(|a| a.replace("{D}", &dir.display().to_string())),
                )
                .collect()
        };
        let (ours_args, theirs_args) = (fill(ours.path()), fill(theirs.path()));
        let salt = call(&salt_call, theirs.path(), &as_strs(&theirs_args));
        let halite = call(&bin("salt-call"), ours.path(), &as_strs(&ours_args));
        assert_eq!(halite.0, salt.0, "{args:?}: exit status");
        assert_eq!(
            differences(
                &placed(halite.1, ours.path()),
                &placed(salt.1, theirs.path())
            ),
            Vec::<String>::new(),
            "{args:?}: halite's return differs from Salt's"
        );
    }
    assert_eq!(
        tree(ours.path()),
        tree(theirs.path()),
        "the files left behind"
    );
}
