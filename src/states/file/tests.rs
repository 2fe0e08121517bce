//! The file states against temporary directories, each expectation as Salt 3007.8 returns it
//! for the same call.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Role};
use crate::event::Value;
use crate::fileserver::{Cache, LocalFiles, Roots};
use crate::render::Renderer;
use crate::salt_yaml::CliArgs;
use crate::states::{
    Calling, ExecutionError, Salt, StateCall, StateContext, StateFunction, StateResult,
};

/// No execution functions: the file states do not need any.
struct NoSalt;

impl Salt for NoSalt {
    fn call<'a>(&'a self, fun: &'a str, _: CliArgs) -> Calling<'a> {
        Box::pin(async move { Err(ExecutionError(format!("'{fun}' is not available."))) })
    }
}

struct Lab {
    dir: tempfile::TempDir,
    ctx: StateContext,
}

impl Lab {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        let srv = dir.path().join("srv");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(srv.join("d")).unwrap();
        std::fs::write(srv.join("f.txt"), "line1\nline2\n").unwrap();
        std::fs::write(srv.join("tpl.j2"), "hi {{ foo }} {{ name }}\n").unwrap();
        std::fs::write(
            conf.join("minion"),
            format!("cachedir: {}\n", dir.path().join("cache").display()),
        )
        .unwrap();
        let config = Config::load(Role::Minion, Some(&conf)).unwrap();
        let roots = Roots::new(vec![("base".to_owned(), vec![srv])]);
        let files = Cache::new(
            Arc::new(LocalFiles::new(roots, "sha256")),
            &dir.path().join("cache"),
        );
        let ctx = StateContext {
            renderer: Arc::new(Renderer::new(&config)),
            config,
            grains: Value::Map(Vec::new()),
            pillar: crate::salt_yaml::load("app: {motd: from pillar}").unwrap(),
            files: Some(files),
            salt: Arc::new(NoSalt),
            jid: "20240101000000000000".to_owned(),
        };
        Self { dir, ctx }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join("t").join(rel).display().to_string()
    }

    async fn run(&self, state: &StateFunction, name: &str, args: &str, test: bool) -> StateResult {
        std::fs::create_dir_all(self.dir.path().join("t")).unwrap();
        let args = match crate::salt_yaml::load(&format!("{{{args}}}")).unwrap() {
            Value::Map(entries) => entries
                .into_iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
                .collect(),
            _ => Vec::new(),
        };
        let call = StateCall {
            id: name.to_owned(),
            name: name.to_owned(),
            fun: state.name.to_owned(),
            sls: "x".to_owned(),
            saltenv: "base".to_owned(),
            args,
            test,
            watch_changes: Vec::new(),
        };
        (state.run)(&call, &self.ctx).await.unwrap()
    }
}

fn changes(pairs: &[(&str, &str)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::from(*k), Value::from(*v)))
            .collect(),
    )
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

const NOTE: &str = "\nNote: No changes made, actual changes may\nbe different due to other states.";

