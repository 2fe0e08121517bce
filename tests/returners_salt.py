"""Runs one of real Salt's returner modules for tests/returners_files.rs, which compares what it
writes with what halite's returner of the same name writes for the same input.

    python returners_salt.py MODULE FUNCTION OPTS INPUT

MODULE is the file under salt/returners (`rawfile_json`, `syslog_return`, `local`); FUNCTION
`returner` (called once per item of INPUT, a JSON list of return dicts, as a minion calls it) or
`event_return` (called once with INPUT, a JSON list of {"data", "tag"} items, as the master's
EventReturn calls it); OPTS the JSON of `__opts__`, where the module reads its options through
a stand-in for `config.option` (which minions and the master's EventReturn both load).

What `rawfile_json` writes goes to the file OPTS names; what `local` prints comes out on stdout.
For `syslog_return`, Python's `syslog` functions are stand-ins that print, for each message, a
JSON line {"ident", "logoption", "priority", "message"} (ident null when Salt passes none); with
`--wire`, run where /dev is a fresh tmpfs (a mount namespace of its own), the real ones send to
a /dev/log this script binds, and each datagram libc sent is printed as a JSON string line.
"""

import json
import socket
import sys

import salt.returners.local
import salt.returners.rawfile_json
import salt.returners.syslog_return
import salt.utils.stringutils  # noqa: F401 - syslog_return uses it without importing it


def record_syslog(module):
    state = {}

    def openlog(ident=None, logoption=0, facility=None):
        state.update(ident=ident, logoption=logoption)

    def log(priority, message):
        print(json.dumps(dict(state, priority=priority, message=message)), flush=True)

    module.syslog.openlog = openlog
    module.syslog.syslog = log
    module.syslog.closelog = lambda: state.clear()


def main():
    wire = "--wire" in sys.argv
    name, function, opts, given = [arg for arg in sys.argv[1:] if arg != "--wire"]
    module = getattr(salt.returners, name)
    # What Salt's loader injects.
    module.__opts__ = json.loads(opts)
    module.__salt__ = {
        "config.option": lambda key, default="": module.__opts__.get(key, default)
    }
    given = json.loads(given)
    log = None
    if name == "syslog_return":
        if wire:
            log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            log.bind("/dev/log")
        else:
            record_syslog(module)
    if function == "returner":
        for ret in given:
            module.returner(ret)
    else:
        module.event_return(given)
    if log is not None:
        for _ in given:
            print(json.dumps(log.recv(1 << 20).decode()), flush=True)


if __name__ == "__main__":
    main()
