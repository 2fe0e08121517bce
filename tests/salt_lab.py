#!/usr/bin/env python3
"""Throw-away real-Salt lab: config generator plus start/stop helpers.

Run it with any python3 for `write`; `up`/`down` also work with any python3
(the daemons are started from --venv). Nothing outside BASE is touched.

  salt_lab.py write BASE [--venv VENV] [--publish-port P] [--ret-port R] [--id minion1]
                         [--log-level info] [--master-opt K=JSON]... [--minion-opt K=JSON]...
      writes BASE/conf/{master,minion} + directory tree; prints a JSON summary
      (paths of conf dir, sock dirs, the four event sockets, logs, ports, bin).
      Ports default to free loopback ports (pick-and-release: tiny race).
  salt_lab.py up BASE --venv VENV [--no-minion] [--timeout 60] [write options]
      `write` (unless BASE/conf/master exists), then starts salt-master (and
      salt-minion --disable-keepalive) not daemonized, each in its own session
      (pgid = pid, recorded in BASE/run/lab-*.pid), output in BASE/log/*.out, and waits
      until master_event_{pub,pull}.ipc exist and, for the minion, until
      salt/minion/<id>/start was seen on the master bus and its
      minion_event_<H>_{pub,pull}.ipc exist. Prints the JSON summary plus pids and timings. Exit 1 on timeout.
      With --api, then salt-api too (the master config must hold a `rest_cherrypy` block, e.g.
      --master-opt 'rest_cherrypy={"port": 8123, "host": "127.0.0.1", "disable_ssl": true}'),
      waiting until its port accepts connections; its log is BASE/log/api.log.
  salt_lab.py down BASE [--timeout 30] [--kill]
      SIGTERM the daemons started by `up` (process groups), wait, SIGKILL leftovers.
      SIGTERM takes 5-7 s for the minion, 2-4 s for the master; --kill is instant
      and harmless for a throw-away BASE (stale socket files are re-bound on start).

Use from the shell:   salt-call -c BASE/conf ...   salt-run -c BASE/conf ...
"""
import argparse
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def minion_hash(minion_id, hash_type="sha256"):
    return hashlib.new(hash_type, minion_id.encode("utf-8")).hexdigest()[:10]


def _yaml(opts):
    # JSON is a subset of YAML: no yaml module needed.
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in opts.items())


def summary(base, minion_id="minion1"):
    base = os.path.abspath(base)
    h = minion_hash(minion_id)
    info = {
        "base": base,
        "conf_dir": f"{base}/conf",
        "id": minion_id,
        "minion_hash": h,
        "master_sock_dir": f"{base}/run/master",
        "minion_sock_dir": f"{base}/run/minion",
        "master_pub": f"{base}/run/master/master_event_pub.ipc",
        "master_pull": f"{base}/run/master/master_event_pull.ipc",
        "minion_pub": f"{base}/run/minion/minion_event_{h}_pub.ipc",
        "minion_pull": f"{base}/run/minion/minion_event_{h}_pull.ipc",
        "master_log": f"{base}/log/master.log",
        "minion_log": f"{base}/log/minion.log",
    }
    ports = f"{base}/conf/ports.json"
    if os.path.exists(ports):
        with open(ports) as f:
            info.update(json.load(f))
    return info


def write(base, publish_port=None, ret_port=None, minion_id="minion1",
          log_level="info", master_opts=None, minion_opts=None):
    """Write BASE/conf/master and BASE/conf/minion; return the summary dict."""
    base = os.path.abspath(base)
    publish_port = publish_port or free_port()
    ret_port = ret_port or free_port()
    while ret_port == publish_port:
        ret_port = free_port()
    for d in ("conf", "pki/master", "pki/minion", "cache/master", "cache/minion",
              "run/master", "run/minion", "log", "srv/salt", "srv/pillar"):
        os.makedirs(f"{base}/{d}", exist_ok=True)
    common = {
        "root_dir": base,
        "user": "root",
        "log_level_logfile": log_level,
        "file_roots": {"base": [f"{base}/srv/salt"]},
        "pillar_roots": {"base": [f"{base}/srv/pillar"]},
    }
    master = dict(common)
    master.update({
        "pki_dir": f"{base}/pki/master",
        "cachedir": f"{base}/cache/master",
        "sock_dir": f"{base}/run/master",
        "pidfile": f"{base}/run/salt-master.pid",
        "log_file": f"{base}/log/master.log",
        "key_logfile": f"{base}/log/key.log",
        "interface": "127.0.0.1",
        "publish_port": publish_port,
        "ret_port": ret_port,
        "auto_accept": True,
        "worker_threads": 3,
        "fileserver_backend": ["roots"],
    })
    master.update(master_opts or {})
    minion = dict(common)
    minion.update({
        "id": minion_id,
        "pki_dir": f"{base}/pki/minion",
        "cachedir": f"{base}/cache/minion",
        "sock_dir": f"{base}/run/minion",
        "pidfile": f"{base}/run/salt-minion.pid",
        "log_file": f"{base}/log/minion.log",
        "master": "127.0.0.1",
        "master_port": ret_port,
        "publish_port": publish_port,
        "acceptance_wait_time": 1,
        "random_reauth_delay": 0,
        "enable_fqdns_grains": False,   # reverse DNS per address: slow offline
        "enable_gpu_grains": False,
        "grains_cache": False,
    })
    minion.update(minion_opts or {})
    with open(f"{base}/conf/master", "w") as f:
        f.write(_yaml(master))
    with open(f"{base}/conf/minion", "w") as f:
        f.write(_yaml(minion))
    with open(f"{base}/conf/ports.json", "w") as f:
        json.dump({"publish_port": publish_port, "ret_port": ret_port}, f)
    info = summary(base, minion_id)
    if len(info["minion_pull"]) > 100:
        print(f"warning: socket path longer than 100 bytes: {info['minion_pull']}",
              file=sys.stderr)
    return info


