//! `salt-run event.bench`: its figures are for people, but what it counts is checked here.

use crate::support::{Lab, stderr};

fn bench(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let child = lab
        .cmd("salt-run")
        .args(["event.bench", "--out=json", "idle=5"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = crate::support::wait_output(child, std::time::Duration::from_secs(120));
    assert!(
        output.status.success(),
        "event.bench {args:?} failed or hung: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_complete(report: &serde_json::Value, subscribers: usize, count: u64) {
    let subs = report["subscribers"].as_array().unwrap();
    assert_eq!(subs.len(), subscribers);
    for sub in subs {
        assert_eq!(sub["delivered"], count, "{report}");
        assert_eq!(sub["dropped"], 0, "{report}");
        assert_eq!(sub["reordered"], 0, "{report}");
    }
    assert!(report["events_per_second"].as_f64().unwrap() > 0.0);
    let latency = |q: &str| report["latency_us"][q].as_f64().unwrap();
    assert!(latency("p50") <= latency("p99.9") && latency("p99.9") <= latency("max"));
}

#[test]
fn subscribers_that_keep_up_get_every_event_in_order_from_every_publisher() {
    let mut lab = Lab::with_config("subscriber_buffer_size: 268435456\n", "");
    lab.start_master();
    let report = bench(&lab, &["publishers=4", "subscribers=3", "count=20000"]);
    assert_complete(&report, 3, 20_000);
    assert_eq!(report["events"], 20_000);
    assert_eq!(
        report["frame_bytes"], 114,
        "a 100-byte body in a bare frame"
    );
}

#[test]
fn big_events_and_pacing_arrive_whole() {
    let mut lab = Lab::new();
    lab.start_master();
    assert_complete(&bench(&lab, &["size=1000000", "count=20"]), 1, 20);
    let paced = bench(&lab, &["rate=500", "count=200"]);
    assert_complete(&paced, 1, 200);
    assert!(
        paced["seconds"].as_f64().unwrap() >= 0.35,
        "paced at 500 events/s: {paced}"
    );
}

#[test]
fn the_reference_relay_carries_the_same_load() {
    let lab = Lab::new();
    assert_complete(
        &bench(
            &lab,
            &["relay=True", "publishers=2", "subscribers=2", "count=10000"],
        ),
        2,
        10_000,
    );
    // The relay makes senders wait for every subscriber, so a stalled one is refused up front.
    let refused = lab.run("salt-run", &["event.bench", "relay=True", "stalled=1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("stalled=1 would stop it"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_stalled_subscriber_costs_the_readers_nothing() {
    let mut lab = Lab::new();
    lab.start_master();
    assert_complete(
        &bench(&lab, &["stalled=2", "subscribers=2", "count=50000"]),
        2,
        50_000,
    );
}

/// Regression: each slow-subscriber report used to evict an event from the stalled subscribers'
/// full outboxes, which caused the next report, forever; readers never went idle and the run
/// never ended. (The bus's own tests time the reports exactly; this is the whole run.)
#[test]
fn reports_about_stalled_subscribers_die_down_once_the_load_stops() {
    let mut lab = Lab::with_config("subscriber_buffer_size: 4194304\n", "");
    lab.start_master();
    // 50,000 events count as about 9 MB in an outbox: twice what a stalled subscriber may hold.
    let report = bench(
        &lab,
        &["stalled=2", "subscribers=1", "count=50000", "rate=50000"],
    );
    assert_complete(&report, 1, 50_000);
    assert!(
        lab.log("master").contains("is too slow"),
        "the stalled subscribers overflowed"
    );
}
