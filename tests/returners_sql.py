"""Salt's own SQL returners, driven for halite's comparison tests (tests/returners_sql.rs).

Reads one JSON request on stdin:
    {"module": "mysql" | "pgjsonb" | "sqlite3", "opts": {...}, "connect": {...},
     "steps": [["schema"], ["call", "<function>", arg...], ["rows", "<sql>"], ...]}
and prints one JSON list: for each step {"ok": <answer>} or {"error": "<type>: <message>"}.

"schema" creates the tables from the SQL in the module's own documentation; "call" runs one
of the module's functions with `__opts__` set as a master's would be; "rows" reads rows with the
module's database driver ("connect": host, port, user, pass, db; or database for sqlite3).
"""

import datetime
import importlib
import json
import re
import sys


def ddl(module):
    """The statements of the first SQL code block of the module's documentation."""
    block = module.__doc__.split(".. code-block:: sql", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        line = line[4:]
        if line.startswith(("--", "sqlite3 ", "EOF")):
            continue
        lines.append(line)
    statements = [s.strip() for s in "\n".join(lines).split(";")]
    return [
        s
        for s in statements
        if s and not re.match(r"(CREATE DATABASE|USE )", s, re.IGNORECASE)
    ]


def connect(name, params):
    if name == "mysql":
        import pymysql

        return pymysql.connect(
            host=params["host"],
            port=params["port"],
            user=params["user"],
            password=params["pass"],
            database=params["db"],
        )
    if name == "pgjsonb":
        import psycopg2

        return psycopg2.connect(
            host=params["host"],
            port=params["port"],
            user=params["user"],
            password=params["pass"],
            dbname=params["db"],
        )
    import sqlite3

    return sqlite3.connect(params["database"])


def plain(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def main():
    request = json.load(sys.stdin)
    name = request["module"]
    module = importlib.import_module(
        "salt.returners." + ("sqlite3_return" if name == "sqlite3" else name)
    )
    module.__opts__ = request["opts"]
    module.__salt__ = {}
    module.__context__ = {}
    answers = []
    for step in request["steps"]:
        try:
            if step[0] == "schema":
                conn = connect(name, request["connect"])
                cur = conn.cursor()
                for statement in ddl(module):
                    cur.execute(statement)
                conn.commit()
                conn.close()
                answer = None
            elif step[0] == "rows":
                conn = connect(name, request["connect"])
                cur = conn.cursor()
                cur.execute(step[1])
                answer = [list(row) for row in cur.fetchall()]
                conn.close()
            else:
                answer = getattr(module, step[1])(*step[2:])
            answers.append({"ok": answer})
        except Exception as exc:  # pylint: disable=broad-except
            answers.append({"error": f"{type(exc).__name__}: {exc}"})
    json.dump(answers, sys.stdout, default=plain, ensure_ascii=False)


main()
