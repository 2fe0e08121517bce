#!/usr/bin/env python3
"""One master, a big fleet: a halite salt-master and `salt-minion --swarm N` on this host.

    python3 tests/bench_swarm.py [--sizes 1000,5000,10000] [--salt 50] [--no-build]

For each size, on a fresh master (release build, keys and job cache in a temp dir; the swarm's
keys are kept in ~/.cache/halite/swarm-keys so that later runs skip creating them): how long
until every member's key waits for acceptance, `salt-key -A`, `salt '*' test.ping` (once every
member is connected; median of 3), `salt -G 'os:<this host's os>' grains.item os`, the master's
and the swarm's RSS per member, and a reconnect storm: the master restarted (SIGTERM, started
again) and the time until `test.ping` answers for every member again. Not a test: figures only.

With `--salt K` (0 skips it), the same job against real Salt 3007.8 in the same run: its master
(`auto_accept`) and K real `salt-minion` processes, as many as this host can run, next to a
halite master with a swarm of the same K. Salt's figures: `salt '*' test.ping` (median of 3),
the grains job, the master's RSS (all its processes) and a minion's, and the master restarted.
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


def count_answers(text):
    """Minions that answered, in `--out=txt` lines (`id: value`): not `--static`, which runs
    Salt's batch code (a ping first, then the job to the list of every minion's id)."""
    return sum(1 for line in text.splitlines()
               if ": " in line and line.split(": ", 1)[1] not in ("False", "None", "")
               and "did not return" not in line)


def answered(conf, *target_and_fun, wait=30):
    return count_answers(salt(conf, "salt", *target_and_fun, "--out=txt", "-t", str(wait),
                              timeout=wait + 90).stdout)


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

    def answered(self, *target_and_fun):
        return answered(self.mconf, *target_and_fun)

    def close(self):
        for proc in (self.swarm, self.master):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


def timed(fn):
    start = time.time()
    value = fn()
    return time.time() - start, value


def jobs_to_all(fleet, size):
    """`test.ping` to all (median of 3) and a grains job to all, in seconds, every answer
    counted."""
    pings = []
    for _ in range(3):
        seconds, count = timed(lambda: fleet.answered("*", "test.ping"))
        assert count == size, f"{count} of {size} answered"
        pings.append(seconds)
    os_grain = json.loads(salt(fleet.mconf, "salt-call", "--local", "grains.item", "os",
                               "--out=json").stdout or "{}").get("local", {}).get("os", "")
    grains_s, count = timed(lambda: fleet.answered("-G", f"os:{os_grain}", "grains.item", "os"))
    assert count == size, f"grains: {count} of {size}"
    return statistics.median(pings), grains_s


def measure(size):
    work = tempfile.mkdtemp(prefix="swarm", dir="/tmp")
    fleet = Fleet(size, work)
    try:
        fleet.start_master()
        fleet.start_swarm()
        pending_s = fleet.until("every key pending", lambda: fleet.pending() == size)
        accept_s, _ = timed(lambda: salt(fleet.mconf, "salt-key", "-A", "-y", timeout=120))
        connect_s = fleet.until("every member connected", lambda: connected(fleet.mconf) == size)
        ping_s, grains_s = jobs_to_all(fleet, size)
        master_mb, swarm_mb = rss_mb(fleet.master.pid), rss_mb(fleet.swarm.pid)
        fleet.stop_master()
        restarted = time.time()
        fleet.start_master()
        fleet.until("every member back after the restart",
                    lambda: connected(fleet.mconf) == size)
        storm_s = time.time() - restarted
        assert fleet.answered("*", "test.ping") == size, "not all answer after the restart"
        return {"size": size, "pending_s": pending_s, "accept_s": accept_s,
                "connected_after_accept_s": connect_s, "ping_s": ping_s,
                "grains_s": grains_s, "master_mb": master_mb, "swarm_mb": swarm_mb,
                "storm_s": storm_s}
    finally:
        fleet.close()
        shutil.rmtree(work, ignore_errors=True)


SALT_VENV = os.path.expanduser("~/.cache/halite/salt-envs/3007.8/bin")


def group_rss_mb(pgid):
    """RSS of every process in a process group (Salt's master is a dozen processes)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.getpgid(int(pid)) == pgid:
                    total += rss_mb(pid)
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
    return total


class SaltFleet:
    """A real Salt master and `size` real Salt minions, each a process group of its own."""

    def __init__(self, size, work):
        self.size, self.work = size, work
        self.publish, self.ret = free_port(), free_port()
        self.mconf = os.path.join(work, "m")
        os.makedirs(self.mconf)
        with open(os.path.join(self.mconf, "master"), "w") as f:
            f.write(f"root_dir: {work}/master\ninterface: 127.0.0.1\n"
                    f"publish_port: {self.publish}\nret_port: {self.ret}\nauto_accept: True\n"
                    "log_level_logfile: warning\n")
        self.master, self.minions = None, []

    def cli(self, name, *args, timeout=120):
        return subprocess.run([os.path.join(SALT_VENV, name), "-c", self.mconf, *args],
                              capture_output=True, text=True, timeout=timeout)

    def answered(self, *target_and_fun, wait=30):
        return count_answers(self.cli("salt", *target_and_fun, "--out=txt", "-t", str(wait),
                                      timeout=wait + 90).stdout)

    def start_master(self):
        self.master = subprocess.Popen([os.path.join(SALT_VENV, "salt-master"), "-c", self.mconf],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
        sock = os.path.join(self.work, "master", "var", "run", "salt", "master",
                            "master_event_pub.ipc")
        deadline = time.time() + 60
        while not os.path.exists(sock):
            if time.time() > deadline:
                raise SystemExit("Salt's master did not start")
            time.sleep(0.1)

    def stop_master(self):
        os.killpg(self.master.pid, signal.SIGTERM)
        self.master.wait(timeout=60)
        deadline = time.time() + 30
        while group_rss_mb(self.master.pid) and time.time() < deadline:
            time.sleep(0.2)

    def start_minions(self):
        for n in range(self.size):
            conf = os.path.join(self.work, f"minion{n}")
            os.makedirs(conf)
            with open(os.path.join(conf, "minion"), "w") as f:
                f.write(f"id: salt-{n}\nroot_dir: {conf}/root\nmaster: 127.0.0.1\n"
                        f"master_port: {self.ret}\npublish_port: {self.publish}\n"
                        "log_level_logfile: warning\nenable_fqdns_grains: False\n")
            self.minions.append(subprocess.Popen(
                [os.path.join(SALT_VENV, "salt-minion"), "-c", conf],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    def until_all_answer(self, what, limit=600):
        start = time.time()
        while time.time() - start < limit:
            if self.answered("*", "test.ping", wait=10) == self.size:
                return time.time() - start
            time.sleep(1)
        raise SystemExit(f"Salt {self.size}: {what} did not happen within {limit} s")

    def close(self):
        for proc in [self.master, *self.minions]:
            if proc and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()


def measure_salt(size):
    work = tempfile.mkdtemp(prefix="saltfleet", dir="/tmp")
    fleet = SaltFleet(size, work)
    try:
        fleet.start_master()
        fleet.start_minions()
        up_s = fleet.until_all_answer("every minion answering")
        ping_s, grains_s = jobs_to_all(fleet, size)
        master_mb = group_rss_mb(fleet.master.pid)
        minion_mb = statistics.median(group_rss_mb(m.pid) for m in fleet.minions)
        fleet.stop_master()
        restarted = time.time()
        fleet.start_master()
        fleet.until_all_answer("every minion back after the restart")
        storm_s = time.time() - restarted
        return {"salt_size": size, "up_s": up_s, "ping_s": ping_s,
                "grains_s": grains_s, "master_mb": master_mb, "minion_mb": minion_mb,
                "storm_s": storm_s}
    finally:
        fleet.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--salt", type=int, default=50,
                        help="real Salt minions to compare with (0: none)")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    # Each member and each of its sessions is a file descriptor, in the swarm and the master.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.salt:
        salt_row = measure_salt(args.salt)
        print(json.dumps(salt_row), flush=True)
        same = measure(args.salt)
        print(json.dumps(same), flush=True)
        print(f"\n| {args.salt} minions | `test.ping` all | `-G os:… grains.item` | master RSS "
              "| a minion's RSS | master restarted: all back |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| Salt 3007.8, {args.salt} processes | {salt_row['ping_s']:.2f} s | "
              f"{salt_row['grains_s']:.2f} s | {salt_row['master_mb']:.0f} MB | "
              f"{salt_row['minion_mb']:.0f} MB | {salt_row['storm_s']:.1f} s |")
        print(f"| halite, a swarm of {args.salt} | {same['ping_s']:.2f} s | "
              f"{same['grains_s']:.2f} s | {same['master_mb']:.0f} MB | "
              f"{same['swarm_mb'] * 1024 / args.salt:.0f} KB | {same['storm_s']:.1f} s |")
        print(f"| Salt/halite | {salt_row['ping_s'] / same['ping_s']:.0f}x | "
              f"{salt_row['grains_s'] / same['grains_s']:.0f}x | "
              f"{salt_row['master_mb'] / same['master_mb']:.0f}x | | |\n", flush=True)
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
