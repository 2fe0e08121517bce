//! The minion's scheduler on a real minion and master: jobs run on time, `maxrunning` holds,
//! returns reach the returners, the minion bus (`__schedule_return`) and the master's bus
//! (`salt/job/<jid>/ret/<id>`), refused jobs are said out loud while the others run, and the
//! `schedule.*` functions manage the running minion from `salt-call`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use halite::event::{Event, Value, map_get};

use halite::wire::Framing;

use crate::support::{Lab, MINION_ID, RawSender, RawSubscriber, stdout, wait_until};

/// Events that `wanted` picks on `bus` within `within`.
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

/// The `__schedule_return` events of job `name`.
fn returns_of(name: &str) -> impl Fn(&Event) -> bool + '_ {
    move |event| event.tag == "__schedule_return" && text(map_get(&event.data, "schedule")) == name
}

/// When an event was fired, from its `_stamp`, in seconds.
fn stamp(event: &Event) -> f64 {
    let stamp: jiff::civil::DateTime = text(map_get(&event.data, "_stamp")).parse().unwrap();
    let since = stamp.duration_since(jiff::civil::date(2000, 1, 1).at(0, 0, 0, 0));
    since.as_secs_f64()
}

/// `salt-call ARGS --out=json`'s return.
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

fn map(yaml: &str) -> Value {
    let json: serde_json::Value = serde_json::from_str(yaml).unwrap();
    rmpv::ext::to_value(&json).unwrap()
}

#[test]
fn a_job_every_second_runs_on_time_for_a_minute() {
    let mut lab = Lab::with_config(
        "",
        "schedule:\n  tick:\n    function: test.ping\n    seconds: 1\n",
    );
    lab.start_master();
    lab.start_minion();
    let mut bus = RawSubscriber::connect(&lab.minion_pub());
    let runs = collect(&mut bus, Duration::from_secs(62), returns_of("tick"));
    let times: Vec<f64> = runs.iter().map(stamp).collect();
    assert!(
        (58..=63).contains(&times.len()),
        "{} runs in 62 s",
        times.len()
    );
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (0.9..=1.1).contains(&gap),
            "runs {gap:.3} s apart: {times:?}"
        );
    }
    // Salt's return dict, in its order.
    let keys = crate::support::keys(&runs[0].data);
    assert_eq!(
        keys,
        [
            "cmd", "id", "fun", "fun_args", "schedule", "jid", "pid", "return", "retcode",
            "success", "_stamp"
        ]
    );
    assert_eq!(map_get(&runs[0].data, "jid"), Some(&Value::from("req")));
    assert_eq!(
        map_get(&runs[0].data, "return"),
        Some(&Value::Boolean(true))
    );
}

#[test]
fn maxrunning_keeps_a_slow_job_from_overlapping_and_saltutil_running_sees_it() {
    let mut lab = Lab::with_config(
        "",
        "schedule:\n  slow:\n    function: test.sleep\n    args: [3]\n    seconds: 1\n    return_job: True\n",
    );
    lab.start_master();
    lab.start_minion();
    let mut bus = RawSubscriber::connect(&lab.minion_pub());
    // While one runs, the minion says so to saltutil.running, with the schedule's name.
    assert!(wait_until(Duration::from_secs(8), || {
        let output = lab.run("salt", &["*", "saltutil.running", "--out=json"]);
        let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_default();
        json[MINION_ID].as_array().is_some_and(|jobs| {
            jobs.iter()
                .any(|job| job["schedule"] == "slow" && job["fun"] == "test.sleep")
        })
    }));
    let runs = collect(&mut bus, Duration::from_secs(11), returns_of("slow"));
    let times: Vec<f64> = runs.iter().map(stamp).collect();
    assert!((2..=4).contains(&times.len()), "{times:?}");
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= 2.9, "two runs overlapped: {times:?}");
    }
    assert!(
        lab.log("minion").contains(
            "schedule.handle_func: The scheduled job slow was not started, 1 already running"
        ),
        "{}",
        lab.log("minion")
    );
}

