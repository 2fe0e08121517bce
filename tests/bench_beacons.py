#!/usr/bin/env python3
"""Benchmark halite's beacons against real Salt 3007.8's: idle cost and inotify latency.

    python3 tests/bench_beacons.py [--seconds 60] [--writes 1000] [--salt-writes 60]
                                   [--reps 1] [--no-build] [--skip-idle] [--skip-latency]

1. Idle cost: a master and a minion running the beacons of BEACONS (each checked every second,
   Salt's default), with thresholds that are checked but not reached. After a 5 s warm-up, over
   --seconds: the CPU seconds of the minion's process tree (utime+stime of every process, plus
   cutime+cstime, the time of the children they waited for, such as commands a beacon runs;
   /proc/<pid>/stat at the start and end of the window), its RSS (VmRSS) and peak RSS (VmHWM)
   summed over the tree at the end, and the beacon events the master published in the window.
   Salt's minion forks helper processes: its whole tree is counted; so is halite's.
2. Latency: a minion with one `inotify` beacon (mask [modify]) on a temp file. The writer
   appends to the file, records the time, and waits for the beacon's event
   (salt/beacon/<id>/inotify/<path>) on the master's publish socket; the delay is the figure.
   halite: --writes writes, 10 ms apart. Salt checks its beacons once a second, so its median
   is ~0.5 s by design: --salt-writes writes, each after a random 0-1 s pause, so that the
   writes fall at random points of Salt's loop.

Same run, same configuration for both (beacons one side cannot run are listed, and the
comparison says so). Prints medians and ratios. Not a test: figures only.
"""
import argparse
import json
import os
import queue
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
SALT_VERSION = "3007.8"
MINION_ID = "minion1"
WARM_UP = 5.0

# The ten beacons of the idle run; `{files}` is a temp dir holding the watched file and log.
# Thresholds are checked every second but not reached, except `status`, which reports on every
# check by design.
BEACONS = {
    "load": [{"averages": {"1m": [0.0, 1000.0], "5m": [0.0, 1000.0], "15m": [0.0, 1000.0]}}],
    "memusage": [{"percent": "99%"}],
    "swapusage": [{"percent": "99%"}],
    "diskusage": [{"/": "99%"}],
    "status": [{"loadavg": ["all"]}],
    "network_info": [{"interfaces": {"lo": {"type": "greater", "bytes_recv": 10 ** 15}}}],
    "service": [{"services": {"halite-bench-absent": {"onchangeonly": True,
                                                      "emitatstartup": False}}}],
    "ps": [{"processes": {"halite-bench-absent": "running"}}],
    "inotify": [{"files": {"{files}/watched": {"mask": ["modify"]}}}],
    "log": [{"file": "{files}/watched.log"}, {"tags": {"bench": {"regex": "^never$"}}}],
}


def beacons_for(files):
    return json.loads(json.dumps(BEACONS).replace("{files}", files))


# ---------------------------------------------------------------- the master's bus
class Bus:
    """The master's publish socket, read by a thread: (arrival time, tag, data bytes)."""

    def __init__(self, path, deadline):
        import salt_lab
        while True:
            try:
                sock = salt_lab._connect(path)
                break
            except (ConnectionRefusedError, FileNotFoundError):
                if time.time() > deadline:
                    raise TimeoutError(f"cannot connect to {path}")
                time.sleep(0.05)
        self.sock = sock
        self.events = queue.Queue()
        self.closed = threading.Event()
        threading.Thread(target=self._read, args=(salt_lab,), daemon=True).start()

    def _read(self, salt_lab):
        try:
            for tag, data in salt_lab._events(self.sock, float("inf")):
                self.events.put((time.perf_counter(), tag, data))
                if self.closed.is_set():
                    return
        except (OSError, ValueError):
            pass  # closed under us

    def get(self, timeout):
        """The next event, or None after `timeout` seconds."""
        try:
            return self.events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def close(self):
        self.closed.set()
        try:
            self.sock.shutdown(2)
        except OSError:
            pass


