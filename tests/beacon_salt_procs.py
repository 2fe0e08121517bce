"""Runs one of real Salt's beacon modules for tests/beacon_procs.rs, which compares its events
with halite's on the same input.

    python beacon_salt.py MODULE CONFIG SETUP

MODULE is the file under salt/beacons (`ps`, `service`, `wtmp`, `btmp`, `log_beacon`); CONFIG
the beacon's configuration as JSON, in Salt's list form; SETUP a JSON map of what the module
reads elsewhere than the test's files:

    file    the path the module reads instead of its hard-coded /var/log/wtmp or btmp
    group   an /etc/group file, read by a stand-in for `group.info`

`service.status` is a stand-in too: whether psutil names a process so (what Salt's falls back
to where systemd does not run, minus its regex search over whole `ps` lines).

Each `check` line on stdin calls the module's beacon() once and prints its events as one JSON
line. Nothing here needs root.
"""

import importlib
import json
import sys


def group_info(path):
    def info(name):
        with open(path, encoding="utf-8") as groups:
            for line in groups:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    members = [m for m in fields[3].split(",") if m] if len(fields) > 3 else []
                    return {"name": name, "members": members}
        return {}

    return info


def service_status(name):
    import psutil

    names = set()
    for process in psutil.process_iter():
        try:
            names.add(process.name())
        except psutil.Error:
            pass
    return name in names


def main():
    name, config, setup = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    module = importlib.import_module("salt.beacons." + name)
    # What Salt's loader injects.
    module.__context__ = {}
    module.__opts__ = {}
    module.__salt__ = {"service.status": service_status}
    if "group" in setup:
        module.__salt__["group.info"] = group_info(setup["group"])
    if "file" in setup:
        setattr(module, name.upper(), setup["file"])
    for line in sys.stdin:
        if line.strip() == "check":
            print(json.dumps(module.beacon(config)), flush=True)


if __name__ == "__main__":
    main()
