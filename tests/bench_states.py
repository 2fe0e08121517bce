#!/usr/bin/env python3
"""Benchmark halite's states against real Salt 3007.8's, on the same SLS tree, in one run.

    python3 tests/bench_states.py [--reps 3] [--minions 50] [--no-build] [--skip-fleet]

1. `state.apply` of a 200-state SLS (100 `file.managed`, half from `contents`, half from a
   `salt://` source; 50 `file.directory`; 50 `cmd.run`) by `salt-call --local`: wall time and
   peak RSS (the process and everything it waited for, from wait4), on a fresh target (every
   state changes something) and again on the same target (nothing to change).
2. `state.sls` of a 20-state SLS to N minions at once through a master (halite's master and N
   halite minions; Salt's master and N Salt minions): seconds from starting `salt '*' state.sls`
   until every minion's return is printed, and the minions' summed RSS at rest.

Prints medians and ratios. Not a test: figures only.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
SALT_VERSION = "3007.8"


def venv_bin():
    out = subprocess.run(["bash", f"{ROOT}/tests/salt-env.sh", SALT_VERSION], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[-1]


def big_tree(roots, target):
    """The 200-state SLS `bench` writing under `target`, and its salt:// sources."""
    os.makedirs(f"{roots}/src", exist_ok=True)
    lines = []
    for n in range(100):
        lines.append(f"{target}/files/f{n}:\n  file.managed:\n    - makedirs: True\n")
        if n % 2:
            with open(f"{roots}/src/f{n}", "w") as f:
                f.write(f"source file {n}\n" * 50)
            lines.append(f"    - source: salt://src/f{n}\n")
        else:
            lines.append(f"    - contents: 'contents of {n}'\n")
    for n in range(50):
        lines.append(f"{target}/dirs/d{n}:\n  file.directory:\n    - makedirs: True\n")
    for n in range(50):
        lines.append(f"command {n}:\n  cmd.run:\n    - name: echo {n}\n")
    with open(f"{roots}/bench.sls", "w") as f:
        f.write("".join(lines))


def fleet_tree(roots, target):
    """The 20-state SLS `fleet`, one directory per minion under `target`."""
    lines = []
    for n in range(10):
        lines.append(f"{target}/{{{{ grains['id'] }}}}/f{n}:\n  file.managed:\n"
                     f"    - makedirs: True\n    - contents: 'file {n} of {{{{ grains['id'] }}}}'\n")
    for n in range(10):
        lines.append(f"fleet command {n}:\n  cmd.run:\n    - name: echo {n}\n")
    with open(f"{roots}/fleet.sls", "w") as f:
        f.write("".join(lines))


def timed(cmd, **kw):
    """(seconds, peak RSS in MiB, (exit code, stdout, stderr)) of `cmd`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        # Files, not pipes: wait4 must reap the process itself to read its rusage, and a
        # full pipe would stop it first.
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kw)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return elapsed, usage.ru_maxrss / 1024, (proc.returncode, out.read(), err.read())


def local_config(base, roots):
    conf = f"{base}/conf"
    os.makedirs(conf, exist_ok=True)
    with open(f"{conf}/minion", "w") as f:
        f.write(f"id: bench\nroot_dir: {base}\ncachedir: {base}/cache\nsock_dir: {base}/run\n"
                f"pki_dir: {base}/pki\nlog_file: {base}/log\nfile_client: local\n"
                f"file_roots: {{base: [{roots}]}}\npillar_roots: {{base: [{base}/pillar]}}\n"
                "enable_fqdns_grains: False\nenable_gpu_grains: False\ngrains_cache: False\n")
    return conf


def local_bench(work, venv, reps):
    roots = f"{work}/roots"
    results = {}
    for rep in range(reps):
        for name in (["halite", "salt"] if rep % 2 == 0 else ["salt", "halite"]):
            base = f"{work}/local-{name}-{rep}"
            target = f"{base}/target"
            shutil.rmtree(roots, ignore_errors=True)
            big_tree(roots, target)
            conf = local_config(base, roots)
            call = f"{RELEASE}/salt-call" if name == "halite" else f"{venv}/salt-call"
            cmd = [call, "--local", "-c", conf, "--out", "json", "state.apply", "bench"]
            for phase in ("fresh", "again"):
                seconds, rss, (rc, out, err) = timed(cmd)
                ret = json.loads(out)["local"] if out.strip() else {}
                ok = isinstance(ret, dict) and len(ret) == 200 and all(
                    s.get("result") is True for s in ret.values())
                if not ok:
                    sys.exit(f"{name} {phase}: not 200 successful states (rc {rc}): "
                             f"{err.decode()[-2000:]}{out.decode()[:2000]}")
                results.setdefault((phase, name), []).append((seconds, rss))
                print(f"rep {rep + 1} {phase:6} {name:6} {seconds * 1000:8.0f} ms  {rss:6.1f} MiB",
                      file=sys.stderr)
    return results


def rss_of(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def descendants(pid):
    """pid and every process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
    found, pending = [], [pid]
    while pending:
        p = pending.pop()
        found.append(p)
        pending.extend(children.get(p, []))
    return found