# ---------------------------------------------------------------- daemons
class Side:
    """One implementation's master and minion under one base dir."""

    def __init__(self, name, base, venv):
        self.name, self.base, self.venv = name, base, venv
        self.procs = []
        self.minion = None
        os.makedirs(f"{base}/log", exist_ok=True)

    def configure(self, beacons):
        import salt_lab
        base = self.base
        if self.name == "salt":
            salt_lab.write(base, minion_id=MINION_ID, log_level="warning",
                           minion_opts={"beacons": beacons})
            self.conf, self.bindir = f"{base}/conf", self.venv
            self.master_pub = f"{base}/run/master/master_event_pub.ipc"
            self.minion_log = f"{base}/log/minion.log"
            return
        self.conf, self.bindir = f"{base}/etc", RELEASE
        os.makedirs(self.conf, exist_ok=True)
        port = salt_lab.free_port()
        with open(f"{self.conf}/master", "w") as f:
            f.write(f"root_dir: {base}\nsock_dir: {base}/run/master\npki_dir: {base}/pki/master\n"
                    f"cachedir: {base}/cache/master\nret_port: {port}\ninterface: 127.0.0.1\n"
                    f"log_file: {base}/log/master\nlog_level_logfile: warning\n"
                    "auto_accept: True\n")
        with open(f"{self.conf}/minion", "w") as f:
            f.write(f"id: {MINION_ID}\nroot_dir: {base}\nsock_dir: {base}/run/minion\n"
                    f"pki_dir: {base}/pki/minion\ncachedir: {base}/cache/minion\n"
                    f"master: 127.0.0.1\nmaster_port: {port}\nacceptance_wait_time: 1\n"
                    f"log_file: {base}/log/minion\nlog_level_logfile: warning\n"
                    f"beacons: {json.dumps(beacons)}\n")
        self.master_pub = f"{base}/run/master/master_event_pub.ipc"
        self.minion_log = f"{base}/log/minion"

    def start(self, timeout=90.0):
        """Starts the master, subscribes to its bus, starts the minion and waits for its start
        event; returns the bus (subscribed first, so nothing the minion says is missed)."""
        import bench_states
        deadline = time.time() + timeout
        self.procs.append(bench_states.start(
            [f"{self.bindir}/salt-master", "-c", self.conf, "-l", "warning"],
            f"{self.base}/log/master.out"))
        bus = Bus(self.master_pub, deadline)
        # Salt's minion as it runs by default: a keep-alive parent forks the minion proper.
        cmd = [f"{self.bindir}/salt-minion", "-c", self.conf, "-l", "warning"]
        self.minion = bench_states.start(cmd, f"{self.base}/log/minion.out")
        self.procs.append(self.minion)
        self.seen = []
        want = f"salt/minion/{MINION_ID}/start"
        while True:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name}: {p.args[0]} exited with {p.returncode}; "
                                       f"see {self.base}/log")
            event = bus.get(deadline - time.time())
            if event is None:
                raise TimeoutError(f"{self.name}: no {want} within {timeout:.0f} s")
            self.seen.append(event)
            if event[1] == want:
                return bus

    def stop(self):
        import bench_states
        bench_states.stop(self.procs)
        self.procs = []


def beacon_name(tag):
    """The beacon's name in salt/beacon/<id>/<name>/..., else None."""
    prefix = f"salt/beacon/{MINION_ID}/"
    return tag[len(prefix):].split("/")[0] if tag.startswith(prefix) else None


def halite_refused(events):
    """Beacons the halite minion refused or whose checks failed: name -> message."""
    out = {}
    for _, tag, data in events:
        name = beacon_name(tag)
        if name is not None and tag == f"salt/beacon/{MINION_ID}/{name}/error":
            import msgpack
            try:
                out[name] = msgpack.unpackb(data, raw=False).get("error", "error")
            except Exception:  # noqa: BLE001 - an odd payload is still an error
                out[name] = "error"
    return out


SALT_PROBLEMS = [
    (r"Beacon (\S+) configuration invalid, not running\.\s*\n?(.*)", "invalid configuration"),
    (r"Unable to process beacon (\S+)", "module not loaded"),
    (r"Unable to start (\S+) beacon, (.*)", "check failed"),
]


