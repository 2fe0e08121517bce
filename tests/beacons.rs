//! Beacons on a real minion and master: events on both buses in Salt's shapes, refused
//! configurations said out loud while the other beacons run, and the `beacons.*` functions
//! managing the running minion from `salt-call` and from the master.

use std::time::{Duration, Instant};

use halite::event::{Event, Value, map_get};

use crate::support::{Lab, MINION_ID, RawSubscriber, stdout};

/// Beacons that fire at once, under two names of one module, beside broken ones.
const BEACONS: &str = "beacons:
  memusage:
    - percent: 0%
  mem_twice:
    - beacon_module: memusage
    - percent: 0
    - interval: 2
  zero_interval:
    - beacon_module: memusage
    - percent: 0
    - interval: 0
  nosuch: []
  no_percent:
    beacon_module: memusage
";

/// Events under `tag` prefixes seen on `bus` within `within`.
fn collect(
    bus: &mut RawSubscriber,
    within: Duration,
    wanted: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match bus.next_event(left) {
            Some(event) if wanted(&event) => seen.push(event),
            Some(_) => {}
            None => break,
        }
    }
    seen
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

#[test]
fn beacon_events_reach_both_buses_in_salts_shape_and_bad_beacons_are_refused_out_loud() {
    let mut lab = Lab::with_config("", BEACONS);
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    let mut minion_bus = RawSubscriber::connect(&lab.minion_pub());
    let seen = collect(&mut master_bus, Duration::from_secs(6), |e| {
        e.tag.starts_with("salt/beacon/")
    });
    let tags: Vec<&str> = seen.iter().map(|e| e.tag.as_str()).collect();
    let memusage = seen
        .iter()
        .find(|e| e.tag == format!("salt/beacon/{MINION_ID}/memusage/"))
        .unwrap_or_else(|| panic!("no memusage event on the master bus: {tags:?}"));
    let keys = crate::support::keys(&memusage.data);
    assert_eq!(keys, ["memusage", "id", "_stamp"], "{:?}", memusage.data);
    assert!(
        map_get(&memusage.data, "memusage")
            .unwrap()
            .as_f64()
            .is_some()
    );
    assert_eq!(text(map_get(&memusage.data, "id")), MINION_ID);
    // Without an interval: every second from the start; with `interval: 2`: every 2 s, the
    // first one 2 s in.
    let count = |tag: &str| tags.iter().filter(|t| **t == tag).count();
    let every_second = count(&format!("salt/beacon/{MINION_ID}/memusage/"));
    let every_two = count(&format!("salt/beacon/{MINION_ID}/mem_twice/"));
    assert!((4..=7).contains(&every_second), "{tags:?}");
    assert!((2..=3).contains(&every_two), "{tags:?}");
    // Each broken beacon: one error event naming it, the key and what is expected.
    for (name, says) in [
        (
            "zero_interval",
            "interval: expected a number of seconds from 0.001 to 31536000 (a year), not 0",
        ),
        ("nosuch", "nosuch: expected one of the beacon modules"),
        ("no_percent", "percent: expected a percent"),
    ] {
        let errors: Vec<&Event> = seen
            .iter()
            .filter(|e| e.tag == format!("salt/beacon/{MINION_ID}/{name}/error"))
            .collect();
        assert_eq!(errors.len(), 1, "{name}: {tags:?}");
        let error = text(map_get(&errors[0].data, "error"));
        assert!(
            error.contains(&format!("beacon {name}")) && error.contains(says),
            "{error}"
        );
        assert!(
            lab.log("minion").contains(&error),
            "{name}: the log does not say {error:?}"
        );
    }
    // On the minion bus: Salt's `__beacons_return` batches of {tag, data, beacon_name}.
    let batch = collect(&mut minion_bus, Duration::from_secs(2), |e| {
        e.tag == "__beacons_return"
    });
    // The start's error items may come first, in a batch of their own.
    let items: Vec<&Value> = batch
        .iter()
        .flat_map(|e| map_get(&e.data, "beacons").unwrap().as_array().unwrap())
        .collect();
    for item in &items {
        assert!(text(map_get(item, "tag")).starts_with(&format!("salt/beacon/{MINION_ID}/")));
        assert!(map_get(item, "data").unwrap().is_map());
    }
    assert!(
        items
            .iter()
            .any(|item| text(map_get(item, "beacon_name")) == "memusage"),
        "{items:?}"
    );
}

