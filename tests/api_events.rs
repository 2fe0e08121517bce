//! salt-api's event streams with real daemons: `/events` byte for byte against Salt's capture,
//! `curl -N`, resuming with `Last-Event-ID` from a Python client, clients that never read, the
//! tag filter, keep-alive, the end of a stream when its token expires or is logged out, `/ws`
//! with Salt's handshake, and the `/app` page rendered by a headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use halite::event::Value;
use halite::wire::Framing;

use crate::support::{Lab, RawSender, api_block, free_port, map, wait_until};

/// A master and salt-api on a free port, and a token valid for `seconds`.
fn lab_with(extra: &str, seconds: f64) -> (Lab, u16, String) {
    let port = free_port();
    let mut lab = Lab::with_config(&format!("{}{extra}", api_block(port)), "");
    lab.start_master();
    lab.start_api(port);
    let token = lab.mint_token("saltdev", "auto", seconds);
    (lab, port, token)
}

/// Fires an event into the master's bus. The bus keeps the order of one connection's events
/// only: a sequence is fired with [`sender`].
fn fire(lab: &Lab, tag: &str, data: &Value) {
    sender(lab).fire(tag, data, Framing::Bare);
}

/// A connection to the master's bus for events whose order matters.
fn sender(lab: &Lab) -> RawSender {
    RawSender::connect(&lab.master_pull())
}

/// An SSE stream read over a raw socket, the chunked encoding undone.
struct Sse {
    reader: BufReader<TcpStream>,
    /// The response head.
    head: String,
    /// The body so far.
    body: String,
    ended: bool,
}

