#!/usr/bin/env bash
# Install (idempotently, at once when present) the cargo subcommands some tests need; without
# them those tests say SKIPPED with the reason.
#   cargo-deb   builds the Debian package (tests/package.rs); compiled from crates.io once,
#               about three minutes on two cores
#   cargo-deny  checks the dependencies' licences, sources and advisories (tests/supply-chain.sh,
#               deny.toml); compiled once, 19 minutes on two busy cores
set -euo pipefail
if ! cargo deb --version >/dev/null 2>&1; then
    echo "installing cargo-deb" >&2
    cargo install cargo-deb --locked --version 3.8.0 >&2 \
        || echo "could not install cargo-deb: the package test will be SKIPPED" >&2
fi
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny 0.20.2" ]; then
    echo "installing cargo-deny" >&2
    cargo install cargo-deny --locked --version 0.20.2 >&2 \
        || echo "could not install cargo-deny: tests/supply-chain.sh will fail" >&2
fi
