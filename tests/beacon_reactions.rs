//! Reactions on beacons, end to end with real daemons: the seed's inotify tutorial, a login
//! that calls a webhook, a disk filling up, and a file changed by hand that a state restores.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use halite::event::{Value, map_get};

use crate::support::{Lab, MINION_ID, RawSubscriber, Tmpfs, wait_until};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn text(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or_default()
}

#[test]
fn the_seeds_tutorial_an_inotify_beacon_on_a_file_shows_its_change_on_the_master() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("importantfile");
    std::fs::write(&file, "").unwrap();
    let path = file.display().to_string();
    let mut lab = Lab::with_config(
        "",
        &format!("beacons:\n  inotify:\n    {path}:\n      mask:\n        - modify\n"),
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    // The minion is up and watching once its start event is on the master's bus.
    master_bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&file, "some content\n").unwrap();
    let event = master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/inotify/{path}"));
    assert_eq!(
        text(map_get(&event.data, "change")),
        "IN_MODIFY",
        "{:?}",
        event.data
    );
    assert_eq!(text(map_get(&event.data, "id")), MINION_ID);
    assert_eq!(text(map_get(&event.data, "path")), path);
    // As `salt-run state.event pretty=True` shows it.
    let watched = lab
        .cmd("salt-run")
        .args(["state.event", "salt/beacon/*", "pretty=True", "count=1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&file, "more content\n").unwrap();
    let output = crate::support::wait_output(watched, Duration::from_secs(10));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.starts_with(&format!("salt/beacon/{MINION_ID}/inotify/{path}\t{{\n")),
        "{shown}"
    );
    assert!(shown.contains("\"change\": \"IN_MODIFY\""), "{shown}");
}

/// One `struct utmp` record (384 bytes, x86_64 Linux) for a login on `line` by `user`.
fn utmp_login(user: &str, line: &str, host: &str, pid: i32, time: i32) -> Vec<u8> {
    let mut record = vec![0u8; 384];
    record[0..2].copy_from_slice(&7i16.to_ne_bytes()); // USER_PROCESS
    record[4..8].copy_from_slice(&pid.to_ne_bytes());
    record[8..8 + line.len()].copy_from_slice(line.as_bytes());
    let id = &line[line.len().saturating_sub(4)..];
    record[40..40 + id.len()].copy_from_slice(id.as_bytes());
    record[44..44 + user.len()].copy_from_slice(user.as_bytes());
    record[76..76 + host.len()].copy_from_slice(host.as_bytes());
    record[336..340].copy_from_slice(&pid.to_ne_bytes()); // ut_session
    record[340..344].copy_from_slice(&time.to_ne_bytes()); // ut_tv.tv_sec
    record[348..352].copy_from_slice(&[192, 0, 2, 7]); // ut_addr_v6[0]
    record
}

#[test]
fn a_login_on_a_production_server_texts_the_admins_through_a_webhook() {
    let (port, received) = crate::reactor::http_server();
    let mut lab = Lab::with_config("", "");
    let root = lab.path().to_path_buf();
    let wtmp = root.join("wtmp");
    std::fs::write(&wtmp, utmp_login("old", "pts/1", "", 1, 1_700_000_000)).unwrap();
    lab.append_config(
        "minion",
        &format!("beacons:\n  wtmp:\n    - file: {}\n", wtmp.display()),
    );
    write(
        &root.join("reactor/login.sls"),
        &format!(
            "{{% if data.get('action') == 'login' %}}
text the admins:
  runner.http.query:
    - url: http://127.0.0.1:{port}/sms
    - method: POST
    - json:
        text: '{{{{ data['user'] }}}} logged into {{{{ data['id'] }}}} from {{{{ data['hostname'] }}}}'
{{% endif %}}
"
        ),
    );
    lab.append_config(
        "master",
        &format!(
            "reactor:\n  - 'salt/beacon/*/wtmp/*':\n    - {}/reactor/login.sls\n",
            root.display()
        ),
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    master_bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
    std::thread::sleep(Duration::from_millis(1500));
    // The record already there is history; a new login is news.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&wtmp)
        .unwrap();
    file.write_all(&utmp_login(
        "alice",
        "pts/3",
        "192.0.2.7",
        4242,
        1_800_000_000,
    ))
    .unwrap();
    drop(file);
    let event = master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/wtmp/"));
    assert_eq!(
        text(map_get(&event.data, "user")),
        "alice",
        "{:?}",
        event.data
    );
    assert_eq!(text(map_get(&event.data, "action")), "login");
    let request = received
        .recv_timeout(Duration::from_secs(15))
        .expect("the webhook was called");
    let (_head, body) = request.split_once("\r\n\r\n").unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body["text"],
        format!("alice logged into {MINION_ID} from 192.0.2.7")
    );
}

