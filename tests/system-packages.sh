#!/usr/bin/env bash
# Install (idempotently, quickly when present) the Debian packages some tests need. Without
# root or apt the tests that need them say SKIPPED with the reason.
#   systemd-journal-remote      writes journal files for the journald beacon's tests
#   mariadb-server, postgresql  database servers the SQL returners' tests run on temporary data
#                               directories and ports (tests/databases.rs); the system's own
#                               services are left stopped and disabled
#   chromium                    the headless browser that renders salt-api's /app page
#   logrotate                   rotates a daemon's log with the shipped logrotate file
#   zsh                         runs the generated zsh completion in a pseudo-terminal
#   nats-server                 a three-node JetStream cluster on loopback ports for masters
#                               clustered on NATS (tests/nats_cluster.rs); no service is started
set -euo pipefail
packages=(systemd-journal-remote mariadb-server postgresql chromium logrotate zsh nats-server)
# The system service each package would start, left stopped and disabled.
declare -A services=([mariadb-server]=mariadb [postgresql]=postgresql [nats-server]=nats-server)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "not installing ${missing[*]} (needs root and apt-get): their tests will be SKIPPED" >&2
    exit 0
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; } \
    || echo "could not install ${missing[*]}: their tests will be SKIPPED" >&2
for package in "${missing[@]}"; do
    service="${services[$package]:-}"
    [ -n "$service" ] || continue
    service "$service" stop >/dev/null 2>&1 || true
    systemctl disable "$service" >/dev/null 2>&1 || update-rc.d "$service" disable >/dev/null 2>&1 \
        || true
done
