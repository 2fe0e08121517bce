//! The event bus daemons: sockets, fan-out, both framings, and bad input.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use halite::event::Value;
use halite::wire::Framing;

use crate::support::{Lab, RawSender, RawSubscriber, connectable, map, wait_until};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn master_binds_salt_socket_names_with_salt_modes() {
    let mut lab = Lab::new();
    lab.start_master();
    for (path, mode) in [(lab.master_pub(), 0o660), (lab.master_pull(), 0o600)] {
        let meta = std::fs::metadata(&path).unwrap();
        assert!(
            meta.file_type().is_socket(),
            "{} is a socket",
            path.display()
        );
        assert_eq!(
            meta.permissions().mode() & 0o777,
            mode,
            "{}",
            path.display()
        );
    }
}

#[test]
fn minion_binds_hashed_socket_names_private_to_owner() {
    let mut lab = Lab::new();
    lab.start_minion();
    for path in [lab.minion_pub(), lab.minion_pull()] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }
}

#[test]
fn events_in_either_framing_reach_every_subscriber_as_bare_frames() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut first = RawSubscriber::connect(&lab.master_pub());
    let mut second = RawSubscriber::connect(&lab.master_pub());
    let data = map(&[
        ("a", Value::from(1)),
        ("bin", Value::Binary(vec![0, 255])),
        ("big", Value::from(u64::MAX)),
    ]);
    RawSender::connect(&lab.master_pull()).fire("test/bare", &data, Framing::Bare);
    RawSender::connect(&lab.master_pull()).fire("test/prefixed", &data, Framing::LengthPrefixed);
    for subscriber in [&mut first, &mut second] {
        // Two connections: their events may arrive in either order.
        let mut tags = Vec::new();
        for _ in 0..2 {
            let event = subscriber.next_event(WAIT).expect("both events arrive");
            assert_eq!(event.data, data, "data round-trips unchanged");
            tags.push(event.tag);
        }
        tags.sort();
        assert_eq!(tags, ["test/bare", "test/prefixed"]);
        assert_eq!(
            subscriber.raw[0], 0x82,
            "publish frames are bare msgpack maps"
        );
    }
}

#[test]
fn length_prefixed_publish_framing_serves_3006_readers() {
    let mut lab = Lab::with_config("ipc_framing: length_prefixed\n", "");
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    RawSender::connect(&lab.master_pull()).fire("test/lp", &map(&[]), Framing::Bare);
    subscriber.expect_tag("test/lp");
    assert_eq!(&subscriber.raw[..2], &[0, 0], "a 4-byte length comes first");
}

#[test]
fn one_connection_keeps_event_order() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let mut sender = RawSender::connect(&lab.master_pull());
    let mut bytes = Vec::new();
    for n in 0..2000u32 {
        bytes.extend(crate::support::frame(
            "order/n",
            &map(&[("n", Value::from(n))]),
            Framing::Bare,
        ));
    }
    sender.send(&bytes);
    for n in 0..2000u64 {
        let event = subscriber.expect_tag("order/n");
        assert_eq!(event.get("n").and_then(Value::as_u64), Some(n));
    }
}

#[test]
fn garbage_closes_only_that_connection() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let mut good = RawSender::connect(&lab.master_pull());
    let mut bad = RawSender::connect(&lab.master_pull());
    bad.send(b"\x82\xc1garbage that is not msgpack");
    assert!(
        bad.closed_by_peer(),
        "the daemon closes a connection that sent invalid msgpack"
    );
    good.fire("still/works", &map(&[]), Framing::Bare);
    subscriber.expect_tag("still/works");
    assert!(
        lab.log("master").contains("invalid msgpack"),
        "the problem is logged:\n{}",
        lab.log("master")
    );
}

#[test]
fn oversized_length_prefix_closes_the_connection_without_allocating() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut bad = RawSender::connect(&lab.master_pull());
    bad.send(&[0x7f, 0xff, 0xff, 0xff, 0x82]);
    assert!(bad.closed_by_peer());
    assert!(
        lab.log("master").contains("exceeds the limit"),
        "{}",
        lab.log("master")
    );
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    RawSender::connect(&lab.master_pull()).fire("after/oversized", &map(&[]), Framing::Bare);
    subscriber.expect_tag("after/oversized");
}

