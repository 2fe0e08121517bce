#!/usr/bin/env python3
# The seed's job audit, written the seed's way: listen on the master's event bus with Salt's
# own event library and insert every job return into MySQL's salt_returns, skipping
# saltutil.find_job. Only what Python 3 requires changed (dict.has_key is gone); MySQLdb is
# PyMySQL in MySQLdb mode. Run with the master's config directory as the only argument.
import json
import os
import sys

import pymysql

pymysql.install_as_MySQLdb()

import MySQLdb  # noqa: E402

import salt.config  # noqa: E402
import salt.utils.event  # noqa: E402

__opts__ = salt.config.client_config(os.path.join(sys.argv[1], "master"))

# Create MySQL connect
conn = MySQLdb.connect(
    host=__opts__["mysql.host"],
    user=__opts__["mysql.user"],
    passwd=__opts__["mysql.pass"],
    db=__opts__["mysql.db"],
    port=__opts__["mysql.port"],
)
cursor = conn.cursor()

# Listen Salt Master Event System
event = salt.utils.event.MasterEvent(__opts__["sock_dir"])
print("listening", flush=True)
for eachevent in event.iter_events(full=True):
    ret = eachevent["data"]
    if "salt/job/" in eachevent["tag"]:
        # Return Event
        if "id" in ret and "return" in ret:
            # Ignore saltutil.find_job event
            if ret["fun"] == "saltutil.find_job":
                continue

            sql = """INSERT INTO `salt_returns`
                    (`fun`, `jid`, `return`, `id`, `success`, `full_ret` )
                    VALUES (%s, %s, %s, %s, %s, %s)"""
            cursor.execute(
                sql,
                (
                    ret["fun"],
                    ret["jid"],
                    json.dumps(ret["return"]),
                    ret["id"],
                    ret["success"],
                    json.dumps(ret),
                ),
            )
            cursor.execute("COMMIT")
    # Other Event
    else:
        pass
