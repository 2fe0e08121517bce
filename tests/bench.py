#!/usr/bin/env python3
"""Benchmark halite's bus against real Salt 3007.8 and the reference relay, side by side.

    python3 tests/bench.py [--reps 3] [--no-build]

Builds the release binaries, starts a halite salt-master and a real Salt 3007.8 master and
minion (from tests/salt-env.sh), then runs every scenario against all three targets, interleaved,
--reps times, and prints medians and ratios. Every load goes through `salt-run event.bench`, the
same client for every target; `relay=True` runs it through halite's reference relay. Throughput
scenarios give halite's bus a subscriber buffer as large as the relay's ring, so both hold the
same bursts; the stalled-subscriber scenario runs with the defaults. Not a test: figures only.
"""
import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
SALT_VERSION = "3007.8"

# (name, event.bench arguments, count for halite and the relay, count for Salt, target text)
SCENARIOS = [
    ("1 pub, 1 sub, 100 B", "size=100", 500_000, 30_000, ">= 200x Salt, >= 0.5x relay"),
    ("1 pub, 1 sub, 10 KB", "size=10000", 50_000, 10_000, ">= 0.5x relay"),
    ("1 pub, 1 sub, 1 MB", "size=1000000", 500, 200, ">= 0.5x relay"),
    ("1 pub, 100 subs, 100 B", "size=100 subscribers=100", 20_000, 2_000, ">= 25x Salt, >= 0.5x relay"),
    ("10 pubs, 1 sub, 100 B", "size=100 publishers=10", 500_000, 30_000, ">= 0.5x relay"),
]
PACED = ("latency, 1,000 events/s paced", "size=100 rate=1000", 3_000)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def bench(conf, args, count, target, idle):
    extra = {"halite": [], "relay": ["relay=True"], "salt": [f"sock_dir={target}"]}
    kind = "salt" if target not in ("halite", "relay") else target
    cmd = [f"{RELEASE}/salt-run", "-c", conf, "event.bench", *args.split(), f"count={count}",
           f"idle={idle}", *extra[kind], "--out=json"]
    return json.loads(run(cmd, timeout=600).stdout)


def write_master_config(conf, base, sock_dir, extra=""):
    """A master's configuration in `conf`, keeping its keys, cache, log and minion port under
    `base`, so that it starts beside any other master."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(f"{conf}/master", "w") as f:
        f.write(f"sock_dir: {sock_dir}\nlog_file: {base}/master.log\npki_dir: {base}/pki\n"
                f"cachedir: {base}/cache\ninterface: 127.0.0.1\nret_port: {port}\n{extra}")


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            pass
    return total


def group_pids(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except ProcessLookupError:
                pass
    return pids


def timed(cmd):
    """Wall seconds and peak RSS (KB) of one whole process. The RSS comes from GNU time, since a
    child's own rusage also counts the Python parent it was forked from."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, capture_output=True, text=True)
    return wall, int(out.stderr.strip().splitlines()[-1])


def frame(tag):
    body = tag.encode() + b"\n\n\x80"
    return b"\x82\xa4head\x80\xa4body\xc4" + bytes([len(body)]) + body