#[tokio::test]
async fn managed_contents_new_unchanged_updated_and_in_test_mode() {
    let lab = Lab::new();
    let a = lab.path("a");
    let ret = lab.run(&super::MANAGED, &a, "contents: hello", false).await;
    assert_eq!(ret.comment, format!("File {a} updated"));
    assert_eq!(ret.changes, changes(&[("diff", "New file")]));
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "hello\n");
    assert_eq!(mode(&a), 0o666 & !super::umask());

    let ret = lab.run(&super::MANAGED, &a, "contents: hello", false).await;
    assert_eq!(ret.comment, format!("File {a} is in the correct state"));
    assert_eq!(ret.changes, Value::Map(Vec::new()));

    let ret = lab.run(&super::MANAGED, &a, "contents: world", false).await;
    assert_eq!(ret.comment, format!("File {a} updated"));
    assert_eq!(
        ret.changes,
        changes(&[("diff", "--- \n+++ \n@@ -1 +1 @@\n-hello\n+world\n")])
    );

    let ret = lab
        .run(&super::MANAGED, &a, "contents: [a, b, c]", true)
        .await;
    assert_eq!(ret.result, None);
    assert_eq!(
        ret.comment,
        format!("The file {a} is set to be changed{NOTE}")
    );
    assert_eq!(
        ret.changes,
        changes(&[("diff", "--- \n+++ \n@@ -1 +1,3 @@\n-world\n+a\n+b\n+c\n")])
    );
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        "world\n",
        "test mode changes nothing"
    );

    let ret = lab
        .run(&super::MANAGED, &a, "contents: hello, mode: 600", false)
        .await;
    assert_eq!(
        ret.changes,
        changes(&[
            ("diff", "--- \n+++ \n@@ -1 +1 @@\n-world\n+hello\n"),
            ("mode", "0600")
        ])
    );
    assert_eq!(mode(&a), 0o600);

    let ret = lab.run(&super::MANAGED, &a, "mode: 644", true).await;
    assert_eq!(ret.result, None);
    assert_eq!(
        ret.comment,
        format!("File {a} will be updated with permissions 0644 from its current state of 0600")
    );
    assert_eq!(ret.changes, changes(&[("mode", "0644")]));

    let ret = lab.run(&super::MANAGED, &a, "mode: 644", false).await;
    assert_eq!((ret.result, ret.comment.as_str()), (Some(true), ""));
    assert_eq!(ret.changes, changes(&[("mode", "0644")]));

    let new = lab.path("new");
    let ret = lab.run(&super::MANAGED, &new, "contents: x", true).await;
    assert_eq!(ret.changes, changes(&[("newfile", new.as_str())]));
    assert!(!Path::new(&new).exists());

    let ret = lab.run(&super::MANAGED, &new, "", false).await;
    assert_eq!(ret.comment, "Empty file");
    assert_eq!(
        ret.changes,
        changes(&[("new", &format!("file {new} created"))])
    );
}

#[tokio::test]
async fn managed_refuses_what_salt_refuses() {
    let lab = Lab::new();
    let ret = lab.run(&super::MANAGED, "t/x", "contents: x", false).await;
    assert_eq!(ret.result, Some(false));
    assert_eq!(ret.comment, "Specified file t/x is not an absolute path");

    let deep = lab.path("b/c");
    let ret = lab.run(&super::MANAGED, &deep, "contents: x", false).await;
    assert_eq!(
        (ret.result, ret.comment.as_str()),
        (Some(false), "Parent directory not present")
    );
    assert_eq!(ret.changes, Value::Map(Vec::new()));

    let ret = lab
        .run(&super::MANAGED, &deep, "contents: x, makedirs: true", false)
        .await;
    assert_eq!(ret.comment, format!("File {deep} updated"));
    assert_eq!(mode(&lab.path("b")), 0o777 & !super::umask());

    let s3 = lab.path("s3");
    for (source, test) in [
        ("salt://nope", false),
        ("salt://nope", true),
        ("salt://../etc/passwd", false),
    ] {
        let ret = lab
            .run(&super::MANAGED, &s3, &format!("source: '{source}'"), test)
            .await;
        assert_eq!(ret.result, Some(false));
        assert_eq!(
            ret.comment,
            format!("Source file {source} not found in saltenv 'base'")
        );
    }
    let ret = lab
        .run(
            &super::MANAGED,
            &s3,
            "source: [salt://nope, salt://nope2]",
            false,
        )
        .await;
    assert_eq!(
        ret.comment,
        "Unable to manage file: none of the specified sources were found"
    );
    let ret = lab
        .run(&super::MANAGED, &s3, "source: /nonexistent/f", false)
        .await;
    assert_eq!(
        ret.comment,
        "Local file source /nonexistent/f does not exist"
    );
    let ret = lab
        .run(
            &super::MANAGED,
            &s3,
            "source: salt://f.txt, contents: x",
            false,
        )
        .await;
    assert_eq!(
        ret.comment,
        "'source' cannot be used in combination with 'contents', 'contents_pillar', or 'contents_grains'"
    );
    let ret = lab
        .run(&super::MANAGED, &lab.path(""), "contents: x", false)
        .await;
    assert!(ret.comment.ends_with("is a directory"), "{}", ret.comment);
}

