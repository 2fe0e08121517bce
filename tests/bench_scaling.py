#!/usr/bin/env python3
"""How halite's bus scales, next to the reference relay: throughput, latency and daemon memory.

    python3 tests/bench_scaling.py [--reps 3] [--no-build] [--out tests/plots]

Sweeps 1 -> 1,000 subscribers, 1 -> 100 publishers and 100 B -> 4 MB events, and measures paced
latency of one publisher to one subscriber at 1,000 and 10,000 events/s (p50, p99, p99.9). Every
point runs on a fresh halite salt-master (its defaults but for a 1 GiB subscriber buffer, as in
tests/bench.py, so that no flat-out burst meets the slow-subscriber policy) and on a fresh reference relay (the yardstick's: every complete frame forwarded verbatim to a bounded queue per
subscriber, built from BUSLOAD, default ../shared/busload beside this repository), interleaved,
--reps times; the load is `salt-run event.bench` against each one's sockets, the same client for
both. Peak RSS is each daemon's VmHWM after the point. Prints medians and ratios, and writes
scaling-{subscribers,publishers,size}.svg (events/s per subscriber, latency p50/p99 paced, peak
RSS; log scales) to --out. Not a test: figures only.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from bench import write_master_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
BUSLOAD = os.environ.get("BUSLOAD", os.path.join(os.path.dirname(ROOT), "shared", "busload"))
BUSLOAD_TARGET = os.environ.get("BUSLOAD_TARGET", os.path.expanduser("~/.cache/busload-target"))
BUSES = ("halite", "relay")

# Sweep name -> (x label, [(x, event.bench arguments for throughput, for paced latency)]).
# Counts keep each throughput run near a second on a 2-core machine; latency is paced at a rate
# both buses hold (4 MB events at 1,000/s would be 4 GB/s).
SWEEPS = {
    "subscribers": ("subscribers (1 publisher, 100 B)", [
        (k, f"size=100 subscribers={k} count={max(2_000, 1_000_000 // k)}",
         f"size=100 subscribers={k} rate=1000 count=2000")
        for k in (1, 10, 100, 1000)]),
    "publishers": ("publishers (1 subscriber, 100 B)", [
        (p, f"size=100 publishers={p} count=1000000",
         f"size=100 publishers={p} rate=1000 count=2000")
        for p in (1, 10, 100)]),
    "size": ("event size, bytes (1 publisher, 1 subscriber)", [
        (s, f"size={s} count={min(1_000_000, max(250, 1_000_000_000 // s))}",
         f"size={s} rate=100 count=500")
        for s in (100, 1_000, 10_000, 100_000, 1_000_000, 4_000_000)]),
}
PACED = [(rate, f"size=100 rate={rate} count={rate * 5}") for rate in (1000, 10000)]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def wait_for(path, proc, stderr):
    deadline = time.time() + 20
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            with open(stderr) as f:
                said = f.read().strip() or "it printed nothing"
            raise SystemExit(f"{proc.args[0]} did not open {path}: {said}")
        time.sleep(0.02)


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024


class Daemon:
    """A fresh halite master or relay in its own directory, stopped on exit."""

    def __init__(self, bus, relay_bin, work):
        self.dir = tempfile.mkdtemp(prefix=bus, dir=work)
        self.sock = f"{self.dir}/sock"
        os.makedirs(self.sock)
        if bus == "halite":
            # Flat-out bursts outrun the load's own subscriber: halite would drop its oldest
            # events where the relay holds its senders back. Everything else is the default.
            write_master_config(self.dir, self.dir, self.sock, "subscriber_buffer_size: 1073741824\n")
            cmd = [f"{RELEASE}/salt-master", "-c", self.dir]
        else:
            cmd = [relay_bin, "--sock-dir", self.sock]
        with open(f"{self.dir}/stderr", "w") as stderr:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        wait_for(f"{self.sock}/master_event_pub.ipc", self.proc, f"{self.dir}/stderr")
        time.sleep(0.3)

    def bench(self, conf, args):
        cmd = [f"{RELEASE}/salt-run", "-c", conf, "event.bench", *args.split(), f"sock_dir={self.sock}",
               "idle=5", "--out=json"]
        return json.loads(run(cmd, timeout=900).stdout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def lost(report):
    return sum(s["dropped"] + s["reordered"] for s in report["subscribers"])


def measure(bus, relay_bin, work, conf, tput, paced):
    with Daemon(bus, relay_bin, work) as daemon:
        t = daemon.bench(conf, tput) if tput else None
        lat = daemon.bench(conf, paced)
        return {
            "events_per_s": t["events_per_second"] if t else None,
            "lat": lat["latency_us"],
            "lost": (lost(t) if t else 0) + lost(lat),
            "rss_mb": peak_rss_mb(daemon.proc.pid),
        }


def median(results, key):
    values = [key(r) for r in results if key(r) is not None]
    return statistics.median(values) if values else None


# --- the plots: plain SVG, no plotting library needed -------------------------------------------

COLOURS = {"halite": "#1f6fb4", "relay": "#d0702a"}
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 330, 250, 62, 12, 28, 46


def log_ticks(lo, hi):
    return [10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def tick_text(v):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def panel(x0, title, xs, series, y_label):
    """One chart at x offset x0: series is {name: ([y per x], dash)}, log-log."""
    ys = [y for ys, _ in series.values() for y in ys if y]
    if not ys:
        return ""
    ylo, yhi = min(ys) / 1.5, max(ys) * 1.5
    yt = log_ticks(ylo, yhi)
    ylo, yhi = yt[0], yt[-1]
    xlo, xhi = min(xs), max(xs)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(x):
        return x0 + PAD_L + (pw * (math.log10(x / xlo) / math.log10(xhi / xlo)) if xhi > xlo else pw / 2)

    def py(y):
        return PAD_T + ph - ph * math.log10(y / ylo) / math.log10(yhi / ylo)

    out = [f'<text x="{x0 + W / 2}" y="16" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<rect x="{x0 + PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for y in yt:
        out.append(f'<line x1="{x0 + PAD_L}" x2="{x0 + PAD_L + pw}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 + PAD_L - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{tick_text(y)}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{PAD_T + ph + 14}" text-anchor="middle">{tick_text(x)}</text>')
    out.append(f'<text x="{x0 + 12}" y="{PAD_T + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 {x0 + 12} {PAD_T + ph / 2})">{y_label}</text>')
    for name, (values, dash) in series.items():
        bus = name.split()[0]
        points = [(px(x), py(y)) for x, y in zip(xs, values) if y]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
        dashes = ' stroke-dasharray="5,3"' if dash else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[bus]}" stroke-width="2"{dashes}/>')
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{COLOURS[bus]}"/>' for a, b in points]
    return "\n".join(out)


def plot(path, sweep, x_label, xs, rows):
    def col(bus, key):
        return [rows[x][bus][key] for x in xs]

    panels = [
        ("events/s per subscriber", {b: (col(b, "events_per_s"), False) for b in BUSES}, "events/s"),
        ("latency paced, p50 and p99", {f"{b} {q}": (col(b, q), q == "p99") for b in BUSES for q in ("p50", "p99")},
         "microseconds"),
        ("daemon peak RSS", {b: (col(b, "rss_mb"), False) for b in BUSES}, "MB"),
    ]
    width = W * len(panels)
    body = [panel(i * W, title, xs, series, label) for i, (title, series, label) in enumerate(panels)]
    legend = [f'<text x="{width / 2}" y="{H + 4}" text-anchor="middle">{x_label}; '
              f'<tspan fill="{COLOURS["halite"]}">halite</tspan>, '
              f'<tspan fill="{COLOURS["relay"]}">reference relay</tspan>; dashed: p99</text>']
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + 12}" '
                f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n')
        f.write("\n".join(body + legend))
        f.write("\n</svg>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "plots"))
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", f"{BUSLOAD}/Cargo.toml",
                    "--target-dir", BUSLOAD_TARGET], check=True)
    relay_bin = f"{BUSLOAD_TARGET}/release/relay"
    work = tempfile.mkdtemp(prefix="hscale", dir="/tmp")
    # The client's own configuration: where it keeps nothing, so runs do not touch the user's.
    conf = f"{work}/client"
    os.makedirs(conf)
    with open(f"{conf}/master", "w") as f:
        f.write(f"cachedir: {work}/client/cache\npki_dir: {work}/client/pki\nlog_file: {work}/client/log\n")
    points = [(sweep, x, tput, paced) for sweep, (_, pts) in SWEEPS.items() for x, tput, paced in pts]
    points += [("paced", rate, None, paced) for rate, paced in PACED]
    results = {}
    try:
        for rep in range(args.reps):
            for sweep, x, tput, paced in points:
                for bus in BUSES:
                    r = measure(bus, relay_bin, work, conf, tput, paced)
                    results.setdefault((sweep, x, bus), []).append(r)
                    print(json.dumps({"rep": rep, "sweep": sweep, "x": x, "bus": bus, **r}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(sweep, x, bus):
        rs = results[(sweep, x, bus)]
        return {
            "events_per_s": median(rs, lambda r: r["events_per_s"]),
            **{q: median(rs, lambda r, q=q: r["lat"][q]) for q in ("p50", "p99", "p99.9")},
            "rss_mb": median(rs, lambda r: r["rss_mb"]),
            "lost": sum(r["lost"] for r in rs),
        }

    os.makedirs(args.out, exist_ok=True)
    print(f"\nmedians of {args.reps}; events/s per subscriber; latency in us; peak RSS in MB; "
          "lost counts dropped+reordered over all reps")
    for sweep, (x_label, pts) in SWEEPS.items():
        xs = [x for x, _, _ in pts]
        rows = {x: {bus: med(sweep, x, bus) for bus in BUSES} for x in xs}
        print(f"\n| {sweep} | halite ev/s | relay ev/s | halite/relay | halite p50 / p99 | relay p50 / p99 "
              f"| halite RSS | relay RSS | lost |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in xs:
            h, r = rows[x]["halite"], rows[x]["relay"]
            print(f"| {x:,} | {h['events_per_s']:,.0f} | {r['events_per_s']:,.0f} "
                  f"| {h['events_per_s'] / r['events_per_s']:.2f}x | {h['p50']:.0f} / {h['p99']:.0f} "
                  f"| {r['p50']:.0f} / {r['p99']:.0f} | {h['rss_mb']:.1f} | {r['rss_mb']:.1f} "
                  f"| {h['lost'] + r['lost']} |")
        plot(os.path.join(args.out, f"scaling-{sweep}.svg"), sweep, x_label, xs, rows)
    print("\n| paced, 1 -> 1, 100 B | halite p50 / p99 / p99.9 | relay p50 / p99 / p99.9 | p50 halite/relay | lost |"
          "\n|---|---:|---:|---:|---:|")
    for rate, _ in PACED:
        h, r = med("paced", rate, "halite"), med("paced", rate, "relay")
        print(f"| {rate:,} events/s | {h['p50']:.1f} / {h['p99']:.1f} / {h['p99.9']:.1f} "
              f"| {r['p50']:.1f} / {r['p99']:.1f} / {r['p99.9']:.1f} | {h['p50'] / r['p50']:.2f}x "
              f"| {h['lost'] + r['lost']} |")
    print(f"\nplots: {args.out}/scaling-*.svg")


if __name__ == "__main__":
    main()