#[test]
fn a_disk_over_its_threshold_raises_an_alert() {
    let mount = match Tmpfs::mount("1m") {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let point = mount.path().display().to_string();
    let mut lab = Lab::with_config(
        "",
        &format!("beacons:\n  diskusage:\n    - '{point}': 50%\n"),
    );
    let root = lab.path().to_path_buf();
    write(
        &root.join("reactor/disk.sls"),
        "alert:\n  runner.event.send:\n    - tag: ops/disk/full\n    - data:\n        minion: {{ data['id'] }}\n        mount: {{ data['mount'] }}\n        used: {{ data['diskusage'] }}\n",
    );
    lab.append_config(
        "master",
        &format!(
            "reactor:\n  - 'salt/beacon/*/diskusage/*':\n    - {}/reactor/disk.sls\n",
            root.display()
        ),
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    master_bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
    std::fs::write(mount.path().join("fill"), vec![7u8; 700 * 1024]).unwrap();
    let beacon = master_bus.expect_tag(&format!("salt/beacon/{MINION_ID}/diskusage/"));
    let keys = crate::support::keys(&beacon.data);
    assert_eq!(
        keys,
        ["diskusage", "mount", "id", "_stamp"],
        "{:?}",
        beacon.data
    );
    let used = map_get(&beacon.data, "diskusage")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    assert!((60.0..=80.0).contains(&used), "{:?}", beacon.data);
    let alert = master_bus.expect_tag("ops/disk/full");
    assert_eq!(
        text(map_get(&alert.data, "mount")),
        point,
        "{:?}",
        alert.data
    );
    assert_eq!(text(map_get(&alert.data, "minion")), MINION_ID);
    let used = map_get(&alert.data, "used")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    assert!(used >= 50.0, "{:?}", alert.data);
}

#[test]
fn a_watched_file_changed_by_hand_is_restored_by_a_state_within_a_second() {
    let mut lab = Lab::with_config("", "");
    let root = lab.path().to_path_buf();
    let watched = root.join("etc-motd");
    std::fs::write(&watched, "managed by halite\n").unwrap();
    let path = watched.display().to_string();
    lab.append_config("minion", &format!(
        "beacons:\n  inotify:\n    - files:\n        {path}:\n          mask:\n            - modify\n            - close_write\n    - disable_during_state_run: True\n"
    ));
    write(
        &root.join("srv/restore.sls"),
        &format!("{path}:\n  file.managed:\n    - contents: managed by halite\n"),
    );
    write(
        &root.join("reactor/restore.sls"),
        "restore:\n  local.state.sls:\n    - tgt: {{ data['id'] }}\n    - arg:\n      - restore\n",
    );
    lab.append_config(
        "master",
        &format!(
            "file_roots:\n  base:\n    - {root}/srv\nreactor:\n  - 'salt/beacon/*/inotify/*':\n    - {root}/reactor/restore.sls\n",
            root = root.display()
        ),
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    master_bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
    std::thread::sleep(Duration::from_millis(500));
    let changed = Instant::now();
    std::fs::write(&watched, "defaced\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&watched).is_ok_and(|text| text == "managed by halite\n")
        }),
        "the file was not restored: {:?}",
        std::fs::read_to_string(&watched)
    );
    let took = changed.elapsed();
    eprintln!("restored {took:?} after the change");
    // Within a second on an idle machine; the bound leaves room for a loaded CI runner.
    assert!(took < Duration::from_secs(5), "{took:?}");
}
