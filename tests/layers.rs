//! The module graph: every `crate::` path in the library points to a lower layer of the list in
//! `src/lib.rs`, so there is no cycle and no module imports one above it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers documented in `src/lib.rs`: lines `//! N. [`module`], [`module`]: …`.
fn layers() -> BTreeMap<String, usize> {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((number, text)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(layer) = number.parse::<usize>() else {
            continue;
        };
        let names = text.split(':').next().unwrap_or_default();
        for name in names.split("[`").skip(1) {
            let name = name.split('`').next().unwrap_or_default();
            layers.insert(name.to_owned(), layer);
        }
    }
    layers
}

/// The top-level modules each module's non-test code names through `crate::`.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name == "tests.rs" || name == "testutil.rs" {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests may use helpers from anywhere; the code they test may not.
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let found = uses.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for part in line.split("crate::").skip(1) {
                let target: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !target.is_empty() && target != module {
                    found.insert(target);
                }
            }
            // `use crate::{a::x, b::y}`
            if let Some(group) = line.split("use crate::{").nth(1) {
                for item in group.split(',') {
                    let target = item.trim().split("::").next().unwrap_or_default();
                    if !target.is_empty() && target != module && !target.contains('}') {
                        found.insert(target.to_owned());
                    }
                }
            }
        }
    }
    uses
}

#[test]
fn every_module_uses_only_layers_below_its_own() {
    let layers = layers();
    let uses = uses();
    let mut wrong = Vec::new();
    for (module, targets) in &uses {
        let Some(&own) = layers.get(module) else {
            wrong.push(format!("{module} is in no layer of src/lib.rs"));
            continue;
        };
        for target in targets {
            match layers.get(target) {
                None => wrong.push(format!("{module} uses {target}, which is in no layer")),
                Some(&layer) if layer >= own => wrong.push(format!(
                    "{module} (layer {own}) uses {target} (layer {layer}): arrows point down"
                )),
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(layers.len() >= 20, "the layer list was read: {layers:?}");
}
