//! Pillar against real Salt: halite's `salt-call --local pillar.*` and Salt 3007.8's on the same
//! `pillar_roots`, compared as JSON, byte for byte.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::conformance::venv;
use crate::support::{bin, stderr, stdout};

/// A pillar tree exercising every top match type, compound precedence, globbed SLS names,
/// relative and keyed includes, merging, both environments, templates reading grains, saltenv,
/// sls and the pillar from before, and Salt's `_errors`.
const TREE: &[(&str, &str)] = &[
    (
        "base/top.sls",
        r"base:
  'web1':
    - a
  'G@roles:web and not G@tier:dev':
    - b
  'not web1 or G@tier:prod':
    - c
  '( web* or db* ) and not ( G@tier:dev )':
    - d
  'E@web\d':
    - e
  'L@db1,web1':
    - f
  'P@tier:pr.*':
    - g
  'web.*':
    - match: pcre
    - h
  'roles:we*':
    - match: grain
    - i
  'site:rack:7':
    - match: grain
    - j
  'tier:p.*':
    - match: grain_pcre
    - k
  'web1 db1':
    - l
  'web1 and':
    - m
  'G@site:name':
    - n
  'db*':
    - o
  'web1,db1':
    - match: list
    - app
  '*':
    - users.*
    - missing
    - bad
    - notdict
    - a
dev:
  '*':
    - sub
nosuchenv:
  '*':
    - x
",
    ),
    ("base/a.sls", "a: 1\n"),
    ("base/b.sls", "b: 1\n"),
    ("base/c.sls", "c: 1\n"),
    ("base/d.sls", "d: 1\n"),
    ("base/e.sls", "e: 1\n"),
    ("base/f.sls", "f: 1\n"),
    ("base/g.sls", "g: 1\n"),
    ("base/h.sls", "h: 1\n"),
    ("base/i.sls", "i: 1\n"),
    ("base/j.sls", "j: 1\n"),
    ("base/k.sls", "k: 1\n"),
    ("base/l.sls", "l: 1\n"),
    ("base/m.sls", "m: 1\n"),
    ("base/n.sls", "n: 1\n"),
    ("base/o.sls", "o: 1\n"),
    ("base/users/init.sls", "users: {}\n"),
    (
        "base/users/alice.sls",
        "users: {alice: {uid: 1001, groups: [web]}}\n",
    ),
    ("base/users/bob.sls", "users: {bob: {uid: 1002}}\n"),
    ("base/bad.sls", "bad: {{ nope.x }}\n"),
    ("base/notdict.sls", "- 1\n- 2\n"),
    (
        "base/app/init.sls",
        "include:\n  - .common\n  - extra: {key: 'deep:er', defaults: {port: 8080}}\napp:\n  name: {{ grains['id'] }}\n  env: {{ saltenv }}\n  sls: {{ sls }}\n  list: [1, 2]\n  before: {{ pillar.get('a', 'none') }}\n  on: {{ grains['roles'] }}\n",
    ),
    (
        "base/app/common.sls",
        "app: {name: ignored, list: [3], common: true, nested: {x: 1}}\n",
    ),
    ("base/extra.sls", "port: {{ port }}\n"),
    (
        "dev/sub/init.sls",
        "dev: {{ sls }}\napp: {nested: {y: 2}}\n",
    ),
];

fn lab() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hp")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path();
    for (path, text) in TREE {
        let file = root.join("pillar").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    std::fs::create_dir_all(root.join("conf")).unwrap();
    let r = root.display();
    std::fs::write(
        root.join("conf/minion"),
        format!(
            "id: web1\nroot_dir: {r}/root\ncachedir: {r}/root/cache\npki_dir: {r}/root/pki\nsock_dir: {r}/root/sock\nlog_file: {r}/root/log\nfile_client: local\npillar_roots:\n  base: [{r}/pillar/base]\n  dev: [{r}/pillar/dev]\nfile_roots:\n  base: [{r}/files]\ngrains:\n  roles: [web, db]\n  tier: prod\n  site: {{name: par1, rack: 7}}\n"
        ),
    )
    .unwrap();
    dir
}

fn salt_call(program: &Path, conf: &Path, args: &[&str]) -> (String, bool) {
    let output = Command::new(program)
        .arg("--local")
        .arg("-c")
        .arg(conf)
        .args(["--out", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        program.display(),
        stderr(&output)
    );
    (stdout(&output), output.status.success())
}

#[test]
fn salt_call_local_pillar_functions_return_what_salt_3007_8_returns() {
    let lab = lab();
    let conf = lab.path().join("conf");
    let salt = venv("3007.8").join("bin/salt-call");
    for args in [
        &["pillar.items"][..],
        &["pillar.get", "app:nested"],
        &["pillar.get", "users:alice:groups:0"],
        &["pillar.get", "nope", "default=5"],
        &[
            "pillar.get",
            "app",
            "merge=True",
            "default={z: 1, nested: {q: 1}}",
        ],
        &["pillar.item", "deep:er:port", "dev", "nope", "default=x"],
        &["pillar.items", "pillar={a: over, new: 1}"],
        &["pillar.ls"],
        &["pillar.raw", "key=users"],
        &["pillar.keys", "app"],
        &["saltutil.refresh_pillar"],
    ] {
        let theirs = salt_call(&salt, &conf, args);
        let ours = salt_call(&bin("salt-call"), &conf, args);
        assert_eq!(ours, theirs, "salt-call --local {args:?}");
    }
}

/// A minion's pillar comes from its master, compiled for the session's own id: two minions
/// matched by different top entries each get only their own, a change on the master is seen by
/// the next call, and `salt-call` gets its minion's pillar over its own session.
#[test]
fn masters_compile_each_minions_own_pillar_and_send_it_over_the_link() {
    let mut cluster = crate::support::Cluster::new("auto_accept: True\n");
    let roots = cluster.path().join("pillar");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::write(
        roots.join("top.sls"),
        "base:\n  m1:\n    - one\n  m2:\n    - two\n",
    )
    .unwrap();
    std::fs::write(
        roots.join("one.sls"),
        "secret: for m1 only\nwho: {{ grains['id'] }}\n",
    )
    .unwrap();
    std::fs::write(roots.join("two.sls"), "other: for m2\n").unwrap();
    std::fs::write(
        cluster.etc().join("master"),
        std::fs::read_to_string(cluster.etc().join("master")).unwrap()
            + &format!("pillar_roots:\n  base:\n    - {}\n", roots.display()),
    )
    .unwrap();
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.start_minion("m2", "");
    cluster.wait_connected(&["m1", "m2"]);
    let items = |target: &str| -> serde_json::Value {
        let output = cluster.run("salt", &[target, "pillar.items", "--out=json", "-t", "30"]);
        serde_json::from_str(&stdout(&output))
            .unwrap_or_else(|_| panic!("{}\n{}", stdout(&output), stderr(&output)))
    };
    assert_eq!(
        items("m1")["m1"],
        serde_json::json!({"secret": "for m1 only", "who": "m1"})
    );
    assert_eq!(items("m2")["m2"], serde_json::json!({"other": "for m2"}));
    std::fs::write(roots.join("two.sls"), "other: changed\n").unwrap();
    let output = cluster.run(
        "salt",
        &["m2", "pillar.get", "other", "--out=json", "-t", "30"],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&output)).unwrap()["m2"],
        serde_json::json!("changed")
    );
    let output = cluster.call("m1", &["pillar.get", "who", "--out=json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&output)).unwrap_or_else(|_| panic!(
            "{}\n{}",
            stdout(&output),
            stderr(&output)
        ))["local"],
        serde_json::json!("m1")
    );
}
