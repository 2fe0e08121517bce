#!/usr/bin/env python3
"""salt-api's event stream under load (not part of the test suite).

Starts halite's salt-master and salt-api in a temporary directory, opens --clients concurrent
/events streams, fires events at --rate per second for --seconds, and reports the API's peak RSS
and the delivery latency (fire to receipt, every event on every client) p50/p99; then
POST / local test.ping requests per second (when the API serves POST /).

    cargo build --release && python3 tests/bench_api.py --bin target/release

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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def client(port, token, latencies, counts, index, ready):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET /events?tag=bench/* HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    ready.release()
    while True:
        line = await reader.readline()
        if not line:
            return
        at = line.find(b'"t": ')
        if line.startswith(b"data: ") and at > 0:
            sent = float(line[at + 5:line.index(b",", at)])
            latencies.append(time.time() - sent)
            counts[index] += 1


async def stream_bench(port, pull, token, api_pid, clients, rate, seconds):
    latencies, counts = [], [0] * clients
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(client(port, token, latencies, counts, i, ready)) for i in range(clients)]
    for _ in range(clients):
        await ready.acquire()
    sender = socket.socket(socket.AF_UNIX)
    sender.connect(pull)
    peak, fired, start = rss_kib(api_pid), 0, time.time()
    while time.time() - start < seconds:
        due = int((time.time() - start) * rate)
        while fired < due:
            sender.sendall(frame("bench/event", {"t": time.time(), "n": fired % 100}))
            fired += 1
        peak = max(peak, rss_kib(api_pid))
        await asyncio.sleep(0.005)
    await asyncio.sleep(2)
    peak = max(peak, rss_kib(api_pid))
    for task in tasks:
        task.cancel()
    sender.close()
    return fired, sum(counts), latencies, peak


def ping_bench(port, token, seconds):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps([{"client": "local", "tgt": "*", "fun": "test.ping"}])
    headers = {"X-Auth-Token": token, "Content-Type": "application/json", "Accept": "application/json"}
    done, start = 0, time.time()
    while time.time() - start < seconds:
        conn.request("POST", "/", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            return f"POST / answered {response.status}"
        done += 1
    return f"{done / (time.time() - start):.0f} requests/s (one connection, sequential)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="target/release", help="directory of halite's binaries")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="hlbench", dir="/tmp")
    port, ret_port = free_port(), free_port()
    os.makedirs(f"{base}/etc")
    with open(f"{base}/etc/master", "w") as f:
        f.write(f"sock_dir: {base}/run\npki_dir: {base}/pki\ncachedir: {base}/cache\n"
                f"ret_port: {ret_port}\ninterface: 127.0.0.1\nlog_file: {base}/master.log\n"
                "external_auth:\n  auto:\n    bench:\n      - .*\n"
                f"rest_cherrypy:\n  host: 127.0.0.1\n  port: {port}\n  disable_ssl: True\n")
    procs = []
    try:
        for name in ("salt-master", "salt-api"):
            procs.append(subprocess.Popen([f"{args.bin}/{name}", "-c", f"{base}/etc", "-l", "warning",
                                           "--log-file", f"{base}/{name}.log"] if name == "salt-api"
                                          else [f"{args.bin}/{name}", "-c", f"{base}/etc", "-l", "warning"]))
            time.sleep(1.5)
        os.makedirs(f"{base}/cache/tokens", exist_ok=True)
        token = os.urandom(20).hex()
        now = time.time()
        with open(f"{base}/cache/tokens/{token}", "wb") as f:
            f.write(pack({"start": now, "expire": now + 3600.0, "name": "bench", "eauth": "auto", "token": token}))
        fired, received, latencies, peak = asyncio.run(stream_bench(
            port, f"{base}/run/master_event_pull.ipc", token, procs[1].pid,
            args.clients, args.rate, args.seconds))
        print(f"halite salt-api: {args.clients} SSE clients, {args.rate} events/s for {args.seconds:.0f} s")
        print(f"  fired {fired}, delivered {received} of {fired * args.clients}")
        print(f"  latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
        print(f"  API peak RSS {peak / 1024:.1f} MiB")
        print(f"  POST / local test.ping: {ping_bench(port, token, 5)}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
