#!/usr/bin/env python3
"""Benchmark halite's reactor against real Salt 3007.8's: reactions per second.

    python3 tests/bench_reactor.py [--reps 3] [--no-build]

Starts a halite salt-master and a real Salt 3007.8 master (from tests/salt-env.sh) with the same
reactor configuration and SLS file: a trivial runner reaction (`runner.test.arg` with the event's
number). Fires a batch of events as fast as one connection to the pull socket takes them and
counts the reactions' `salt/run/<jid>/ret` events (user Reactor) on the publish socket, until all
have come or 15 s pass with none. Two loads: every event with one tag (halite keeps per-tag order,
so they are handled one after the other) and every event with its own tag (spread over the
workers). Prints medians and ratios. Not a test: figures only.
"""
import argparse
import os
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
SLS = """bench:
  runner.test.arg:
    - args:
      - n: {{ data['n'] }}
"""
# (name, tag for event n, events for halite, events for Salt); Salt's batch is smaller because
# it is slower, and neither exceeds the default reactor_worker_hwm (10000).
LOADS = [
    ("one tag", lambda n: "bench/react", 5000, 500),
    ("a tag per event", lambda n: f"bench/react/{n}", 5000, 500),
]


def venv_bin():
    out = subprocess.run(["bash", f"{ROOT}/tests/salt-env.sh", SALT_VERSION], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[-1]


def frame(tag, n):
    import msgpack
    body = tag.encode() + b"\n\n" + msgpack.packb({"n": n})
    return msgpack.packb({"head": {}, "body": body}, use_bin_type=True)


def measure(pub, pull, tag_of, count):
    """Reactions per second for `count` events, and how many reactions were seen."""
    import salt_lab
    seen = []
    done = threading.Event()
    started = threading.Event()

    def watch():
        events = salt_lab._events(salt_lab._connect(pub), time.time() + 600)
        started.set()
        last = time.time()
        for tag, data in events:
            if tag.startswith("salt/run/") and tag.endswith("/ret") and b"Reactor" in data:
                seen.append(time.perf_counter())
                last = time.time()
                if len(seen) >= count:
                    break
            if done.is_set() and time.time() - last > 15:
                break
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    started.wait(10)
    time.sleep(0.5)
    frames = b"".join(frame(tag_of(n), n) for n in range(count))
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(pull)
        start = time.perf_counter()
        s.sendall(frames)
    done.set()
    thread.join(timeout=900)
    if not seen:
        return 0.0, 0
    return len(seen) / (seen[-1] - start), len(seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    venv = venv_bin()
    try:
        import msgpack  # noqa: F401
    except ImportError:
        # The Salt venv has msgpack; run there.
        os.execv(f"{venv}/python", [f"{venv}/python", *sys.argv])
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import salt_lab
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="hr", dir="/tmp")
    sls = f"{work}/bench.sls"
    with open(sls, "w") as f:
        f.write(SLS)
    reactor = f"reactor:\n  - 'bench/react*': [{sls}]\n"
    conf = f"{work}/halite/etc"
    os.makedirs(conf)
    with open(f"{conf}/master", "w") as f:
        f.write(f"root_dir: {work}/halite\nsock_dir: {work}/halite/run\nret_port: {salt_lab.free_port()}\n"
                f"interface: 127.0.0.1\nlog_file: {work}/halite/master.log\n{reactor}")
    master = subprocess.Popen([f"{RELEASE}/salt-master", "-c", conf], stderr=subprocess.DEVNULL)
    targets = {"halite": (f"{work}/halite/run/master_event_pub.ipc", f"{work}/halite/run/master_event_pull.ipc")}
    salt_base = f"{work}/salt"
    results = {}
    try:
        out = subprocess.run(["python3", f"{ROOT}/tests/salt_lab.py", "up", salt_base, "--venv", os.path.dirname(venv),
                              "--no-minion", "--master-opt", f'reactor=[{{"bench/react*": ["{sls}"]}}]'],
                             check=True, capture_output=True, text=True).stdout
        import json
        info = json.loads(out)
        targets["salt"] = (info["master_pub"], info["master_pull"])
        time.sleep(3)
        for rep in range(args.reps):
            for name, tag_of, ours, theirs in LOADS:
                for target in (["halite", "salt"] if rep % 2 == 0 else ["salt", "halite"]):
                    count = ours if target == "halite" else theirs
                    rate, seen = measure(*targets[target], tag_of, count)
                    results.setdefault((name, target), []).append((rate, seen, count))
                    print(f"rep {rep + 1} {name:16} {target:6} {rate:>10,.1f} reactions/s  ({seen}/{count} reacted)",
                          file=sys.stderr)
                    time.sleep(2)
    finally:
        master.terminate()
        master.wait()
        subprocess.run(["python3", f"{ROOT}/tests/salt_lab.py", "down", salt_base, "--kill"], capture_output=True)

    print(f"\nhalite reactor vs Salt {SALT_VERSION} reactor; trivial runner reaction (runner.test.arg); "
          f"{args.reps} reps, medians; {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores\n")
    print("| load | halite reactions/s | Salt reactions/s | halite/Salt | reacted (halite; Salt) |")
    print("|---|---:|---:|---:|---|")
    for name, _, ours, theirs in LOADS:
        h = statistics.median(r for r, _, _ in results[(name, "halite")])
        s = statistics.median(r for r, _, _ in results[(name, "salt")])
        hs = "; ".join(f"{seen}/{count}" for _, seen, count in results[(name, "halite")])
        ss = "; ".join(f"{seen}/{count}" for _, seen, count in results[(name, "salt")])
        ratio = f"{h / s:,.1f}x" if s else "n/a"
        print(f"| {name} | {h:,.0f} | {s:,.1f} | {ratio} | {hs} ; {ss} |")


if __name__ == "__main__":
    main()