#[test]
fn returns_reach_the_master_bus_unless_return_job_is_false() {
    let mut lab = Lab::with_config(
        "",
        "schedule:\n  back:\n    function: test.echo\n    args: [hello]\n    seconds: 1\n    return_job: True\n  quiet:\n    function: test.echo\n    args: [hush]\n    seconds: 1\n    return_job: False\n  unkept:\n    function: test.echo\n    args: [passing]\n    seconds: 1\n    return_job: nocache\n",
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    let returns = collect(&mut master_bus, Duration::from_secs(5), |event| {
        event.tag.starts_with("salt/job/") && event.tag.ends_with(&format!("/ret/{MINION_ID}"))
    });
    assert!(!returns.is_empty(), "no return on the master bus");
    let of = |name: &str| -> Vec<&Event> {
        returns
            .iter()
            .filter(|event| text(map_get(&event.data, "schedule")) == name)
            .collect()
    };
    assert!(
        of("quiet").is_empty(),
        "a return_job: False job reached the master: {returns:?}"
    );
    // `nocache`: announced under that jid, as Salt's master does, and not kept.
    let unkept = of("unkept");
    assert!(!unkept.is_empty(), "{returns:?}");
    assert!(
        unkept
            .iter()
            .all(|event| event.tag == format!("salt/job/nocache/ret/{MINION_ID}"))
    );
    let ret = of("back")[0];
    let jid = text(map_get(&ret.data, "jid"));
    assert_eq!(ret.tag, format!("salt/job/{jid}/ret/{MINION_ID}"));
    assert_eq!(jid.len(), 20, "the master gave it a jid: {jid}");
    assert_eq!(map_get(&ret.data, "return"), Some(&Value::from("hello")));
    assert_eq!(map_get(&ret.data, "fun_args"), Some(&map(r#"["hello"]"#)));
    assert_eq!(map_get(&ret.data, "success"), Some(&Value::Boolean(true)));
    // As Salt's master completes a return it has no job for.
    assert_eq!(map_get(&ret.data, "tgt"), Some(&Value::from(MINION_ID)));
    assert_eq!(map_get(&ret.data, "tgt_type"), Some(&Value::from("glob")));
    assert_eq!(
        crate::support::keys(&ret.data)[..10],
        [
            "cmd", "id", "fun", "fun_args", "schedule", "jid", "pid", "return", "retcode",
            "success"
        ]
    );
}

/// The files under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_returner_stores_the_return_and_the_master_gets_it_with_the_minions_jid() {
    let mut lab = Lab::with_config(
        "",
        "schedule:\n  stored:\n    function: test.echo\n    args: [kept]\n    seconds: 1\n    returner: local_cache\n",
    );
    lab.start_master();
    let mut master_bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    let ret = collect(&mut master_bus, Duration::from_secs(5), |event| {
        event.tag.ends_with(&format!("/ret/{MINION_ID}"))
    })
    .into_iter()
    .next()
    .expect("a return on the master bus");
    let jid = text(map_get(&ret.data, "jid"));
    // The minion's own job cache has it, under the same jid.
    let jobs = lab.path().join("cache/minion/jobs");
    assert!(
        wait_until(Duration::from_secs(5), || {
            files(&jobs).iter().any(|file| {
                file.ends_with(format!("{MINION_ID}/return.p"))
                    && std::fs::read_to_string(file.parent().unwrap().parent().unwrap().join("jid"))
                        .ok()
                        .as_deref()
                        == Some(jid.as_str())
            })
        }),
        "no return for {jid} under {}: {:?}",
        jobs.display(),
        files(&jobs)
    );
    let stored = files(&jobs)
        .into_iter()
        .find(|file| file.ends_with(format!("{MINION_ID}/return.p")))
        .unwrap();
    let stored = rmpv::decode::read_value(&mut std::fs::read(stored).unwrap().as_slice()).unwrap();
    assert_eq!(map_get(&stored, "return"), Some(&Value::from("kept")));
    assert_eq!(map_get(&stored, "success"), Some(&Value::Boolean(true)));
}

#[test]
fn cron_jobs_run_when_their_expression_matches() {
    // croniter's six fields: the seconds last, so every other second.
    let mut lab = Lab::with_config(
        "",
        "schedule:\n  even:\n    function: test.ping\n    cron: '* * * * * */2'\n",
    );
    lab.start_master();
    lab.start_minion();
    let mut bus = RawSubscriber::connect(&lab.minion_pub());
    let runs = collect(&mut bus, Duration::from_secs(7), returns_of("even"));
    assert!((3..=4).contains(&runs.len()), "{} runs", runs.len());
    for run in &runs {
        let second = stamp(run).trunc() as i64;
        assert_eq!(second % 2, 0, "a run at an odd second: {run:?}");
    }
}

#[test]
fn a_refused_job_is_said_out_loud_and_the_others_run() {
    let mut lab = Lab::with_config(
        "",
        "schedule:
  good:
    function: test.ping
    seconds: 1
  bad_cron:
    function: test.ping
    cron: every minute
  no_function:
    seconds: 5
  both:
    function: test.ping
    seconds: 1
    cron: '* * * * *'
  nosuch:
    function: nosuch.fun
    seconds: 1
  bad_when:
    function: test.ping
    when: soonish
",
    );
    lab.start_master();
    lab.start_minion();
    let mut minion_bus = RawSubscriber::connect(&lab.minion_pub());
    let good = collect(&mut minion_bus, Duration::from_secs(3), returns_of("good"));
    assert!(!good.is_empty(), "the good job did not run");
    let log = lab.log("minion");
    for (job, says) in [
        (
            "bad_cron",
            "schedule job bad_cron: cron: expected a cron expression",
        ),
        (
            "no_function",
            "schedule job no_function: function: expected the execution function to run",
        ),
        (
            "both",
            "schedule job both: seconds/cron: expected one way to say when the job runs",
        ),
        (
            "nosuch",
            "schedule job nosuch: function: expected an execution function this minion has",
        ),
        (
            "bad_when",
            "schedule job bad_when: when: expected a time or date such as 11:00pm",
        ),
    ] {
        assert_eq!(
            log.matches(says).count(),
            1,
            "{job}: the log does not say {says:?} once:\n{log}"
        );
    }
    // A job added later the way Salt's own module adds it (no check before): refused on the
    // minion bus too, and the others run on.
    let request = map(
        r#"{"func": "add", "persist": false, "schedule": {"late": {"function": "test.ping", "cron": "nope"}}}"#,
    );
    RawSender::connect(&lab.minion_pull()).fire("manage_schedule", &request, Framing::Bare);
    let events = collect(&mut minion_bus, Duration::from_secs(3), |event| {
        event.tag == format!("salt/schedule/{MINION_ID}/late/error") || returns_of("good")(event)
    });
    let error = events
        .iter()
        .find(|event| event.tag.ends_with("/late/error"))
        .unwrap_or_else(|| panic!("no error event: {events:?}"));
    assert!(
        text(map_get(&error.data, "error"))
            .starts_with("schedule job late: cron: expected a cron expression"),
        "{error:?}"
    );
    assert_eq!(text(map_get(&error.data, "schedule")), "late");
    assert!(
        events
            .iter()
            .filter(|event| returns_of("good")(event))
            .count()
            >= 2
    );
}

#[test]
fn schedule_functions_manage_the_running_minion_from_salt_call() {
    let mut lab = Lab::with_config("", "");
    lab.start_master();
    lab.start_minion();
    assert_eq!(
        call(&lab, &["schedule.list"]),
        Value::from("schedule: {}\n")
    );
    let added = call(
        &lab,
        &[
            "schedule.add",
            "job1",
            "function=test.echo",
            "job_args=[hi]",
            "seconds=3600",
        ],
    );
    assert_eq!(
        added,
        map(
            r#"{"comment": "Added job: job1 to schedule.", "result": true, "changes": {"job1": "added"}}"#
        )
    );
    // Persisted as Salt persists it.
    let saved = std::fs::read_to_string(lab.etc().join("minion.d/_schedule.conf")).unwrap();
    assert!(saved.starts_with("schedule:\n  job1:\n"), "{saved}");
    assert_eq!(
        call(&lab, &["schedule.list"]),
        Value::from(
            "schedule:\n  job1:\n    args:\n    - hi\n    enabled: true\n    function: test.echo\n    jid_include: true\n    maxrunning: 1\n    name: job1\n    saved: true\n    seconds: 3600\n"
        )
    );
    let again = call(
        &lab,
        &["schedule.add", "job1", "function=test.ping", "seconds=1"],
    );
    assert_eq!(
        text(map_get(&again, "comment")),
        "Job job1 already exists in schedule."
    );
    let conflict = call(
        &lab,
        &[
            "schedule.add",
            "job2",
            "function=test.ping",
            "seconds=1",
            "cron=* * * * *",
        ],
    );
    assert_eq!(map_get(&conflict, "result"), Some(&Value::Boolean(false)));
    let refused = call(
        &lab,
        &["schedule.add", "job2", "function=test.ping", "cron=often"],
    );
    assert!(
        text(map_get(&refused, "comment"))
            .starts_with("schedule job job2: cron: expected a cron expression"),
        "{refused}"
    );

    let disabled = call(&lab, &["schedule.disable_job", "job1"]);
    assert_eq!(
        disabled,
        map(
            r#"{"comment": "Disabled Job job1 in schedule.", "result": true, "changes": {"job1": "disabled"}}"#
        )
    );
    let listed = call(&lab, &["schedule.list", "return_yaml=False"]);
    assert_eq!(
        map_get(map_get(&listed, "job1").unwrap(), "enabled"),
        Some(&Value::Boolean(false))
    );
    assert_eq!(
        call(&lab, &["schedule.run_job", "job1"]),
        map(r#"{"comment": "Job job1 is disabled.", "result": true}"#)
    );
    let enabled = call(&lab, &["schedule.enable_job", "job1"]);
    assert_eq!(
        text(map_get(&enabled, "comment")),
        "Enabled Job job1 in schedule."
    );

    // run_job runs it now, whatever its schedule.
    let mut bus = RawSubscriber::connect(&lab.minion_pub());
    assert_eq!(
        call(&lab, &["schedule.run_job", "job1"]),
        map(r#"{"comment": "Scheduling Job job1 on minion.", "result": true}"#)
    );
    let ran = collect(&mut bus, Duration::from_secs(5), returns_of("job1"));
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(map_get(&ran[0].data, "return"), Some(&Value::from("hi")));

    let next = call(&lab, &["schedule.show_next_fire_time", "job1"]);
    assert_eq!(map_get(&next, "result"), Some(&Value::Boolean(true)));
    assert_eq!(text(map_get(&next, "next_fire_time")).len(), 19, "{next}");

    let modified = call(&lab, &["schedule.modify", "job1", "seconds=1800"]);
    assert_eq!(
        text(map_get(&modified, "comment")),
        "Modified job: job1 in schedule."
    );
    let listed = call(&lab, &["schedule.list", "return_yaml=False"]);
    assert_eq!(
        map_get(map_get(&listed, "job1").unwrap(), "seconds"),
        Some(&Value::from(1800))
    );

    let disabled = call(&lab, &["schedule.disable"]);
    assert_eq!(
        disabled,
        map(
            r#"{"comment": "Disabled schedule on minion.", "changes": {"schedule": "disabled"}, "result": true}"#
        )
    );
    let enabled = call(&lab, &["schedule.enable"]);
    assert_eq!(
        text(map_get(&enabled, "comment")),
        "Enabled schedule on minion."
    );
    assert_eq!(
        call(&lab, &["schedule.save"]),
        map(r#"{"comment": "Schedule (non-pillar items) saved.", "result": true}"#)
    );
    let deleted = call(&lab, &["schedule.delete", "job1"]);
    assert_eq!(
        deleted,
        map(
            r#"{"comment": "Deleted Job job1 from schedule.", "result": true, "changes": {"job1": "removed"}}"#
        )
    );
    let gone = call(&lab, &["schedule.delete", "job1"]);
    assert_eq!(
        gone,
        map(r#"{"comment": "Job job1 does not exist.", "result": false, "changes": {}}"#)
    );
    assert_eq!(
        std::fs::read_to_string(lab.etc().join("minion.d/_schedule.conf")).unwrap(),
        "schedule:\n  enabled: true\n"
    );
}

#[test]
fn pillar_jobs_run_beside_the_configured_ones_follow_a_refresh_and_cannot_be_changed() {
    let mut lab = Lab::with_config(
        "",
        "schedule:\n  from_conf:\n    function: test.ping\n    seconds: 1\n",
    );
    let roots = lab.path().join("pillar");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::write(roots.join("top.sls"), "base:\n  '*':\n    - schedule\n").unwrap();
    std::fs::write(
        roots.join("schedule.sls"),
        "schedule:\n  from_pillar:\n    function: test.echo\n    args: [pillar]\n    seconds: 1\n",
    )
    .unwrap();
    lab.append_config(
        "master",
        &format!("pillar_roots:\n  base:\n    - {}\n", roots.display()),
    );
    lab.start_master();
    lab.start_minion();
    let mut bus = RawSubscriber::connect(&lab.minion_pub());
    let seen = collect(&mut bus, Duration::from_secs(4), |event| {
        event.tag == "__schedule_return"
    });
    let ran = |name: &str, seen: &[Event]| seen.iter().any(|event| returns_of(name)(event));
    assert!(
        ran("from_conf", &seen) && ran("from_pillar", &seen),
        "{seen:?}"
    );
    let listed = call(&lab, &["schedule.list", "return_yaml=False"]);
    let mut names = crate::support::keys(&listed);
    names.sort_unstable();
    assert_eq!(names, ["from_conf", "from_pillar"]);
    // Salt's answer for a job of the pillar: it is still there.
    let refused = call(&lab, &["schedule.delete", "from_pillar"]);
    assert_eq!(
        refused,
        map(
            r#"{"comment": "Failed to delete job from_pillar from schedule.", "result": false, "changes": {}}"#
        )
    );
    assert!(
        lab.log("minion")
            .contains("Cannot delete job from_pillar, it's in the pillar!")
    );
    // Saved: the configuration's jobs, not the pillar's.
    call(&lab, &["schedule.save"]);
    let saved = std::fs::read_to_string(lab.etc().join("minion.d/_schedule.conf")).unwrap();
    assert!(
        saved.contains("from_conf") && !saved.contains("from_pillar"),
        "{saved}"
    );
    // A pillar changed on the master and refreshed: its jobs follow.
    std::fs::write(roots.join("schedule.sls"), "schedule: {}\n").unwrap();
    lab.run("salt", &["*", "saltutil.refresh_pillar"]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut fresh = RawSubscriber::connect(&lab.minion_pub());
    let seen = collect(&mut fresh, Duration::from_secs(3), |event| {
        event.tag == "__schedule_return"
    });
    assert!(
        ran("from_conf", &seen) && !ran("from_pillar", &seen),
        "{seen:?}"
    );
}

/// More jobs due at once than runs may be under way: those left out wait for a slot, the
/// longest due first, and are said once each, not at every tick; every job runs.
#[test]
fn jobs_beyond_the_runs_under_way_wait_their_turn_and_all_run() {
    let mut minion = String::from("schedule:\n");
    for n in 0..300 {
        minion.push_str(&format!(
            "  s{n}:\n    function: test.sleep\n    args: [2]\n    seconds: 5\n"
        ));
    }
    let mut lab = Lab::with_config("", &minion);
    lab.start_master();
    lab.start_minion();
    let mut bus = RawSubscriber::connect(&lab.minion_pub());
    let mut ran = std::collections::HashSet::new();
    // All due together every 5 s; 256 run 2 s at a time. Before, the same 44 lost each time.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ran.len() < 300 {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match bus.next_event(left) {
            Some(event) if event.tag == "__schedule_return" => {
                ran.insert(text(map_get(&event.data, "schedule")));
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(ran.len(), 300, "jobs that never ran were left behind");
    let log = lab.log("minion");
    let waited = log.matches("waits to start").count();
    // Once per job per wait, not at every tick: two rounds at most have gone by.
    assert!(
        (1..=2 * (300 - 256)).contains(&waited),
        "{waited} said:\n{log}"
    );
    assert!(!log.contains("was not started: 256"), "{log}");
}
