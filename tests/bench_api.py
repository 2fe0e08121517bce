#!/usr/bin/env python3
"""salt-api's event stream under load (not part of the test suite).

Starts halite's salt-master, salt-minion and salt-api in a temporary directory, logs in through
/login (eauth `auto`), opens --clients concurrent /events streams, fires events at --rate per
second for --seconds into the master's bus, and reports the API's peak RSS (its processes
together) and the delivery latency (fire to receipt, every event on every client) p50/p99; then
POST / local test.ping requests per second, one connection, sequential.

With --salt the same load then runs against Salt 3007.8's rest_cherrypy with its own master and
minion, started from the test venv (tests/salt-env.sh adds CherryPy beside it) by tests/salt_lab.py,
with `thread_pool` raised to the number of clients plus ten: CherryPy serves each /events stream
from a thread of its pool (100 by default). Salt's /events has no tag filter: its clients read
every event and count the bench's.

    cargo build --release && python3 tests/bench_api.py --bin target/release --salt

Python's standard library only. The clients run in this process with asyncio: on a small
machine they, not the API, may be the limit; the report says how many events arrived.
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pack(value):
    """msgpack for the few shapes needed here: maps, str, bytes, float, small ints."""
    if isinstance(value, dict):
        out = bytes([0x80 | len(value)]) if len(value) < 16 else b"\xde" + struct.pack(">H", len(value))
        for k, v in value.items():
            out += pack(k) + pack(v)
        return out
    if isinstance(value, str):
        raw = value.encode()
        return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xd9" + bytes([len(raw)])) + raw
    if isinstance(value, bytes):
        return b"\xc5" + struct.pack(">H", len(value)) + value
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, int) and 0 <= value < 128:
        return bytes([value])
    raise TypeError(value)


def frame(tag, data):
    return pack({"head": {}, "body": tag.encode() + b"\n\n" + pack(data)})


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def client(port, token, latencies, counts, index, ready, query):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(f"GET /events{query} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n")[0].decode())
    except Exception as exc:  # noqa: BLE001 - counted, not fatal
        ready.release()
        counts[index] = -1
        print(f"  client {index}: {exc!r}", file=sys.stderr) if index < 3 else None
        return
    ready.release()
    while True:
        line = await reader.readline()
        if not line:
            return
        at = line.find(b'"t": ')
        if line.startswith(b"data: ") and at > 0 and b"bench/event" in line:
            sent = float(line[at + 5:line.index(b",", at)])
            latencies.append(time.time() - sent)
            counts[index] += 1


async def stream_bench(port, pull, token, pids, clients, rate, seconds, query):
    latencies, counts = [], [0] * clients
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(client(port, token, latencies, counts, i, ready, query))
             for i in range(clients)]
    for _ in range(clients):
        await ready.acquire()
    await asyncio.sleep(2)  # Salt subscribes each stream to the bus after its headers
    # The sender is a thread of its own, so that busy clients do not slow the firing.
    fired = [0]

    def fire():
        with socket.socket(socket.AF_UNIX) as sender:
            sender.connect(pull)
            start = time.time()
            while time.time() - start < seconds:
                due = int((time.time() - start) * rate)
                while fired[0] < due:
                    sender.sendall(frame("bench/event", {"t": time.time(), "n": fired[0] % 100}))
                    fired[0] += 1
                time.sleep(0.002)

    sender = threading.Thread(target=fire)
    peak = rss_kib(pids)
    sender.start()
    while sender.is_alive():
        peak = max(peak, rss_kib(pids))
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    peak = max(peak, rss_kib(pids))
    for task in tasks:
        task.cancel()
    fired = fired[0]
    connected = sum(1 for count in counts if count >= 0)
    return fired, sum(count for count in counts if count > 0), connected, latencies, peak


def login(port):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/login", json.dumps({"username": "bench", "password": "x", "eauth": "auto"}),
                 {"Content-Type": "application/json", "Accept": "application/json"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"POST /login answered {response.status}: {body[:200]!r}")
    return json.loads(body)["return"][0]["token"]


def ping_bench(port, token, seconds):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps([{"client": "local", "tgt": "*", "fun": "test.ping"}])
    headers = {"X-Auth-Token": token, "Content-Type": "application/json", "Accept": "application/json"}
    done, missed, start = 0, 0, time.time()
    while time.time() - start < seconds:
        conn.request("POST", "/", body, headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            return f"POST / answered {response.status}"
        done += 1
        missed += b'"minion1": true' not in answer  # the minion did not answer in time
    return (f"{done / (time.time() - start):.1f} requests/s (one connection, sequential)"
            + (f", {missed} of {done} without the minion's return" if missed else ""))


def tree(pid):
    """pid and its descendants (salt-api forks its netapi server)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            children.setdefault(int(st[st.rindex(")") + 2:].split()[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def report(name, args, clients, query, port, pull, api_pid):
    token = login(port)
    pids = tree(api_pid)
    fired, received, connected, latencies, peak = asyncio.run(stream_bench(
        port, pull, token, pids, clients, args.rate, args.seconds, query))
    print(f"{name}: {connected} of {clients} SSE clients connected, {args.rate} events/s for {args.seconds:.0f} s")
    print(f"  fired {fired}, delivered {received} of {fired * connected}")
    print(f"  latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"  API peak RSS {peak / 1024:.1f} MiB ({len(pids)} processes)")
    print(f"  POST / local test.ping: {ping_bench(port, token, args.ping_seconds)}", flush=True)


EAUTH = {"auto": {"bench": [".*", "@runner", "@wheel", "@jobs"]}}
CLIENTS = ["local", "local_async", "runner", "wheel"]


def halite(args):
    base = tempfile.mkdtemp(prefix="hlbench", dir="/tmp")
    port, ret_port = free_port(), free_port()
    os.makedirs(f"{base}/etc")
    with open(f"{base}/etc/master", "w") as f:
        f.write(f"sock_dir: {base}/run\npki_dir: {base}/pki\ncachedir: {base}/cache\n"
                f"ret_port: {ret_port}\ninterface: 127.0.0.1\nlog_file: {base}/master.log\n"
                f"auto_accept: True\nexternal_auth: {json.dumps(EAUTH)}\n"
                f"netapi_enable_clients: {json.dumps(CLIENTS)}\n"
                f"rest_cherrypy:\n  host: 127.0.0.1\n  port: {port}\n  disable_ssl: True\n")
    with open(f"{base}/etc/minion", "w") as f:
        f.write(f"id: minion1\nsock_dir: {base}/mrun\npki_dir: {base}/mpki\ncachedir: {base}/mcache\n"
                f"master: 127.0.0.1\nmaster_port: {ret_port}\nlog_file: {base}/minion.log\n")
    procs = []
    try:
        for name in ("salt-master", "salt-minion", "salt-api"):
            command = [f"{args.bin}/{name}", "-c", f"{base}/etc", "-l", "warning"]
            if name == "salt-api":
                command += ["--log-file", f"{base}/{name}.log"]
            procs.append(subprocess.Popen(command))
            time.sleep(1.5)
        report("halite salt-api", args, args.clients, "?tag=bench/*", port,
               f"{base}/run/master_event_pull.ipc", procs[-1].pid)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def salt(args):
    here = os.path.dirname(os.path.abspath(__file__))
    venv = os.path.join(os.environ.get("HALITE_SALT_ENVS", os.path.expanduser("~/.cache/halite/salt-envs")),
                        "3007.8")
    base = tempfile.mkdtemp(prefix="hsbench", dir="/tmp")
    port = free_port()
    rest = {"port": port, "host": "127.0.0.1", "disable_ssl": True, "thread_pool": args.salt_clients + 10,
            "queue_size": 100}
    lab = [sys.executable, f"{here}/salt_lab.py"]
    try:
        up = subprocess.run(lab + ["up", base, "--venv", venv, "--api",
                                   "--master-opt", f"rest_cherrypy={json.dumps(rest)}",
                                   "--master-opt", f"external_auth={json.dumps(EAUTH)}",
                                   "--master-opt", f"netapi_enable_clients={json.dumps(CLIENTS)}"],
                            capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"Salt's lab did not start: {up.stdout}{up.stderr}")
        info = json.loads(up.stdout)
        report("Salt 3007.8 rest_cherrypy", args, args.salt_clients, "", port, info["master_pull"],
               info["api_pid"])
    finally:
        subprocess.run(lab + ["down", base, "--kill"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="target/release", help="directory of halite's binaries")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--ping-seconds", type=float, default=5)
    parser.add_argument("--salt", action="store_true", help="then the same against Salt's rest_cherrypy")
    parser.add_argument("--salt-clients", type=int, help="SSE clients for Salt (default --clients)")
    args = parser.parse_args()
    args.salt_clients = args.salt_clients or args.clients
    with open("/proc/loadavg") as f:
        print(f"load average before: {' '.join(f.read().split()[:3])}; {os.cpu_count()} CPUs", flush=True)
    halite(args)
    if args.salt:
        salt(args)


if __name__ == "__main__":
    sys.exit(main())