def first_event_latency(watch_cmd, pull, samples=10):
    """Seconds from writing an event to the pull socket to the watcher printing it."""
    proc = subprocess.Popen(watch_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put((time.perf_counter(), l)) for l in proc.stdout], daemon=True).start()

    def fire(tag):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(pull)
            start = time.perf_counter()
            s.sendall(frame(tag))
        return start

    out = []
    try:
        # Attached once a sync event comes back.
        deadline = time.time() + 30
        while True:
            assert time.time() < deadline, "the watcher never attached"
            fire("bench/first/sync")
            try:
                lines.get(timeout=0.3)
                break
            except queue.Empty:
                pass
        time.sleep(0.5)
        while not lines.empty():
            lines.get()
        for n in range(samples):
            time.sleep(0.2)
            start = fire(f"bench/first/{n}")
            printed, line = lines.get(timeout=30)
            assert line.startswith(f"bench/first/{n}".encode()), line
            out.append(printed - start)
    finally:
        proc.kill()
        proc.wait()
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    venv = run(["bash", f"{ROOT}/tests/salt-env.sh", SALT_VERSION]).stdout.split()[-1]
    venv = os.path.dirname(venv)
    work = tempfile.mkdtemp(prefix="hb", dir="/tmp")
    procs = []
    try:
        # halite: one master tuned for bursts, one with the defaults for the stalled reader.
        confs = {}
        for name, extra in (("big", "subscriber_buffer_size: 1073741824\n"), ("default", "")):
            conf = f"{work}/{name}/etc"
            os.makedirs(conf)
            write_master_config(conf, f"{work}/{name}", f"{work}/{name}/run", extra)
            procs.append(subprocess.Popen([f"{RELEASE}/salt-master", "-c", conf], stderr=subprocess.DEVNULL))
            confs[name] = conf
        time.sleep(1)
        halite_pid = procs[0].pid
        idle_halite = rss_kb([halite_pid])
        salt_base = f"{work}/salt"
        up = json.loads(run(["python3", f"{ROOT}/tests/salt_lab.py", "up", salt_base, "--venv", venv]).stdout)
        salt_sock = up["master_sock_dir"]
        salt_pids = group_pids(up["master_pid"]) if "master_pid" in up else []
        time.sleep(3)
        idle_salt = rss_kb(salt_pids)

        # Whole processes first, on a quiet machine: a flooded Salt master stays busy for a while.
        salt_conf = up["conf_dir"]
        halite_pull = f"{work}/big/run/master_event_pull.ipc"
        extras = {}

        def measure(name, fn):
            try:
                extras[name] = fn()
            except Exception as exc:  # one failed figure must not lose the table
                print(f"{name}: {exc!r}", file=sys.stderr)
                extras[name] = None

        measure("ours_call", lambda: [timed([f"{RELEASE}/salt-call", "-c", salt_conf, "event.send", "bench/call", "a=1"]) for _ in range(20)])
        measure("salt_call", lambda: [timed([f"{venv}/bin/salt-call", "-c", salt_conf, "event.send", "bench/call", "a=1"]) for _ in range(10)])
        measure("ours_first", lambda: first_event_latency(
            [f"{RELEASE}/salt-run", "-c", confs["big"], "state.event", "bench/first/*"], halite_pull))
        measure("salt_first", lambda: first_event_latency(
            [f"{venv}/bin/salt-run", "-c", salt_conf, "state.event", "bench/first/*"], f"{salt_sock}/master_event_pull.ipc"))

        results = {}
        targets = ["halite", "salt", "relay"]
        for rep in range(args.reps):
            order = targets[rep % 3:] + targets[:rep % 3]
            for name, bargs, count, salt_count, _ in SCENARIOS + [PACED + (PACED[2], "")]:
                for target in order:
                    sock = salt_sock if target == "salt" else target
                    n = salt_count if target == "salt" else count
                    report = bench(confs["big"], bargs, n, sock, 5 if target == "salt" else 3)
                    results.setdefault((name, target), []).append(report)
                    lost = sum(s["dropped"] for s in report["subscribers"])
                    reordered = sum(s["reordered"] for s in report["subscribers"])
                    print(f"rep {rep + 1} {name:32} {target:6} {report['events_per_second']:>12,.0f} ev/s"
                          f"  p50 {report['latency_us']['p50']:>9,.1f} us  p99 {report['latency_us']['p99']:>9,.1f} us"
                          f"  lost {lost} reordered {reordered}", file=sys.stderr)

        # One subscriber stalled while 1,000,000 events pass (halite defaults), and 100,000 for Salt.
        default_pid = procs[1].pid
        before = rss_kb([default_pid])
        measure("stalled", lambda: bench(confs["default"], "size=100 stalled=1", 1_000_000, "halite", 3))
        grown_halite = rss_kb([default_pid]) - before
        before = rss_kb(salt_pids)
        measure("salt_stalled", lambda: bench(confs["big"], "size=100 stalled=1", 100_000, salt_sock, 5))
        grown_salt = rss_kb(salt_pids) - before
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        subprocess.run(["python3", f"{ROOT}/tests/salt_lab.py", "down", f"{work}/salt", "--kill"], capture_output=True)

    def med(name, target, key=lambda r: r["events_per_second"]):
        return statistics.median(key(r) for r in results[(name, target)])

    print(f"\nhalite vs Salt {SALT_VERSION} vs reference relay; {args.reps} reps, medians; "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores\n")
    print("| scenario | halite | Salt | relay | halite/Salt | halite/relay | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, _, _, _, target in SCENARIOS:
        h, s, r = (med(name, t) for t in ("halite", "salt", "relay"))
        lost = sum(s2["dropped"] + s2["reordered"] for rep in results[(name, "halite")] for s2 in rep["subscribers"])
        print(f"| {name} (events/s) | {h:,.0f} | {s:,.0f} | {r:,.0f} | {h / s:,.0f}x | {h / r:.2f}x | {target}; halite lost+reordered: {lost} |")
    name = PACED[0]
    for q in ("p50", "p99"):
        h, s, r = (med(name, t, key=lambda rep, q=q: rep["latency_us"][q]) for t in ("halite", "salt", "relay"))
        print(f"| {name}, {q} (us) | {h:,.1f} | {s:,.1f} | {r:,.1f} | {s / h:,.1f}x faster | {h / r:.2f}x | p50 <= 100 us, p99 <= 500 us |")
    stalled, salt_stalled = extras["stalled"], extras["salt_stalled"]
    if stalled and salt_stalled:
        delivered = stalled["subscribers"][0]
        print(f"| one stalled subscriber, 1,000,000 events (Salt: 100,000) | RSS +{grown_halite / 1024:.1f} MB, reader got "
              f"{delivered['delivered']:,} lost {delivered['dropped']} | RSS +{grown_salt / 1024:.1f} MB, reader got "
              f"{salt_stalled['subscribers'][0]['delivered']:,} | | | | <= 64 MB, no loss for the reader |")
    if extras["ours_call"] and extras["salt_call"]:
        ours_call, salt_call = extras["ours_call"], extras["salt_call"]
        oc, sc = statistics.median(w for w, _ in ours_call), statistics.median(w for w, _ in salt_call)
        om, sm = statistics.median(m for _, m in ours_call), statistics.median(m for _, m in salt_call)
        print(f"| salt-call event.send, whole process | {oc * 1000:.1f} ms, {om / 1024:.1f} MB | {sc * 1000:.0f} ms, {sm / 1024:.0f} MB "
              f"| | {sc / oc:,.0f}x | | <= 5 ms, <= 10 MB |")
    if extras["ours_first"] and extras["salt_first"]:
        ours_first, salt_first = extras["ours_first"], extras["salt_first"]
        print(f"| state.event: fired to printed | {ours_first * 1000:.2f} ms | {salt_first * 1000:.1f} ms | | {salt_first / ours_first:,.0f}x | | <= 5 ms |")
    print(f"| salt-master idle RSS | {idle_halite / 1024:.1f} MB | {idle_salt / 1024:.0f} MB (all processes) | | | | <= 10 MB |")


if __name__ == "__main__":
    main()
