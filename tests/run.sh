#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what the tests need (idempotent, quick when
# present), then formatting, lints, unit, integration and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/salt-env.sh
bash tests/system-packages.sh
bash tests/cargo-tools.sh
cargo fmt --all -- --check
bash tests/supply-chain.sh
cargo clippy --locked --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast
else
    cargo test --locked --no-fail-fast --lib --test integration
fi
cargo test --locked --doc