impl Sse {
    fn open(port: u16, path: &str, headers: &str) -> Sse {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nAccept: text/event-stream\r\n{headers}\r\n"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        Sse {
            reader,
            head,
            body: String::new(),
            ended: false,
        }
    }

    fn status(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

    /// Reads chunks until `done(body)` or the stream ends; false on timeout or end first.
    fn read_until(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.body) {
            if self.ended || Instant::now() >= deadline {
                return false;
            }
            // Waits for the next chunk no longer than the deadline; a chunk begun is read whole.
            let socket = self.reader.get_ref();
            let left = deadline.saturating_duration_since(Instant::now());
            socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.reader.fill_buf() {
                Ok([]) => {
                    self.ended = true;
                    continue;
                }
                Ok(_) => {}
                Err(error) if is_timeout(&error) => continue,
                Err(_) => {
                    self.ended = true;
                    continue;
                }
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut size = String::new();
            if self.reader.read_line(&mut size).unwrap_or(0) == 0 {
                self.ended = true;
                continue;
            }
            let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                self.ended = true;
            }
            self.body
                .push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        }
        true
    }

    /// The `data:` JSON of each event so far.
    fn events(&self) -> Vec<serde_json::Value> {
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|json| serde_json::from_str(json).unwrap())
            .collect()
    }

    fn tags(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|event| event["tag"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Fires `sync/<n>` until the stream shows one: the API is subscribed to the master's bus.
fn sync(lab: &Lab, sse: &mut Sse) {
    for n in 0..100 {
        let tag = format!("sync/{n}");
        fire(lab, &tag, &map(&[]));
        if sse.read_until(Duration::from_millis(200), |body| body.contains(&tag)) {
            return;
        }
    }
    panic!(
        "the API never streamed a sync event; log:\n{}",
        lab.log("api")
    );
}

fn auth(token: &str) -> String {
    format!("X-Auth-Token: {token}\r\n")
}

/// Salt's capture with what differs from run to run masked: jids, stamps, and our ids dropped.
fn normalise(text: &str) -> String {
    let jid = regex::Regex::new(r"\b20\d{18}\b").unwrap();
    let stamp = regex::Regex::new(r#""_stamp": "[^"]*""#).unwrap();
    let text = jid.replace_all(text, "JID");
    let text = stamp.replace_all(&text, r#""_stamp": "STAMP""#);
    text.lines()
        .filter(|line| !line.starts_with("id: "))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn events_are_salts_bytes_with_an_id_per_event() {
    let (lab, port, token) = lab_with("", 3600.0);
    let mut warm = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut warm);
    let mut sse = Sse::open(port, "/events", &auth(&token));
    assert_eq!(sse.status(), "200", "{}", sse.head);
    let output = lab.run(
        "salt-run",
        &["event.send", "sse/test", r#"{"foo": "bar", "u": "ü"}"#],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(
        sse.read_until(Duration::from_secs(10), |body| body.contains("/ret\"}")),
        "{}",
        sse.body
    );

    let golden = std::fs::read_to_string("../shared/golden/16_salt_api_sse.txt").unwrap();
    let raw = golden.split("## /events raw stream\n").nth(1).unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap();
    // The events the same commands fired there: the runner's new, the event, the runner's ret.
    let wanted: String = body
        .split_inclusive("\n\n")
        .filter(|event| event.contains("tag: salt/run/") || event.contains("tag: sse/test"))
        .collect();
    // Salt's salt-run stamps the caller's dict, so its ret repeats the stamp in fun_args
    // (SALT-SPEC §2.1); halite's does not. Not the API's doing: masked.
    let wanted = wanted.replace(r#", "_stamp": "2026-11-24T08:58:40.067801"}]"#, "}]");
    let expected = normalise(&format!("retry: 400\n{wanted}"));
    assert_eq!(normalise(&sse.body), expected);

    // Every event has an id line first, increasing.
    let ids: Vec<&str> = sse
        .body
        .lines()
        .filter_map(|line| line.strip_prefix("id: "))
        .collect();
    assert_eq!(ids.len(), 3, "{}", sse.body);
    assert!(sse.body.starts_with("retry: 400\nid: "), "{}", sse.body);
    let seq = |id: &str| id.rsplit_once('-').unwrap().1.parse::<u64>().unwrap();
    assert!(
        ids.windows(2).all(|pair| seq(pair[1]) == seq(pair[0]) + 1),
        "{ids:?}"
    );

    // Salt's headers, and ours for proxies.
    let head_lower = sse.head.to_ascii_lowercase();
    for line in head.lines().filter(|line| {
        [
            "content-type",
            "cache-control",
            "connection",
            "transfer-encoding",
            "access-control",
        ]
        .iter()
        .any(|name| line.to_ascii_lowercase().starts_with(name))
    }) {
        assert!(
            head_lower.contains(&line.to_ascii_lowercase()),
            "{line} in\n{}",
            sse.head
        );
    }
    assert!(head_lower.contains("x-accel-buffering: no"), "{}", sse.head);
}

#[test]
fn curl_streams_events() {
    let (lab, port, token) = lab_with("", 3600.0);
    let mut curl = Command::new("curl")
        .args(["-sS", "-N", "-H", &format!("X-Auth-Token: {token}")])
        .arg(format!("http://127.0.0.1:{port}/events"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = curl.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = (0..100).any(|n| {
        fire(&lab, "curl/test", &map(&[("n", Value::from(n))]));
        let deadline = Instant::now() + Duration::from_millis(200);
        while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let hit = line.starts_with("tag: curl/test");
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    });
    let _ = curl.kill();
    let _ = curl.wait();
    assert!(found, "{seen:?}");
    assert_eq!(seen[0], "retry: 400");
}

#[test]
fn a_python_sse_client_resumes_with_last_event_id_and_loses_nothing() {
    let (lab, port, token) = lab_with("", 3600.0);
    let mut warm = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut warm);
    // A client of the standard library only: reads up to resume/3, drops the connection,
    // waits for a line on stdin, reconnects with Last-Event-ID and reads up to resume/6.
    let script = r#"
import http.client, json, sys
port, token = int(sys.argv[1]), sys.argv[2]
def stream(headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/events", headers=dict(headers, **{"X-Auth-Token": token}))
    response = conn.getresponse()
    assert response.status == 200, response.status
    print("connected", flush=True)
    event = {}
    while True:
        line = response.readline().decode()
        if line == "\n":
            if "data" in event:
                yield event
            event = {}
        elif ":" in line:
            key, value = line.rstrip("\n").split(": ", 1)
            event[key] = value
last = None
for event in stream({}):
    tag = json.loads(event["data"])["tag"]
    if tag.startswith("resume/"):
        last = event["id"]
        print("first", tag, flush=True)
    if tag == "resume/3":
        break
print("dropped", flush=True)
sys.stdin.readline()
for event in stream({"Last-Event-ID": last}):
    tag = json.loads(event["data"])["tag"]
    print("second", tag, flush=True)
    if tag == "resume/6":
        break
"#;
    let mut client = Command::new("python3")
        .args(["-c", script, &port.to_string(), &token])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(client.stdout.take().unwrap());
    // The API answers once the client's place in the stream is taken.
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected");
    let mut bus = sender(&lab);
    for n in 1..=3 {
        bus.fire(&format!("resume/{n}"), &map(&[]), Framing::Bare);
    }
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{lines:?}");
        if line.trim() == "dropped" {
            break;
        }
        lines.push(line.trim().to_owned());
    }
    assert_eq!(
        lines,
        ["first resume/1", "first resume/2", "first resume/3"]
    );
    // Fired while the client is away.
    for n in 4..=6 {
        bus.fire(&format!("resume/{n}"), &map(&[]), Framing::Bare);
    }
    assert!(warm.read_until(Duration::from_secs(5), |body| body.contains("resume/6")));
    writeln!(client.stdin.as_mut().unwrap(), "go").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(client.wait().unwrap().success());
    assert_eq!(
        rest.lines().collect::<Vec<_>>(),
        ["second resume/4", "second resume/5", "second resume/6"]
    );
}

#[test]
fn a_resume_from_an_id_no_longer_kept_says_what_was_lost() {
    let (lab, port, token) = lab_with("  events_replay_size: 3\n", 3600.0);
    let mut live = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut live);
    let mut bus = sender(&lab);
    bus.fire("old/1", &map(&[]), Framing::Bare);
    assert!(live.read_until(Duration::from_secs(5), |body| body.contains("old/1")));
    let id = live
        .body
        .lines()
        .filter_map(|line| line.strip_prefix("id: "))
        .next_back()
        .unwrap()
        .to_owned();
    for n in 2..=6 {
        bus.fire(&format!("old/{n}"), &map(&[]), Framing::Bare);
    }
    assert!(live.read_until(Duration::from_secs(5), |body| body.contains("old/6")));
    // Through the query, for clients that cannot set headers.
    let mut resumed = Sse::open(port, &format!("/events?last_event_id={id}"), &auth(&token));
    assert!(resumed.read_until(Duration::from_secs(5), |body| body.contains("old/6")));
    assert_eq!(
        resumed.tags(),
        ["halite/api/lost", "old/4", "old/5", "old/6"]
    );
    let lost = &resumed.events()[0]["data"];
    assert_eq!(
        (lost["lost"].as_u64(), lost["total"].as_u64()),
        (Some(2), Some(2))
    );
    // An id of an earlier run of the API: all that is kept, the loss unknown.
    let mut stale = Sse::open(
        port,
        "/events",
        &format!("{}Last-Event-ID: 1-5\r\n", auth(&token)),
    );
    assert!(stale.read_until(Duration::from_secs(5), |body| body.contains("old/6")));
    assert_eq!(stale.tags(), ["halite/api/lost", "old/4", "old/5", "old/6"]);
    assert!(stale.events()[0]["data"]["lost"].is_null());
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_never_reads_slows_no_one_and_memory_stays_bounded() {
    let port = free_port();
    let mut lab = Lab::with_config(
        &format!("{}  events_replay_size: 2000\n", api_block(port)),
        "",
    );
    lab.start_master();
    let api = lab.start_api(port).pid();
    let token = lab.mint_token("saltdev", "auto", 3600.0);
    let mut reader = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut reader);
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stuck,
        "GET /events HTTP/1.1\r\nHost: x\r\n{}\r\n",
        auth(&token)
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(api);
    // 20,000 events of 2 KiB: 40 MiB, far more than the stuck client's socket buffers hold.
    let payload = Value::from("x".repeat(2048));
    let mut sender = RawSender::connect(&lab.master_pull());
    for round in 0..40 {
        for n in 0..500 {
            let data = map(&[
                ("n", Value::from(round * 500 + n)),
                ("pad", payload.clone()),
            ]);
            sender.fire("flood/event", &data, Framing::Bare);
        }
        let last = format!("\"n\": {}", round * 500 + 499);
        assert!(
            reader.read_until(Duration::from_secs(10), |body| body.contains(&last)),
            "the reading client fell behind at round {round}"
        );
        // Keep the test's own copy small.
        reader.body.clear();
    }
    let after = rss_kib(api);
    assert!(
        after < before + 64 * 1024,
        "the API grew from {before} KiB to {after} KiB"
    );
    // The stuck client, read at last, is told what it lost.
    let mut stuck = Sse {
        reader: BufReader::new(stuck),
        head: String::new(),
        body: String::new(),
        ended: false,
    };
    stuck
        .reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        stuck.reader.read_line(&mut line).unwrap();
    }
    assert!(
        stuck.read_until(Duration::from_secs(20), |body| body
            .contains("halite/api/lost")),
        "no lost notice"
    );
    let lost = stuck
        .events()
        .into_iter()
        .find(|event| event["tag"] == "halite/api/lost")
        .unwrap();
    assert!(lost["data"]["lost"].as_u64().unwrap() > 0, "{lost}");
}

#[test]
fn stalled_clients_share_the_rings_frames_instead_of_copies() {
    const CLIENTS: usize = 100;
    const EVENTS: usize = 300;
    const SIZE: usize = 50 * 1024;
    let port = free_port();
    let mut lab = Lab::with_config(&api_block(port), "");
    lab.start_master();
    let api = lab.start_api(port).pid();
    let token = lab.mint_token("saltdev", "auto", 3600.0);
    let mut reader = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut reader);
    let stalled: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                stream,
                "GET /events HTTP/1.1\r\nHost: x\r\n{}\r\n",
                auth(&token)
            )
            .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(api);
    let payload = Value::from("x".repeat(SIZE));
    let mut sender = RawSender::connect(&lab.master_pull());
    for n in 0..EVENTS {
        let data = map(&[("n", Value::from(n as u64)), ("pad", payload.clone())]);
        sender.fire("flood/big", &data, Framing::Bare);
        if n % 50 == 49 {
            // The reading client keeps up, and the stalled ones get their chances to copy.
            let last = format!("\"n\": {n}");
            assert!(
                reader.read_until(Duration::from_secs(20), |body| body.contains(&last)),
                "the reading client fell behind at {n}"
            );
            reader.body.clear();
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(api);
    eprintln!("salt-api RSS with {CLIENTS} stalled clients: {before} KiB -> {after} KiB");
    // A copy per client would be up to clients × events × size (1.5 GB), and copies of what
    // hyper holds per client grew it by 100 MB; the ring alone is 15 MB.
    assert!(
        after < before + 64 * 1024,
        "the API grew from {before} KiB to {after} KiB"
    );
    drop(stalled);
}

#[test]
fn the_tag_filter_matches_whole_tags_as_globs_or_regexes() {
    let (lab, port, token) = lab_with("", 3600.0);
    let mut warm = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut warm);
    let mut glob = Sse::open(port, "/events?tag=filter/keep/*", &auth(&token));
    let mut regex = Sse::open(port, "/events?tag=filter/(keep|also)/%5Cd", &auth(&token));
    let mut bus = sender(&lab);
    for tag in [
        "filter/drop/1",
        "filter/keep/1",
        "filter/also/2",
        "filter/keep/x",
        "x/filter/keep/1",
        "end",
    ] {
        bus.fire(tag, &map(&[]), Framing::Bare);
    }
    assert!(warm.read_until(Duration::from_secs(5), |body| body.contains("tag: end")));
    assert!(glob.read_until(Duration::from_secs(5), |body| {
        body.contains("filter/keep/x\"}")
    }));
    assert!(regex.read_until(Duration::from_secs(5), |body| {
        body.contains("filter/also/2\"}")
    }));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(glob.tags(), ["filter/keep/1", "filter/keep/x"]);
    assert_eq!(regex.tags(), ["filter/keep/1", "filter/also/2"]);
}

#[test]
fn an_idle_stream_gets_a_keep_alive_comment_every_15_seconds() {
    let (_lab, port, token) = lab_with("", 3600.0);
    let mut sse = Sse::open(port, "/events", &auth(&token));
    let started = Instant::now();
    assert!(sse.read_until(Duration::from_secs(17), |body| {
        body.ends_with(": keep-alive\n\n")
    }));
    assert!(
        started.elapsed() >= Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sse.body, "retry: 400\n: keep-alive\n\n");
}

#[test]
fn the_stream_ends_when_the_token_expires_and_refuses_it_then() {
    let (lab, port, token) = lab_with("", 3.0);
    let started = Instant::now();
    let mut sse = Sse::open(port, "/events", &auth(&token));
    assert_eq!(sse.status(), "200");
    fire(&lab, "before/expiry", &map(&[]));
    assert!(!sse.read_until(Duration::from_secs(8), |_| false) && sse.ended);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let again = Sse::open(port, "/events", &auth(&token));
    assert_eq!(again.status(), "401", "{}", again.head);
    // No token at all, and a token in the query while token_in_query is off.
    assert_eq!(Sse::open(port, "/events", "").status(), "401");
    let fresh = lab.mint_token("saltdev", "auto", 60.0);
    for query in ["token", "salt_token"] {
        let refused = Sse::open(port, &format!("/events?{query}={fresh}"), "");
        assert_eq!(refused.status(), "401", "{query}");
    }
}

#[test]
fn a_logged_out_token_ends_the_streams_before_the_next_events() {
    let (lab, port, token) = lab_with("", 3600.0);
    let mut sse = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut sse);
    let (mut ws, head) = Ws::open(port, &format!("/ws/{token}"), "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.send("websocket client ready");
    assert_eq!(ws.recv().unwrap(), "server received message");
    fire(&lab, "before/logout", &map(&[]));
    assert!(sse.read_until(Duration::from_secs(5), |body| {
        body.contains("before/logout")
    }));
    assert!(ws.recv().unwrap().contains("before/logout"));
    let mut logout = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        logout,
        "POST /logout HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n{}\r\n",
        auth(&token)
    )
    .unwrap();
    let mut answer = String::new();
    logout.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Past the one second a stream may trust its last look at the token file.
    std::thread::sleep(Duration::from_millis(1500));
    let mut sender = sender(&lab);
    for n in 0..5 {
        sender.fire(&format!("after/logout/{n}"), &map(&[]), Framing::Bare);
    }
    assert!(!sse.read_until(Duration::from_secs(8), |_| false) && sse.ended);
    assert!(!sse.body.contains("after/logout"), "{}", sse.body);
    let mut frames = Vec::new();
    while let Some(frame) = ws.recv() {
        frames.push(frame);
    }
    assert!(frames.is_empty(), "{frames:?}");
}

#[test]
fn a_query_token_opens_the_stream_with_token_in_query() {
    let (_lab, port, token) = lab_with("  token_in_query: True\n", 60.0);
    for query in ["token", "salt_token"] {
        let sse = Sse::open(port, &format!("/events?{query}={token}"), "");
        assert_eq!(sse.status(), "200", "{query}");
    }
}

/// A websocket client, just enough of RFC 6455 for text frames.
struct Ws(TcpStream);

impl Ws {
    fn open(port: u16, path: &str, headers: &str) -> (Ws, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        (Ws(stream), String::from_utf8(head).unwrap())
    }

    fn send(&mut self, text: &str) {
        let mask = [7u8, 42, 99, 3];
        let mut frame = vec![0x81];
        match text.len() {
            len @ 0..126 => frame.push(0x80 | len as u8),
            len @ 126..65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(
            text.bytes()
                .enumerate()
                .map(|(at, byte)| byte ^ mask[at % 4]),
        );
        self.0.write_all(&frame).unwrap();
    }

    /// The next text message (continuations joined); `None` on close.
    fn recv(&mut self) -> Option<String> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.0.read_exact(&mut head).ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                self.0.read_exact(&mut ext).unwrap();
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                self.0.read_exact(&mut ext).unwrap();
                len = u64::from_be_bytes(ext);
            }
            let mut payload = vec![0u8; len as usize];
            self.0.read_exact(&mut payload).unwrap();
            match head[0] & 0x0f {
                0x8 => return None,
                0x9 | 0xa => continue,
                _ => message.extend_from_slice(&payload),
            }
            if head[0] & 0x80 != 0 {
                return Some(String::from_utf8(message).unwrap());
            }
        }
    }
}

#[test]
fn ws_speaks_salts_protocol() {
    let (lab, port, token) = lab_with("", 3600.0);
    let mut warm = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut warm);
    let (_, refused) = Ws::open(port, "/ws/0123abcd", "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    for (path, headers) in [
        (format!("/ws/{token}"), String::new()),
        ("/ws".to_owned(), format!("Cookie: session_id={token}\r\n")),
    ] {
        let (mut ws, head) = Ws::open(port, &path, &headers);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // Nothing is sent before the client is ready.
        fire(&lab, "ws/early", &map(&[]));
        assert!(warm.read_until(Duration::from_secs(5), |body| body.contains("ws/early\"}")));
        warm.body.clear();
        ws.send("hello");
        assert_eq!(ws.recv().unwrap(), "server received message");
        ws.send("websocket client ready");
        assert_eq!(ws.recv().unwrap(), "server received message");
        fire(&lab, "ws/test", &map(&[("u", Value::from("ü"))]));
        let frame = ws.recv().unwrap();
        let json = frame
            .strip_prefix("data: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("{frame:?}"));
        let event: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(event["tag"], "ws/test", "{frame:?}");
        assert_eq!(json, r#"{"data": {"u": "ü"}, "tag": "ws/test"}"#);
    }
}

/// Standard base64, as Chromium sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| *byte != b'=')
        .map(value)
        .collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let bits = chunk.iter().enumerate().fold(0u32, |bits, (at, digit)| {
                bits | u32::from(*digit) << (18 - 6 * at)
            });
            let bytes = bits.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}

/// A page in a headless Chromium, driven over the DevTools protocol.
struct Browser {
    process: std::process::Child,
    ws: Ws,
    next_id: u64,
}

impl Browser {
    fn open(url: &str, profile: &std::path::Path) -> Browser {
        let debug = free_port();
        let process = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1200,800",
                &format!("--remote-debugging-port={debug}"),
                &format!("--user-data-dir={}", profile.display()),
                url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium");
        let mut target = None;
        wait_until(Duration::from_secs(20), || {
            let Ok(answer) = Command::new("curl")
                .args(["-sS", "--max-time", "2"])
                .arg(format!("http://127.0.0.1:{debug}/json/list"))
                .output()
            else {
                return false;
            };
            let json = String::from_utf8_lossy(&answer.stdout);
            let list: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            target = list.as_array().and_then(|pages| {
                pages
                    .iter()
                    .find(|page| page["type"] == "page")
                    .and_then(|page| page["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            target.is_some()
        });
        let target = target.expect("a page in chromium");
        let path = target
            .split_once(&format!(":{debug}"))
            .unwrap()
            .1
            .to_owned();
        let (ws, head) = Ws::open(debug, &path, "");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Browser {
            process,
            ws,
            next_id: 0,
        }
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws.send(&request.to_string());
        loop {
            let message: serde_json::Value =
                serde_json::from_str(&self.ws.recv().expect("devtools answer")).unwrap();
            if message["id"] == id {
                return message["result"].clone();
            }
        }
    }

    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let params = serde_json::json!({"expression": expression, "returnByValue": true});
        self.call("Runtime.evaluate", params)["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
fn the_app_page_renders_events_in_headless_chromium() {
    if Command::new("chromium").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no chromium (tests/system-packages.sh installs Debian's)");
        return;
    }
    let (lab, port, token) = lab_with("", 3600.0);
    let mut warm = Sse::open(port, "/events", &auth(&token));
    sync(&lab, &mut warm);
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Browser::open(
        &format!("http://127.0.0.1:{port}/app#token={token}"),
        profile.path(),
    );
    assert!(
        wait_until(Duration::from_secs(15), || browser
            .eval("document.getElementById('status').className")
            == "live"),
        "the page never went live: {}",
        browser.eval("document.getElementById('status').textContent")
    );
    let mut bus = sender(&lab);
    bus.fire(
        "app/test/1",
        &map(&[("u", Value::from("ü"))]),
        Framing::Bare,
    );
    bus.fire("app/test/2", &map(&[("n", Value::from(2))]), Framing::Bare);
    let tags = "Array.from(document.querySelectorAll('.event')).map(e => e.dataset.tag).join(' ')";
    assert!(
        wait_until(Duration::from_secs(10), || browser.eval(tags)
            == "app/test/2 app/test/1"),
        "{}",
        browser.eval(tags)
    );
    let text = browser.eval("document.getElementById('events').innerText");
    assert!(text.as_str().unwrap().contains(r#"{"u":"ü"}"#), "{text}");
    let shot = browser.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let png = base64_decode(shot["data"].as_str().unwrap());
    let file = lab.path().join("app.png");
    std::fs::write(&file, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "a {}-byte screenshot", png.len());
}
