#!/usr/bin/env bash
# The dependencies against deny.toml: licences, bans and sources always; RustSec's advisories
# when its database can be fetched (it is a git repository outside the package registries: a
# machine that cannot reach it says SKIPPED with the reason rather than failing).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo deny --locked check --hide-inclusion-graph licenses bans sources

if reason=$(timeout 180 cargo deny fetch db 2>&1); then
    cargo deny --locked --offline check --hide-inclusion-graph advisories
else
    # git's own line says why (no route, no name resolution); else cargo-deny's last line.
    why=$(printf '%s\n' "$reason" | grep -oE 'fatal: .*' | head -n 1 || true)
    why=${why:-$(printf '%s\n' "$reason" | tail -n 1)}
    echo "SKIPPED advisories: RustSec's advisory database could not be fetched (${why:-no answer in 180 s})"
fi