#[test]
fn a_truncated_frame_is_logged_and_later_connections_work() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let whole = crate::support::frame("cut/short", &map(&[("x", Value::from("y"))]), Framing::Bare);
    let mut cut = RawSender::connect(&lab.master_pull());
    cut.send(&whole[..whole.len() - 3]);
    drop(cut);
    assert!(
        wait_until(WAIT, || lab
            .log("master")
            .contains("in the middle of a frame")),
        "{}",
        lab.log("master")
    );
    RawSender::connect(&lab.master_pull()).fire("after/cut", &map(&[]), Framing::Bare);
    assert_eq!(
        subscriber.next_event(WAIT).expect("an event").tag,
        "after/cut"
    );
}

#[test]
fn master_drops_undecodable_bodies_but_keeps_the_connection() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let mut sender = RawSender::connect(&lab.master_pull());
    let mut no_tagend = Vec::new();
    halite::wire::encode_frame(b"no separator here", Framing::Bare, &mut no_tagend);
    let mut bad_data = Vec::new();
    halite::wire::encode_frame(b"bad/data\n\n\xc1", Framing::Bare, &mut bad_data);
    sender.send(&no_tagend);
    sender.send(&bad_data);
    sender.send(&[0x92, 0x01, 0x02]); // a valid msgpack list, not a frame
    sender.send(&[0x81, 0xa4, b'h', b'e', b'a', b'd', 0x80]); // a map without body
    sender.fire("good/after", &map(&[]), Framing::Bare);
    assert_eq!(
        subscriber.next_event(WAIT).expect("an event").tag,
        "good/after",
        "only the valid event is published"
    );
    let log = lab.log("master");
    for needle in [
        "no \"\\n\\n\"",
        "not valid msgpack",
        "not a map",
        "no str or bin",
    ] {
        assert!(log.contains(needle), "log mentions {needle}:\n{log}");
    }
}

