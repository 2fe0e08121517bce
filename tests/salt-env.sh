#!/usr/bin/env bash
# Create (idempotently) Python venvs holding real Salt releases from PyPI, for
# halite's compatibility tests.
#
#   tests/salt-env.sh               # 3006.30, 3007.8 and 3007.17
#   tests/salt-env.sh 3007.8 ...    # only these
#
# Venvs live in ${HALITE_SALT_ENVS:-$HOME/.cache/halite/salt-envs}/<version>.
# Prints "<version> <venv>/bin" for each on stdout; progress goes to stderr.
#
# Why not `pip install salt==X`: 3006.30 and 3007.17 require e.g.
# certifi>=2026.10.23, newer than anything the registry holds, and pull in
# ~60 packages (cherrypy, gitpython, libcloud, ...) the event bus never uses;
# 3007.8's sdist builds a wheel with no Requires-Dist at all, so the plain
# install "succeeds" with Salt alone and `import salt.utils.event` fails.
# So Salt is installed with --no-deps (PyPI ships only an sdist; pip builds it
# once, ~10 s, and keeps the wheel in its cache) plus the packages the master,
# minion, salt-call, salt-run and salt need, pinned binary wheels. Not needed
# for the zeromq transport + event bus: requests, aiohttp (ws transport only),
# jmespath, setproctitle, croniter, dateutil, gnupg (cherrypy, for salt-api, is an add-on).
# 3006.x vendors tornado (salt.ext.tornado); 3007.x needs the real one.
#
# Environment:
#   HALITE_SALT_ENVS      where the venvs go
#   HALITE_PYTHON         interpreter for the venvs (default python3; 3.11 tested;
#                         its pip must be >= 22.3 for `pip --python`)
#   HALITE_SALT_EXTRA_PIP extra requirement specs for every venv (space separated)
#   HALITE_SALT_QUIET=1   no progress lines
set -euo pipefail

ROOT="${HALITE_SALT_ENVS:-$HOME/.cache/halite/salt-envs}"
PY="${HALITE_PYTHON:-python3}"
DEFAULT_VERSIONS=(3006.30 3007.8 3007.17)

# Pins per release. Every package is a cp311 manylinux wheel on PyPI.
# 3007.8: the versions in Salt's own lock file requirements/static/pkg/py3.11/linux.txt.
# 3006.30/3007.17: newest that meet their requirements/base.txt (3007.17 wants
# pyzmq<26 on Python < 3.13). Each list is the complete dependency closure.
pins_for() {
    case "$1" in
    3007.8)
        echo "msgpack==1.0.7 PyYAML==6.0.1 Jinja2==3.1.6 MarkupSafe==2.1.3" \
             "pyzmq==25.1.2 tornado==6.4.2 cryptography==42.0.5 cffi==1.16.0" \
             "pycparser==2.21 pycryptodomex==3.19.1 psutil==5.9.6 distro==1.8.0" \
             "looseversion==1.3.0 packaging==24.0" ;;
    3007.17)
        echo "msgpack==1.2.4 PyYAML==6.0.3 Jinja2==3.1.6 MarkupSafe==3.0.4" \
             "pyzmq==25.1.2 tornado==6.6.1 cryptography==50.0.2 cffi==2.1.1" \
             "pycparser==3.12 pycryptodomex==3.24.2 psutil==7.2.2 distro==1.9.0" \
             "looseversion==1.3.0 packaging==26.3" ;;
    3006.30)
        echo "msgpack==1.2.4 PyYAML==6.0.3 Jinja2==3.1.6 MarkupSafe==3.0.4" \
             "pyzmq==27.3.0 cryptography==50.0.2 cffi==2.1.1" \
             "pycparser==3.12 pycryptodomex==3.24.2 psutil==7.2.2 distro==1.9.0" \
             "looseversion==1.3.0 packaging==26.3" ;;
    esac
}

# Other releases: best effort, unpinned, resolved by pip (tornado is vendored in 3006).
unpinned_for() {
    case "$1" in
    3006.30|3007.8|3007.17) ;;
    3006.*) echo "msgpack PyYAML Jinja2 pyzmq cryptography pycryptodomex psutil distro looseversion packaging" ;;
    *)      echo "msgpack PyYAML Jinja2 pyzmq tornado cryptography pycryptodomex psutil distro looseversion packaging" ;;
    esac
}