#[tokio::test]
async fn managed_from_sources_and_templates() {
    let lab = Lab::new();
    let s = lab.path("s");
    let ret = lab
        .run(&super::MANAGED, &s, "source: salt://f.txt", false)
        .await;
    assert_eq!(
        ret.changes,
        changes(&[("diff", "New file"), ("mode", "0644")])
    );
    assert_eq!(std::fs::read_to_string(&s).unwrap(), "line1\nline2\n");
    let ret = lab
        .run(&super::MANAGED, &s, "source: salt://f.txt", false)
        .await;
    assert_eq!(ret.comment, format!("File {s} is in the correct state"));

    let s2 = lab.path("s2");
    let ret = lab
        .run(
            &super::MANAGED,
            &s2,
            "source: salt://f.txt, mode: 600",
            false,
        )
        .await;
    assert_eq!(ret.changes, changes(&[("diff", "New file")]));

    let s6 = lab.path("s6");
    let ret = lab
        .run(
            &super::MANAGED,
            &s6,
            "source: [salt://nope, salt://f.txt]",
            false,
        )
        .await;
    assert_eq!(
        ret.changes,
        changes(&[("diff", "New file"), ("mode", "0644")])
    );

    let s4 = lab.path("s4");
    let ret = lab
        .run(
            &super::MANAGED,
            &s4,
            "source: salt://tpl.j2, template: jinja, context: {foo: bar}",
            false,
        )
        .await;
    assert_eq!(ret.result, Some(true), "{}", ret.comment);
    assert_eq!(
        std::fs::read_to_string(&s4).unwrap(),
        format!("hi bar {s4}\n")
    );

    let p = lab.path("p");
    let ret = lab
        .run(&super::MANAGED, &p, "contents_pillar: 'app:motd'", false)
        .await;
    assert_eq!(ret.result, Some(true), "{}", ret.comment);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "from pillar\n");
    let ret = lab
        .run(&super::MANAGED, &p, "contents_pillar: 'app:nope'", false)
        .await;
    assert_eq!(ret.comment, "Pillar app:nope does not exist");

    std::fs::write(&s, b"\x00\x01").unwrap();
    let ret = lab
        .run(&super::MANAGED, &s, "source: salt://f.txt", false)
        .await;
    assert_eq!(
        ret.changes,
        changes(&[("diff", "Replace binary file with text file")])
    );

    let ret = lab
        .run(
            &super::MANAGED,
            &s,
            "contents: other, show_changes: false",
            true,
        )
        .await;
    assert_eq!(ret.changes, changes(&[("diff", "<show_changes=False>")]));

    let hashed = lab.path("hashed");
    let ret = lab
        .run(
            &super::MANAGED,
            &hashed,
            "source: https://example.invalid/x",
            false,
        )
        .await;
    assert_eq!(
        ret.comment,
        "Unable to verify upstream hash of source file https://example.invalid/x, please set source_hash or set skip_verify to True"
    );
    let ret = lab
        .run(
            &super::MANAGED,
            &hashed,
            "source: https://example.invalid/x, source_hash: abc",
            false,
        )
        .await;
    assert!(
        ret.comment
            .starts_with("Source hash abc format is invalid."),
        "{}",
        ret.comment
    );
}