#[test]
fn minion_relays_bodies_unchecked_like_salt() {
    let mut lab = Lab::new();
    lab.start_minion();
    let mut subscriber = RawSubscriber::connect(&lab.minion_pub());
    let mut sender = RawSender::connect(&lab.minion_pull());
    let mut odd = Vec::new();
    halite::wire::encode_frame(b"odd/tag\n\n\x92\x01\x02", Framing::Bare, &mut odd);
    sender.send(&odd);
    let event = subscriber
        .next_event(WAIT)
        .expect("the minion relays non-map data");
    assert_eq!(
        event.data,
        Value::Array(vec![Value::from(1), Value::from(2)])
    );
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_kept() {
    let mut lab = Lab::new();
    std::fs::create_dir_all(lab.master_sock_dir()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(lab.master_pub()).unwrap());
    assert!(lab.master_pub().exists() && !connectable(&lab.master_pub()));
    lab.start_master();
    let second = lab.spawn_daemon("salt-master", &[]);
    let (status, stderr) = {
        let output = crate::support::wait_output(second.into_child(), Duration::from_secs(10));
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("in use by a running daemon"), "{stderr}");
    assert!(
        connectable(&lab.master_pub()),
        "the first master keeps its sockets"
    );
}

#[test]
fn sigterm_delivers_accepted_events_then_removes_the_sockets() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let mut sender = RawSender::connect(&lab.master_pull());
    let mut bytes = Vec::new();
    for n in 0..500u32 {
        bytes.extend(crate::support::frame(
            "drain/n",
            &map(&[("n", Value::from(n))]),
            Framing::Bare,
        ));
    }
    sender.send(&bytes);
    // Once the last event is out, all were accepted; shutting down must not lose any in flight.
    let master = lab.take_daemon();
    let mut seen = 0;
    while let Some(event) = subscriber.next_event(WAIT) {
        assert_eq!(event.get("n").and_then(Value::as_u64), Some(seen));
        seen += 1;
        if seen == 250 {
            break;
        }
    }
    let (status, _) = master.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    while let Some(event) = subscriber.next_event(Duration::from_secs(2)) {
        assert_eq!(event.get("n").and_then(Value::as_u64), Some(seen));
        seen += 1;
    }
    assert_eq!(seen, 500, "every accepted event was delivered");
    assert!(
        !lab.master_pub().exists() && !lab.master_pull().exists(),
        "sockets removed"
    );
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Sends `count` numbered events of about 100 bytes on one connection, at about 100,000 a second:
/// what a reading subscriber of these tests (a debug build decoding every event) keeps up with.
fn flood(pull: &std::path::Path, tag: &str, count: u32) {
    flood_pausing(pull, tag, count, Duration::from_millis(4));
}

/// Sends `count` numbered events of about 100 bytes on one connection, pausing after every
/// 60 KB.
fn flood_pausing(pull: &std::path::Path, tag: &str, count: u32, pause: Duration) {
    let mut sender = RawSender::connect(pull);
    let pad = Value::Binary(vec![b'x'; 40]);
    let mut bytes = Vec::with_capacity(64 * 1024);
    for n in 0..count {
        let data = map(&[("n", Value::from(n)), ("pad", pad.clone())]);
        bytes.extend(crate::support::frame(tag, &data, Framing::Bare));
        if bytes.len() > 60_000 {
            sender.send(&bytes);
            bytes.clear();
            std::thread::sleep(pause);
        }
    }
    sender.send(&bytes);
}

#[test]
fn a_stalled_subscriber_loses_its_oldest_events_without_slowing_others_or_growing_memory() {
    let mut lab = Lab::with_config("subscriber_buffer_size: 4194304\n", "");
    let master = lab.start_master();
    let pid = master.pid();
    let stalled = std::os::unix::net::UnixStream::connect(lab.master_pub()).unwrap();
    let mut reader = RawSubscriber::connect(&lab.master_pub());
    let before = rss(pid);
    const COUNT: u32 = 300_000;
    let sender = {
        let pull = lab.master_pull();
        std::thread::spawn(move || flood(&pull, "flood/n", COUNT))
    };
    let mut expected = 0u64;
    let mut slow_reports = 0;
    while expected < u64::from(COUNT) {
        let event = reader
            .next_event(WAIT)
            .expect("the reading subscriber keeps getting events");
        match event.tag.as_str() {
            "flood/n" => {
                assert_eq!(
                    event.get("n").and_then(Value::as_u64),
                    Some(expected),
                    "in order, none lost"
                );
                expected += 1;
            }
            "halite/bus/slow_subscriber" => slow_reports += 1,
            other => panic!("unexpected event {other}"),
        }
    }
    sender.join().unwrap();
    let grown = rss(pid).saturating_sub(before);
    assert!(grown < 64 * 1024 * 1024, "the daemon grew by {grown} bytes");
    assert!(
        slow_reports >= 1
            || reader
                .next_event(Duration::from_secs(2))
                .is_some_and(|e| e.tag == "halite/bus/slow_subscriber")
    );
    assert!(
        lab.log("master").contains("is too slow: dropped its"),
        "{}",
        lab.log("master")
    );

    // Once it reads again, the stalled subscriber is told what it lost.
    let mut late = RawSubscriber::from_stream(stalled);
    let mut told = None;
    while let Some(event) = late.next_event(Duration::from_secs(2)) {
        if event.tag == "halite/bus/lost" {
            told = event.get("total").and_then(Value::as_u64);
            break;
        }
    }
    assert!(
        told.is_some_and(|lost| lost > 0),
        "the slow subscriber learns how many events it lost"
    );
}

/// Regression: a sender that went quiet in the middle of a frame after a large event kept the
/// whole buffer that event had grown (72 MiB for 60 MB), until it disconnected.
#[test]
fn a_sender_quiet_mid_frame_after_a_large_event_does_not_keep_its_buffer() {
    let mut lab = Lab::new();
    let pid = lab.start_master().pid();
    let mut reader = RawSubscriber::connect(&lab.master_pub());
    std::thread::sleep(Duration::from_millis(100));
    let before = rss(pid);
    // Larger than glibc's largest mmap threshold, so that a freed buffer leaves the process.
    let large = crate::support::frame(
        "large/x",
        &Value::Binary(vec![7; 40_000_000]),
        Framing::Bare,
    );
    let senders: Vec<RawSender> = (0..3)
        .map(|_| {
            let mut sender = RawSender::connect(&lab.master_pull());
            sender.send(&large);
            sender.send(&large[..4]);
            let event = reader.next_event(WAIT).expect("the large event");
            assert_eq!(event.tag, "large/x");
            sender
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let grown = rss(pid).saturating_sub(before);
    assert!(grown < 40_000_000, "three quiet senders keep {grown} bytes");
    drop(senders);
}

/// A subscriber that reads, only slower than four senders without pause, holds them back and
/// loses nothing; with `slow_subscriber_wait: 0` the same load costs it events. (Its buffer has
/// room for what the senders read at once, 64 KiB each, beyond the half that holds them back.)
#[test]
fn a_subscriber_slower_than_the_senders_holds_them_back_instead_of_losing_events() {
    const SENDERS: u32 = 4;
    const COUNT: u32 = 20_000;
    // Generous, so that a busy machine pausing the reader does not make it lose events.
    for (wait, lossless) in [("10", true), ("0", false)] {
        let mut lab = Lab::with_config(
            &format!("subscriber_buffer_size: 2097152\nslow_subscriber_wait: {wait}\n"),
            "",
        );
        lab.start_master();
        let mut reader = RawSubscriber::connect(&lab.master_pub());
        let senders: Vec<_> = (0..SENDERS)
            .map(|n| {
                let pull = lab.master_pull();
                std::thread::spawn(move || {
                    flood_pausing(&pull, &format!("burst/{n}"), COUNT, Duration::ZERO);
                })
            })
            .collect();
        let mut next = [0u64; SENDERS as usize];
        let mut lost = false;
        while next.iter().sum::<u64>() < u64::from(SENDERS * COUNT) {
            // Without waiting, a sender's last events may be lost too.
            let patience = if lossless {
                WAIT
            } else {
                Duration::from_secs(1)
            };
            let Some(event) = reader.next_event(patience) else {
                break;
            };
            if let Some(sender) = event.tag.strip_prefix("burst/") {
                let sender: usize = sender.parse().unwrap();
                let n = event.get("n").and_then(Value::as_u64).unwrap();
                assert!(n >= next[sender], "in order from each sender");
                lost |= n > next[sender];
                next[sender] = n + 1;
                if n % 256 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            } else {
                lost |= event.tag == "halite/bus/lost";
            }
        }
        senders
            .into_iter()
            .for_each(|sender| sender.join().unwrap());
        assert_eq!(!lost, lossless, "slow_subscriber_wait: {wait}");
        if lossless {
            assert_eq!(next, [u64::from(COUNT); SENDERS as usize]);
        }
    }
}

#[test]
fn the_disconnect_policy_closes_a_stalled_subscriber_and_says_so() {
    let mut lab = Lab::with_config(
        "subscriber_buffer_size: 1048576\nslow_subscriber_policy: disconnect\n",
        "",
    );
    lab.start_master();
    let stalled = std::os::unix::net::UnixStream::connect(lab.master_pub()).unwrap();
    let mut watcher = RawSubscriber::connect(&lab.master_pub());
    std::thread::sleep(Duration::from_millis(100));
    let pull = lab.master_pull();
    let sender = std::thread::spawn(move || flood(&pull, "flood/d", 200_000));
    let mut announced = None;
    while let Some(event) = watcher.next_event(Duration::from_secs(3)) {
        if event.tag == "halite/bus/slow_subscriber" {
            announced = Some(event);
            break;
        }
    }
    sender.join().unwrap();
    let announced = announced.expect("the disconnect is announced on the bus");
    assert_eq!(announced.get("disconnected"), Some(&Value::Boolean(true)));
    assert_eq!(
        announced.get("policy").and_then(Value::as_str),
        Some("disconnect")
    );
    let mut late = RawSubscriber::from_stream(stalled);
    while late.next_event(Duration::from_secs(2)).is_some() {}
    assert!(
        late.closed(),
        "the stalled connection was closed by the daemon"
    );
}

/// Regression: shutdown waited forever for a subscriber that had stopped reading.
#[test]
fn shutdown_does_not_wait_forever_for_a_stalled_subscriber() {
    let mut lab = Lab::new();
    lab.start_master();
    let stalled = std::os::unix::net::UnixStream::connect(lab.master_pub()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    flood(&lab.master_pull(), "flood/s", 50_000);
    let started = std::time::Instant::now();
    let (status, _) = lab.take_daemon().stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "stopped in {:?}",
        started.elapsed()
    );
    assert!(
        lab.log("master").contains("gave up on 1 subscribers"),
        "{}",
        lab.log("master")
    );
    drop(stalled);
}
