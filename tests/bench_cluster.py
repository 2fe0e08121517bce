#!/usr/bin/env python3
"""Masters clustered on NATS JetStream: how fast one master's events reach another's bus.

    python3 tests/bench_cluster.py [--events 100000] [--samples 200] [--replicas 3] [--no-build]

Starts three nats-server nodes with JetStream, clustered on loopback (a temp dir, free ports),
and two halite masters (release build) in one cluster (`cluster_id`, `cluster_nats`, the stream
with `--replicas` copies). Then, with the same commands on one master's own bus for comparison:

- throughput: `salt-run event.send -` fires N events (`bench/N`, 100 bytes of data) on master A,
  and `salt-run state.event tagmatch=bench/* count=N quiet=True` on master B (or A) exits once it
  has them all: events per second from the first sent to the last received;
- latency: one event at a time written to A's pull socket, timed until a `state.event` watcher
  on B (or A) prints it; median and 99th percentile;
- jobs: a swarm of `--minions` minions (`salt-minion --swarm`) connected to master B, keys
  accepted there (`auto_accept`) and shared with A; `salt '*' test.ping` and a `-G` grains job
  to all of them from B (their own master) and from A (through NATS), each answer counted,
  median of 3; and how long A took to list every key B accepted.

Not a test: figures only.
"""
import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import tempfile
import threading
import time

from bench_swarm import KEYS, count_answers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server():
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/usr/bin"]:
        path = os.path.join(d, "nats-server")
        if os.path.isfile(path):
            return path
    raise SystemExit("no nats-server: apt-get install nats-server")


def frame(tag, data=b"\x80"):
    """A bare Salt IPC frame of one event (msgpack by hand: a short map of head and body)."""
    body = tag.encode() + b"\n\n" + data
    size = len(body)
    head = b"\xc4" + bytes([size]) if size < 256 else b"\xc5" + size.to_bytes(2, "big")
    return b"\x82\xa4head\x80\xa4body" + head + body