/// `salt-call beacons.<fun> ARGS --out=json`'s return.
fn call(lab: &Lab, args: &[&str]) -> Value {
    let mut all = vec!["--out=json"];
    all.extend_from_slice(args);
    let output = lab.run("salt-call", &all);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_else(|err| {
        panic!(
            "salt-call {args:?}: {err}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    rmpv::ext::to_value(&json["local"]).unwrap()
}

#[test]
fn beacons_functions_manage_the_running_minion_from_salt_call_and_from_the_master() {
    let mut lab = Lab::with_config("", "");
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    assert_eq!(
        call(&lab, &["beacons.list", "return_yaml=False"]),
        Value::Map(Vec::new())
    );
    let available = call(&lab, &["beacons.list_available", "return_yaml=False"]);
    assert!(
        available
            .as_array()
            .unwrap()
            .contains(&Value::from("memusage"))
    );
    // A bad configuration is refused with the minion's reason, and nothing is added.
    let refused = call(&lab, &["beacons.add", "mem", "[{percent: lots}]"]);
    assert_eq!(
        refused,
        Value::Map(vec![
            ("comment".into(), "Beacon \"mem\" is not available.".into()),
            ("result".into(), false.into())
        ])
    );
    let refused = call(&lab, &["beacons.add", "memusage", "[{percent: lots}]"]);
    assert_eq!(map_get(&refused, "result"), Some(&Value::Boolean(false)));
    assert!(
        text(map_get(&refused, "comment"))
            .starts_with("Beacon memusage configuration invalid, not adding.\nbeacon memusage (memusage): percent: expected a percent"),
        "{refused}"
    );
    let added = call(&lab, &["beacons.add", "memusage", "[{percent: 0%}]"]);
    assert_eq!(
        text(map_get(&added, "comment")),
        "Added beacon: memusage.",
        "{added}"
    );
    master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/memusage/"));
    assert_eq!(
        call(&lab, &["beacons.list"]),
        Value::from("beacons:\n  memusage:\n  - percent: 0%\n")
    );
    let modified = call(&lab, &["beacons.modify", "memusage", "[{percent: 1%}]"]);
    assert_eq!(
        text(map_get(&modified, "comment")),
        "Modified beacon: memusage."
    );
    assert_eq!(
        text(map_get(map_get(&modified, "changes").unwrap(), "diff")),
        "--- \n+++ \n@@ -1 +1 @@\n-percent:0%\n+percent:1%\n"
    );
    let disabled = call(&lab, &["beacons.disable_beacon", "memusage"]);
    assert_eq!(
        text(map_get(&disabled, "comment")),
        "Disabled beacon memusage on minion."
    );
    // Disabled: no more events.
    std::thread::sleep(Duration::from_millis(1200));
    let mut fresh = RawSubscriber::connect(&lab.master_pub());
    assert!(
        collect(&mut fresh, Duration::from_secs(2), |e| e
            .tag
            .starts_with("salt/beacon/"))
        .is_empty()
    );
    let saved = call(&lab, &["beacons.save"]);
    let file = lab.etc().join("minion.d/beacons.conf");
    assert_eq!(
        text(map_get(&saved, "comment")),
        format!("Beacons saved to {}.", file.display())
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "beacons:\n  memusage:\n  - percent: 1%\n  - enabled: false\n"
    );
    // From the master, through a job the minion runs.
    let output = lab.run("salt", &["*", "beacons.delete", "memusage", "--out=json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json[MINION_ID]["comment"], "Deleted beacon: memusage.",
        "{json}"
    );
    assert_eq!(
        call(&lab, &["beacons.list", "return_yaml=False"]),
        Value::Map(Vec::new())
    );
    // Without a running minion: one line saying so, not a minute's wait.
    drop(lab.take_daemon());
    let started = Instant::now();
    let output = lab.run("salt-call", &["beacons.list"]);
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_beacon_disabled_during_state_runs_is_quiet_while_one_runs_and_checks_again_after() {
    let mut lab = Lab::with_config(
        "",
        "beacons:\n  memusage:\n    - percent: 0%\n    - disable_during_state_run: True\n",
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/memusage/"));
    let state_run = lab
        .cmd("salt")
        .args(["*", "state.single", "cmd.run", "name=sleep 4"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let beacon = |e: &Event| e.tag.starts_with("salt/beacon/");
    // The job reaches the minion, then the beacon stays quiet while it runs.
    collect(&mut master_bus, Duration::from_millis(1200), |e| {
        e.tag.starts_with("salt/job/")
    });
    assert_eq!(collect(&mut master_bus, Duration::from_secs(2), beacon), []);
    crate::support::wait_output(state_run, Duration::from_secs(30));
    assert!(!collect(&mut master_bus, Duration::from_secs(3), beacon).is_empty());
}

#[test]
fn beacons_in_pillar_run_beside_the_configured_ones_and_the_configuration_cannot_change_them() {
    let mut lab = Lab::with_config(
        "",
        "beacons:\n  mem_conf: [{beacon_module: memusage}, {percent: 0}]\n",
    );
    let roots = lab.path().join("pillar");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::write(roots.join("top.sls"), "base:\n  '*':\n    - beacons\n").unwrap();
    std::fs::write(
        roots.join("beacons.sls"),
        "beacons:\n  mem_pillar:\n    - beacon_module: memusage\n    - percent: 0%\n",
    )
    .unwrap();
    lab.append_config(
        "master",
        &format!("pillar_roots:\n  base:\n    - {}\n", roots.display()),
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/mem_pillar/"));
    master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/mem_conf/"));
    let listed = call(&lab, &["beacons.list", "return_yaml=False"]);
    let mut names = crate::support::keys(&listed);
    names.sort_unstable();
    assert_eq!(names, ["mem_conf", "mem_pillar"]);
    let only_conf = call(
        &lab,
        &["beacons.list", "return_yaml=False", "include_pillar=False"],
    );
    assert_eq!(only_conf.as_map().unwrap().len(), 1);
    // Saved: the configuration's beacons, not the pillar's.
    call(&lab, &["beacons.save"]);
    let saved = std::fs::read_to_string(lab.etc().join("minion.d/beacons.conf")).unwrap();
    assert!(
        saved.contains("mem_conf") && !saved.contains("mem_pillar"),
        "{saved}"
    );
    let refused = call(&lab, &["beacons.delete", "mem_pillar"]);
    assert_eq!(
        text(map_get(&refused, "comment")),
        "Cannot delete beacon item mem_pillar, it is configured in pillar."
    );
    // A pillar changed on the master and refreshed: its beacons follow.
    std::fs::write(roots.join("beacons.sls"), "beacons: {}\n").unwrap();
    lab.run("salt", &["*", "saltutil.refresh_pillar"]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut fresh = RawSubscriber::connect(&lab.master_pub());
    let tags: Vec<String> = collect(&mut fresh, Duration::from_secs(3), |e| {
        e.tag.starts_with("salt/beacon/")
    })
    .into_iter()
    .map(|e| e.tag)
    .collect();
    assert!(
        !tags.is_empty() && tags.iter().all(|t| t.ends_with("/mem_conf/")),
        "{tags:?}"
    );
}

#[test]
fn beacons_calls_at_the_same_time_each_get_their_own_answer() {
    let mut lab = Lab::with_config("", "");
    lab.start_master();
    lab.start_minion();
    let calls: Vec<_> = (0..8)
        .map(|n| {
            let percent = if n % 2 == 0 { "90%" } else { "bogus" };
            lab.cmd("salt-call")
                .args([
                    "--out=json",
                    "beacons.add",
                    &format!("m{n}"),
                    &format!("[{{beacon_module: memusage}}, {{percent: {percent}}}]"),
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (n, call) in calls.into_iter().enumerate() {
        let output = crate::support::wait_output(call, Duration::from_secs(60));
        let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let comment = json["local"]["comment"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if n % 2 == 0 {
            assert_eq!(comment, format!("Added beacon: m{n}."));
        } else {
            assert!(
                comment.starts_with(&format!(
                    "Beacon m{n} configuration invalid, not adding.\nbeacon m{n} (memusage)"
                )),
                "{comment}"
            );
        }
    }
    let listed = call(&lab, &["beacons.list", "return_yaml=False"]);
    let mut names = crate::support::keys(&listed);
    names.sort_unstable();
    assert_eq!(names, ["m0", "m2", "m4", "m6"]);
}
