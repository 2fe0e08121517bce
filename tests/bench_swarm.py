#!/usr/bin/env python3
"""One master, a big fleet: a halite salt-master and `salt-minion --swarm N` on this host.

    python3 tests/bench_swarm.py [--sizes 1000,5000,10000] [--no-build]

For each size, on a fresh master (release build, keys and job cache in a temp dir; the swarm's
keys are kept in ~/.cache/halite/swarm-keys so that later runs skip creating them): how long
until every member's key waits for acceptance, `salt-key -A`, `salt '*' test.ping` (once every
member is connected; median of 3), `salt -G 'os:<this host's os>' grains.item os`, the master's
and the swarm's RSS per member, and a reconnect storm: the master restarted (SIGTERM, started
again) and the time until `test.ping` answers for every member again. Not a test: figures only.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
KEYS = os.path.expanduser("~/.cache/halite/swarm-keys")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def salt(conf, *args, timeout=60):
    return subprocess.run([os.path.join(RELEASE, args[0]), "-c", conf, *args[1:]],
                          capture_output=True, text=True, timeout=timeout)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def connected(conf):
    """How many minions have a session with the master now (its presence: no job sent)."""
    out = salt(conf, "salt-run", "manage.list_state", "--out=json").stdout
    try:
        return len(json.loads(out))
    except ValueError:
        return 0


def answered(conf, *target_and_fun, wait=30):
    out = salt(conf, "salt", *target_and_fun, "--static", "--out=json", "-t", str(wait),
               timeout=wait + 90).stdout
    try:
        return sum(1 for v in json.loads(out).values() if v not in (False, None))
    except ValueError:
        return 0


class Fleet:
    def __init__(self, size, work):
        self.size, self.work = size, work
        self.port = free_port()
        self.mconf, self.sconf = os.path.join(work, "m"), os.path.join(work, "s")
        os.makedirs(self.mconf)
        os.makedirs(self.sconf)
        with open(os.path.join(self.mconf, "master"), "w") as f:
            f.write(f"root_dir: {work}/master\ninterface: 127.0.0.1\nret_port: {self.port}\n"
                    f"log_file: {work}/master.log\nmax_pending_keys: 0\n"
                    "link_unadmitted_per_address: 0\nlink_unadmitted_max: 0\n")
        pki = os.path.join(KEYS, str(size))
        os.makedirs(pki, exist_ok=True)
        with open(os.path.join(self.sconf, "minion"), "w") as f:
            f.write(f"id: swarm\nroot_dir: {work}/minion\npki_dir: {pki}\nmaster: 127.0.0.1\n"
                    f"master_port: {self.port}\nlog_file: {work}/minion.log\n"
                    "acceptance_wait_time: 1\n")
        # The master's key is new each run: the one pinned by the last run would be refused.
        for stale in ("minion_master.pub",):
            try:
                os.remove(os.path.join(pki, stale))
            except FileNotFoundError:
                pass
        self.master = self.swarm = None

    def start_master(self):
        self.master = subprocess.Popen([os.path.join(RELEASE, "salt-master"), "-c", self.mconf],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("salt-master did not start")

    def stop_master(self):
        self.master.send_signal(signal.SIGTERM)
        self.master.wait(timeout=60)

    def start_swarm(self):
        self.swarm = subprocess.Popen(
            [os.path.join(RELEASE, "salt-minion"), "-c", self.sconf, "--swarm", str(self.size)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pending(self):
        out = salt(self.mconf, "salt-key", "-l", "un", "--out=json").stdout
        try:
            return len(json.loads(out).get("minions_pre", []))
        except ValueError:
            return 0

    def until(self, what, check, limit=300):
        start = time.time()
        while time.time() - start < limit:
            if check():
                return time.time() - start
            time.sleep(0.2)
        raise SystemExit(f"{self.size}: {what} did not happen within {limit} s")

    def close(self):
        for proc in (self.swarm, self.master):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


def timed(fn):
    start = time.time()
    value = fn()
    return time.time() - start, value


def measure(size):
    work = tempfile.mkdtemp(prefix="swarm", dir="/tmp")
    fleet = Fleet(size, work)
    try:
        fleet.start_master()
        fleet.start_swarm()
        pending_s = fleet.until("every key pending", lambda: fleet.pending() == size)
        accept_s, _ = timed(lambda: salt(fleet.mconf, "salt-key", "-A", "-y", timeout=120))
        connect_s = fleet.until("every member connected", lambda: connected(fleet.mconf) == size)
        pings = []
        for _ in range(3):
            seconds, count = timed(lambda: answered(fleet.mconf, "*", "test.ping"))
            assert count == size, f"{count} of {size} answered"
            pings.append(seconds)
        os_grain = json.loads(salt(fleet.mconf, "salt-call", "--local", "grains.item", "os",
                                   "--out=json").stdout or "{}").get("local", {}).get("os", "")
        grains_s, count = timed(lambda: answered(fleet.mconf, "-G", f"os:{os_grain}",
                                                 "grains.item", "os"))
        assert count == size, f"grains: {count} of {size}"
        master_mb, swarm_mb = rss_mb(fleet.master.pid), rss_mb(fleet.swarm.pid)
        fleet.stop_master()
        restarted = time.time()
        fleet.start_master()
        fleet.until("every member back after the restart",
                    lambda: connected(fleet.mconf) == size)
        storm_s = time.time() - restarted
        assert answered(fleet.mconf, "*", "test.ping") == size, "not all answer after the restart"
        return {"size": size, "pending_s": pending_s, "accept_s": accept_s,
                "connected_after_accept_s": connect_s, "ping_s": statistics.median(pings),
                "grains_s": grains_s, "master_mb": master_mb, "swarm_mb": swarm_mb,
                "storm_s": storm_s}
    finally:
        fleet.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    # Each member and each of its sessions is a file descriptor, in the swarm and the master.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        row = measure(size)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| minions | keys pending | `salt-key -A` | `test.ping` all | `-G os:… grains.item` "
          "| master RSS | per minion | swarm RSS | master restarted: all back |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']:,} | {r['pending_s']:.1f} s | {r['accept_s']:.2f} s | "
              f"{r['ping_s']:.2f} s | {r['grains_s']:.2f} s | {r['master_mb']:.0f} MB | "
              f"{r['master_mb'] * 1024 / r['size']:.0f} KB | {r['swarm_mb']:.0f} MB | "
              f"{r['storm_s']:.1f} s |")


if __name__ == "__main__":
    main()