def salt_refused(log_path):
    """Beacons Salt's minion could not run, from its log: name -> why."""
    try:
        with open(log_path, errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    for pattern, why in SALT_PROBLEMS:
        for m in re.finditer(pattern, text):
            detail = m.group(2).strip() if m.lastindex and m.lastindex > 1 else ""
            out.setdefault(m.group(1), f"{why}: {detail}" if detail else why)
    return out


# ---------------------------------------------------------------- /proc
def cpu_ticks(pids):
    """utime+stime+cutime+cstime summed over `pids`."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
        total += sum(int(v) for v in fields[11:15])  # fields 14-17
    return total


def status_mib(pids, key):
    """A /proc/<pid>/status figure (kB) summed over `pids`, in MiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def idle(side, seconds, files):
    """CPU seconds, RSS, peak RSS, process count, events per beacon, refused beacons."""
    import bench_states
    side.configure(beacons_for(files))
    bus = side.start()
    try:
        time.sleep(WARM_UP)
        tree = bench_states.descendants(side.minion.pid)
        ticks = cpu_ticks(tree)
        start = time.perf_counter()
        time.sleep(seconds)
        end_tree = bench_states.descendants(side.minion.pid)
        # Processes that left are counted in their waiting parent's cutime/cstime.
        used = (cpu_ticks(end_tree) - ticks) / os.sysconf("SC_CLK_TCK")
        elapsed = time.perf_counter() - start
        rss = status_mib(end_tree, "VmRSS")
        hwm = status_mib(end_tree, "VmHWM")
        time.sleep(0.5)  # events of the window's last checks
        bus.close()
        events = list(side.seen)
        while (event := bus.get(0)) is not None:
            events.append(event)
        fired = {}
        for at, tag, _ in events:
            name = beacon_name(tag)
            if name is not None and start <= at <= start + elapsed and not tag.endswith("/error"):
                fired[name] = fired.get(name, 0) + 1
        refused = (halite_refused(events) if side.name == "halite"
                   else salt_refused(side.minion_log))
        return {"cpu": used * seconds / elapsed, "rss": rss, "hwm": hwm,
                "procs": (len(tree), len(end_tree)), "fired": fired, "refused": refused}
    finally:
        bus.close()
        side.stop()


def latency(side, writes, pause):
    """Delays (s) from a write to its inotify event; (delays, missed, extra, why skipped)."""
    path = f"{side.base}/watched"
    open(path, "w").close()
    side.configure({"inotify": [{"files": {path: {"mask": ["modify"]}}}]})
    bus = side.start()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        def matches(tag):
            return tag.startswith(f"salt/beacon/{MINION_ID}/inotify/") and tag.endswith(path)

        refused = halite_refused(side.seen).get("inotify")
        if refused:
            return [], 0, 0, f"its inotify beacon was refused: {refused}"
        # Salt adds its watch at the first check: write until an event comes back.
        deadline = time.time() + 30
        primed = False
        while not primed and time.time() < deadline:
            os.write(fd, b"prime\n")
            until = time.perf_counter() + 1.5
            while (event := bus.get(until - time.perf_counter())) is not None:
                side.seen.append(event)
                if matches(event[1]):
                    primed = True
                elif event[1] == f"salt/beacon/{MINION_ID}/inotify/error":
                    why = halite_refused([event]).get("inotify", "error")
                    return [], 0, 0, f"its inotify beacon was refused: {why}"
        if not primed:
            why = salt_refused(side.minion_log).get("inotify") if side.name == "salt" else None
            return [], 0, 0, f"no inotify event within 30 s ({why or 'no reason logged'})"
        time.sleep(1.2)
        while bus.get(0) is not None:
            pass
        delays, missed, extra = [], 0, 0
        for _ in range(writes):
            written = time.perf_counter()
            os.write(fd, b"x\n")
            while True:
                event = bus.get(written + 5 - time.perf_counter())
                if event is None:
                    missed += 1
                    break
                if matches(event[1]):
                    delays.append(event[0] - written)
                    break
            # Wait out the pause, counting any further event of that write.
            until = time.perf_counter() + pause()
            while (event := bus.get(until - time.perf_counter())) is not None:
                extra += matches(event[1])
        return delays, missed, extra, None
    finally:
        os.close(fd)
        bus.close()
        side.stop()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- setup and report
def salt_has_pyinotify(venv):
    py = f"{venv}/python"
    check = [py, "-c", "import pyinotify"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return None
    res = subprocess.run([py, "-m", "pip", "install", "--quiet", "pyinotify"],
                         capture_output=True, text=True)
    if subprocess.run(check, capture_output=True).returncode == 0:
        return None
    return f"pyinotify is not importable in {venv}/python and pip could not install it " \
           f"({(res.stderr.strip().splitlines() or ['no output'])[-1]})"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "?")
    except OSError:
        pass
    u = os.uname()
    return f"{os.cpu_count()} cores ({model}), {u.sysname} {u.release} {u.machine}"


def load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def ratio(h, s, floor=None):
    """s/h; with `floor` (the smallest non-zero h), a zero h gives a lower bound."""
    if h:
        return f"{s / h:,.1f}x"
    return f"> {s / floor:,.0f}x" if floor and s else "n/a"


def report_idle(args, results):
    seconds = args.seconds
    h, s = results["halite"], results["salt"]

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    print(f"\n## Idle: minion with {len(BEACONS)} beacons, checked every 1 s, over {seconds:g} s "
          f"after a {WARM_UP:g} s warm-up ({args.reps} rep(s), medians)\n")
    print("beacons ({files} is a temp dir): "
          + "; ".join(f"{n}: {json.dumps(c)}" for n, c in BEACONS.items()))
    print("CPU: utime+stime+cutime+cstime summed over the minion's process tree; Salt's "
          "minion runs as by default, a keep-alive parent and the minion it forks.\n")
    print("| figure | halite | Salt | Salt/halite |")
    print("|---|---:|---:|---:|")
    hc, sc = med(h, "cpu"), med(s, "cpu")
    tick = 1 / os.sysconf("SC_CLK_TCK")
    print(f"| CPU seconds in {seconds:g} s (minion tree; clock tick {tick * 1000:g} ms) | "
          f"{hc:.3f} s | {sc:.3f} s | {ratio(hc, sc, tick)} |")
    print(f"| CPU, % of one core | {100 * hc / seconds:.2f} % | {100 * sc / seconds:.2f} % | "
          f"{ratio(hc, sc, tick)} |")
    for key, label in (("rss", "RSS (VmRSS, tree) at the end"),
                       ("hwm", "peak RSS (VmHWM, summed over the tree)")):
        hv, sv = med(h, key), med(s, key)
        print(f"| {label} | {hv:.1f} MiB | {sv:.1f} MiB | {ratio(hv, sv)} |")
    procs = [" ".join(f"{a}->{b}" if a != b else f"{a}" for a, b in (r["procs"] for r in rows))
             for rows in (h, s)]
    print(f"| processes in the tree (start->end of window) | {procs[0]} | {procs[1]} | |")
    fired = ["; ".join(", ".join(f"{n} {c}" for n, c in sorted(r["fired"].items())) or "none"
                       for r in rows) for rows in (h, s)]
    print(f"| beacon events published in the window | {fired[0]} | {fired[1]} | |")
    names = set(BEACONS)
    for label, rows, who in (("halite", h, "halite"), ("Salt", s, "Salt")):
        refused = {}
        for r in rows:
            refused.update({n: why for n, why in r["refused"].items() if n in names})
        if refused:
            print(f"\nNot run by {who}: " + "; ".join(
                f"{n} ({why if len(why) <= 100 else why[:97] + '...'})"
                for n, why in sorted(refused.items())))
            print(f"The comparison is NOT like for like: {label} ran "
                  f"{len(names - set(refused))} of {len(names)} beacons.")
        else:
            print(f"\n{label} ran all {len(names)} beacons.")


def report_latency(args, results):
    print("\n## Latency: file write -> inotify beacon event on the master's publish socket\n")
    print(f"halite: {args.writes} writes, 10 ms after each event. Salt checks its beacons once "
          f"a second (a write waits for the next check: ~0.5 s median expected): "
          f"{args.salt_writes} writes, each after a random 0-1 s pause following the previous "
          "event.\n")
    rows = {}
    for name in ("halite", "salt"):
        delays, missed, extra, why = results[name]
        if why:
            print(f"{'halite' if name == 'halite' else 'Salt'}'s run was skipped: {why}")
        rows[name] = delays
    print("\n| figure | halite | Salt | Salt/halite |")
    print("|---|---:|---:|---:|")
    counts = [f"{len(results[n][0])} seen, {results[n][1]} missed, {results[n][2]} extra"
              if not results[n][3] else "skipped" for n in ("halite", "salt")]
    print(f"| writes | {counts[0]} | {counts[1]} | |")
    for p in (50, 99):
        h = percentile(rows["halite"], p) if rows["halite"] else None
        s = percentile(rows["salt"], p) if rows["salt"] else None
        hs = f"{h * 1000:,.2f} ms" if h is not None else "-"
        ss = f"{s * 1000:,.1f} ms" if s is not None else "-"
        print(f"| p{p} | {hs} | {ss} | {ratio(h, s) if h and s else 'n/a'} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="idle window")
    ap.add_argument("--reps", type=int, default=1, help="idle windows per side")
    ap.add_argument("--writes", type=int, default=1000, help="halite's latency writes")
    ap.add_argument("--salt-writes", type=int, default=60, help="Salt's latency writes")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    sys.dont_write_bytecode = True  # no tests/__pycache__ from the imports below
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import bench_states
    venv = bench_states.venv_bin()
    try:
        import msgpack  # noqa: F401
    except ImportError:
        # The Salt venv has msgpack; run there.
        os.execv(f"{venv}/python", [f"{venv}/python", *sys.argv])
    command = " ".join(["python3", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    no_inotify = salt_has_pyinotify(venv)
    load_before = load()

    # Every exit (Ctrl-C, SIGTERM, an error) goes through the `finally` below.
    def leave(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, leave)

    work = tempfile.mkdtemp(prefix="hbb", dir="/tmp")  # socket paths: keep it short
    sides = []
    idle_results, latency_results = {"halite": [], "salt": []}, {}
    try:
        files = f"{work}/files"
        os.makedirs(files)
        open(f"{files}/watched", "w").close()
        with open(f"{files}/watched.log", "w") as f:
            f.write("a line before the run\n")  # Salt's log beacon starts at a non-empty end
        if not args.skip_idle:
            for rep in range(args.reps):
                for name in (["halite", "salt"] if rep % 2 == 0 else ["salt", "halite"]):
                    side = Side(name, f"{work}/i{rep}{name[0]}", f"{venv}")
                    sides.append(side)
                    r = idle(side, args.seconds, files)
                    idle_results[name].append(r)
                    print(f"idle rep {rep + 1} {name:6} cpu {r['cpu']:.3f} s  rss {r['rss']:.1f} "
                          f"MiB  hwm {r['hwm']:.1f} MiB  procs {r['procs']}  fired {r['fired']}  "
                          f"refused {sorted(r['refused'])}", file=sys.stderr)
        if not args.skip_latency:
            side = Side("halite", f"{work}/lh", venv)
            sides.append(side)
            latency_results["halite"] = latency(side, args.writes, lambda: 0.01)
            print(f"latency halite: {len(latency_results['halite'][0])} delays "
                  f"{latency_results['halite'][3] or ''}", file=sys.stderr)
            if no_inotify:
                latency_results["salt"] = ([], 0, 0, no_inotify)
            else:
                side = Side("salt", f"{work}/ls", venv)
                sides.append(side)
                latency_results["salt"] = latency(side, args.salt_writes,
                                                  lambda: random.uniform(0.0, 1.0))
            print(f"latency salt: {len(latency_results['salt'][0])} delays "
                  f"{latency_results['salt'][3] or ''}", file=sys.stderr)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        for side in sides:
            side.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n# halite vs Salt {SALT_VERSION} beacons; {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"machine: {machine()}; load average before {load_before}, after {load()}")
    print(f"command: {command}")
    if not args.skip_idle:
        report_idle(args, idle_results)
    if not args.skip_latency:
        report_latency(args, latency_results)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as stop:
        sys.exit(f"interrupted ({stop or 'Ctrl-C'}); daemons stopped, temp dir removed")