class Lab:
    def __init__(self, base, replicas):
        self.base = base
        self.procs = []
        ports = [(free_port(), free_port()) for _ in range(3)]
        routes = ", ".join(f"nats://127.0.0.1:{r}" for _, r in ports)
        for n, (client, route) in enumerate(ports):
            conf = os.path.join(base, f"n{n}.conf")
            with open(conf, "w") as f:
                f.write(f"server_name: n{n}\nlisten: 127.0.0.1:{client}\n"
                        f"jetstream {{ store_dir: \"{base}/n{n}\" }}\n"
                        f"cluster {{ name: bench, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n")
            self.procs.append(subprocess.Popen([nats_server(), "-c", conf],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls = ", ".join(f"nats://127.0.0.1:{c}" for c, _ in ports)
        self.masters = {}
        self.ports = {}
        for name in "ab":
            conf = os.path.join(base, name)
            os.makedirs(conf)
            with open(os.path.join(conf, "master"), "w") as f:
                f.write(f"id: master-{name}\nroot_dir: {conf}/root\ninterface: 127.0.0.1\n"
                        f"ret_port: {self.ports.setdefault(name, free_port())}\n"
                        f"cluster_id: bench\ncluster_nats: [{urls}]\n"
                        f"cluster_bus_replicas: {replicas}\nlog_file: {conf}/log\n"
                        "auto_accept: True\nmax_pending_keys: 0\n"
                        "link_unadmitted_per_address: 0\nlink_unadmitted_max: 0\n")
            self.procs.append(subprocess.Popen([os.path.join(RELEASE, "salt-master"), "-c", conf],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.masters[name] = conf

    def pull(self, name):
        return os.path.join(self.masters[name], "root/var/run/salt/master/master_event_pull.ipc")

    def cmd(self, name, *args):
        return [os.path.join(RELEASE, args[0]), "-c", self.masters[name], *args[1:]]

    def stop(self):
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


class Watcher:
    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), line))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def fire(pull, tag):
    for _ in range(500):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(pull)
                start = time.perf_counter()
                s.sendall(frame(tag))
                return start
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no bus at {pull}")


def until_shared(lab, watcher, source):
    deadline = time.time() + 60
    n = 0
    while time.time() < deadline:
        n += 1
        fire(lab.pull(source), f"ready/{n}")
        try:
            while True:
                _, line = watcher.lines.get(timeout=0.3)
                if line.startswith(b"ready/"):
                    time.sleep(0.5)
                    while not watcher.lines.empty():
                        watcher.lines.get()
                    return
        except queue.Empty:
            pass
    raise SystemExit("the masters never shared their buses; see their logs")


def throughput(lab, source, sink, events):
    data = '{"payload": "' + "x" * 84 + '"}'
    lines = "".join(f"bench/{n}\t{data}\n" for n in range(events)).encode()
    watch = subprocess.Popen(lab.cmd(sink, "salt-run", "state.event", "tagmatch=bench/*",
                                     f"count={events}", "quiet=True"))
    time.sleep(1.0)
    start = time.perf_counter()
    subprocess.run(lab.cmd(source, "salt-run", "event.send", "-"), input=lines, check=True,
                   stdout=subprocess.DEVNULL)
    watch.wait(timeout=600)
    return events / (time.perf_counter() - start)


def latency(lab, source, sink, samples):
    watcher = Watcher(lab.cmd(sink, "salt-run", "state.event", "tagmatch=lat/*"))
    try:
        time.sleep(1.0)
        out = []
        for n in range(samples):
            time.sleep(0.02)
            start = fire(lab.pull(source), f"lat/{n}")
            printed, line = watcher.lines.get(timeout=30)
            assert line.startswith(f"lat/{n}\t".encode()), line
            out.append((printed - start) * 1000)
        out.sort()
        return statistics.median(out), out[int(len(out) * 0.99) - 1]
    finally:
        watcher.stop()


def answered(lab, name, *target_and_fun):
    out = subprocess.run(lab.cmd(name, "salt", *target_and_fun, "--out=txt", "-t", "30"),
                         capture_output=True, text=True, timeout=180).stdout
    return count_answers(out)


def accepted(lab, name):
    out = subprocess.run(lab.cmd(name, "salt-key", "-l", "acc", "--out=json"),
                         capture_output=True, text=True).stdout
    try:
        return len(json.loads(out).get("minions", []))
    except ValueError:
        return 0


def until(what, check, limit=300):
    start = time.time()
    while time.time() - start < limit:
        if check():
            return time.time() - start
        time.sleep(0.2)
    raise SystemExit(f"{what} did not happen within {limit} s")


def jobs(lab, base, minions):
    """A swarm on master B; jobs to all of it from B and from A."""
    conf = os.path.join(base, "swarm")
    os.makedirs(conf)
    pki = os.path.join(KEYS, str(minions))
    os.makedirs(pki, exist_ok=True)
    try:
        os.remove(os.path.join(pki, "minion_master.pub"))
    except FileNotFoundError:
        pass
    with open(os.path.join(conf, "minion"), "w") as f:
        f.write(f"id: swarm\nroot_dir: {conf}/root\npki_dir: {pki}\nmaster: 127.0.0.1\n"
                f"master_port: {lab.ports['b']}\nlog_file: {conf}/log\nacceptance_wait_time: 1\n")
    swarm = subprocess.Popen([os.path.join(RELEASE, "salt-minion"), "-c", conf,
                              "--swarm", str(minions)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lab.procs.append(swarm)
    start = time.time()
    until("every key accepted on B", lambda: accepted(lab, "b") >= minions)
    on_b = time.time() - start
    until("every key listed on A", lambda: accepted(lab, "a") >= minions)
    on_a = time.time() - start
    until("every minion answering B", lambda: answered(lab, "b", "*", "test.ping") == minions)
    os_grain = json.loads(subprocess.run(lab.cmd("b", "salt-call", "--local", "grains.item", "os",
                                                 "--out=json"),
                                         capture_output=True, text=True).stdout or "{}")
    os_grain = os_grain.get("local", {}).get("os", "")
    rows = []
    for name, label in [("b", "from B, their master"), ("a", "from A, through NATS")]:
        pings, grains = [], []
        for _ in range(3):
            t = time.perf_counter()
            count = answered(lab, name, "*", "test.ping")
            pings.append(time.perf_counter() - t)
            assert count == minions, f"{label}: {count} of {minions} answered test.ping"
            t = time.perf_counter()
            count = answered(lab, name, "-G", f"os:{os_grain}", "grains.item", "os")
            grains.append(time.perf_counter() - t)
            assert count == minions, f"{label}: {count} of {minions} answered -G"
        rows.append((label, statistics.median(pings), statistics.median(grains)))
    return on_b, on_a, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--minions", type=int, default=1000, help="0: no jobs")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="halite-bench-cluster-") as base:
        lab = Lab(base, args.replicas)
        try:
            probe = Watcher(lab.cmd("b", "salt-run", "state.event"))
            until_shared(lab, probe, "a")
            probe.stop()
            rows = []
            for label, sink in [("one master's own bus (A to A)", "a"),
                                (f"across masters through NATS, R{args.replicas} (A to B)", "b")]:
                rate = throughput(lab, "a", sink, args.events)
                p50, p99 = latency(lab, "a", sink, args.samples)
                rows.append((label, rate, p50, p99))
            if args.minions:
                keys_b, keys_a, job_rows = jobs(lab, base, args.minions)
        finally:
            lab.stop()
    print(f"{args.events:,} events of ~100 bytes; latency over {args.samples} single events")
    print("| path | events/s | latency p50 | p99 |")
    print("|---|---:|---:|---:|")
    for label, rate, p50, p99 in rows:
        print(f"| {label} | {rate:,.0f} | {p50:.2f} ms | {p99:.2f} ms |")
    print(f"| across/own | {rows[1][1] / rows[0][1]:.2f}x | {rows[1][2] / rows[0][2]:.1f}x | "
          f"{rows[1][3] / rows[0][3]:.1f}x |")

    if args.minions:
        print()
        print(f"{args.minions:,} swarm minions connected to master B; keys accepted on B after "
              f"{keys_b:.1f} s, listed on A after {keys_a:.1f} s")
        print("| jobs | `test.ping` all | `-G os:… grains.item` |")
        print("|---|---:|---:|")
        for label, ping, grains in job_rows:
            print(f"| {label} | {ping:.2f} s | {grains:.2f} s |")


if __name__ == "__main__":
    main()