# ---------------------------------------------------------------- bus watching
def _connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    s.settimeout(0.2)
    return s


def _events(s, deadline):
    """Yield (tag, raw_data_bytes) from a connected pub socket; auto-detects framing."""
    buf = b""
    prefixed = None
    try:
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return
            buf += chunk
            if prefixed is None:
                prefixed = buf[0] == 0
            while True:
                if prefixed:
                    if len(buf) < 4:
                        break
                    n = struct.unpack(">I", buf[:4])[0]
                    if len(buf) < 4 + n:
                        break
                    frame, buf = buf[4:4 + n], buf[4 + n:]
                    body = _body(frame)
                else:
                    body, used = _bare_body(buf)
                    if body is None:
                        break
                    buf = buf[used:]
                tag, _, data = body.partition(b"\n\n")
                yield tag.decode("utf-8", "replace"), data
    finally:
        s.close()


def _body(frame):
    import msgpack  # from the salt venv, or any msgpack
    return msgpack.unpackb(frame, raw=True)[b"body"]


def _bare_body(buf):
    import msgpack
    up = msgpack.Unpacker(raw=True)
    up.feed(buf)
    try:
        obj = next(up)
    except StopIteration:
        return None, 0
    return obj[b"body"], up.tell()


# ---------------------------------------------------------------- up / down
def _wait_path(path, deadline, procs):
    while not os.path.exists(path):
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}")
        if time.time() > deadline:
            raise TimeoutError(f"timeout waiting for {path}")
        time.sleep(0.02)


def _api_port(base):
    """The `rest_cherrypy` port of BASE's master config (written by `write`: one JSON value a line)."""
    with open(f"{base}/conf/master") as f:
        for line in f:
            if line.startswith("rest_cherrypy: "):
                return int(json.loads(line.partition(": ")[2])["port"])
    raise SystemExit("--api: the master config has no rest_cherrypy block")


def _wait_port(port, deadline, procs):
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}")
        if time.time() > deadline:
            raise TimeoutError(f"timeout waiting for salt-api on port {port}")
        time.sleep(0.05)


def up(base, venv, minion=True, timeout=60.0, api=False, **write_kw):
    base = os.path.abspath(base)
    if not os.path.exists(f"{base}/conf/master"):
        write(base, **write_kw)
    info = summary(base, write_kw.get("minion_id") or "minion1")
    bindir = info["bin"] = os.path.join(os.path.abspath(venv), "bin")
    for name in ("master", "minion", "api"):
        pf = f"{base}/run/lab-{name}.pid"
        if os.path.exists(pf):
            with open(pf) as f:
                if _group_alive(int(f.read().strip())):
                    raise SystemExit(f"salt-{name} of {base} still running: run `down` first")
    stale = [info["master_pub"], info["minion_pub"]]
    stale += [f"{base}/run/{f}" for f in os.listdir(f"{base}/run")
              if f.endswith(".pid") and not f.startswith("lab-")]
    for path in stale:
        # Socket files survive a daemon (don't trust them). salt-*.pid and
        # process_responsibility_salt-*.pid naming a not yet reaped (zombie) pid
        # make Salt exit at once with "An instance is already running".
        if os.path.exists(path):
            os.unlink(path)
    procs = {}
    t0 = time.time()
    deadline = t0 + timeout

    def start(name):
        out = open(f"{base}/log/{name}.out", "ab")
        cmd = [f"{bindir}/salt-{name}", "-c", f"{base}/conf", "-l", "warning"]
        if name == "minion":
            # no keep-alive parent: its 5 s watchdog thread delays exit on SIGTERM
            cmd.append("--disable-keepalive")
        if name == "api":
            cmd += ["--log-file", f"{base}/log/api.log", "--pid-file", f"{base}/run/salt-api.pid"]
        env = None
        if name == "api":
            # CherryPy lives beside the venv, for salt-api alone (tests/salt-env.sh says why).
            version = os.path.basename(os.path.dirname(bindir))
            cherrypy = os.path.join(os.path.dirname(os.path.dirname(bindir)), f"cherrypy-{version}")
            env = dict(os.environ, PYTHONPATH=cherrypy)
        p = subprocess.Popen(cmd,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=base, env=env)
        with open(f"{base}/run/lab-{name}.pid", "w") as f:
            f.write(str(p.pid))
        procs[name] = p
        info[f"{name}_pid"] = p.pid

    start("master")
    try:
        _wait_path(info["master_pub"], deadline, procs)
        _wait_path(info["master_pull"], deadline, procs)
        info["master_ready_s"] = round(time.time() - t0, 2)
        if minion:
            # Subscribe before the minion starts so its start event is not missed.
            # Retry: the pub socket file appears just before listen().
            while True:
                try:
                    evs = _events(_connect(info["master_pub"]), deadline)
                    break
                except (ConnectionRefusedError, FileNotFoundError):
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
            t1 = time.time()
            start("minion")
            want = f"salt/minion/{info['id']}/start"
            for tag, _ in evs:
                if tag == want:
                    break
                for name, p in procs.items():
                    if p.poll() is not None:
                        raise RuntimeError(f"{name} exited with {p.returncode}")
            else:
                raise TimeoutError(f"timeout waiting for {want}")
            _wait_path(info["minion_pub"], deadline, procs)
            _wait_path(info["minion_pull"], deadline, procs)
            info["minion_ready_s"] = round(time.time() - t1, 2)
        if api:
            t2 = time.time()
            info["api_port"] = _api_port(base)
            start("api")
            _wait_port(info["api_port"], deadline, procs)
            info["api_ready_s"] = round(time.time() - t2, 2)
    except Exception as exc:
        info["error"] = str(exc)
        print(json.dumps(info, indent=1))
        down(base)
        return 1
    print(json.dumps(info, indent=1))
    return 0


