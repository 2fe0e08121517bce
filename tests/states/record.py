#!/usr/bin/env python3
"""Records what real Salt does for every case under tests/states/ (see README.md there).

Run it with the Python of a Salt 3007.8 install (it imports Salt for its outputters):

    ~/.cache/halite/salt-envs/3007.8/bin/python tests/states/record.py [CASE ...]

For each case directory (or those named) whose needs this machine meets, it runs
`salt-call --local` twice, each time in a fresh temporary tree:

1. `--out json --retcode-passthrough`: writes salt.json (the return, normalised), salt.rc and
   disk.txt (what the run left under the target directory);
2. with the function's own outputter and `--no-color`: the text a user sees, which must equal
   Salt's outputter run on the normalised salt.json once times are blanked in both (a check that
   the normalised data still prints as the real run did).

Then it prints salt.json's return through Salt's own highstate outputter: salt.highstate
(defaults, no colour) and salt.variants.json (other options and colour). Re-running rewrites
all of these; the SLS trees are never touched.

With `--check` it writes nothing: it runs Salt on every case again and fails, naming the case
and file, where Salt's fresh output differs from the recording (the test suite runs this, so
the recordings are real Salt's and stay so).
"""

import copy
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import salt.config
import salt.loader
import salt.output
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")
RULES = json.load(open(os.path.join(HERE, "normalise.json"), encoding="utf-8"))

# The option sets salt.variants.json holds, beside salt.highstate's defaults.
VARIANTS = [
    {"color": True},
    {"state_output": "terse"},
    {"state_output": "terse", "color": True},
    {"state_output": "mixed"},
    {"state_output": "mixed", "color": True},
    {"state_output": "changes"},
    {"state_output": "full_id"},
    {"state_output": "terse_id"},
    {"state_verbose": False},
    {"state_verbose": False, "color": True},
    {"state_verbose": False, "state_output": "changes"},
    {"state_output_profile": False},
    {"state_output_profile": False, "state_output": "terse"},
]


def needs_met(needs):
    """Whether this machine can run a case with these needs, and if not, why."""
    for need in needs:
        if need == "root" and os.geteuid() != 0:
            return "needs root"
        if need == "systemd" and not os.path.isdir("/run/systemd/system"):
            return "needs a running systemd"
        if need == "system" and os.environ.get("HALITE_RECORD_SYSTEM") != "1":
            return "changes the host system (set HALITE_RECORD_SYSTEM=1 to record)"
    return None


def substitute_tree(src, dst, tokens):
    """Copies src to dst, replacing each token by its path in every text file."""
    shutil.copytree(src, dst, symlinks=True)
    for root, _, files in os.walk(dst):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            for token, value in tokens.items():
                data = data.replace(token.encode(), value.encode())
            with open(path, "wb") as f:
                f.write(data)


def prepare(case_dir):
    """A fresh temporary tree for one run: config, file_roots, pillar_roots, target."""
    tmp = tempfile.mkdtemp(prefix="hsrec-")
    paths = {name: os.path.join(tmp, name) for name in RULES["dirs"]}
    tokens = {RULES["dirs"][name]: path for name, path in paths.items()}
    os.makedirs(paths["root"])
    os.makedirs(os.path.join(tmp, "conf"))
    for name, sub in (("files", "files"), ("pillar", "pillar")):
        src = os.path.join(case_dir, sub)
        if os.path.isdir(src):
            substitute_tree(src, paths[name], tokens)
        else:
            os.makedirs(paths[name])
    before = os.path.join(case_dir, "before")
    if os.path.isdir(before):
        substitute_tree(before, paths["target"], tokens)
    else:
        os.makedirs(paths["target"])
    config = {
        "id": RULES["minion_id"],
        "root_dir": paths["root"],
        "file_client": "local",
        "file_roots": {"base": [paths["files"]]},
        "pillar_roots": {"base": [paths["pillar"]]},
    }
    with open(os.path.join(tmp, "conf", "minion"), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    return tmp, paths


def salt_call(tmp, paths, case, extra):
    def text(value):
        value = str(value)
        for name, path in paths.items():
            value = value.replace(RULES["dirs"][name], path)
        return value

    argv = [SALT_CALL, "--local", "-c", os.path.join(tmp, "conf"), "--retcode-passthrough"]
    argv += extra + [case["fun"]] + [text(a) for a in case.get("args") or []]
    for key, value in (case.get("kwargs") or {}).items():
        argv.append(f"{key}={text(value)}")
    env = dict(os.environ, HOME=tmp, LC_ALL="C.UTF-8")
    return subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True)


def unpath(text, tmp, paths):
    """The rule `paths` of normalise.json: temporary paths back to their tokens."""
    for name in sorted(paths, key=lambda n: -len(paths[n])):
        text = text.replace(paths[name], RULES["dirs"][name])
    return text.replace(tmp, RULES["tmp"])


def normalise_states(ret):
    """The rule `state_fields`/`changes_fields` of normalise.json, on a state run's return."""
    if not isinstance(ret, dict):
        return ret
    for state in ret.values():
        if not isinstance(state, dict) or "__run_num__" not in state:
            continue
        for key, value in RULES["state_fields"].items():
            if key in state:
                state[key] = value
        changes = state.get("changes")
        if isinstance(changes, dict):
            for key, value in RULES["changes_fields"].items():
                if key in changes:
                    changes[key] = value
    return ret


