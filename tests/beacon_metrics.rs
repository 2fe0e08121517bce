//! The beacons that read the system (`load`, `memusage`, `swapusage`, `diskusage`, `status`,
//! `network_info`) compared with Salt 3007.8's own modules on the same made-up `/proc`
//! (tests/beacon_salt.py runs Salt's); `diskusage` on a real tmpfs end to end is in
//! tests/beacon_reactions.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use halite::beacons::Host;
use serde_json::{Value as Json, json};

/// One check: the files written under the made-up root before it.
type Step = Vec<(&'static str, String)>;

/// A made-up system root.
fn system() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("beacon-sys")
        .tempdir()
        .expect("temp dir")
}

fn write(root: &Path, step: &Step) {
    for (path, text) in step {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

/// What Salt's `module` returns at each step, or why it cannot be asked.
fn salt(module: &str, config: &Json, root: &Path, steps: &[Step]) -> Result<Vec<Json>, String> {
    let venv = crate::conformance::installed("3007.8")?;
    let steps: Vec<Json> = steps
        .iter()
        .map(|step| {
            let files: serde_json::Map<String, Json> = step
                .iter()
                .map(|(path, text)| ((*path).to_owned(), Json::from(text.as_str())))
                .collect();
            json!({ "files": files })
        })
        .collect();
    let spec = json!({"module": module, "config": config, "root": root, "steps": steps});
    let spec_file = root.join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let output = Command::new(venv.join("bin/python"))
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/beacon_salt.py"))
        .arg(&spec_file)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "Salt's {module} beacon failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Json = serde_json::from_slice(&output.stdout).expect("JSON from the harness");
    Ok(results.as_array().expect("a list").clone())
}

/// What halite's `module` returns at each step.
fn halite(module: &str, config: &Json, root: &Path, steps: &[Step]) -> Vec<Json> {
    let given = rmpv::ext::to_value(config).expect("config as a value");
    let mut beacon = halite::beacons::run::start(module, &given, &Host::at(root))
        .unwrap_or_else(|problem| panic!("halite refuses {config}: {problem}"));
    steps
        .iter()
        .map(|step| {
            write(root, step);
            let fired = beacon.check().expect("the check succeeds");
            serde_json::to_value(&fired).expect("events as JSON")
        })
        .collect()
}

/// Salt's and halite's results on the same steps, or None (SKIPPED said) without Salt.
fn both(module: &str, config: Json, root: &Path, steps: &[Step]) -> Option<(Vec<Json>, Vec<Json>)> {
    match salt(module, &config, root, steps) {
        Ok(salt) => Some((salt, halite(module, &config, root, steps))),
        Err(why) => {
            eprintln!("{module} against Salt: SKIPPED ({why})");
            None
        }
    }
}

fn compare(module: &str, config: Json, root: &Path, steps: &[Step]) {
    if let Some((salt, ours)) = both(module, config.clone(), root, steps) {
        assert_eq!(
            ours, salt,
            "{module} with {config}: halite's events, then Salt's"
        );
    }
}

fn loadavg(text: &str) -> Step {
    vec![("proc/loadavg", format!("{text} 1/100 4242\n"))]
}

#[test]
fn load_fires_as_salts_on_the_same_averages() {
    let root = system();
    let averages = json!({"1m": [0.5, 2.0], "5m": [0.0, 1.5], "15m": [0.1, 1.0]});
    let steps: Vec<Step> = [
        "1.00 1.00 0.50",
        "2.50 1.00 0.50",
        "2.50 1.00 0.50",
        "1.00 1.60 0.50",
        "1.00 1.00 0.50",
        "1.00 1.00 0.05",
        "2.00 1.50 1.00",
        "0.40 1.00 0.50",
    ]
    .iter()
    .map(|text| loadavg(text))
    .collect();
    compare("load", json!([{"averages": averages}]), root.path(), &steps);
    for emitatstartup in [true, false] {
        let config = json!([{"averages": averages}, {"onchangeonly": true}, {"emitatstartup": emitatstartup}]);
        compare("load", config, root.path(), &steps);
    }
    // Salt's first check under onchangeonly compares the averages with themselves, so its
    // emitatstartup never fires; halite's fires as Salt documents.
    let config = json!([{"averages": averages}, {"onchangeonly": true}]);
    let outside = [loadavg("3.00 1.00 0.50"), loadavg("3.00 1.00 0.50")];
    if let Some((salt, ours)) = both("load", config, root.path(), &outside) {
        assert_eq!(salt, [json!([]), json!([])]);
        assert_eq!(
            ours,
            [json!([{"1m": 3.0, "5m": 1.0, "15m": 0.5}]), json!([])]
        );
    }
}

#[test]
fn load_reads_the_kernels_averages_as_pythons_os_getloadavg() {
    let config = rmpv::ext::to_value(json!([{"averages": {"1m": [-2.0, -1.0]}}])).unwrap();
    let mut beacon = halite::beacons::run::start("load", &config, &Host::real()).unwrap();
    // The kernel updates its averages every 5 s: one of three tries falls between updates.
    let agreed = (0..3).any(|_| {
        let ours = serde_json::to_value(beacon.check().unwrap()).unwrap();
        let output = Command::new("python3")
            .args(["-c", "import json, os; print(json.dumps(dict(zip(['1m', '5m', '15m'], os.getloadavg()))))"])
            .output()
            .expect("python3 runs");
        let python: Json = serde_json::from_slice(&output.stdout).expect("JSON");
        ours == json!([python])
    });
    assert!(agreed, "halite's load averages differ from os.getloadavg()");
}

fn meminfo(total: u64, available: u64, swap_total: u64, swap_free: u64) -> Step {
    vec![
        (
            "proc/meminfo",
            format!(
                "MemTotal:       {total} kB\nMemFree:          500000 kB\nMemAvailable:   {available} kB\n\
                 Buffers:          100000 kB\nCached:          1000000 kB\nSwapCached:            0 kB\n\
                 Active:          1000000 kB\nInactive:         800000 kB\nShmem:             10000 kB\n\
                 SReclaimable:      50000 kB\nSwapTotal:      {swap_total} kB\nSwapFree:       {swap_free} kB\n"
            ),
        ),
        ("proc/vmstat", "pswpin 10\npswpout 20\n".to_owned()),
    ]
}

#[test]
fn memusage_and_swapusage_fire_as_salts_with_psutils_percents() {
    let root = system();
    // 49 of 400 in use is 12.25 %, which psutil rounds to 12.2.
    let steps = vec![
        meminfo(4_000_000, 3_000_000, 400, 351),
        meminfo(400, 351, 2_097_148, 1_572_860),
        meminfo(3_000_000, 2_999_999, 0, 0),
        meminfo(4_000_000, 1_000, 1_000, 1),
    ];
    for percent in [json!("0%"), json!(12.25), json!("60%")] {
        compare(
            "memusage",
            json!([{"percent": percent}]),
            root.path(),
            &steps,
        );
        compare(
            "swapusage",
            json!([{"percent": percent}]),
            root.path(),
            &steps,
        );
    }
}

#[test]
fn diskusage_matches_salts_mount_regexes_and_percents() {
    let root = system();
    for dir in ["data/one", "home", "my disk", "srv"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let table = "/dev/vda1 / ext4 rw 0 0\n/dev/vdb /data ext4 rw 0 0\n/dev/vdc /data/one xfs rw 0 0\n\
                 /dev/vdd /home ext4 rw 0 0\n/dev/vde /my\\040disk ext4 rw 0 0\n\
                 /dev/vdf /gone ext4 rw 0 0\nsrv /srv nfs rw 0 0\n";
    let steps = vec![vec![
        ("proc/mounts", table.to_owned()),
        ("proc/self/mounts", table.to_owned()),
    ]];
    for config in [
        json!([{"/": "0%"}]),
        json!([{"/data.*": 0}, {"/my disk": "0%"}, {"/home": "100%"}]),
        json!([{"^/(data|srv)$": "0"}, {"/gone": 0}, {"/s": 0}]),
        json!([{"/.*": 0}]),
    ] {
        let Some((salt, ours)) = both("diskusage", config.clone(), root.path(), &steps) else {
            return;
        };
        // The made-up mount points share one filesystem, still in use while the test runs:
        // the mounts must be the same, the percents within a tenth.
        let events = |result: &[Json]| -> Vec<(String, f64)> {
            result[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|event| {
                    let keys: Vec<_> = event.as_object().unwrap().keys().cloned().collect();
                    assert_eq!(keys.len(), 2, "{event}");
                    (
                        event["mount"].as_str().unwrap().to_owned(),
                        event["diskusage"].as_f64().unwrap(),
                    )
                })
                .collect()
        };
        let (salt, ours) = (events(&salt), events(&ours));
        assert_eq!(
            ours.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            salt.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            "{config}"
        );
        for ((_, ours), (_, salt)) in ours.iter().zip(&salt) {
            assert!(
                // A tenth, as both round; the float difference of two such is a hair over.
                (ours - salt).abs() <= 0.1 + 1e-9,
                "{config}: {ours} and Salt's {salt}"
            );
        }
    }
}

fn proc_files() -> Step {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    vec![
        ("proc/loadavg", "0.52 1.50 12.00 1/467 12345\n".to_owned()),
        (
            "proc/stat",
            "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 0 0\n\
             cpu0 1393280 32966 572056 13343292 6130 0 17875 0 0 0\n\
             intr 1462898 21 9 0 0 0\nctxt 2352\nbtime 1700000000\nprocesses 12\n\
             procs_running 1\nprocs_blocked 0\nsoftirq 90 1 2 3\n"
                .to_owned(),
        ),
        (
            "proc/meminfo",
            "MemTotal:        4000000 kB\nMemFree:  1 kB\nHugePages_Total:       0\n".to_owned(),
        ),
        (
            "proc/vmstat",
            "nr_free_pages 12345\nnr_zone_inactive_anon 7\npgpgin 99\n".to_owned(),
        ),
        (
            "proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Made Up CPU @ 2.00GHz\nflags\t\t: fpu vme de\n\
             power management:\n\nprocessor\t: 1\nmodel name\t: Made Up CPU @ 2.00GHz\n\
             flags\t\t: fpu vme de\npower management:\n"
                .to_owned(),
        ),
        (
            "proc/diskstats",
            " 253       0 vda 1000 20 3000 400 500 60 7000 800 0 900 1000 0 0 0 0\n\
             253       1 vda1 1 2 3 4 5 6 7 8 9 10 11\n"
                .to_owned(),
        ),
        (
            "proc/net/dev",
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 5442109331 16443744    0 148174    0     0          0         0 5442109331 16443744    0    0    0     0       0          0\n  \
             eth0: 265351800   24350    7    3    0     0          0         0  1594795   20462    1    2    0     0       0          0\n"
                .to_owned(),
        ),
        (
            "proc/net/netstat",
            "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 5\nIpExt: InNoRoutes InOctets\nIpExt: 1 2.5\n"
                .to_owned(),
        ),
        ("proc/version", "Linux version 6.1.0 (made@up) #1 SMP\n".to_owned()),
        ("proc/uptime", "350735.47 234388.90\n".to_owned()),
        ("proc/self/status", status),
    ]
}

/// Takes a status event apart: its tag (checked to be a timestamp) and data.
fn status_data(result: &Json) -> Json {
    let events = result.as_array().unwrap();
    assert_eq!(events.len(), 1, "{result}");
    let tag = events[0]["tag"].as_str().unwrap();
    assert!(
        tag.len() >= 19 && tag.as_bytes()[10] == b'T' && tag.starts_with("20"),
        "{tag}"
    );
    events[0]["data"].clone()
}

#[test]
fn status_reports_what_salts_status_functions_report() {
    let root = system();
    let steps = vec![proc_files()];
    let Some((salt, ours)) = both("status", json!([]), root.path(), &steps) else {
        return;
    };
    let (mut salt, mut ours) = (status_data(&salt[0]), status_data(&ours[0]));
    // The time, in Salt's format (`Monday, 27. July 2015 07:55AM`), is the minion's clock's.
    for data in [&mut salt, &mut ours] {
        let time = data.as_object_mut().unwrap().remove("time").unwrap();
        let time = time.as_str().unwrap();
        assert!(time.contains(", ") && time.ends_with('M'), "{time}");
    }
    assert_eq!(ours, salt);

    let config = json!([
        {"loadavg": ["1-min", "15-min"]},
        {"cpuinfo": "all"},
        {"diskstats": ["all"]},
        {"netdev": "all"},
        {"version": "all"},
        {"uptime": "all"},
        {"nproc": "all"},
        {"meminfo": ["MemTotal", "Nope"]},
        {"vmstats": ["pgpgin"]},
        {"netstats": "all"},
    ]);
    let (salt, ours) = both("status", config, root.path(), &steps).unwrap();
    let (mut salt, mut ours) = (status_data(&salt[0]), status_data(&ours[0]));
    // `uptime` is counted from now; Salt also counts `who -s` lines, which halite does not.
    let (salt_up, ours_up) = (salt["uptime"].take(), ours["uptime"].take());
    for key in ["seconds", "days", "time"] {
        assert_eq!(ours_up[key], salt_up[key], "uptime {key}");
    }
    let since = |up: &Json| up["since_t"].as_i64().unwrap();
    assert!((since(&ours_up) - since(&salt_up)).abs() <= 2);
    assert!(ours_up["since_iso"].as_str().unwrap().starts_with("20"));
    // Salt drops the last column of each /proc/net/netstat row; halite keeps it.
    assert_eq!(
        ours["netstats"].take(),
        json!({"TcpExt": {"SyncookiesSent": 0, "SyncookiesRecv": 5}, "IpExt": {"InNoRoutes": 1, "InOctets": 2.5}})
    );
    assert_eq!(
        salt["netstats"].take(),
        json!({"TcpExt": {"SyncookiesSent": 0}, "IpExt": {"InNoRoutes": 1}})
    );
    assert_eq!(ours, salt);
}

fn net_dev(eth0: [u64; 4]) -> Step {
    let [bytes_recv, errin, bytes_sent, dropout] = eth0;
    vec![(
        "proc/net/dev",
        format!(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 100 2    0 0    0     0          0         0 100 2    0    0    0     0       0          0\n  \
             eth0: {bytes_recv}   24350    {errin}    3    0     0          0         0  {bytes_sent}   20462    1    {dropout}    0     0       0          0\n"
        ),
    )]
}

#[test]
fn network_info_fires_as_salts_on_the_same_counters() {
    let root = system();
    let steps = vec![
        net_dev([1000, 0, 500, 0]),
        net_dev([2000, 5, 500, 0]),
        net_dev([3000, 6, 100_000, 2]),
    ];
    for config in [
        json!([{"interfaces": {"eth0": {"type": "greater", "errin": 5}}}]),
        json!([{"interfaces": {"eth0": {"errin": 5, "dropout": "2"}, "lo": {"bytes_recv": 100}, "wlan9": {"errin": 0}}}]),
        json!([{"interfaces": {"eth0": {"type": "equal", "bytes_sent": 500}}}]),
        json!([{"interfaces": {"lo": {"type": "greater", "bytes_recv": 1}, "eth0": {"type": "greater", "bytes_sent": 99_999}}}]),
    ] {
        compare("network_info", config, root.path(), &steps);
    }
}