#[tokio::test]
async fn absent_directory_and_symlink_speak_as_salt() {
    let lab = Lab::new();
    let f = lab.path("f");
    std::fs::create_dir_all(lab.path("")).unwrap();
    std::fs::write(&f, "x").unwrap();
    let ret = lab.run(&super::ABSENT, &f, "", true).await;
    assert_eq!(
        (ret.result, ret.comment.clone()),
        (None, format!("File {f} is set for removal"))
    );
    let ret = lab.run(&super::ABSENT, &f, "", false).await;
    assert_eq!(ret.comment, format!("Removed file {f}"));
    assert_eq!(ret.changes, changes(&[("removed", f.as_str())]));
    let ret = lab.run(&super::ABSENT, &f, "", false).await;
    assert_eq!(ret.comment, format!("File {f} is not present"));
    let ret = lab.run(&super::ABSENT, "/", "", false).await;
    assert_eq!(ret.comment, "Refusing to make \"/\" absent");

    let d = lab.path("dd");
    let ret = lab.run(&super::DIRECTORY, &d, "", true).await;
    assert_eq!(
        ret.comment,
        format!("The following files will be changed:\n{d}: directory - new\n")
    );
    let ret = lab.run(&super::DIRECTORY, &d, "", false).await;
    assert_eq!((ret.result, ret.comment.as_str()), (Some(true), ""));
    let new_dir = Value::Map(vec![(
        Value::from(d.as_str()),
        changes(&[("directory", "new")]),
    )]);
    assert_eq!(ret.changes, new_dir);
    let ret = lab.run(&super::DIRECTORY, &d, "", false).await;
    assert_eq!(
        ret.comment,
        format!("The directory {d} is in the correct state")
    );
    let ret = lab.run(&super::DIRECTORY, &d, "mode: 700", false).await;
    assert_eq!(ret.comment, format!("Directory {d} updated"));
    assert_eq!(
        ret.changes,
        Value::Map(vec![
            (Value::from(d.as_str()), changes(&[("mode", "0700")])),
            (Value::from("mode"), Value::from("0700")),
        ])
    );
    let deep = lab.path("x/y/z");
    let ret = lab.run(&super::DIRECTORY, &deep, "", false).await;
    assert_eq!(ret.comment, format!("No directory to create {deep} in"));
    let ret = lab
        .run(&super::DIRECTORY, &deep, "makedirs: true", false)
        .await;
    assert_eq!(ret.result, Some(true));
    assert!(Path::new(&deep).is_dir());

    let target = lab.path("dd");
    let ln = lab.path("ln");
    let ret = lab
        .run(&super::SYMLINK, &ln, &format!("target: {target}"), true)
        .await;
    assert_eq!(
        ret.comment,
        format!("Symlink {ln} to {target} is set for creation")
    );
    let ret = lab
        .run(&super::SYMLINK, &ln, &format!("target: {target}"), false)
        .await;
    assert_eq!(ret.comment, format!("Created new symlink {ln} -> {target}"));
    assert_eq!(ret.changes, changes(&[("new", ln.as_str())]));
    let ret = lab
        .run(&super::SYMLINK, &ln, &format!("target: {target}"), false)
        .await;
    assert!(
        ret.comment
            .starts_with(&format!("Symlink {ln} is present and owned by "))
    );
    let ret = lab
        .run(&super::SYMLINK, &d, &format!("target: {f}"), false)
        .await;
    assert_eq!(
        ret.comment,
        format!("Directory exists where the symlink {d} should be")
    );
}

#[tokio::test]
async fn append_adds_missing_lines_once() {
    let lab = Lab::new();
    let ap = lab.path("ap");
    std::fs::create_dir_all(lab.path("")).unwrap();
    std::fs::write(&ap, "one\ntwo").unwrap();
    let ret = lab.run(&super::APPEND, &ap, "text: three", false).await;
    assert_eq!(ret.comment, "Appended 1 lines");
    assert_eq!(
        ret.changes,
        changes(&[(
            "diff",
            "--- \n\n+++ \n\n@@ -1,2 +1,3 @@\n\n one\n two\n+three"
        )])
    );
    assert_eq!(std::fs::read_to_string(&ap).unwrap(), "one\ntwo\nthree\n");
    let ret = lab
        .run(&super::APPEND, &ap, "text: [three, four]", false)
        .await;
    assert_eq!(
        ret.changes,
        changes(&[(
            "diff",
            "--- \n\n+++ \n\n@@ -1,3 +1,4 @@\n\n one\n two\n three\n+four"
        )])
    );
    let ret = lab
        .run(&super::APPEND, &ap, "text: [three, four]", false)
        .await;
    assert_eq!(ret.comment, format!("File {ap} is in correct state"));
    let ret = lab.run(&super::APPEND, &ap, "text: five", true).await;
    assert_eq!(
        (ret.result, ret.comment.clone()),
        (None, format!("File {ap} is set to be updated"))
    );
}
