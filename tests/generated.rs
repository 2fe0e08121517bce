//! The committed man pages and shell completions match what the binaries generate.
//! Regenerate them with `HALITE_REGENERATE=1 cargo test --test integration generated`.

use std::path::PathBuf;

use crate::support::bin;

const BINARIES: &[(&str, &str)] = &[
    ("salt-master", "8"),
    ("salt-minion", "8"),
    ("salt-api", "8"),
    ("salt-call", "1"),
    ("salt-run", "1"),
    ("salt", "1"),
    ("salt-key", "1"),
];

fn committed_files(name: &str, section: &str) -> Vec<(&'static str, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    vec![
        ("man", root.join(format!("man/{name}.{section}"))),
        ("bash", root.join(format!("completions/{name}.bash"))),
        ("zsh", root.join(format!("completions/_{name}"))),
        ("fish", root.join(format!("completions/{name}.fish"))),
    ]
}

#[test]
fn committed_man_pages_and_completions_are_up_to_date() {
    let regenerate = std::env::var_os("HALITE_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (name, section) in BINARIES {
        for (kind, path) in committed_files(name, section) {
            let output = std::process::Command::new(bin(name))
                .args(["--generate", kind])
                .output()
                .unwrap();
            assert!(output.status.success(), "{name} --generate {kind} failed");
            if regenerate {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &output.stdout).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(output.stdout.as_slice()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run HALITE_REGENERATE=1 cargo test --test integration generated): {stale:?}"
    );
}
