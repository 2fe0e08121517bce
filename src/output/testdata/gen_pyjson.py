# Generates pyjson_cases.jsonl with real Salt 3007.8 + CPython: each case is the msgpack
# bytes of an event's data and what state.event prints for it (None where Salt raises).
# Usage: python3 -m venv v && v/bin/pip install salt==3007.8 looseversion packaging msgpack pyyaml
#        jinja2 markupsafe psutil distro tornado pyzmq requests cryptography pycryptodomex
#        v/bin/python THIS_SCRIPT OUTPUT_FILE
import datetime, json, sys
import msgpack
import salt.payload, salt.utils.data, salt.utils.json

def ext78(s): return msgpack.ExtType(78, s.encode())
cases = []
def add(name, packed):
    out = {"name": name, "msgpack": packed.hex()}
    for mode, pretty in (("compact", False), ("pretty", True)):
        try:
            data = salt.payload.loads(packed, encoding="utf-8")
            out[mode] = salt.utils.json.dumps(salt.utils.data.decode(data), sort_keys=pretty, indent=None if not pretty else 4)
        except Exception as e:
            out[mode] = None
    cases.append(out)
def addv(name, value, **kw):
    add(name, msgpack.packb(value, use_bin_type=True, **kw))

ctrl = "".join(chr(c) for c in range(0, 0x21))
addv("kv", {"foo": "bar", "num": 3})
addv("controls", {"s": ctrl + "\x7f\u2028\u2029é✓😀\"\\/'"})
addv("unicode keys sorted", {"b": 1, "a": 2, "é": 3, "Z": 4, "_stamp": 5, "ä": 6, "😀": 7, "\uffff": 8, "": 9, "a\n": 10})
addv("nested", {"a": {"b": [1, {"c": []}, {}], "d": {}}, "e": [], "f": [[], [[]], [1, [2, [3]]]]})
addv("ints", [0, 1, -1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63])
addv("floats", [0.1, 2.0, 1e-05, 1e-4, 0.0001234, 1e16, 9999999999999998.0, 1.5e300, -0.0, 0.0, float("nan"), float("inf"), float("-inf"), 1e22, 123456789012345678.0, 5e-324, 1.7976931348623157e308, -2.5e-7, 100.0, 1234567.0])
add("float32", msgpack.packb([1.1, 0.1, 3.0, 1e-7, 16777217.0, float("inf")], use_single_float=True))
addv("int keys", {1: "a", 2: "b", "_stamp": "x"})
addv("int keys only", {10: "a", 2: "b", -1: "c", 1.5: "d"})
addv("float keys", {1.5: "x", 1e16: "y", 0.1: "z", float("inf"): 1, float("-inf"): 2})
addv("nan key", {float("nan"): 1})
addv("bool keys", {True: 1, False: 2})
addv("none key", {None: 1})
addv("none key mixed", {None: 1, "a": 2})
addv("mixed keys", {1: "a", "b": 2})
addv("bytes values", {"b": b"abc", "u": "h\xe9".encode(), "e": b""})
addv("bytes keys", {b"k": 1, "j": 2})
addv("bad bytes", {"b": b"\xff\x00raw"})
add("bad str", b"\x81\xa1s\xa2\xff\xfe")
add("datetime", salt.payload.dumps({"when": datetime.datetime(2026, 11, 24, 8, 0), "w2": datetime.datetime(2026, 11, 24, 8, 35, 2, 388660)}, use_bin_type=True))
addv("datetime odd", {"a": ext78("2026111T1:2:3.5"), "b": ext78("20261124T08:00:00.000001")})
addv("datetime key", {ext78("20261124T08:00:00.000000"): 1, "a": 2})
add("other ext", b"\x82\xa1x" + msgpack.packb(msgpack.ExtType(5, b"payload")) + b"\xa1y\xc7\x02\xfdok")
addv("toplevel list", [1, "two", None, True, False, {"k": "v"}])
addv("toplevel str", "just a string")
addv("toplevel none", None)
addv("toplevel true", True)
addv("empty dict", {})
addv("empty list", [])
addv("deep", {"l1": {"l2": {"l3": {"l4": [1, {"l5": "x"}]}}}})
addv("bin in list", [b"ok", "s"])
add("str8 etc", msgpack.packb({"s" * 40: "x" * 300}, use_bin_type=True))
with open(sys.argv[1], "w") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=True) + "\n")
