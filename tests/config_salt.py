"""Loads configurations with real Salt for tests/config_check.rs, which compares halite's
verdict on each option value with Salt's.

    python config_salt.py < CASES

CASES is a JSON list of [ROLE, DIR, OPTION]: DIR holds the config file ROLE (`master` or
`minion`) that sets OPTION. For each, Salt's `master_config` or `minion_config` (as its daemons
call them) loads the file; the answer is a JSON list of verdicts: "accepts" when the load went
through without Salt's type check (`_validate_opts`) warning about OPTION, "refuses" when it
warned or the load failed (Salt fails on some values before checking them).
"""

import json
import logging
import os
import sys

import salt.config

warnings = []


class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())


logging.getLogger().addHandler(Collect())
logging.getLogger().setLevel(logging.WARNING)

verdicts = []
for role, directory, option in json.load(sys.stdin):
    del warnings[:]
    path = os.path.join(directory, role)
    try:
        if role == "master":
            salt.config.master_config(path)
        else:
            salt.config.minion_config(path, ignore_config_errors=False)
    except Exception:  # noqa: BLE001 - any failure is Salt refusing the value
        verdicts.append("refuses")
        continue
    warned = any(w.startswith(f"Config option '{option}'") for w in warnings)
    verdicts.append("refuses" if warned else "accepts")
print(json.dumps(verdicts))
