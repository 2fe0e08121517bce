"""Runs one of Salt's beacon modules on a made-up system, for tests/beacon_metrics.rs.

    python beacon_salt.py SPEC.json

SPEC: {"module": "load", "config": [Salt's list form], "root": "/tmp/…",
       "steps": [{"files": {"proc/loadavg": "…"}}, …]}
Before each step its files are written under root; then the beacon is called once. Prints the
JSON list of what each call returned.

The module reads the made-up system: psutil through psutil.PROCFS_PATH, Salt's status
functions through salt.utils.files.fopen (paths under /proc), os.getloadavg from
root/proc/loadavg, and os.statvfs of a path under root.
"""

import importlib
import json
import os
import subprocess
import sys

spec = json.load(open(sys.argv[1]))
root = spec["root"]


def under(path):
    return os.path.join(root, str(path).lstrip("/"))


# Salt reads the real system as it is imported (its IPC buffer sizes): import, then patch.
import psutil  # noqa: E402
import salt.modules.status as status  # noqa: E402
import salt.utils.files  # noqa: E402

module = importlib.import_module("salt.beacons." + spec["module"])
psutil.PROCFS_PATH = under("/proc")

real_statvfs = os.statvfs
os.statvfs = lambda path: real_statvfs(under(path))


def getloadavg():
    with open(under("/proc/loadavg")) as f:
        return tuple(float(x) for x in f.read().split()[:3])


os.getloadavg = getloadavg

real_fopen = salt.utils.files.fopen


def fopen(path, *args, **kwargs):
    if str(path).startswith("/proc/"):
        path = under(path)
    return real_fopen(path, *args, **kwargs)


salt.utils.files.fopen = fopen

if spec["module"] == "status":
    status.__grains__ = {"kernel": "Linux"}
    status.__salt__ = {
        "cmd.run": lambda cmd: subprocess.run(
            cmd, shell=True, capture_output=True, text=True
        ).stdout.rstrip("\n")
    }
    module.__salt__ = {
        "status." + name: getattr(status, name + "_" if name == "time" else name)
        for name in [
            "cpuinfo", "cpustats", "diskstats", "loadavg", "meminfo", "netdev",
            "netstats", "nproc", "time", "uptime", "version", "vmstats",
        ]
    }

valid, why = module.validate(spec["config"])
if not valid:
    sys.exit("Salt refuses the configuration: " + why)
results = []
for step in spec["steps"]:
    for path, text in step.get("files", {}).items():
        os.makedirs(os.path.dirname(under(path)), exist_ok=True)
        with open(under(path), "w") as f:
            f.write(text)
    results.append(module.beacon(json.loads(json.dumps(spec["config"]))))
print(json.dumps(results))