def blank_times(text):
    """Times a run cannot repeat, blanked in printed highstate text (for the check only)."""
    text = re.sub(r"(Started: )\d\d:\d\d:\d\d\.\d+", r"\g<1>T", text)
    text = re.sub(r"(Duration: )[0-9.e+-]+ ms", r"\g<1>D ms", text)
    text = re.sub(r"(Total run time: +)[0-9.]+ m?s", r"\g<1>R", text)
    text = re.sub(r"Total run time: +R", "Total run time: R", text)
    return re.sub(r"(pid:\n +)\d+", r"\g<1>PID", text)


def listing(target):
    """disk.txt: every path under the target, sorted, with type, mode and content hash."""
    lines = []
    for root, dirs, files in os.walk(target):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, target)
            st = os.lstat(path)
            mode = f"{stat.S_IMODE(st.st_mode):04o}"
            if stat.S_ISLNK(st.st_mode):
                lines.append(f"l {mode} -> {os.readlink(path)} {rel}")
            elif stat.S_ISDIR(st.st_mode):
                lines.append(f"d {mode} - {rel}")
            else:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                lines.append(f"f {mode} {digest} {rel}")
    return sorted(lines, key=lambda l: l.split(" ")[-1])


def render(data, opts, options, retcode):
    """Salt's highstate outputter on `data` as salt-call prints it (rstripped, newline)."""
    o = dict(opts)
    o.update({"color": False, "state_output": "full", "state_verbose": True})
    o.update(options)
    o["output"] = "highstate"
    # A copy: Salt's outputter rewrites the data it prints (`duration` gains " ms").
    text = salt.output.out_format(copy.deepcopy(data), "highstate", o, _retcode=retcode)
    return text + "\n" if text else ""


CHECK = False


def put(case_dir, file, content):
    """Writes `file` of the case, or with --check compares it; True when it matches."""
    path = os.path.join(case_dir, file)
    if not CHECK:
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return True
    with open(path, encoding="utf-8") as f:
        recorded = f.read()
    if file.endswith(".json"):
        # As data: Salt builds some maps from Python sets, whose order changes between runs.
        same = json.loads(recorded) == json.loads(content)
    else:
        same = recorded == content
    if not same:
        print(f"{os.path.basename(case_dir)}: Salt's fresh {file} differs from the recording:")
        print(content[:2000])
        return False
    return True


def record(case_dir, opts, functions):
    name = os.path.basename(case_dir)
    with open(os.path.join(case_dir, "case.yaml"), encoding="utf-8") as f:
        case = yaml.safe_load(f)
    why = needs_met(case.get("needs") or [])
    if why:
        print(f"{name}: skipped ({why})")
        return True
    tmp, paths = prepare(case_dir)
    try:
        run = salt_call(tmp, paths, case, ["--out", "json"])
        if not run.stdout.strip():
            print(f"{name}: no JSON from salt-call:\n{run.stderr}")
            return False
        text = unpath(run.stdout, tmp, paths)
        document = json.loads(text)
        document["local"] = normalise_states(document.get("local"))
        disk = listing(paths["target"])
        disk = [unpath(line, tmp, paths) for line in disk]
    finally:
        shutil.rmtree(tmp)
    retcode = 0 if run.returncode == 0 else 1
    highstate = render(document, opts, {}, retcode)
    variants = [
        {"options": options, "text": render(document, opts, options, retcode)}
        for options in VARIANTS
    ]
    same = [
        put(case_dir, "salt.json", json.dumps(document, indent=4) + "\n"),
        put(case_dir, "salt.rc", f"{run.returncode}\n"),
        put(case_dir, "disk.txt", "".join(line + "\n" for line in disk)),
        put(case_dir, "salt.highstate", highstate),
        put(case_dir, "salt.variants.json", json.dumps(variants, indent=1) + "\n"),
    ]
    if not all(same):
        return False
    # The check: the same case, printed by salt-call as a user sees it.
    outputter = getattr(functions.get(case["fun"]), "__outputter__", None)
    tmp, paths = prepare(case_dir)
    try:
        shown = unpath(salt_call(tmp, paths, case, ["--no-color"]).stdout, tmp, paths)
    finally:
        shutil.rmtree(tmp)
    if outputter == "highstate" and blank_times(shown) != blank_times(highstate):
        print(f"{name}: salt-call printed other text than its outputter on salt.json:")
        print(shown)
        print("---- rendered from salt.json:")
        print(highstate)
        return False
    print(f"{name}: rc={run.returncode} states={len(document['local'] or [])} out={outputter}")
    return True


LOADED = None


def record_named(name):
    """`record` of the case `name`, with the options and functions loaded once by `main`."""
    return record(os.path.join(HERE, name), *LOADED)


def main():
    global CHECK
    names = [arg for arg in sys.argv[1:] if arg != "--check"]
    CHECK = len(names) < len(sys.argv[1:])
    cases = sorted(
        d
        for d in os.listdir(HERE)
        if os.path.isfile(os.path.join(HERE, d, "case.yaml")) and (not names or d in names)
    )
    tmp = tempfile.mkdtemp(prefix="hsrec-opts-")
    try:
        conf = os.path.join(tmp, "minion")
        with open(conf, "w", encoding="utf-8") as f:
            yaml.safe_dump({"root_dir": tmp, "file_client": "local"}, f)
        opts = salt.config.minion_config(conf)
        functions = salt.loader.minion_mods(opts)
    finally:
        shutil.rmtree(tmp)
    # A few cases at once, each in its own forked process: Salt's outputters keep global
    # state, so threads would mix their options.
    import multiprocessing
    global LOADED
    LOADED = (opts, functions)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        ok = all(pool.map(record_named, cases))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