# Add-ons some tests use from a release's venv, as "<module> <requirement>" pairs: added to the
# venv when the module does not import, and not part of its marker, so that adding one never
# rebuilds a venv. A failed add-on only warns: the tests that need it say SKIPPED.
# pyinotify: Salt's inotify beacon, compared with halite's (an sdist only, hence not in the
# binary-only extras). PyMySQL and psycopg2-binary: the drivers of Salt's mysql and pgjsonb
# returners, compared with halite's on real servers.
#
# CherryPy, for Salt's rest_cherrypy (salt-api, compared with halite's and benchmarked beside
# it), goes into a directory of its own that only salt-api's PYTHONPATH names: its dependencies
# bring python-dateutil, which changes what Salt's beacons and schedule do, and the venv's
# daemons are compared with halite's without it. Its complete dependency closure (jaraco.text
# pulls in typer, hence rich and pydantic), each pinned so that every machine gets the same set.
CHERRYPY_PINS="CherryPy==18.10.0,cheroot==11.1.2,portend==3.2.1,tempora==5.13.0"
CHERRYPY_PINS+=",zc.lockfile==4.0,more-itertools==11.2.1,jaraco.collections==5.2.1"
CHERRYPY_PINS+=",jaraco.context==6.1.2,jaraco.functools==4.6.0,jaraco.text==4.3.0"
CHERRYPY_PINS+=",backports.tarfile==1.2.0,python-dateutil==4.0.0,tzdata==2026.6"
CHERRYPY_PINS+=",typing_extensions==4.16.0,typer-slim==0.24.0,typer==0.29.2,shellingham==1.5.4"
CHERRYPY_PINS+=",rich==15.0.0,markdown-it-py==4.3.0,mdurl==0.1.2,Pygments==2.21.0"
CHERRYPY_PINS+=",pydantic==2.14.4,pydantic_core==2.50.5,annotated-types==0.8.0"
CHERRYPY_PINS+=",annotated-doc==0.0.7,typing-inspection==0.4.5"
addons_for() {
    case "$1" in
    3007.8) echo "pyinotify pyinotify==0.9.6 pymysql PyMySQL==1.1.1 psycopg2 psycopg2-binary==2.9.9" ;;
    esac
}

say() { [ "${HALITE_SALT_QUIET:-}" = 1 ] || echo "salt-env: $*" >&2; }

add_ons() {
    local v="$1" dir="$ROOT/$1" module requirement
    # shellcheck disable=SC2046
    set -- $(addons_for "$v")
    while [ $# -ge 2 ]; do
        module="$1" requirement="$2"
        shift 2
        "$dir/bin/python" -c "import $module" 2>/dev/null && continue
        exec 9>"$ROOT/.lock-$v"
        flock 9
        if ! "$dir/bin/python" -c "import $module" 2>/dev/null; then
            say "$v: adding $requirement"
            # shellcheck disable=SC2046
            "$PY" -m pip --python "$dir/bin/python" install --disable-pip-version-check \
                --no-input --no-deps $(tr , ' ' <<<"$requirement") >>"$ROOT/install-$v.log" 2>&1 ||
                echo "salt-env: $v: cannot add $requirement (log: $ROOT/install-$v.log)" >&2
        fi
        exec 9>&-
    done
}

ensure() {
    local v="$1" dir="$ROOT/$1" pins extra spec log t0
    pins="$(pins_for "$v")"
    extra="$(unpinned_for "$v") ${HALITE_SALT_EXTRA_PIP:-}"
    spec="salt==$v $pins | $extra"
    # Fast path: marker written only after a successful install + import check.
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.halite-ok" 2>/dev/null)" = "$spec" ]; then
        return 0
    fi
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock-$v"
    flock 9                                   # concurrent runs: one builds, others wait
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.halite-ok" 2>/dev/null)" = "$spec" ]; then
        exec 9>&-; return 0
    fi
    t0=$SECONDS
    say "$v: installing into $dir"
    log="$ROOT/install-$v.log"
    rm -rf "$dir"                             # partial/old venv: start over (pip cache keeps it fast)
    # The venv gets no pip of its own: the outer pip installs into it (--python),
    # which saves ~4 s. Keep pip's byte-compiling (~6 s): Salt's loader does not
    # write .pyc files itself, so without them every salt-call/daemon recompiles
    # its modules (salt-call --local test.ping: 1.6 s instead of 0.6 s).
    local pip=("$PY" -m pip --python "$dir/bin/python" install --disable-pip-version-check
               --no-input)
    {
        "$PY" -m venv --without-pip "$dir" &&
        # pins are the complete dependency closure, hence --no-deps for all
        # shellcheck disable=SC2086
        "${pip[@]}" --no-deps --prefer-binary "salt==$v" $pins &&
        if [ -n "${extra// /}" ]; then
            # shellcheck disable=SC2086
            "${pip[@]}" --only-binary :all: $extra
        fi &&
        "$dir/bin/python" -c 'import salt.utils.event, salt.version, salt.master, salt.minion, zmq
assert salt.version.__version__ == "'"$v"'", salt.version.__version__'
    } >"$log" 2>&1 || {
        echo "salt-env: $v: install FAILED (log: $log)" >&2
        tail -n 15 "$log" | cut -c1-300 >&2
        exec 9>&-
        return 1
    }
    printf '%s' "$spec" >"$dir/.halite-ok"
    exec 9>&-
    say "$v: ok ($((SECONDS - t0))s)"
}

