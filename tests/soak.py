#!/usr/bin/env python3
"""Soak halite's salt-master with mixed load and report its memory over time.

    python3 tests/soak.py [--minutes 10] [--no-build]

Starts a release salt-master with the default configuration, then until the time is up runs
`salt-run event.bench` loads one after another (1 to 10 publishers, 1 to 20 reading subscribers,
sometimes stalled ones, 100 B to 100 KB events, flat out or paced) while a `state.event` watcher
stays attached the whole time. Every 10 s it samples the daemon's RSS. It prints the samples, the
events sent, what reading subscribers lost or got out of order (the bus may drop for a reader
that falls 32 MiB behind; stalled readers are expected to lose), and whether the daemon is still
up. Not part of the test suite.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="hk", dir="/tmp")
    conf = f"{work}/etc"
    os.makedirs(conf)
    with open(f"{conf}/master", "w") as f:
        f.write(f"sock_dir: {work}/run\nlog_file: {work}/master.log\n")
    master = subprocess.Popen([f"{RELEASE}/salt-master", "-c", conf])
    time.sleep(1)
    watcher = subprocess.Popen([f"{RELEASE}/salt-run", "-c", conf, "state.event", "format=json"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, totals = [], {"runs": 0, "events": 0, "reader_lost": 0, "reordered": 0, "stalled_runs": 0}
    deadline = time.time() + args.minutes * 60
    stop = threading.Event()

    def sample():
        start = time.time()
        while not stop.is_set():
            samples.append((time.time() - start, rss_mb(master.pid)))
            stop.wait(10)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rng = random.Random(7)
    try:
        while time.time() < deadline:
            size = rng.choice([100, 100, 1000, 10_000, 100_000])
            count = max(200, min(300_000, 30_000_000 // size))
            load = [f"publishers={rng.randint(1, 10)}", f"subscribers={rng.randint(1, 20)}",
                    f"stalled={rng.choice([0, 0, 0, 1, 2])}", f"size={size}", f"count={count}"]
            if rng.random() < 0.2:
                load += ["rate=5000", f"count={min(count, 20_000)}"]
            out = subprocess.run([f"{RELEASE}/salt-run", "-c", conf, "event.bench", *load, "--out=json"],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                print(f"bench failed: {load}: {out.stderr.strip()}", file=sys.stderr)
                continue
            report = json.loads(out.stdout)
            totals["runs"] += 1
            totals["events"] += report["events"]
            totals["reader_lost"] += sum(s["dropped"] for s in report["subscribers"])
            totals["reordered"] += sum(s["reordered"] for s in report["subscribers"])
            totals["stalled_runs"] += "stalled=0" not in load
    finally:
        stop.set()
        sampler.join()
        alive = master.poll() is None and watcher.poll() is None
        final = rss_mb(master.pid) if master.poll() is None else None
        watcher.terminate()
        master.terminate()
        master.wait()
    print(f"soak: {args.minutes:g} min, {totals['runs']} loads, {totals['events']:,} events published")
    print("RSS over time (s, MB): " + ", ".join(f"{t:.0f}:{m:.1f}" for t, m in samples))
    print(f"RSS min {min(m for _, m in samples):.1f} MB, max {max(m for _, m in samples):.1f} MB, final {final} MB")
    print(f"readers lost {totals['reader_lost']:,} events (slow-subscriber policy), reordered {totals['reordered']}; "
          f"{totals['stalled_runs']} loads had stalled subscribers; daemon and watcher alive: {alive}")


if __name__ == "__main__":
    main()