def start(cmd, log):
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        p.wait()


def wait_for_minions(salt, conf, count, deadline):
    """Pings until `count` minions answer."""
    while time.time() < deadline:
        res = subprocess.run([salt, "-c", conf, "--out", "json", "--static", "-t", "10", "*",
                              "test.ping"], capture_output=True, text=True)
        try:
            answered = sum(1 for v in json.loads(res.stdout or "{}").values() if v is True)
        except json.JSONDecodeError:
            answered = 0
        if answered >= count:
            return
        time.sleep(1)
    sys.exit(f"only some of {count} minions answered in time")


def all_returns(cmd, count):
    """Seconds from starting `cmd` (a `salt` printing one JSON document per minion as its
    return arrives) until `count` returns are in, and the returns. Salt's CLI may go on waiting
    after the last return (with `-t 300` it did, for the whole timeout): the clock stops at the
    last return, for both."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    decoder, buffer, returns = json.JSONDecoder(), "", {}
    try:
        for line in proc.stdout:
            buffer += line
            # A document ends with a `}` at the start of a line (the outputters indent).
            if not line.startswith("}"):
                continue
            while buffer.strip():
                try:
                    doc, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                returns.update(doc)
            if len(returns) >= count:
                break
        return time.perf_counter() - start, returns
    finally:
        proc.kill()
        proc.wait()


def fleet(work, venv, minions, reps, name):
    """Seconds of each `state.sls fleet` to every minion, and the minions' RSS."""
    import salt_lab
    base = f"{work}/fleet-{name}"
    roots = f"{base}/srv/salt"
    os.makedirs(roots, exist_ok=True)
    fleet_tree(roots, f"{base}/target")
    ret_port, publish_port = salt_lab.free_port(), salt_lab.free_port()
    procs = []
    if name == "salt":
        salt_lab.write(base, publish_port=publish_port, ret_port=ret_port,
                       master_opts={"worker_threads": 5})
        conf = f"{base}/conf"
        bindir = venv
    else:
        conf = f"{base}/conf"
        os.makedirs(conf, exist_ok=True)
        with open(f"{conf}/master", "w") as f:
            f.write(f"root_dir: {base}\nsock_dir: {base}/run/master\npki_dir: {base}/pki/master\n"
                    f"cachedir: {base}/cache/master\nret_port: {ret_port}\ninterface: 127.0.0.1\n"
                    f"log_file: {base}/log/master\nauto_accept: True\n"
                    f"file_roots: {{base: [{roots}]}}\n")
        bindir = RELEASE
    os.makedirs(f"{base}/log", exist_ok=True)
    try:
        procs.append(start([f"{bindir}/salt-master", "-c", conf], f"{base}/log/master.out"))
        time.sleep(3)
        for n in range(minions):
            mid = f"m{n:03}"
            mconf = f"{base}/minions/{mid}"
            os.makedirs(mconf, exist_ok=True)
            opts = (f"id: {mid}\nroot_dir: {mconf}\nsock_dir: {mconf}/run\npki_dir: {mconf}/pki\n"
                    f"cachedir: {mconf}/cache\nlog_file: {mconf}/log\nmaster: 127.0.0.1\n"
                    f"master_port: {ret_port}\npublish_port: {publish_port}\n"
                    "acceptance_wait_time: 1\nrandom_reauth_delay: 0\n"
                    "enable_fqdns_grains: False\nenable_gpu_grains: False\ngrains_cache: False\n")
            with open(f"{mconf}/minion", "w") as f:
                f.write(opts)
            cmd = [f"{bindir}/salt-minion", "-c", mconf]
            if name == "salt":
                cmd.append("--disable-keepalive")
            procs.append(start(cmd, f"{mconf}/out"))
        wait_for_minions(f"{bindir}/salt", conf, minions, time.time() + 600)
        time.sleep(2)
        rss = rss_of(p for m in procs[1:] for p in descendants(m.pid))
        times = []
        for rep in range(reps):
            shutil.rmtree(f"{base}/target", ignore_errors=True)
            seconds, returns = all_returns(
                [f"{bindir}/salt", "-c", conf, "--out", "json", "-t", "300", "*",
                 "state.sls", "fleet"], minions)
            good = sum(1 for r in returns.values()
                       if isinstance(r, dict) and len(r) == 20
                       and all(s.get("result") is True for s in r.values()))
            if good != minions:
                sys.exit(f"{name}: {good}/{minions} minions ran all 20 states")
            times.append(seconds)
            print(f"rep {rep + 1} fleet  {name:6} {seconds * 1000:8.0f} ms", file=sys.stderr)
        return times, rss
    finally:
        stop(procs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--minions", type=int, default=50)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--skip-fleet", action="store_true")
    args = ap.parse_args()
    venv = venv_bin()
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="hs", dir="/tmp")
    try:
        local = local_bench(work, venv, args.reps)
        fleets = {}
        if not args.skip_fleet:
            for name in ("halite", "salt"):
                fleets[name] = fleet(work, venv, args.minions, args.reps, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nhalite vs Salt {SALT_VERSION} states; {args.reps} reps, medians; "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores\n")
    print("| run | halite | Salt | Salt/halite |")
    print("|---|---:|---:|---:|")
    for phase, label in (("fresh", "200 states, all change"), ("again", "200 states, none change")):
        h = statistics.median(s for s, _ in local[(phase, "halite")])
        s = statistics.median(s for s, _ in local[(phase, "salt")])
        print(f"| `salt-call --local state.apply`, {label}: wall | {h * 1000:,.0f} ms | "
              f"{s * 1000:,.0f} ms | {s / h:,.1f}x |")
        h = statistics.median(r for _, r in local[(phase, "halite")])
        s = statistics.median(r for _, r in local[(phase, "salt")])
        print(f"| `salt-call --local state.apply`, {label}: peak RSS | {h:,.1f} MiB | "
              f"{s:,.1f} MiB | {s / h:,.1f}x |")
    if fleets:
        h, s = fleets["halite"], fleets["salt"]
        hm, sm = statistics.median(h[0]), statistics.median(s[0])
        print(f"| `salt '*' state.sls` (20 states) to {args.minions} minions: wall | "
              f"{hm * 1000:,.0f} ms | {sm * 1000:,.0f} ms | {sm / hm:,.1f}x |")
        print(f"| {args.minions} minions at rest: summed RSS | {h[1]:,.0f} MiB | {s[1]:,.0f} MiB | "
              f"{s[1] / h[1]:,.1f}x |")


if __name__ == "__main__":
    main()