def _group_alive(pgid):
    """True while a non-zombie process of process group pgid exists (Linux /proc)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()   # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def down(base, timeout=30.0, kill=False):
    base = os.path.abspath(base)
    rc = 0
    pids = {}
    for name in ("api", "minion", "master"):
        pf = f"{base}/run/lab-{name}.pid"
        if os.path.exists(pf):
            with open(pf) as f:
                pids[name] = int(f.read().strip())
    t0 = time.time()
    for name, pid in pids.items():
        try:
            # pgid == pid (start_new_session)
            os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
        except ProcessLookupError:
            pass
    for name, pid in pids.items():
        while time.time() - t0 < timeout:
            try:  # reap if it is our child (it normally is not)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _group_alive(pid):
                break
            time.sleep(0.05)
        else:
            rc = 1
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.unlink(f"{base}/run/lab-{name}.pid")
    print(json.dumps({"stopped": pids, "seconds": round(time.time() - t0, 2),
                      "killed": bool(rc)}))
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def wopts(p):
        p.add_argument("base")
        p.add_argument("--publish-port", type=int)
        p.add_argument("--ret-port", type=int)
        p.add_argument("--id", dest="minion_id", default="minion1")
        p.add_argument("--log-level", default="info", help="log_level_logfile")
        p.add_argument("--master-opt", action="append", default=[], metavar="K=JSON")
        p.add_argument("--minion-opt", action="append", default=[], metavar="K=JSON")
        p.add_argument("--venv", required=(p.prog.endswith(" up")),
                       help="Salt venv (tests/salt-env.sh); its bin/ goes into the summary")

    wopts(sub.add_parser("write"))
    p = sub.add_parser("up")
    wopts(p)
    p.add_argument("--no-minion", action="store_true")
    p.add_argument("--api", action="store_true", help="start salt-api too (rest_cherrypy)")
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("down")
    p.add_argument("base")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="SIGKILL what is left after this many seconds")
    p.add_argument("--kill", action="store_true",
                   help="SIGKILL at once (a SIGTERMed minion needs 5-7 s to exit)")
    a = ap.parse_args(argv)

    def kv(items):
        out = {}
        for it in items:
            k, _, v = it.partition("=")
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        return out

    if a.cmd == "down":
        return down(a.base, a.timeout, a.kill)
    if a.cmd == "up":
        try:
            import msgpack  # noqa: F401
        except ImportError:  # re-run under the venv's python, which has msgpack
            py = os.path.join(os.path.abspath(a.venv), "bin", "python")
            os.execv(py, [py, os.path.abspath(__file__)] + (argv or sys.argv[1:]))
    kw = dict(publish_port=a.publish_port, ret_port=a.ret_port, minion_id=a.minion_id,
              log_level=a.log_level, master_opts=kv(a.master_opt),
              minion_opts=kv(a.minion_opt))
    if a.cmd == "write":
        info = write(a.base, **kw)
        if a.venv:
            info["bin"] = os.path.join(os.path.abspath(a.venv), "bin")
        print(json.dumps(info, indent=1))
        return 0
    return up(a.base, a.venv, minion=not a.no_minion, timeout=a.timeout, api=a.api, **kw)


if __name__ == "__main__":
    sys.exit(main())
