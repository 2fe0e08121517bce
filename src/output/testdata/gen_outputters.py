# Generates outputter_cases.jsonl with real Salt 3007.8 outputters (salt/output/*.py on
# PyYAML's CSafeDumper): msgpack bytes of a value, and what salt-call / salt-run print for it.
# Usage: python3 -m venv v && v/bin/pip install salt==3007.8 looseversion packaging msgpack pyyaml
#        jinja2 markupsafe psutil distro tornado pyzmq requests cryptography pycryptodomex
#        v/bin/python THIS_SCRIPT OUTPUT_FILE
import datetime, json, sys
import msgpack
import salt.payload, salt.utils.data
import salt.output.nested as nested, salt.output.json_out as json_out, salt.output.yaml_out as yaml_out
import salt.output.txt as txt, salt.output.raw as raw, salt.output.no_out_quiet as quiet

def printed(fn, data, opts, **kw):
    for m in (nested, json_out, yaml_out, txt, raw, quiet):
        m.__opts__ = dict(opts)
    s = fn(data, **kw)
    if s is None:
        return ""
    s = s.rstrip()
    return s + "\n" if s else ""

values = {
    "true": True, "false": False, "none": None, "int": 42, "neg": -7, "float": 1.5, "bigfloat": 1e16,
    "smallfloat": 1e-05, "nan": float("nan"), "inf": float("-inf"), "str": "hello", "empty str": "",
    "multiline": "line one\nline two\n\nline four\n", "esc": "bad \x1b[31m red", "unicode": "héllo ✓ 😀",
    "list": [1, "two", None, True, 2.5],
    "nested list": [[1, 2], [], {"a": 1}, {}, [[3]], "x"],
    "dict": {"b": 2, "a": 1, "c": {"z": [1, {"q": None}], "y": {}}},
    "dict mixed keys": {1: "one", "b": "bee", 2.5: "f", None: "n"},
    "dict int keys": {10: "ten", 2: "two", -1: "neg"},
    "multiline in list": ["a\nb", "c"],
    "doc": {"event.send": "\n    Send an event to the Salt Master\n\n    .. versionadded:: 2014.7.0\n\n    :param tag: A tag to give the event.\n        Use slashes to create a namespace for related events. E.g.,\n        ``myco/build/buildserver1/start``, ``myco/build/buildserver1/success``,\n        ``myco/build/buildserver1/failure``.\n"},
    "yaml quoting": {"t": "true", "n": "123", "f": "1.5", "e": "", "c": "a: b", "h": "#x", "d": "2026-11-24", "s": " lead", "dash": "- x",
                     "tab": "a\tb", "q": "it's", "dq": "say \"hi\"", "emoji": "😀", "nel": "a\x85b", "bom": "\ufeff", "ls": "a\u2028b",
                     "long": "word " * 40, "longq": "'" + "x " * 60, "longd": "\t" + "y " * 60, "ctrl": "\x00\x07\x1b\x7f",
                     "yes": "yes", "tilde": "~", "null": "null", "oct": "0777", "hex": "0x1F", "sexa": "1:30", "float60": "1:30.5",
                     "dot": ".5", "exp": "1e5", "exps": "1.0e+5", "inf": ".inf", "merge": "<<", "eq": "=", "ts": "2026-11-24 08:00:00",
                     "tsz": "2026-1-2T3:04:05.1Z", "plus": "+1", "under": "1_000", "bin": "0b101", "colon": "a:b", "qm": "? x"},
    "long key": {"k" * 128: 1, "j" * 129: 2, "é" * 64: 3, "m\nk": 4},
    "floats in yaml": [0.1, 2.0, 1e16, 1e-05, -0.0, 1.5e300, float("nan"), float("inf")],
    "bytes": {"b": b"\xff\x00raw", "ok": b"fine"},
    "deep": {"l1": {"l2": {"l3": [1, {"l4": ["x", ["y"]]}]}}},
    "long list": list(range(40)),
    "long strs": ["word " * 30, "x" * 100],
    "dict of long": {"key": "word " * 30, "k2": list(range(30))},
    "datetime": datetime.datetime(2026, 11, 24, 8, 0),
}
with open(sys.argv[1], "w") as f:
    for name, v in values.items():
        packed = salt.payload.dumps(v, use_bin_type=True)
        data = salt.utils.data.decode(salt.payload.loads(packed, encoding="utf-8"), keep=True)
        case = {"name": name, "msgpack": packed.hex()}
        for wrap, d in (("call", {"local": data}), ("run", data)):
            case[wrap] = {
                "nested": printed(nested.output, d, {}),
                "nested_color": printed(nested.output, d, {"color": True}),
                "nested_color_failed": printed(nested.output, d, {"color": True}, _retcode=1),
                "json": printed(json_out.output, d, {}),
                "yaml": printed(yaml_out.output, d, {}),
                "txt": printed(txt.output, d, {}),
                "raw": printed(raw.output, d, {}),
                "quiet": printed(quiet.output, d, {}),
            }
        f.write(json.dumps(case, ensure_ascii=True) + "\n")
