//! The master's file server over the link: `cp.*` on minions and `salt-call`, big files in
//! chunks, and every way out of `file_roots` refused while the minion keeps being served.

use std::path::Path;

use crate::support::{Cluster, stderr, stdout};

/// A master serving `<cluster>/roots` (with a 3 MB file, a directory and a symlink pointing
/// out), and minion `m1` connected to it.
fn cluster() -> Cluster {
    let mut cluster = Cluster::new("auto_accept: True\n");
    let roots = cluster.path().join("roots");
    std::fs::create_dir_all(roots.join("dir/deeper")).unwrap();
    std::fs::write(roots.join("x.txt"), "hello from the master\n").unwrap();
    std::fs::write(roots.join("dir/one.txt"), "1\n").unwrap();
    std::fs::write(roots.join("dir/deeper/two.txt"), "2\n").unwrap();
    std::fs::write(roots.join("big.bin"), big()).unwrap();
    std::fs::write(cluster.path().join("secret"), "not for minions\n").unwrap();
    std::os::unix::fs::symlink(cluster.path().join("secret"), roots.join("escape")).unwrap();
    std::fs::write(
        cluster.etc().join("master"),
        std::fs::read_to_string(cluster.etc().join("master")).unwrap()
            + &format!("file_roots:\n  base:\n    - {}\n", roots.display()),
    )
    .unwrap();
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    cluster
}

/// 3 MB that no two chunks repeat.
fn big() -> Vec<u8> {
    (0..3_000_000u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// `salt m1 <args> --out=json`, the minion's return.
fn salt(cluster: &Cluster, args: &[&str]) -> (serde_json::Value, std::process::Output) {
    let mut all = vec!["m1"];
    all.extend(args);
    all.extend(["--out=json", "-t", "30"]);
    let output = cluster.run("salt", &all);
    let parsed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_else(|_| {
        panic!(
            "salt {args:?}: {}\n{}\nmaster log:\n{}",
            stdout(&output),
            stderr(&output),
            cluster.master_log()
        )
    });
    (parsed["m1"].clone(), output)
}

#[test]
fn minions_copy_list_and_cache_master_files() {
    let cluster = cluster();
    let dest = cluster.path().join("dest/x.txt");
    let dest_text = dest.display().to_string();
    let (got, _) = salt(
        &cluster,
        &["cp.get_file", "salt://x.txt", &dest_text, "makedirs=True"],
    );
    assert_eq!(got, serde_json::json!(dest_text));
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "hello from the master\n"
    );
    let (listed, _) = salt(&cluster, &["cp.list_master"]);
    assert_eq!(
        listed,
        serde_json::json!(["big.bin", "dir/deeper/two.txt", "dir/one.txt", "x.txt"])
    );
    let (dirs, _) = salt(&cluster, &["cp.list_master_dirs"]);
    assert_eq!(dirs, serde_json::json!(["dir", "dir/deeper"]));
    let (missing, _) = salt(&cluster, &["cp.cache_file", "salt://nope"]);
    assert_eq!(missing, serde_json::json!(false));
    let (missing, _) = salt(&cluster, &["cp.get_file", "salt://nope", &dest_text]);
    assert_eq!(missing, serde_json::json!(""));
    let (cached, _) = salt(&cluster, &["cp.cache_file", "salt://big.bin"]);
    let cached = cached.as_str().expect("a path").to_owned();
    assert!(
        cached.starts_with(&cluster.minion_dir("m1").display().to_string())
            && cached.ends_with("/files/base/big.bin"),
        "{cached}"
    );
    assert!(std::fs::read(&cached).unwrap() == big(), "arrives intact");
    let copied = cluster.path().join("copied");
    let (dir, _) = salt(
        &cluster,
        &["cp.get_dir", "salt://dir", &copied.display().to_string()],
    );
    assert_eq!(dir.as_array().map(Vec::len), Some(2), "{dir}");
    assert_eq!(
        std::fs::read_to_string(copied.join("dir/deeper/two.txt")).unwrap(),
        "2\n"
    );
    // salt-call on the minion asks the master over its own session.
    let output = cluster.call(
        "m1",
        &["cp.get_file_str", "salt://dir/one.txt", "--out=json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&output)).unwrap(),
        serde_json::json!({"local": "1\n"})
    );
}

#[test]
fn every_way_out_of_file_roots_is_refused_and_the_minion_is_still_served() {
    let cluster = cluster();
    let secret = cluster.path().join("secret").display().to_string();
    let dest = cluster.path().join("stolen").display().to_string();
    for url in [
        "salt://../../etc/shadow".to_owned(),
        "salt://a/../../x".to_owned(),
        "salt://escape".to_owned(),
        "salt:///etc/shadow".to_owned(),
        format!("salt://{secret}"),
    ] {
        for function in ["cp.get_file", "cp.cache_file", "cp.hash_file"] {
            let args: Vec<&str> = if function == "cp.get_file" {
                vec![function, &url, &dest]
            } else {
                vec![function, &url]
            };
            let (got, output) = salt(&cluster, &args);
            let text = got.as_str().unwrap_or_default();
            assert!(
                text.contains("leaves the file roots"),
                "{function} {url}: {got}"
            );
            assert!(!text.contains('\n'), "one line: {text}");
            assert_ne!(output.status.code(), Some(0), "{function} {url}");
        }
    }
    assert!(!Path::new(&dest).exists());
    // The symlink is the one only the master can see: it refuses it and says who asked.
    assert!(
        cluster
            .master_log()
            .contains("refused minion m1 (127.0.0.1"),
        "{}",
        cluster.master_log()
    );
    let (listed, _) = salt(&cluster, &["cp.list_master"]);
    assert!(
        listed.as_array().is_some_and(|names| names.len() == 4),
        "{listed}"
    );
    let (got, _) = salt(&cluster, &["cp.get_file_str", "salt://x.txt"]);
    assert_eq!(got, serde_json::json!("hello from the master\n"));
}