# pepper (PyPI salt-pepper), Salt's REST API client, for the salt-api tests: a small venv of its
# own, since it imports pkg_resources (setuptools), which would also wake modules of Salt's own
# (pip, pip_state) in the release venvs the conformance tests compare with. Best effort.
PEPPER="salt-pepper==0.7.6"
pepper_env() {
    local dir="$ROOT/pepper"
    [ "$(cat "$dir/.halite-ok" 2>/dev/null)" = "$PEPPER" ] && return 0
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock-pepper"
    flock 9
    if [ "$(cat "$dir/.halite-ok" 2>/dev/null)" != "$PEPPER" ]; then
        say "pepper: installing $PEPPER into $dir"
        rm -rf "$dir"
        # The venv's bundled pip and setuptools (ensurepip, offline) are what pepper needs.
        if "$PY" -m venv "$dir" >"$ROOT/install-pepper.log" 2>&1 &&
            "$dir/bin/python" -m pip install --disable-pip-version-check --no-input --no-deps \
                "$PEPPER" >>"$ROOT/install-pepper.log" 2>&1 &&
            "$dir/bin/pepper" --help >/dev/null 2>>"$ROOT/install-pepper.log"; then
            printf '%s' "$PEPPER" >"$dir/.halite-ok"
        else
            echo "salt-env: cannot install $PEPPER (log: $ROOT/install-pepper.log)" >&2
        fi
    fi
    exec 9>&-
}

# CherryPy for 3007.8's salt-api, in <root>/cherrypy-3007.8 (see above).
cherrypy_dir() {
    local v=3007.8 dir="$ROOT/cherrypy-3007.8"
    [ -f "$ROOT/$v/.halite-ok" ] || return 0
    [ "$(cat "$dir/.halite-ok" 2>/dev/null)" = "$CHERRYPY_PINS" ] && return 0
    exec 9>"$ROOT/.lock-cherrypy"
    flock 9
    if [ "$(cat "$dir/.halite-ok" 2>/dev/null)" != "$CHERRYPY_PINS" ]; then
        say "adding CherryPy for $v's salt-api"
        rm -rf "$dir"
        # shellcheck disable=SC2046
        if "$PY" -m pip --python "$ROOT/$v/bin/python" install --disable-pip-version-check \
                --no-input --no-deps --target "$dir" $(tr , ' ' <<<"$CHERRYPY_PINS") \
                >"$ROOT/install-cherrypy.log" 2>&1 &&
            PYTHONPATH="$dir" "$ROOT/$v/bin/python" -c 'import cherrypy' \
                2>>"$ROOT/install-cherrypy.log"; then
            printf '%s' "$CHERRYPY_PINS" >"$dir/.halite-ok"
        else
            echo "salt-env: cannot add CherryPy (log: $ROOT/install-cherrypy.log)" >&2
        fi
    fi
    exec 9>&-
}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${DEFAULT_VERSIONS[@]}")
rc=0
for v in "${versions[@]}"; do
    if ensure "$v"; then add_ons "$v"; else rc=1; fi
done
pepper_env
cherrypy_dir
for v in "${versions[@]}"; do
    [ -f "$ROOT/$v/.halite-ok" ] && echo "$v $ROOT/$v/bin"
done
exit $rc
